"""FSQ: the implicit codebook is a bijection with [0, K), fully reachable, and trainable."""

import itertools
import math

import pytest
import torch
from video_tokenizer.fsq import FSQ, round_ste

LEVELS = [(8, 5, 5, 5), (4, 4, 4, 4, 4), (7, 6, 5, 4), (2, 3), (6,)]


@pytest.mark.parametrize("levels", LEVELS)
def test_indices_and_codes_are_a_bijection(levels):
    fsq = FSQ(levels)
    K = math.prod(levels)
    assert fsq.codebook_size == K
    indices = torch.arange(K)
    codes = fsq.indices_to_codes(indices)  # (K, E)
    assert codes.shape == (K, len(levels))
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    # ... and the other way: every code of the grid maps back to itself.
    grid = [torch.linspace(-1, 1, L) for L in levels]
    all_codes = torch.cartesian_prod(*grid).reshape(-1, len(levels))  # (K, E)
    assert torch.allclose(
        fsq.indices_to_codes(fsq.codes_to_indices(all_codes)), all_codes, atol=1e-6
    )
    assert len(set(fsq.codes_to_indices(all_codes).tolist())) == K


def test_mixed_radix_by_hand():
    fsq = FSQ((8, 5))  # basis (1, 8): index = d0 + 8 * d1, code = d * 2/(L-1) - 1
    codes = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, -0.5], [1.0, 1.0], [-1 / 7, 0.0]])
    # digits (0, 0) -> 0; (7, 0) -> 7; (0, 1) -> 8; (7, 4) -> 7 + 32 = 39;
    # (3, 2) -> 3 + 16 = 19, since -1/7 = 3 * 2/7 - 1 and 0 = 2 * 2/4 - 1
    assert fsq.codes_to_indices(codes).tolist() == [0, 7, 8, 39, 19]
    assert fsq.implicit_codebook()[8].tolist() == [-1.0, -0.5]


@pytest.mark.parametrize(
    "L, values",
    [(2, [-1, 1]), (3, [-1, 0, 1]), (4, [-1, -1 / 3, 1 / 3, 1]), (5, [-1, -0.5, 0, 0.5, 1])],
)
def test_each_channel_takes_exactly_L_evenly_spaced_values(L, values):
    fsq = FSQ((L,))
    z = torch.linspace(-8, 8, 4001)[:, None]  # (M, 1): covers the whole tanh range
    codes = fsq(z).codes
    assert torch.allclose(codes.unique(), torch.tensor(values, dtype=torch.float32))
    # Monotone: a larger input never gets a smaller code.
    assert (codes[1:] >= codes[:-1]).all()


def test_zero_maps_to_the_centre_of_the_range():
    # The atanh shift puts z = 0 at bound 0, the middle of a rounding cell, never on a
    # boundary: code 0 for odd L, and for L = 4 the cell of integer 0, which is code 1/3.
    fsq = FSQ((5, 4))
    assert torch.allclose(fsq.bound(torch.zeros(2)), torch.zeros(2), atol=1e-6)
    codes = fsq(torch.zeros(1, 2)).codes
    assert torch.allclose(codes, torch.tensor([[0.0, 1 / 3]]))


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (4, 4, 4, 4, 4), (7, 6, 5, 4)])
def test_every_code_is_reachable(levels):
    # A dense grid of inputs, finer than the narrowest level (1/(L-1) in z at the centre),
    # over the whole input range: every one of the K codes must come out.
    fsq = FSQ(levels)
    axes = [torch.linspace(-4, 4, 4 * L + 1) for L in levels]
    z = torch.cartesian_prod(*axes)  # (prod(4L+1), E)
    indices = fsq(z).indices
    assert indices.min() >= 0 and indices.max() < fsq.codebook_size
    assert indices.unique().numel() == fsq.codebook_size


@pytest.mark.parametrize("levels", LEVELS)
def test_codes_lie_in_unit_range(levels):
    fsq = FSQ(levels)
    codes, indices, _ = fsq(100 * torch.randn(1000, len(levels)))  # far outside tanh's knee
    assert codes.abs().max() <= 1.0
    assert indices.dtype == torch.int64
    assert torch.equal(fsq.indices_to_codes(indices), codes)


def test_round_ste_value_and_gradient():
    x = torch.tensor([0.2, 0.7, -1.6], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [0.0, 1.0, -2.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]  # identity backward, not round's zero


def test_straight_through_gradient_equals_the_bounds_derivative():
    levels = (8, 5, 4)
    fsq = FSQ(levels)
    z = torch.randn(64, 3, dtype=torch.float32, requires_grad=True)
    codes = fsq(z).codes
    codes.sum().backward()
    # codes = (round(tanh(z + shift) * half - offset) + offset) / ((L-1)/2), round -> identity:
    # d codes / dz = (1 - tanh^2(z + shift)) * half / ((L-1)/2) = (1 - tanh^2(z + shift))(1+eps)
    L = torch.tensor(levels, dtype=torch.float32)
    half = (L - 1) / 2 * (1 + fsq.eps)
    offset = torch.tensor([0.5, 0.0, 0.5])
    shift = torch.atanh(offset / half)
    expected = (1 - torch.tanh(z.detach() + shift) ** 2) * (1 + fsq.eps)
    assert (z.grad > 0).all()
    assert torch.allclose(z.grad, expected, atol=1e-6)


def test_bf16_input_gives_bf16_codes_and_the_float32_indices():
    fsq = FSQ((8, 5, 5, 5))
    z = torch.randn(256, 4)
    indices32 = fsq(z.bfloat16().float()).indices
    codes16, indices16, _ = fsq(z.bfloat16())
    assert codes16.dtype == torch.bfloat16
    assert torch.equal(indices16, indices32)


def test_bad_levels_and_bad_width_raise():
    with pytest.raises(ValueError, match="levels"):
        FSQ((8, 1))
    with pytest.raises(ValueError, match="levels"):
        FSQ(())
    with pytest.raises(ValueError, match="expects 4 channels"):
        FSQ((8, 5, 5, 5))(torch.zeros(2, 3))


def test_every_index_decodes_to_a_distinct_grid_point():
    fsq = FSQ((3, 4))
    book = fsq.implicit_codebook()
    expected = {(a, b) for a, b in itertools.product([-1, 0, 1], [-1, -1 / 3, 1 / 3, 1])}
    got = {(round(a, 6), round(b, 6)) for a, b in book.tolist()}
    assert got == {(round(a, 6), round(b, 6)) for a, b in expected}
