"""VQ picks the nearest code, and its loss sends the right gradients to the right places."""

import pytest
import torch
from video_tokenizer.vq import VectorQuantizer


def quantizer_with(codebook: torch.Tensor, beta: float = 0.25) -> VectorQuantizer:
    vq = VectorQuantizer(codebook.shape[0], codebook.shape[1], beta=beta)
    with torch.no_grad():
        vq.codebook.weight.copy_(codebook)
    return vq


def test_picks_the_nearest_code_by_hand():
    # Four codes on the axes of the plane; each z lies closest to one of them.
    vq = quantizer_with(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    z = torch.tensor([[[0.9, 0.2], [0.1, 2.0]], [[-3.0, 0.5], [0.2, -0.4]]])  # (2, 2, E=2)
    z_q, indices, _ = vq(z)
    assert indices.tolist() == [[0, 1], [2, 3]]
    assert indices.dtype == torch.int64
    assert torch.equal(z_q, vq.codebook.weight[indices].detach())


def test_nearest_matches_brute_force_distances():
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 8)
    z = torch.randn(5, 7, 8)
    _, indices, _ = vq(z)
    brute = torch.cdist(z.reshape(-1, 8), vq.codebook.weight).argmin(-1).reshape(5, 7)
    assert torch.equal(indices, brute)


def test_loss_value_and_gradients():
    beta = 0.25
    codebook = torch.tensor([[0.0, 0.0], [2.0, 2.0], [5.0, -5.0]])
    vq = quantizer_with(codebook, beta)
    z = torch.tensor([[0.5, -0.5], [1.5, 2.5]], requires_grad=True)  # nearest: codes 0 and 1
    _, indices, loss = vq(z)
    assert indices.tolist() == [0, 1]
    e = codebook[indices]  # (2, E)
    # Both terms equal mse(z, e) in value: loss = (1 + beta) * mean ||z - e||^2 / E.
    assert torch.allclose(loss, (1 + beta) * ((z - e) ** 2).mean())
    loss.backward()
    M = z.numel()
    # The encoder only feels the commitment term: d/dz beta * mean (z - sg[e])^2.
    assert torch.allclose(z.grad, beta * 2 * (z - e).detach() / M)
    # Chosen codes feel the codebook term d/de mean (sg[z] - e)^2; unused code 2 gets nothing.
    expected = torch.zeros_like(codebook)
    expected[indices] = 2 * (e - z.detach()) / M
    assert torch.allclose(vq.codebook.weight.grad, expected)
    assert vq.codebook.weight.grad[2].abs().sum() == 0  # the dead code stays dead


def test_straight_through_passes_the_decoder_gradient_to_z():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4)
    z = torch.randn(10, 4, requires_grad=True)
    z_q, _, _ = vq(z)
    weights = torch.randn(10, 4)
    (z_q * weights).sum().backward()
    assert torch.allclose(z.grad, weights)  # identity backward through the argmin
    assert vq.codebook.weight.grad is None  # the reconstruction path does not train codes


def test_autocast_keeps_float32_decisions():
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 8)
    z = torch.randn(50, 8)
    _, expected, _ = vq(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_q, indices, loss = vq(z)
    assert torch.equal(indices, expected)
    assert loss.dtype == torch.float32


def test_bad_width_raises():
    with pytest.raises(ValueError, match="expects 8 channels"):
        VectorQuantizer(16, 8)(torch.zeros(3, 4))
