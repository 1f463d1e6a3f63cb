"""Tiny driving sequences made in milliseconds, for tests and `--data.preset=synthetic`.

A straight street the ego drives along at 1 m a frame, buildings on both sides, a car
overtaking it at 2 m a frame. Nothing here is scored: it exercises the plumbing (windows,
token caches, training, forecasting) at sizes a test runs in a second. Splits use disjoint
seeds, so no synthetic val or heldout frame is a training frame (tests check it).

Shapes: T time steps (frames), X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import torch

from world_model.windows import ForecastWindows
from worldmodels.data.driving import GridConfig
from worldmodels.occ3d import CLASS_ID, FREE

SYNTHETIC_GRID = GridConfig(size=(8, 8, 4), voxel_xy=1.0, z_range=(-1.0, 3.0))  # square: h = w
SYNTHETIC_SEEDS = {"train": (0, 6), "val": (100, 3), "heldout": (200, 2)}  # (first, count)
SYNTHETIC_FRAMES = 13  # frames per sequence: 3 windows of 11


def pose_at(x: float, y: float = 0.0) -> torch.Tensor:
    """(4, 4) float64 world-from-ego: the ego at (x, y), facing +x."""
    pose = torch.eye(4, dtype=torch.float64)
    pose[0, 3], pose[1, 3] = x, y
    return pose


def street_sequence(seed: int, frames: int = SYNTHETIC_FRAMES, grid: GridConfig = SYNTHETIC_GRID,
                    wobble: float = 0.0, textured: bool = False):  # fmt: skip
    """(occupancy (T, X, Y, Z) uint8, visibility (T, X, Y, Z) bool, poses (T, 4, 4)): the ego
    drives 1 m a frame along a street of buildings; a car drives 2 m a frame beside it.
    `wobble` > 0 moves each pose sideways by up to that many metres (drawn after the scene,
    so the grids do not change): motions that differ between sequences, for motion bins.
    `textured`: the ground of the two outer columns on each side is terrain or vegetation at
    random per world cell (its own generator), so two sequences never share a frame."""
    g = torch.Generator().manual_seed(seed)
    X, Y, Z = grid.size
    length = X + 3 * frames  # world cells along x
    world = torch.full((length, Y, Z), FREE, dtype=torch.uint8)
    world[:, :, 0] = CLASS_ID["terrain"]
    world[:, 2 : Y - 2, 0] = CLASS_ID["driveable_surface"]
    for x in torch.randint(0, length - 3, (length // 4,), generator=g).tolist():
        side = 0 if torch.rand(1, generator=g) < 0.5 else Y - 1
        height = int(torch.randint(2, Z + 1, (1,), generator=g))
        world[x : x + 3, side, 1:height] = CLASS_ID["manmade"]
    if textured:
        bits = torch.rand((length, 4), generator=torch.Generator().manual_seed(seed + 7919)) < 0.5
        sides = world[:, [0, 1, Y - 2, Y - 1], 0]  # (length, 4): the ground of the outer columns
        world[:, [0, 1, Y - 2, Y - 1], 0] = torch.where(bits, CLASS_ID["vegetation"], sides)
    start = int(torch.randint(0, X, (1,), generator=g))
    occupancy, poses = [], []
    for t in range(frames):
        frame = world[t : t + X].clone()  # the ego's grid: world cells t .. t + X - 1
        car = (start + t) % (X - 1)  # its row in the ego's grid: 1 m/frame faster than the ego
        frame[car : car + 2, 3, 1] = CLASS_ID["car"]
        occupancy.append(frame)
        # Row i's centre is at ego x = i + 0.5 - X/2 and world x = t + i + 0.5: ego at t + X/2.
        poses.append(pose_at(t + X / 2))
    occupancy = torch.stack(occupancy)  # (T, X, Y, Z)
    if wobble > 0:
        poses = [pose_at(p[0, 3].item(), wobble * (2 * torch.rand(1, generator=g).item() - 1))
                 for p in poses]  # fmt: skip
    visibility = torch.zeros_like(occupancy, dtype=torch.bool)
    visibility[:, :, 1 : Y - 1] = True  # the street and its near side, not the far columns
    return occupancy, visibility, torch.stack(poses)


def synthetic_windows(split: str, frames: int = SYNTHETIC_FRAMES,
                      grid: GridConfig = SYNTHETIC_GRID) -> ForecastWindows:  # fmt: skip
    """The forecasting windows of one synthetic split (disjoint seeds per split)."""
    if split not in SYNTHETIC_SEEDS:
        raise ValueError(f"split must be one of {sorted(SYNTHETIC_SEEDS)}, got {split!r}")
    first, count = SYNTHETIC_SEEDS[split]
    arrays = [
        street_sequence(first + k, frames, grid, wobble=0.3, textured=True) for k in range(count)
    ]
    return ForecastWindows(
        occupancy=[a[0] for a in arrays], visibility=[a[1] for a in arrays],
        poses=[a[2] for a in arrays], grid=grid,
        names=[f"street-{first + k:05d}" for k in range(count)], split=split,
    )  # fmt: skip
