"""The references' ray caster (and the traversal under it) against hand cases and brute force."""

import pytest
import torch
import torch.nn.functional as F
from lidar_tokenizer.references import (
    cast_depth,
    codec_bits,
    occupancy_grid,
    pool_occupancy,
    token_codec_depth,
    voxel_floor_depth,
)
from lidar_tokenizer.region import VoxelGrid
from lidar_tokenizer.traversal import cell_segments

BOUNDS = ((0.0, 10.0), (-5.0, 5.0), (-2.0, 2.0))  # 1 m voxels
SHAPE = (10, 10, 4)
GRID = VoxelGrid(*BOUNDS, SHAPE)
ORIGIN = torch.tensor([0.5, 0.2, 0.1], dtype=torch.float64)


def wall_coords(x: int) -> torch.Tensor:
    """Every voxel of the plane of voxels at x index `x`: (Y * Z, 3)."""
    y, z = torch.meshgrid(torch.arange(SHAPE[1]), torch.arange(SHAPE[2]), indexing="ij")
    return torch.stack([torch.full_like(y, x), y, z], dim=-1).reshape(-1, 3)


def rays_towards_the_wall(count: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    dirs = torch.randn(count, 3, generator=generator, dtype=torch.float64).clamp(-1.5, 1.5)
    dirs[:, 0] = dirs[:, 0].abs() + 2.0  # forward enough to reach x = 6 inside the grid:
    dirs[:, 1:] *= torch.tensor([0.5, 0.2], dtype=torch.float64)  # |dy|, |dz| <= 0.38, 0.15 dx
    return ORIGIN.expand(count, 3), F.normalize(dirs, dim=-1)


def test_a_voxel_wall_gives_the_analytic_depth():
    origins, dirs = rays_towards_the_wall(200)
    depth, hit = voxel_floor_depth(wall_coords(6), GRID, origins, dirs, 0.0, 50.0, "entry")
    assert hit.all()
    assert torch.allclose(depth, (6.0 - 0.5) / dirs[:, 0])  # the face x = 6


def test_middle_is_the_middle_of_the_path_through_the_voxel():
    coords = torch.tensor([[6, 5, 2]])  # one voxel: x 6..7, y 0..1, z 0..1
    origins = ORIGIN.expand(1, 3)
    dirs = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    depth, hit = voxel_floor_depth(coords, GRID, origins, dirs, 0.0, 50.0)
    assert hit.all() and torch.allclose(depth, torch.tensor([6.0], dtype=torch.float64))
    entry, _ = voxel_floor_depth(coords, GRID, origins, dirs, 0.0, 50.0, "entry")
    assert torch.allclose(entry, torch.tensor([5.5], dtype=torch.float64))


def test_a_ray_that_hits_nothing_reports_far():
    origins = ORIGIN.expand(2, 3)
    dirs = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    depth, hit = voxel_floor_depth(wall_coords(6), GRID, origins, dirs, 0.0, 50.0)
    assert not hit.any() and (depth == 50.0).all()


def first_occupied_by_stepping(occupied, origins, dirs, step=1e-3, far=20.0):
    """Brute force: walk every ray in tiny steps, report the first occupied position."""
    low = torch.tensor([b[0] for b in BOUNDS], dtype=torch.float64)
    h = torch.arange(0.0, far, step, dtype=torch.float64)  # (S,)
    points = origins[:, None] + h[:, None] * dirs[:, None]  # (R, S, 3)
    index = (points - low).floor().long()  # 1 m voxels
    within = ((index >= 0) & (index < torch.tensor(SHAPE))).all(-1)
    index = index.clamp(min=0).minimum(torch.tensor(SHAPE) - 1)
    full = occupied[index[..., 0], index[..., 1], index[..., 2]] & within
    return torch.where(full.any(-1), h[full.int().argmax(-1)], torch.tensor(far))


def test_cast_agrees_with_brute_force_stepping_on_random_voxels():
    generator = torch.Generator().manual_seed(3)
    occupied = torch.rand(SHAPE, generator=generator) < 0.08
    origins = torch.rand(64, 3, generator=generator, dtype=torch.float64) * 2 + ORIGIN
    dirs = F.normalize(torch.randn(64, 3, generator=generator, dtype=torch.float64), dim=-1)
    # and 64 rays from outside the grid, in through its x = 0 face
    outside = torch.tensor([-3.0, 0.0, 0.0], dtype=torch.float64)
    origins = torch.cat([origins, outside + torch.rand(64, 3, generator=generator) - 0.5])
    inward = torch.randn(64, 3, generator=generator, dtype=torch.float64) * 0.3
    inward[:, 0] = 1.0
    dirs = torch.cat([dirs, F.normalize(inward, dim=-1)])
    depth, _ = cast_depth(occupied, BOUNDS, origins, dirs, 0.0, 20.0, "entry", chunk=16)
    expected = first_occupied_by_stepping(occupied, origins, dirs)
    assert (depth - expected).abs().max() <= 1e-3 + 1e-9


def test_segments_tile_the_ray_and_name_the_cell_they_lie_in():
    origins, dirs = rays_towards_the_wall(50, seed=1)
    pieces = cell_segments(origins, dirs, 0.3, 40.0, BOUNDS, SHAPE)
    assert torch.equal(pieces.start[:, 1:], pieces.end[:, :-1])  # no gaps, no overlaps
    assert (pieces.start[:, 0] == 0.3).all() and (pieces.end[:, -1] == 40.0).all()
    quarter = pieces.start + 0.25 * (pieces.end - pieces.start)  # another point of the piece
    points = origins[:, None] + quarter[..., None] * dirs[:, None]
    low = torch.tensor([b[0] for b in BOUNDS], dtype=torch.float64)
    index = (points - low).floor().long()
    assert torch.equal(index[pieces.inside], pieces.cell[pieces.inside])


def test_the_token_codec_fattens_surfaces_to_its_blocks():
    coords = wall_coords(7)
    pooled = pool_occupancy(occupancy_grid(coords, SHAPE), (5, 2), z_factor=2)
    assert pooled.shape == (5, 2, 2) and pooled[3].all() and pooled.sum() == 4
    origins, dirs = rays_towards_the_wall(100, seed=2)
    depth, hit = token_codec_depth(coords, GRID, (5, 2), origins, dirs, 0.0, 50.0, 2, "entry")
    assert hit.all()
    assert torch.allclose(depth, (6.0 - 0.5) / dirs[:, 0])  # the block x 6..8 begins at 6
    assert codec_bits((32, 32), 32, z_factor=4) == 8192


def test_a_batch_of_voxel_sets_becomes_the_bce_target():
    coords = torch.tensor([[1, 2, 3], [1, 2, 3], [9, 0, 0]])
    target = occupancy_grid(coords, SHAPE, batch=torch.tensor([0, 2, 2]), batch_size=4)
    assert target.shape == (4, *SHAPE) and target.sum() == 3
    assert target[0, 1, 2, 3] and target[2, 1, 2, 3] and target[2, 9, 0, 0]


def test_bad_voxel_sets_are_refused():
    with pytest.raises(ValueError, match="outside the grid"):
        occupancy_grid(torch.tensor([[10, 0, 0]]), SHAPE)
    with pytest.raises(ValueError, match="integer"):
        occupancy_grid(torch.zeros(3, 3), SHAPE)
    with pytest.raises(ValueError, match="divide"):
        pool_occupancy(torch.zeros(SHAPE, dtype=torch.bool), (3, 2))
