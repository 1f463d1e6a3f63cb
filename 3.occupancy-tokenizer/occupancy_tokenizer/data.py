"""Chapter 3's data: occupancy frames (or clips) of the driving world, with their sequence.

    train = OccupancyClips("train", frames=1, preset="debug")   # one item per frame
    item = train[0]
    item["occupancy"]    (X, Y, Z) uint8 Occ3D class ids (17 = free); clips: (T, X, Y, Z)
    item["visibility"]   same shape, bool: voxels a returned LiDAR ray crossed
    item["sequence"]     () int64: which sequence of the split the item comes from

The splits are the driving world's: "train" and "val" are different sequences (disjoint
seeds) of the same scenario kinds, "heldout" a scenario kind training never sees
(roundabouts). `sequence` groups the items for bootstrap intervals (frames of one sequence
are not independent). With `preload`, every sequence is read once into memory (the `debug`
preset: 75 training sequences of 32 frames, about 80 MB of class ids); without it each item
is read from its shard (the paper grid).

`SyntheticOccupancy` serves a few tiny street scenes (a road, buildings, trees, cars moving
along the road) made from a seed in milliseconds: for tests and quick checks of the plumbing
(`--data.preset=synthetic`), never for the chapter's numbers.

Shapes: T time steps, X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import torch
from einops import repeat
from torch.utils.data import Dataset

from worldmodels.data.driving import DrivingSequences

SPLITS = ("train", "val", "heldout")
SYNTHETIC_GRID = (32, 32, 8)
SYNTHETIC_SEEDS = {"train": (0, 6), "val": (100, 3), "heldout": (200, 2)}  # first, count
SYNTHETIC_FRAMES = 8  # frames per synthetic sequence


class OccupancyClips(Dataset):
    """Every window of `frames` consecutive frames (starting every `stride` frames) of one
    split; `frames=1` serves single frames (X, Y, Z) rather than (1, X, Y, Z)."""

    def __init__(
        self,
        split: str,
        frames: int = 1,
        preset: str = "debug",
        root: str | None = None,
        stride: int = 1,
        preload: bool = True,
    ):
        self.frames = frames
        self.windows_data = DrivingSequences(
            split, frames, preset, root=root or None, stride=stride, lidar=False
        )
        self.windows = self.windows_data.windows  # [(sequence index, first frame)]
        self.cache = None
        if preload:  # every sequence whole, once: (T_seq, X, Y, Z) each
            whole = DrivingSequences(
                split, self.windows_data.preset.data.frames, preset, root=root or None,
                stride=self.windows_data.preset.data.frames, lidar=False, generate=False,
            )  # fmt: skip
            if whole.windows != [(k, 0) for k in range(len(self.windows_data.sequences))]:
                raise ValueError(f"{split}: sequences of unequal length; use preload=False")
            items = (whole[k] for k in range(len(whole)))  # item k = sequence k, whole
            self.cache = [(item["occupancy"], item["visibility"]) for item in items]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        k, start = self.windows[index]
        if self.cache is not None:
            occupancy, visibility = (a[start : start + self.frames] for a in self.cache[k])
        else:
            item = self.windows_data[index]
            occupancy, visibility = item["occupancy"], item["visibility"]
        if self.frames == 1:
            occupancy, visibility = occupancy[0], visibility[0]  # (X, Y, Z)
        return {
            "occupancy": occupancy.clone(),
            "visibility": visibility.clone(),
            "sequence": torch.tensor(k),
        }

    def sequence_of(self, index: int) -> int:
        """The sequence (index into this split's sequences) an item comes from."""
        return self.windows[index][0]


def synthetic_sequence(seed: int, frames: int = SYNTHETIC_FRAMES, grid=SYNTHETIC_GRID):
    """(occupancy (T, X, Y, Z) uint8, visibility (T, X, Y, Z) bool) of a tiny street: ground
    (road across y, terrain, sidewalks), buildings and trees beside it, cars moving along x."""
    g = torch.Generator().manual_seed(seed)
    X, Y, Z = grid
    scene = torch.full((X, Y, Z), 17, dtype=torch.uint8)  # free
    road = slice(Y // 2 - 4, Y // 2 + 4)
    scene[:, :, 0] = 14  # terrain
    scene[:, road.start - 2 : road.stop + 2, 0] = 13  # sidewalks
    scene[:, road, 0] = 11  # driveable surface
    for _ in range(4):  # buildings (manmade) and trees (vegetation) beside the road
        x = int(torch.randint(0, X - 6, (1,), generator=g))
        y = int(torch.randint(0, 6, (1,), generator=g))
        y = y if torch.rand(1, generator=g) < 0.5 else Y - 6 - y
        height = int(torch.randint(2, Z, (1,), generator=g))
        label = 15 if torch.rand(1, generator=g) < 0.6 else 16
        scene[x : x + 5, y : y + 5, 1:height] = label
    occupancy = repeat(scene, "x y z -> t x y z", t=frames).clone()  # (T, X, Y, Z)
    for _ in range(2):  # cars: 4 x 2 x 2 voxels, 1-2 voxels a frame along x
        x0 = int(torch.randint(0, X, (1,), generator=g))
        y0 = road.start + int(torch.randint(0, 6, (1,), generator=g))
        speed = int(torch.randint(1, 3, (1,), generator=g))
        for t in range(frames):
            x = (x0 + speed * t) % (X - 4)
            occupancy[t, x : x + 4, y0 : y0 + 2, 1:3] = 4
    xs = torch.arange(X).sub(X / 2).pow(2)[:, None]
    ys = torch.arange(Y).sub(Y / 2).pow(2)[None, :]
    near = (xs + ys) < (0.45 * X) ** 2  # (X, Y): what a sensor in the middle sees
    visibility = repeat(near, "x y -> t x y z", t=frames, z=Z).clone()  # (T, X, Y, Z)
    return occupancy, visibility


class SyntheticOccupancy(OccupancyClips):
    """`OccupancyClips` over synthetic street sequences (disjoint seeds per split)."""

    def __init__(self, split: str, frames: int = 1, stride: int = 1):
        if split not in SYNTHETIC_SEEDS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        first, count = SYNTHETIC_SEEDS[split]
        self.frames = frames
        self.seeds = list(range(first, first + count))
        self.cache = [synthetic_sequence(seed) for seed in self.seeds]
        self.windows = [
            (k, start)
            for k in range(count)
            for start in range(0, SYNTHETIC_FRAMES - frames + 1, stride)
        ]
