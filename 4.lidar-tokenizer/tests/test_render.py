"""Rendering weights, expected depth and the losses, against hand-computed values."""

import pytest
import torch
import torch.nn.functional as F
from lidar_tokenizer.render import (
    depth_loss,
    expected_depth,
    occupancy_loss,
    render_rays,
    render_samples,
    render_weights,
    surface_loss,
)


def test_weights_equal_the_analytic_values():
    alpha = torch.tensor([[0.5, 0.5, 0.5], [0.2, 0.5, 1.0]])
    # w_i = a_i prod_{j<i} (1 - a_j): 0.5, 0.5*0.5, 0.5*0.25; 0.2, 0.5*0.8, 1.0*0.8*0.5
    expected = torch.tensor([[0.5, 0.25, 0.125], [0.2, 0.4, 0.4]])
    assert torch.allclose(render_weights(alpha), expected)


def test_an_opaque_sample_stops_the_ray():
    alpha = torch.rand(6, 10)
    alpha[:, 4] = 1.0
    weights = render_weights(alpha)
    assert (weights[:, 5:] == 0).all()  # exactly zero behind the wall
    assert torch.allclose(weights.sum(-1), torch.ones(6))  # all weight is used by then


def test_weights_sum_to_at_most_one_and_the_rest_passes_through():
    alpha = torch.rand(1000, 16, dtype=torch.float64)
    weights = render_weights(alpha)
    assert (weights >= 0).all() and (weights.sum(-1) <= 1).all()
    assert torch.allclose(weights.sum(-1), 1 - (1 - alpha).prod(-1))


def test_gradients_are_finite_and_exact_through_an_opaque_sample():
    alpha = torch.tensor([0.3, 1.0, 0.6, 0.2], dtype=torch.float64, requires_grad=True)
    samples = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expected_depth(render_weights(alpha), samples, 10.0).backward()
    # D = a0 h0 + (1 - a0) a1 h1 + (1 - a0)(1 - a1)(a2 h2 + (1 - a2) a3 h3 + ... far)
    # at a1 = 1: dD/da0 = h0 - a1 h1 = -1, dD/da1 = (1 - a0)(h1 - rest) with rest = the
    # depth behind: a2 h2 + (1 - a2)(a3 h3 + (1 - a3) far) = 1.8 + 0.4 * (0.8 + 8) = 5.32
    assert torch.isfinite(alpha.grad).all()
    assert torch.allclose(
        alpha.grad[:2], torch.tensor([-1.0, 0.7 * (2.0 - 5.32)], dtype=torch.float64)
    )
    assert (alpha.grad[2:] == 0).all()


def test_leftover_weight_sits_at_far():
    samples = torch.tensor([2.0, 4.0, 6.0])
    assert expected_depth(torch.zeros(3), samples, 50.0) == 50.0  # nothing: no return
    half = render_weights(torch.tensor([0.0, 0.5, 0.0]))
    assert torch.isclose(expected_depth(half, samples, 50.0), torch.tensor(0.5 * 4 + 0.5 * 50))


def wall(distance: float):
    """A step density: opaque at and beyond x = distance, empty before."""
    return lambda points: (points[..., 0] >= distance).float()


def test_expected_depth_of_a_step_density_is_its_step():
    # bin middles near=0, far=10, S=100: h_i = 0.05 + 0.1 i, so h_72 = 7.25 exactly
    origins = torch.zeros(5, 3, dtype=torch.float64)
    dirs = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).expand(5, 3)
    out = render_rays(wall(7.25 - 1e-9), origins, dirs, 0.0, 10.0, 100, chunk=2)
    assert torch.allclose(out.depth, torch.full((5,), 7.25, dtype=torch.float64))
    assert out.weights.shape == (5, 100) and out.weights[:, 72].eq(1).all()


def test_chunks_and_batches_render_the_same():
    generator = torch.Generator().manual_seed(0)
    dirs = F.normalize(torch.randn(2, 9, 3, generator=generator), dim=-1)
    origins = torch.randn(2, 9, 3, generator=generator)
    calls = []

    def soft_ball(points):  # (..., n, S, 3) -> (..., n, S)
        calls.append(points.shape)
        return torch.sigmoid(4 - points.norm(dim=-1))

    whole = render_rays(soft_ball, origins, dirs, 0.5, 8.0, 16, chunk=100)
    parts = render_rays(soft_ball, origins, dirs, 0.5, 8.0, 16, chunk=4)
    assert torch.allclose(whole.depth, parts.depth) and whole.depth.shape == (2, 9)
    assert calls[1:] == [(2, 4, 16, 3), (2, 4, 16, 3), (2, 1, 16, 3)]
    one = render_rays(soft_ball, origins[1], dirs[1], 0.5, 8.0, 16)
    assert torch.allclose(one.depth, whole.depth[1])


def test_invalid_samples_stop_nothing():
    origins, dirs = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])
    samples = torch.tensor([[1.0, 2.0, 3.0]])
    valid = torch.tensor([[True, False, True]])
    out = render_samples(wall(1.5), origins, dirs, samples, 9.0, valid=valid)
    assert torch.equal(out.weights, torch.tensor([[0.0, 0.0, 1.0]]))
    assert out.depth.item() == 3.0


def test_surface_term_is_zero_when_weight_is_near_the_truth():
    samples = torch.tensor([[1.0, 5.0, 5.3, 9.0]])
    weights = torch.tensor([[0.0, 0.6, 0.4, 0.0]])
    assert surface_loss(weights, samples, torch.tensor([5.0])) == 0  # |5.3 - 5| < 0.4
    # truth 5.5: sample 5.0 is 0.5 > eps away, sample 5.3 within: 0.6^2
    assert torch.isclose(surface_loss(weights, samples, torch.tensor([5.5])), torch.tensor(0.36))
    spread = torch.tensor([[0.25, 0.25, 0.25, 0.25]])
    assert torch.isclose(
        surface_loss(spread, samples, torch.tensor([5.0])), torch.tensor(2 * 0.0625)
    )


def test_depth_and_occupancy_losses():
    assert depth_loss(torch.tensor([1.0, 4.0]), torch.tensor([2.0, 2.0])) == 1.5
    logits, target = torch.randn(2, 4, 4, 3), torch.rand(2, 4, 4, 3) > 0.5
    manual = -(target * F.logsigmoid(logits) + ~target * F.logsigmoid(-logits)).mean()
    assert torch.isclose(occupancy_loss(logits, target), manual)
    with pytest.raises(ValueError, match="differ"):
        occupancy_loss(logits, target[0])
