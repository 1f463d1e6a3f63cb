"""Voxelization: the region, the sparse voxels, cropping, and bad input."""

import math

import pytest
import torch
from lidar_tokenizer.region import VoxelGrid, voxelize, voxelize_batch

GRID = VoxelGrid((-4.0, 4.0), (-2.0, 2.0), (-1.0, 1.0), (8, 4, 2))  # 1 m cubes


def test_paper_grid_is_copilot4d():
    grid = VoxelGrid.paper()
    assert grid.shape == (1024, 1024, 64)
    for got, want in zip(grid.voxel_size, (0.15625, 0.15625, 0.140625)):
        assert math.isclose(got, want)
    assert VoxelGrid.debug().shape == (256, 256, 32)


def test_hand_made_points():
    points = torch.tensor(
        [
            [0.25, 0.5, 0.5],  # voxel (4, 2, 1), offset (-0.25, 0, 0)
            [0.75, 0.5, 0.5],  # same voxel, offset (+0.25, 0, 0)
            [-4.0, -2.0, -1.0],  # the lower corner is inside: voxel (0, 0, 0)
            [3.9, 1.9, -0.1],  # voxel (7, 3, 0)
        ]
    )
    voxels = voxelize(points, GRID)
    assert voxels.coords.tolist() == [[0, 0, 0], [4, 2, 1], [7, 3, 0]]  # sorted by key
    assert voxels.point_voxel.tolist() == [1, 1, 0, 2]
    assert voxels.counts().tolist() == [1, 2, 1]
    torch.testing.assert_close(voxels.offsets[0], torch.tensor([-0.25, 0.0, 0.0]))
    torch.testing.assert_close(voxels.offsets[2], torch.tensor([-0.5, -0.5, -0.5]))
    assert voxels.batch.tolist() == [0, 0, 0] and voxels.dropped.tolist() == [0]


def test_points_are_recovered_from_voxel_and_offset():
    torch.manual_seed(0)
    points = torch.rand(500, 3) * torch.tensor([8.0, 4.0, 2.0]) - torch.tensor([4.0, 2.0, 1.0])
    voxels = voxelize(points, GRID)
    assert (voxels.offsets >= -0.5).all() and (voxels.offsets < 0.5).all()
    size = torch.tensor(GRID.voxel_size)
    back = GRID.centres(voxels.coords[voxels.point_voxel]) + voxels.offsets * size
    torch.testing.assert_close(back, points[voxels.point_index])
    assert len(voxels.coords.unique(dim=0)) == voxels.num_voxels  # each voxel once


def test_any_float_input_gives_float32_offsets():
    points = torch.tensor([[0.25, 0.5, 0.5]])
    for dtype in (torch.float16, torch.float64):
        voxels = voxelize(points.to(dtype), GRID)
        assert voxels.offsets.dtype == torch.float32
        torch.testing.assert_close(voxels.offsets, torch.tensor([[-0.25, 0.0, 0.0]]))
    voxels = voxelize(points.numpy(), GRID)  # arrays are taken too
    assert voxels.coords.tolist() == [[4, 2, 1]]


def test_outside_points_are_cropped_and_counted():
    points = torch.tensor(
        [
            [0.5, 0.5, 0.5],
            [4.0, 0.0, 0.0],  # on the upper x face: outside (half-open region)
            [0.0, -2.5, 0.0],
            [0.0, 0.0, 7.0],
            [-0.5, 0.5, 0.5],
        ]
    )
    voxels = voxelize(points, GRID)
    assert voxels.dropped.tolist() == [3]
    assert voxels.point_index.tolist() == [0, 4]  # the kept rows of the input


def test_batch_keeps_sweeps_apart():
    a = torch.tensor([[0.5, 0.5, 0.5]])
    b = torch.tensor([[0.5, 0.5, 0.5], [9.0, 0.0, 0.0]])
    voxels = voxelize_batch([a, b], GRID)
    assert voxels.batch.tolist() == [0, 1]  # the same voxel in two sweeps is two voxels
    assert voxels.coords.tolist() == [[4, 2, 1], [4, 2, 1]]
    assert voxels.dropped.tolist() == [0, 1] and voxels.point_batch.tolist() == [0, 1]


def test_paper_grid_stays_sparse():
    points = torch.randn(2000, 3) * torch.tensor([20.0, 20.0, 1.0])
    voxels = voxelize(points, VoxelGrid.paper())
    assert voxels.num_voxels <= 2000  # at most one row per point, never the 67 M grid


@pytest.mark.parametrize(
    "points, message",
    [
        (torch.zeros(5, 4), r"shape \(P, 3\).*got shape \(5, 4\)"),
        (torch.zeros(5), r"shape \(P, 3\).*got shape \(5,\)"),
        (torch.zeros(5, 3, dtype=torch.long), r"float tensor.*torch.int64"),
        (torch.zeros(0, 3), r"empty.*at least one return"),
        (torch.tensor([[0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0]]), r"1 rows with NaN or inf"),
        (torch.tensor([[float("inf"), 0.0, 0.0]]), r"NaN or inf.*first rows \[0\]"),
        (torch.full((5, 3), 1000.0), r"none of the 5 points.*inside the region"),
    ],
)
def test_bad_input_is_named(points, message):
    with pytest.raises(ValueError, match=message):
        voxelize(points, GRID)


def test_bad_grid_and_batch_are_named():
    with pytest.raises(ValueError, match="x_range must be"):
        VoxelGrid((1.0, -1.0))
    with pytest.raises(ValueError, match="three positive sizes"):
        VoxelGrid(shape=(4, 0, 2))
    with pytest.raises(ValueError, match="sweep 1 is empty"):
        voxelize_batch([torch.zeros(1, 3), torch.zeros(0, 3)], GRID)
    with pytest.raises(ValueError, match="a list of"):
        voxelize_batch(torch.zeros(5, 3), GRID)
