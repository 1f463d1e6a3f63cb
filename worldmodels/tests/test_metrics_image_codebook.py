import math

import pytest
import torch

from worldmodels.metrics import CodebookStats, code_histogram, perplexity_from_histogram, psnr


def test_psnr_hand_computed():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.full((2, 3, 4, 4), 0.1)  # MSE = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    pred[1] = 0.5  # MSE = 0.25 -> 10 log10(4) = 6.0206 dB
    values = psnr(pred, target)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert values[1].item() == pytest.approx(10 * math.log10(4), abs=1e-4)


def test_psnr_per_frame_clamps_and_checks_shapes():
    target = torch.rand(2, 5, 3, 8, 8)
    assert psnr(target, target).shape == (2, 5)
    assert torch.all(psnr(target, target) >= 99.9)
    # values outside [0, 1] are clamped, as a saved image would be: 2.0 reads as 1.0
    assert torch.allclose(
        psnr(torch.full((1, 1, 2, 2), 2.0), torch.ones(1, 1, 2, 2)), torch.tensor([100.0])
    )
    with pytest.raises(ValueError, match="equal shapes"):
        psnr(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_codebook_usage_and_perplexity():
    stats = CodebookStats(4)
    stats.update(torch.tensor([[0, 0], [1, 1]]))
    out = stats.compute()
    assert out["codebook_usage"] == pytest.approx(0.5)
    assert out["perplexity"] == pytest.approx(2.0)  # two codes used equally
    assert perplexity_from_histogram(torch.tensor([5, 0, 0])) == pytest.approx(1.0)
    assert perplexity_from_histogram(torch.tensor([1, 1, 1, 1])) == pytest.approx(4.0)
    p = torch.tensor([0.5, 0.25, 0.25])
    expected = math.exp(-(p * p.log()).sum().item())
    assert perplexity_from_histogram(torch.tensor([2, 1, 1])) == pytest.approx(expected)


def test_code_histogram_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        code_histogram(torch.tensor([0, 4]), 4)
