"""Chapter 4's data: LiDAR sweeps as range images, from the driving world, a synthetic street
for tests, and the real Ouster scans the repository ships.

    train = LidarSweeps("train", preset="debug")       # one item per frame
    item = train[0]
    item["range"]        (H, W) float32 m, 0 = no return: the sensor's (noisy) ranges
    item["range_clean"]  (H, W) float32 m: the same returns without range noise
    item["dirs"]         (H, W, 3) float32 unit ray directions, sensor frame (x fwd, y left, z up)
    item["ego_pose"]     (4, 4) float64 world-from-ego (the sensor frame is the ego frame
                         lifted by the sensor height, so its motion in x, y is the ego's)
    item["sequence"], item["frame"]   () int64: which sequence of the split, which frame

The tokenizer trains on `range`, the returns as a real sensor gives them (2 cm noise in the
driving world). Scores are computed against `range_clean`, the true surface along the same
rays, so that the noise is not counted as the model's error (validate.py says so).

Splits are the driving dataset's own: "train" and "val" are different sequences (disjoint
seeds) of the same scenario kinds, "heldout" a scenario kind training never sees
(roundabouts); `sequence_keys` names each sequence by (scenario, seed) for the test that
they share nothing. Every sequence's ranges are read once into memory as the stored uint16
(2 mm units): the debug preset's 75 training sequences take 110 MB.

`SyntheticSweeps` ray-casts a few boxes on a ground plane around a moving sensor, in
milliseconds: for tests of the plumbing only. `real_scans()` gives the Ouster recordings of
`worldmodels/data/real_lidar/` (committed to the repository with their BSD-3 notice, so
CI has them); their only truth is the measured return.

Shapes: H, W range-image height and width (beams, azimuth columns), P points, M boxes,
n a count local to one function (here: frames).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from lidar_tokenizer.rays import sensor_directions
from worldmodels.data.driving import DrivingSequences
from worldmodels.data.driving.shards import RANGE_UNIT
from worldmodels.data.driving.store import read_shard
from worldmodels.data.real_formats import load_real_lidar

SPLITS = ("train", "val", "heldout")
REAL_RECORDINGS = ("os1-128", "os1-32", "os0-8")


class LidarSweeps(Dataset):
    """Every frame of one split of the driving world's sweeps (made on first use)."""

    def __init__(self, split: str, preset: str = "debug", root: str | None = None):
        source = DrivingSequences(split, 1, preset, root=root or None, lidar=False)
        self.preset = source.preset
        self.sequence_keys = [(s["scenario"], s["seed"]) for s in source.sequences]
        dirs = self.preset.lidar.ray_directions().astype(np.float32)  # (H, W, 3)
        self.dirs = torch.from_numpy(dirs)
        self.ranges, self.clean, self.poses = [], [], []
        for entry in source.sequences:
            data = read_shard(source.folder / entry["file"],
                              ["lidar_range", "lidar_range_clean", "ego_pose"])  # fmt: skip
            self.ranges.append(data["lidar_range"])  # (n, H, W) uint16, 2 mm units
            self.clean.append(data["lidar_range_clean"])
            self.poses.append(torch.from_numpy(data["ego_pose"]))
        self.index = [(k, t) for k, r in enumerate(self.ranges) for t in range(len(r))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k, t = self.index[i]
        return {
            "range": metres(self.ranges[k][t]),
            "range_clean": metres(self.clean[k][t]),
            "dirs": self.dirs,
            "ego_pose": self.poses[k][t],
            "sequence": torch.tensor(k),
            "frame": torch.tensor(t),
        }

    def frames_of(self, k: int) -> list[int]:
        """Item indices of sequence k, in time order."""
        return [i for i, (seq, _) in enumerate(self.index) if seq == k]


def metres(stored: np.ndarray) -> torch.Tensor:
    """Stored ranges (uint16, RANGE_UNIT = 2 mm steps) -> float32 metres."""
    return torch.from_numpy(stored.astype(np.float32) * np.float32(RANGE_UNIT))


# ---------------------------------------------------------------------- synthetic streets

SYNTHETIC_SEEDS = {"train": (0, 6), "val": (100, 3), "heldout": (200, 2)}  # first, count
SYNTHETIC_FRAMES = 4
SYNTHETIC_SENSOR = dict(beams=16, azimuths=128, elevation_up=10.0, elevation_down=-30.0)
SENSOR_HEIGHT = 1.84  # m above the ground, the driving world's
MAX_RANGE = 30.0


def cast_boxes(dirs: torch.Tensor, origin: torch.Tensor, low: torch.Tensor, high: torch.Tensor):
    """Depth of the first hit of rays from `origin` (3,) along dirs (P, 3) on axis-aligned
    boxes [low, high] (M, 3) and the ground z = 0 -> (P,) metres, inf where nothing is hit.
    Slab method: a ray is inside box m between max_a t_enter and min_a t_exit."""
    safe = torch.where(dirs == 0, 1e-12, dirs)[:, None, :]  # (P, 1, 3)
    t_low, t_high = (low - origin) / safe, (high - origin) / safe  # (P, M, 3)
    enter = torch.minimum(t_low, t_high).amax(-1)  # (P, M)
    leave = torch.maximum(t_low, t_high).amin(-1)
    box = torch.where((enter < leave) & (enter > 0), enter, torch.inf).amin(-1)  # (P,)
    ground = torch.where(dirs[:, 2] < 0, -origin[2] / safe[:, 0, 2], torch.inf)
    return torch.minimum(box, ground)


def synthetic_street(seed: int, frames: int = SYNTHETIC_FRAMES, sensor: dict | None = None,
                     max_range: float = MAX_RANGE):  # fmt: skip
    """(ranges (n, H, W), clean (n, H, W), poses (n, 4, 4), dirs (H, W, 3)) of a street:
    buildings on both sides of a road along x, parked cars, the sensor driving along x.
    `sensor`: rays.sensor_directions' arguments (default 16 beams x 128 columns)."""
    g = torch.Generator().manual_seed(seed)
    uniform = lambda lo, hi, n: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    count = 6
    side = torch.where(torch.rand(count, generator=g) < 0.5, -1.0, 1.0)
    x = uniform(-25.0, 25.0, count)
    y = side * uniform(7.0, 12.0, count)
    size = torch.stack([uniform(4, 10, count), uniform(3, 6, count), uniform(3, 8, count)], -1)
    cars = torch.stack([uniform(-20, 20, 3), uniform(-3, 3, 3), torch.zeros(3)], -1)
    centre = torch.cat([torch.stack([x, y, size[:, 2] / 2], -1), cars + torch.tensor([0, 0, 0.8])])
    size = torch.cat([size, torch.tensor([[4.5, 1.9, 1.6]]).expand(3, 3)])
    low, high = centre - size / 2, centre + size / 2  # (M, 3)
    dirs = sensor_directions(**(sensor or SYNTHETIC_SENSOR))  # (H, W, 3)
    flat = dirs.reshape(-1, 3)
    speed = float(uniform(2.0, 5.0, 1))  # metres per frame
    ranges, poses = [], []
    for t in range(frames):
        origin = torch.tensor([speed * t, 0.0, SENSOR_HEIGHT])
        depth = cast_boxes(flat, origin, low, high)  # (H*W,)
        ranges.append(torch.where(depth < max_range, depth, 0.0).reshape(dirs.shape[:2]))
        pose = torch.eye(4, dtype=torch.float64)
        pose[0, 3] = speed * t
        poses.append(pose)
    clean = torch.stack(ranges)  # (n, H, W)
    noise = 0.02 * torch.randn(clean.shape, generator=g)
    return torch.where(clean > 0, clean + noise, 0.0), clean, torch.stack(poses), dirs


def stored(ranges: torch.Tensor) -> np.ndarray:
    """Metres -> uint16 in 2 mm steps, as the driving world stores them."""
    return (ranges / RANGE_UNIT).round().numpy().astype(np.uint16)


class SyntheticSweeps(LidarSweeps):
    """`LidarSweeps` over synthetic streets (disjoint seeds per split): tests only."""

    def __init__(self, split: str):
        if split not in SYNTHETIC_SEEDS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        first, count = SYNTHETIC_SEEDS[split]
        streets = [synthetic_street(seed) for seed in range(first, first + count)]
        self.sequence_keys = [("synthetic", seed) for seed in range(first, first + count)]
        self.dirs = streets[0][3]
        self.ranges = [stored(s[0]) for s in streets]
        self.clean = [stored(s[1]) for s in streets]
        self.poses = [s[2] for s in streets]
        self.index = [(k, t) for k in range(count) for t in range(SYNTHETIC_FRAMES)]


# ---------------------------------------------------------------------- real scans


def real_scans(names=REAL_RECORDINGS, max_points: int | None = None) -> list[dict]:
    """The real Ouster scans as frames: {"points" (P, 3) float32 m, sensor frame; "name";
    "sequence" (which recording); "frame"}. `max_points` keeps every k-th return, k the
    smallest that fits (for quick checks; validate.py scores every return)."""
    frames = []
    for k, name in enumerate(names):
        recording = load_real_lidar(name)
        for t, scan in enumerate(recording):
            points = torch.from_numpy(np.asarray(scan.points, dtype=np.float32))
            if max_points and len(points) > max_points:
                points = points[:: math.ceil(len(points) / max_points)]
            frames.append({"points": points, "name": f"{name}#{t}", "sequence": k, "frame": t})
    return frames
