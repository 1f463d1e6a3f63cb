"""A 4D driving world: highway-env traffic on procedurally built surroundings, rendered per
frame as Occ3D-style semantic occupancy, a LiDAR visibility mask, a ray-cast LiDAR sweep, the
ego pose and the agents' boxes. See worldmodels/data/README.md.

    from worldmodels.data.driving import DrivingSequences, ensure_dataset
    folder = ensure_dataset("debug")             # makes data/driving/debug/ on first use
    clip = DrivingSequences("train", seq_len=8)[0]
    clip["occupancy"].shape                      # (8, 64, 64, 16) uint8
"""

from worldmodels.data.driving.config import (
    KITTI_HDL64,
    PRESETS,
    DatasetConfig,
    GridConfig,
    LidarConfig,
    Preset,
    get_preset,
)
from worldmodels.data.driving.dataset import DrivingSequences
from worldmodels.data.driving.policy import META_ACTIONS
from worldmodels.data.driving.scenarios import SCENARIOS
from worldmodels.data.driving.shards import SHARD_KEYS
from worldmodels.data.driving.store import (
    dataset_plan,
    ensure_dataset,
    load_manifest,
    read_shard,
)

__all__ = [
    "KITTI_HDL64",
    "META_ACTIONS",
    "PRESETS",
    "SCENARIOS",
    "SHARD_KEYS",
    "DatasetConfig",
    "DrivingSequences",
    "GridConfig",
    "LidarConfig",
    "Preset",
    "benchmark",
    "dataset_plan",
    "ensure_dataset",
    "generate_sequence",
    "get_preset",
    "load_manifest",
    "read_shard",
]


def __getattr__(name: str):
    """`generate_sequence` and `benchmark` on first use: they import highway-env, which reading
    the stored data (and a GPU machine that has only torch) does without."""
    if name in ("generate_sequence", "benchmark"):
        from worldmodels.data.driving import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
