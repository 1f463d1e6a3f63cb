"""Shared test setup for chapter 5: one CPU thread, and tiny driving sequences made in
milliseconds (a straight street the ego drives along, cars overtaking it), for the
benchmark's plumbing; the benchmark's numbers come from the driving world's data."""

from types import SimpleNamespace

import pytest
import torch
from world_model.windows import ForecastWindows

from worldmodels.data.driving import GridConfig
from worldmodels.occ3d import CLASS_ID, FREE
from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)

STREET_GRID = GridConfig(size=(16, 8, 4), voxel_xy=1.0, z_range=(-1.0, 3.0))


def pose_at(x: float, y: float = 0.0) -> torch.Tensor:
    """(4, 4) float64 world-from-ego: the ego at (x, y), facing +x."""
    pose = torch.eye(4, dtype=torch.float64)
    pose[0, 3], pose[1, 3] = x, y
    return pose


def street_sequence(seed: int, frames: int = 13, grid: GridConfig = STREET_GRID):
    """(occupancy (T, X, Y, Z) uint8, visibility (T, X, Y, Z) bool, poses (T, 4, 4)): the ego
    drives 1 m a frame along a street of buildings; a car drives 2 m a frame beside it."""
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
    visibility = torch.zeros_like(occupancy, dtype=torch.bool)
    visibility[:, :, 1 : Y - 1] = True  # the street and its near side, not the far columns
    return occupancy, visibility, torch.stack(poses)


def street_windows(sequences: int = 4, frames: int = 13, first_seed: int = 0, split="val"):
    arrays = [street_sequence(first_seed + k, frames) for k in range(sequences)]
    return ForecastWindows(
        occupancy=[a[0] for a in arrays],
        visibility=[a[1] for a in arrays],
        poses=[a[2] for a in arrays],
        grid=STREET_GRID,
        names=[f"street-{first_seed + k:05d}" for k in range(sequences)],
        split=split,
    )


@pytest.fixture
def streets():
    """streets.windows(...) (`street_windows`), streets.sequence(...) (`street_sequence`),
    streets.grid, streets.pose_at: the tiny street world, for the tests of this folder."""
    return SimpleNamespace(windows=street_windows, sequence=street_sequence, grid=STREET_GRID,
                           pose_at=pose_at)  # fmt: skip
