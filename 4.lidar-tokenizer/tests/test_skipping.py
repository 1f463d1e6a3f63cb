"""Spatial skipping: the coarse mask, and samples only inside its marked cells."""

import torch
import torch.nn.functional as F
from lidar_tokenizer.render import render_rays, render_samples
from lidar_tokenizer.skipping import coarse_mask, mask_from_logits, skip_samples

BOUNDS = ((-8.0, 8.0), (-4.0, 4.0), (-2.0, 2.0))  # coarse grid (4, 2, 4): cells 4 x 4 x 1 m


def cell_of(points: torch.Tensor, shape) -> torch.Tensor:
    """Metres (..., 3) -> coarse cell indices (..., 3) of a grid `shape` over BOUNDS."""
    low = torch.tensor([b[0] for b in BOUNDS], dtype=points.dtype)
    size = torch.tensor([(b[1] - b[0]) / n for b, n in zip(BOUNDS, shape)], dtype=points.dtype)
    return ((points - low) / size).floor().long()


def test_coarse_mask_pools_bev_blocks_and_keeps_levels():
    occupied = torch.zeros(2, 32, 16, 4, dtype=torch.bool)  # (B, X, Y, Z)
    occupied[1, 13, 5, 2] = True
    mask = coarse_mask(occupied, pool=8)
    assert mask.shape == (2, 4, 2, 4)
    assert mask.sum() == 1 and mask[1, 1, 0, 2]  # block (13 // 8, 5 // 8), same level
    logits = torch.full((32, 16, 4), -5.0)
    logits[31, 0, 0] = 0.1  # sigmoid 0.52
    assert mask_from_logits(logits, 0.5, 8).nonzero().tolist() == [[3, 0, 0]]
    assert not mask_from_logits(logits, 0.6, 8).any()


def test_samples_lie_only_inside_marked_cells():
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 2, 4, generator=generator) < 0.3  # (X, Y, Z) coarse cells
    origins = torch.rand(300, 3, generator=generator, dtype=torch.float64) * 4 - 2
    dirs = F.normalize(torch.randn(300, 3, generator=generator, dtype=torch.float64), dim=-1)
    for stratified in (False, True):
        out = skip_samples(mask, BOUNDS, origins, dirs, 0.5, 30.0, 16, stratified, generator)
        assert out.samples.shape == out.valid.shape == (300, 16)
        points = origins[:, None] + out.samples[..., None] * dirs[:, None]  # (R, S, 3)
        cell = cell_of(points[out.valid], mask.shape)  # (n, 3)
        assert len(cell) > 1000
        assert mask[cell[:, 0], cell[:, 1], cell[:, 2]].all()
        assert (out.samples.diff(dim=-1) >= 0).all()  # sorted, as rendering needs
        assert ((out.samples >= 0.5) & (out.samples <= 30.0)).all()


def test_samples_spread_evenly_over_the_marked_segment():
    mask = torch.zeros(4, 2, 4, dtype=torch.bool)
    mask[2, 1, 2] = True  # x in [0, 4), y in [0, 4), z in [0, 1)
    origins = torch.tensor([[-7.0, 1.0, 0.5]], dtype=torch.float64)
    dirs = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    out = skip_samples(mask, BOUNDS, origins, dirs, 0.0, 20.0, 4)
    # the ray crosses the cell from depth 7 to 11: middles of 4 equal bins of [7, 11]
    assert torch.allclose(out.samples[0], torch.tensor([7.5, 8.5, 9.5, 10.5], dtype=torch.float64))
    assert out.valid.all() and out.hit.all() and out.length.item() == 4.0


def test_a_ray_through_empty_cells_gets_no_samples_and_renders_far():
    mask = torch.zeros(2, 4, 2, 4, dtype=torch.bool)  # (B, X', Y', Z)
    mask[0, 2, 1, 2] = True
    origins = torch.tensor([[[-7.0, 1.0, 0.5], [-7.0, 1.0, -1.5]]] * 2)  # (B, R, 3)
    dirs = torch.tensor([[1.0, 0.0, 0.0]]).expand(2, 2, 3)
    out = skip_samples(mask, BOUNDS, origins, dirs, 0.0, 20.0, 8)
    assert out.hit.tolist() == [[True, False], [False, False]]
    assert not out.valid[0, 1].any() and (out.samples[0, 1] == 20.0).all()
    opaque = lambda points: torch.ones(points.shape[:-1])  # noqa: E731
    rendered = render_samples(opaque, origins, dirs, out.samples, 20.0, valid=out.valid)
    assert torch.allclose(rendered.depth, torch.tensor([[7.25, 20.0], [20.0, 20.0]]))


def test_skipping_renders_a_wall_like_uniform_sampling_with_fewer_wasted_samples():
    wall = lambda points: (points[..., 0] >= 2.0).float()  # noqa: E731
    mask = torch.zeros(4, 2, 4, dtype=torch.bool)
    mask[2, :, :] = True  # the wall's coarse column of cells, x in [0, 4)
    origins = torch.tensor([[-7.0, 1.0, 0.5]])
    dirs = torch.tensor([[1.0, 0.0, 0.0]])
    out = skip_samples(mask, BOUNDS, origins, dirs, 0.0, 20.0, 8)
    skipped = render_samples(wall, origins, dirs, out.samples, 20.0, valid=out.valid)
    uniform = render_rays(wall, origins, dirs, 0.0, 20.0, 8)
    assert abs(skipped.depth.item() - 9.0) <= 0.25  # 8 samples over 4 m: 0.5 m apart
    assert abs(uniform.depth.item() - 9.0) > 0.25  # 8 samples over 20 m: 2.5 m apart


def exact_kept(mask, origins, dirs, near, far):
    """The exact cut: kept length per ray and the number of kept/unkept boundaries on it."""
    from lidar_tokenizer.traversal import cell_segments, lookup

    pieces = cell_segments(origins, dirs, near, far, BOUNDS, mask.shape)
    kept = lookup(mask, pieces) & pieces.inside
    lengths = (pieces.end - pieces.start) * kept
    positive = pieces.end > pieces.start  # zero-length pieces decide nothing
    boundaries = []
    for row, ok in zip(kept, positive):
        flags = row[ok].int()
        boundaries.append(int((flags.diff() != 0).sum()) + 2)  # + near and far ends
    return lengths.sum(dim=-1), torch.tensor(boundaries, dtype=lengths.dtype)


def test_marching_keeps_the_exact_length_up_to_one_step_per_boundary():
    generator = torch.Generator().manual_seed(1)
    mask = torch.rand(4, 2, 4, generator=generator) < 0.4
    mask[-1] = True  # the cells at the grid's +x face: rays leave the grid through them
    origins = torch.rand(400, 3, generator=generator, dtype=torch.float64) * 4 - 2
    dirs = F.normalize(torch.randn(400, 3, generator=generator, dtype=torch.float64), dim=-1)
    short = 1.0 + 4 * torch.rand(400, generator=generator, dtype=torch.float64)  # inside
    for far in (30.0, short):  # rays that leave the grid, rays cut at far within it
        exact, boundaries = exact_kept(mask, origins, dirs, 0.5, far)
        for step in (0.05, 0.2):
            out = skip_samples(mask, BOUNDS, origins, dirs, 0.5, far, 16, step=step)
            assert ((out.length - exact).abs() <= step * boundaries + 1e-9).all()
            assert (out.samples.diff(dim=-1) >= 0).all()
            assert ((out.samples >= 0.5) & (out.samples <= torch.as_tensor(far)[..., None])).all()
        close = skip_samples(mask, BOUNDS, origins, dirs, 0.5, far, 16, step=0.01).length
        assert (close - exact).abs().mean() < 0.02  # it converges to the exact cut


def test_marching_places_samples_in_the_marked_cell_up_to_a_step():
    mask = torch.zeros(2, 4, 2, 4, dtype=torch.bool)  # (B, X', Y', Z): batch 1 only
    mask[1, 2, 1, 2] = True  # x in [0, 4), y in [0, 4), z in [0, 1)
    origins = torch.tensor([[[-7.0, 1.0, 0.5]]] * 2, dtype=torch.float64)  # (B, R, 3)
    dirs = torch.tensor([[[1.0, 0.0, 0.0]]] * 2, dtype=torch.float64)
    out = skip_samples(mask, BOUNDS, origins, dirs, 0.0, 20.0, 4, step=0.5)
    assert out.hit.tolist() == [[False], [True]]
    # pieces [7, 7.5), ..., [10.5, 11) have their middles in the cell: the exact [7, 11]
    middles = torch.tensor([7.5, 8.5, 9.5, 10.5], dtype=torch.float64)
    assert torch.allclose(out.samples[1, 0], middles)
    assert out.length[1, 0].item() == 4.0 and (out.samples[0, 0] == 20.0).all()
    # from outside the grid, along a marked edge row: nothing beyond the grid is kept
    edge = torch.zeros(4, 2, 4, dtype=torch.bool)
    edge[3, 0, 0] = True  # x in [4, 8), y in [-4, 0), z in [-2, -1)
    origin = torch.tensor([[2.0, -1.0, -1.5]], dtype=torch.float64)
    along_x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    marched = skip_samples(edge, BOUNDS, origin, along_x, 0.0, 20.0, 8, step=0.5)
    assert marched.length.item() == 4.0  # [2, 6] in metres along the ray: x from 4 to 8
    assert ((marched.samples >= 2.0) & (marched.samples <= 6.0)).all()
