"""The ego-motion warp of a grid (the "static world" baseline): one grid and a batch agree."""

import numpy as np
import pytest
import torch

from worldmodels.data.driving import PRESETS, stats
from worldmodels.data.driving.ego_motion import voxel_centres, warp, warp_grids
from worldmodels.occ3d import FREE

DEBUG = PRESETS["debug"]


def pose(x: float, y: float, yaw: float) -> np.ndarray:
    out = np.eye(4)
    out[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    out[:2, 3] = x, y
    return out


def test_warp_moves_a_grid_by_the_ego_motion():
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 18, DEBUG.grid.size).astype(np.uint8)
    start = pose(10.0, 5.0, 0.3)
    assert np.array_equal(warp(grid, start, start, DEBUG), grid)
    # The ego drives 2 m forward: what was at x + 2 is now at x; the front two rows are new.
    ahead = start @ pose(2.0, 0.0, 0.0)
    moved = warp(grid, start, ahead, DEBUG)
    assert np.array_equal(moved[:-2], grid[2:]) and np.all(moved[-2:] == FREE)
    # A quarter turn to the left: new (x, y) is old (-y, x), so new[i, j] = old[63 - j, i].
    turned = warp(grid, start, start @ pose(0.0, 0.0, np.pi / 2), DEBUG)
    assert np.array_equal(turned[:, :, 3], np.rot90(grid[:, :, 3], k=-1))
    assert stats.warp is warp  # the stats command measures its "warp" baseline with it


def test_a_batch_warps_each_grid_by_its_own_poses():
    rng = np.random.default_rng(1)
    grids = rng.integers(0, 18, (3, *DEBUG.grid.size)).astype(np.uint8)
    starts = [pose(*rng.normal(0, 20, 2), rng.uniform(-3, 3)) for _ in range(3)]
    ends = [s @ pose(*rng.normal(0, 4, 2), rng.normal(0, 0.3)) for s in starts]
    batch = warp_grids(
        torch.from_numpy(grids),
        torch.from_numpy(np.stack(starts)),
        torch.from_numpy(np.stack(ends)),
        DEBUG.grid,
    )
    for i in range(3):
        assert np.array_equal(batch[i].numpy(), warp(grids[i], starts[i], ends[i], DEBUG))
    centres = voxel_centres(DEBUG.grid)
    assert centres.shape == (64, 64, 16, 3) and centres[0, 0, 0].tolist() == [-31.5, -31.5, -0.8]
    with pytest.raises(ValueError, match=r"\(n, X, Y, Z\)"):
        warp_grids(torch.from_numpy(grids[:, :32]), torch.eye(4)[None], torch.eye(4)[None],
                   DEBUG.grid)  # fmt: skip
    with pytest.raises(ValueError, match=r"pose_to must be \(n, 4, 4\) = \(3, 4, 4\)"):
        warp_grids(torch.from_numpy(grids), torch.eye(4).repeat(3, 1, 1), torch.eye(4)[None],
                   DEBUG.grid)  # fmt: skip
