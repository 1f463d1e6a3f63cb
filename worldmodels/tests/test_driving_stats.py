"""The stats command's pieces: the ego-motion warp of a grid, the Occ3D reference shares."""

import numpy as np
import pytest

from worldmodels.data.driving import PRESETS
from worldmodels.data.driving.report import OCC3D_COUNTS, occ3d_shares
from worldmodels.data.driving.stats import warp
from worldmodels.occ3d import CLASS_ID, FREE

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


def test_occ3d_reference_shares():
    shares = occ3d_shares()
    assert sum(shares.values()) == pytest.approx(100.0)
    assert shares["driveable_surface"] == pytest.approx(32.0, abs=0.1)
    assert shares["car"] == pytest.approx(3.09, abs=0.01)
    assert len(OCC3D_COUNTS) == 18 and CLASS_ID["free"] == 17
