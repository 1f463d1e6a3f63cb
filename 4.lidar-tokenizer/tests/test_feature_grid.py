"""The feature-grid head's layout, the trilinear read, and the binary occupancy head."""

import pytest
import torch
from lidar_tokenizer.feature_grid import (
    FeatureGridHead,
    OccupancyField,
    OccupancyHead,
    read_features,
    unfold_subvolumes,
)

# An asymmetric region and grid, so that swapped axes cannot pass: X = 6, Y = 4, Z = 3
BOUNDS = ((-3.0, 3.0), (10.0, 12.0), (-1.0, 0.5))  # cells 1.0 x 0.5 x 0.5 m
SHAPE = (6, 4, 3)


def centres(index: torch.Tensor) -> torch.Tensor:
    """Voxel indices (..., 3) -> their centres in metres: lo + (i + 1/2) s."""
    low = torch.tensor([b[0] for b in BOUNDS])
    size = torch.tensor([(b[1] - b[0]) / n for b, n in zip(BOUNDS, SHAPE)])
    return low + (index + 0.5) * size


def test_each_bev_cell_fills_its_own_block():
    batch, size_x, size_y, factor, levels, channels = 2, 3, 2, 2, 4, 5
    # cell value encodes where it came from: (b, x, y, fx, fy, z, c) -> one number
    b, x, y, fx, fy, z, c = torch.meshgrid(
        *(torch.arange(n) for n in (batch, size_x, size_y, factor, factor, levels, channels)),
        indexing="ij",
    )
    code = (((((b * 10 + x) * 10 + y) * 10 + fx) * 10 + fy) * 10 + z) * 10 + c
    cells = code.reshape(batch, size_x, size_y, -1)  # (B, X', Y', factor*factor*Z*C)
    grid = unfold_subvolumes(cells, factor, levels)
    assert grid.shape == (batch, channels, levels, factor * size_x, factor * size_y)
    # grid[b, c, z, 2x + fx, 2y + fy] is the number cell (x, y) emitted for (fx, fy, z, c)
    assert torch.equal(grid[b, c, z, factor * x + fx, factor * y + fy], code)


def test_trilinear_read_at_cell_centres_gives_the_stored_values():
    grid = torch.randn(2, 5, SHAPE[2], SHAPE[0], SHAPE[1], dtype=torch.float64)  # (B, C, Z, X, Y)
    index = torch.stack(
        torch.meshgrid(*(torch.arange(n) for n in SHAPE), indexing="ij"), dim=-1
    ).reshape(-1, 3)  # every cell (x, y, z)
    points = centres(index.double()).expand(2, -1, -1)  # (B, n, 3)
    read = read_features(grid, points, BOUNDS)  # (B, n, C)
    stored = grid[:, :, index[:, 2], index[:, 0], index[:, 1]]  # (B, C, n)
    assert torch.allclose(read, stored.transpose(1, 2))


def test_trilinear_read_interpolates_between_centres():
    grid = torch.randn(1, 2, SHAPE[2], SHAPE[0], SHAPE[1], dtype=torch.float64)
    a, b = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([2.0, 3.0, 1.0])  # opposite corners
    middle = centres((a + b) / 2)[None, None]  # (1, 1, 3): centre of 8 cells
    read = read_features(grid, middle, BOUNDS)[0, 0]
    corners = grid[0, :, 0:2, 1:3, 2:4]  # (C, 2, 2, 2): z 0..1, x 1..2, y 2..3
    assert torch.allclose(read, corners.mean(dim=(1, 2, 3)))


def test_occupancy_field_is_a_probability_inside_and_empty_outside():
    field = OccupancyField(channels=4, bounds=BOUNDS, hidden=8)
    grid = torch.randn(1, 4, SHAPE[2], SHAPE[0], SHAPE[1], requires_grad=True)
    points = torch.tensor([[[0.0, 11.0, 0.0], [0.0, 11.0, 0.7], [-3.5, 11.0, 0.0]]])
    alpha = field(grid, points)  # (B, n)
    assert alpha.shape == (1, 3) and 0 < alpha[0, 0] < 1
    assert (alpha[0, 1:] == 0).all()  # above the region, left of it
    alpha.sum().backward()
    assert grid.grad.abs().sum() > 0


def test_heads_shapes_and_layout():
    bev = torch.randn(2, 3, 5, 16)  # (B, X', Y', D)
    grid = FeatureGridHead(16, levels=4, channels=6, factor=2)(bev)
    assert grid.shape == (2, 6, 4, 6, 10)  # (B, C, Z, X, Y)
    head = OccupancyHead(16, levels=4, factor=4)
    logits = head(bev)
    assert logits.shape == (2, 12, 20, 4)  # (B, X, Y, Z)
    cells = head.proj(head.norm(bev))  # (B, X', Y', 4*4*Z)
    # voxel (x, y, z) comes from BEV cell (x // 4, y // 4), entry ((x % 4) * 4 + y % 4) * Z + z
    x, y, z = 9, 14, 3
    assert logits[1, x, y, z] == cells[1, x // 4, y // 4, ((x % 4) * 4 + y % 4) * 4 + z]
    with pytest.raises(ValueError, match="BEV map"):
        head(torch.randn(2, 16, 3, 5))
