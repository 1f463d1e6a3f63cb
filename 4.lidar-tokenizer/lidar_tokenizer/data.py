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

from lidar_tokenizer.sweeps import metres, stored
from lidar_tokenizer.synthetic import (  # noqa: F401  (re-exported: chapter 4's tests, benchmark)
    MAX_RANGE,
    SENSOR_HEIGHT,
    SYNTHETIC_FRAMES,
    SYNTHETIC_SENSOR,
    cast_boxes,
    synthetic_street,
)
from worldmodels.data.driving.sweeps import read_lidar_split
from worldmodels.data.real_formats import load_real_lidar

SPLITS = ("train", "val", "heldout")
REAL_RECORDINGS = ("os1-128", "os1-32", "os0-8")


class LidarSweeps(Dataset):
    """Every frame of one split of the driving world's sweeps (made on first use)."""

    def __init__(self, split: str, preset: str = "debug", root: str | None = None):
        read = read_lidar_split(split, preset, root)  # the shared reader: uint16, 2 mm steps
        self.preset, self.sequence_keys, self.dirs = read.preset, read.sequence_keys, read.dirs
        self.ranges, self.clean, self.poses = read.ranges, read.clean, read.poses
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


# ---------------------------------------------------------------------- synthetic streets

SYNTHETIC_SEEDS = {"train": (0, 6), "val": (100, 3), "heldout": (200, 2)}  # first, count


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
