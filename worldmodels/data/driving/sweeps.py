"""One split's LiDAR as stored: what chapter 4's `LidarSweeps` and chapter 5's LiDAR clips
both read.

    split = read_lidar_split("val", "debug")       # made on first use, like every split
    split.ranges[k]     (n, H, W) uint16, 2 mm steps (RANGE_UNIT), 0 = no return: measured
    split.clean[k]      (n, H, W) uint16: the same returns without range noise
    split.poses[k]      (n, 4, 4) float64 world-from-ego
    split.dirs          (H, W, 3) float32 unit beam directions, sensor frame

Shapes: H, W range-image height and width (beams, azimuth columns), n a count local to one
function (here: frames of a sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from worldmodels.data.driving.dataset import DrivingSequences
from worldmodels.data.driving.store import read_shard


@dataclass
class LidarSplit:
    """Every sequence of a split: its (scenario, seed) key, ranges, clean ranges and poses."""

    sequence_keys: list
    dirs: torch.Tensor
    ranges: list
    clean: list
    poses: list
    preset: object = None  # the driving preset's config (None for synthetic data)

    def __len__(self) -> int:
        """Frames of the split."""
        return sum(len(r) for r in self.ranges)


def read_lidar_split(split: str, preset: str = "debug", root: str | None = None) -> LidarSplit:
    """The split's sweeps of the driving preset (generated on first use), read into memory as
    stored (uint16: the debug preset's 75 training sequences take 110 MB)."""
    source = DrivingSequences(split, 1, preset, root=root or None, lidar=False)
    dirs = torch.from_numpy(source.preset.lidar.ray_directions().astype(np.float32))
    ranges, clean, poses = [], [], []
    for entry in source.sequences:
        data = read_shard(source.folder / entry["file"],
                          ["lidar_range", "lidar_range_clean", "ego_pose"])  # fmt: skip
        ranges.append(data["lidar_range"])
        clean.append(data["lidar_range_clean"])
        poses.append(torch.from_numpy(data["ego_pose"]))
    keys = [(s["scenario"], s["seed"]) for s in source.sequences]
    return LidarSplit(keys, dirs, ranges, clean, poses, source.preset)
