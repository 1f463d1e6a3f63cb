"""VAR's multi-scale residual quantizer: scales add up to the reconstruction, the residual
shrinks, the teacher-forcing inputs and the decoding from ids match direct computations."""

import pytest
import torch
import torch.nn.functional as F
from occupancy_tokenizer.multiscale import MultiScaleQuantizer

SCALES = (1, 2, 3, 4, 6, 8)  # 3 and 6 do not divide 8: area and bicubic on uneven grids too


def quantizer(seed=0, **kwargs) -> MultiScaleQuantizer:
    torch.manual_seed(seed)
    q = MultiScaleQuantizer(64, 4, kwargs.pop("scales", SCALES), **kwargs)
    with torch.no_grad():  # codes at the latents' scale, so every scale picks varied codes
        q.codebook.weight.normal_()
        for phi in q.phis:
            phi.conv.weight.mul_(0.3)
    return q


def latent(seed=1, B=2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 4, 8, 8, generator=g) + 2 * torch.randn(B, 4, 1, 1, generator=g)


@pytest.mark.parametrize("using_znorm", [False, True])
def test_contributions_sum_to_the_reconstruction(using_znorm):
    q, f = quantizer(using_znorm=using_znorm), latent()
    codes, ids_BL, _ = q(f)
    ids_per_scale, contributions = q.encode_scales(f)
    torch.testing.assert_close(codes, torch.stack(contributions).sum(0))
    assert ids_BL.shape == (2, q.tokens_per_frame) == (2, 1 + 4 + 9 + 16 + 36 + 64)
    assert [tuple(i.shape) for i in ids_per_scale] == [(2, s, s) for s in SCALES]
    assert len({int(i) for i in ids_per_scale[-1].unique()}) > 3  # not one code everywhere


def test_ids_to_latent_inverts_latent_to_ids():
    q, f = quantizer(), latent()
    codes, ids_BL, _ = q(f)
    ids_per_scale = q.split_ids(ids_BL)
    torch.testing.assert_close(q.ids_to_latent(ids_per_scale), codes)
    torch.testing.assert_close(q.indices_to_codes(ids_BL), codes)  # the Quantizer protocol
    assert torch.equal(q.join_ids(ids_per_scale), ids_BL)
    assert all(torch.equal(a, b) for a, b in zip(ids_per_scale, q.encode_scales(f)[0]))
    # row-major within a scale: scale 3 (side 4) starts after 1 + 4 + 9 ids
    assert torch.equal(ids_BL[:, 14:30].reshape(2, 4, 4), ids_per_scale[3])


@pytest.mark.parametrize("upsample", ["bicubic", "bilinear"])
def test_residual_norm_never_grows_from_one_scale_to_the_next(upsample):
    """Holds here with phi at identity (r = 0) and a codebook holding the zero vector, for L2
    lookup: a scale can then always subtract nothing where nothing fits. With a learned phi,
    or no zero code, or cosine lookup, a step may overshoot (test_... below shows one)."""
    q = quantizer(phi_ratio=0.0, upsample=upsample)
    with torch.no_grad():
        q.codebook.weight[0] = 0
    for seed in range(5):
        f = latent(seed)
        _, contributions = q.encode_scales(f)
        rest, norms = f.clone(), [f.norm()]
        for c in contributions:
            rest = rest - c  # rest_k = rest_{k-1} - c_k
            norms.append(rest.norm())
        assert all(b <= a + 1e-5 for a, b in zip(norms, norms[1:])), norms
        assert norms[-1] < 0.7 * norms[0]


def test_without_a_zero_code_the_residual_can_grow():
    # Why the test above names its conditions: every code far from a small latent.
    q = quantizer(phi_ratio=0.0)
    with torch.no_grad():
        q.codebook.weight.normal_().mul_(10)
    f = 0.01 * latent()
    _, contributions = q.encode_scales(f)
    assert (f - contributions[0]).norm() > f.norm()


def test_teacher_forcing_input_of_scale_k_matches_a_direct_computation():
    q, f = quantizer(), latent()
    ids_per_scale, _ = q.encode_scales(f)
    inputs = q.teacher_forcing_input(ids_per_scale)
    assert [tuple(x.shape) for x in inputs] == [(2, 4, s, s) for s in SCALES[1:]]
    W = q.codebook.weight
    for k in range(1, len(SCALES)):
        f_hat = torch.zeros_like(f)
        for j in range(k):  # f_hat through scale k-1, from the definitions
            codes = W[ids_per_scale[j]].permute(0, 3, 1, 2)  # (B, E, s_j, s_j)
            if SCALES[j] != 8:
                codes = F.interpolate(codes, size=(8, 8), mode="bicubic", align_corners=False)
            phi = q.phi(j)
            conv = F.conv2d(codes, phi.conv.weight, phi.conv.bias, padding=1)
            f_hat = f_hat + 0.5 * codes + 0.5 * conv  # phi(x) = (1 - r) x + r conv(x)
        s = SCALES[k]
        direct = F.adaptive_avg_pool2d(f_hat, (s, s))  # area-down to scale k
        torch.testing.assert_close(inputs[k - 1], direct, atol=1e-5, rtol=1e-5)


def test_add_scale_step_by_step_rebuilds_the_latent():
    q, f = quantizer(), latent()
    codes, ids_BL, _ = q(f)
    f_hat = torch.zeros_like(f)
    for k, ids_k in enumerate(q.split_ids(ids_BL)):
        f_hat = q.add_scale(f_hat, ids_k, k)
        if k + 1 < len(SCALES):
            assert q.next_scale_input(f_hat, k + 1).shape == (2, 4, SCALES[k + 1], SCALES[k + 1])
    torch.testing.assert_close(f_hat, codes)


def test_phi_sharing_follows_vars_ticks():
    q = MultiScaleQuantizer(8, 4, (1, 2, 3, 4, 5, 6), num_phi=4)
    # ticks linspace(1/12, 11/12, 4) = 0.083, 0.361, 0.639, 0.917 against k / 5
    assert [list(q.phis).index(q.phi(k)) for k in range(6)] == [0, 0, 1, 2, 3, 3]


def test_loss_is_vars_and_the_gradient_is_straight_through():
    q, beta = quantizer(), 0.25
    f = latent().requires_grad_(True)
    codes, _, loss = q(f)
    _, contributions = q.encode_scales(f)
    f_hats = torch.stack(contributions).cumsum(0)  # f_hat_k for every k
    expected = ((1 + beta) * (f_hats - f.detach()).pow(2).mean(dim=(1, 2, 3, 4))).mean()
    torch.testing.assert_close(loss, expected)
    codes.sum().backward()  # straight-through: d codes / d f = identity
    torch.testing.assert_close(f.grad, torch.ones_like(f))
    # beta weighs the term that moves f (the encoder):
    # d loss / d f = beta * mean_k 2 (f - f_hat_k) / N
    f.grad = None
    q(f).aux_loss.backward()
    expected_grad = beta * (2 * (f.detach() - f_hats.detach()) / f.numel()).mean(0)
    torch.testing.assert_close(f.grad, expected_grad)


def test_cosine_lookup_picks_the_nearest_direction_l2_the_nearest_point():
    q = quantizer(scales=(8,))
    with torch.no_grad():
        q.codebook.weight[:] = torch.tensor([0.0, 0, 0, -1])  # far in L2, orthogonal in cos
        q.codebook.weight[0] = torch.tensor([1.0, 0, 0, 0])  # short, along x
        q.codebook.weight[1] = torch.tensor([0.0, 10, 0, 0])  # long, along y
        q.codebook.weight[2] = torch.tensor([30.0, -5, 0, 0])  # longest: wins a plain dot
    f = torch.zeros(1, 4, 8, 8)
    f[:, 0], f[:, 1] = 0.5, 0.6  # |f - e0| = 0.78 < |f - e1| = 9.4; cos: 0.64, 0.77, 0.51
    assert (q.encode_scales(f)[0][0] == 0).all()
    q.using_znorm = True
    assert (q.encode_scales(f)[0][0] == 1).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda q: q(torch.randn(1, 4, 8, 6)), "square"),
        (lambda q: q(torch.randn(1, 4, 16, 16)), "last scale 8"),
        (lambda q: q(torch.randn(1, 3, 8, 8)), r"\(B, 4, h, w\)"),
        (lambda q: q.split_ids(torch.zeros(1, 5, dtype=torch.long)), "ids \\(B, 130\\)"),
        (lambda q: q.add_scale(torch.zeros(1, 4, 8, 8), torch.zeros(1, 3, 3).long(), 1), "2x2"),
        (lambda q: q.ids_to_latent([torch.zeros(1, 1, 1).long()]), "expected 6 scales"),
        (lambda q: MultiScaleQuantizer(8, 4, (2, 1)), "increasing"),
        (lambda q: MultiScaleQuantizer(8, 4, (1, 2), upsample="nearest"), "bicubic"),
    ],
)
def test_bad_inputs_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make(quantizer())
