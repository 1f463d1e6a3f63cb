"""Temperature and top-p sampling."""

import pytest
import torch
from dynamics_model.sampling import sample_from_logits, top_p_filter


def test_top_p_keeps_smallest_set_reaching_p():
    # codes in shuffled order; sorted masses 0.5, 0.3, 0.15, 0.05
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])
    kept = lambda p: (top_p_filter(probs, p) > 0).tolist()  # noqa: E731
    assert kept(0.4) == [False, True, False, False]  # 0.5 alone reaches 0.4
    assert kept(0.5) == [False, True, False, False]  # 0.5 reaches 0.5 exactly
    assert kept(0.75) == [False, True, False, True]  # 0.5 < 0.75 <= 0.8
    assert kept(0.9) == [True, True, False, True]  # 0.8 < 0.9 <= 0.95
    assert kept(1.0) == [True, True, True, True]


def test_top_p_renormalises_the_nucleus():
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3], [0.25, 0.25, 0.25, 0.25]])
    filtered = top_p_filter(probs, 0.75)
    assert torch.allclose(filtered[0], torch.tensor([0.0, 0.625, 0.0, 0.375]))
    assert torch.allclose(filtered.sum(-1), torch.ones(2))
    assert (filtered[1] > 0).sum() == 3  # ties: 3 codes of 0.25 reach 0.75


def test_sampling_never_leaves_the_nucleus():
    logits = torch.log(torch.tensor([0.15, 0.5, 0.05, 0.3])).expand(4000, 4)
    ids = sample_from_logits(logits, temperature=1.0, top_p=0.75)
    assert set(ids.unique().tolist()) == {1, 3}
    frequency_of_1 = (ids == 1).float().mean().item()
    assert frequency_of_1 == pytest.approx(0.625, abs=0.03)  # 0.5 / 0.8


def test_temperature_zero_is_argmax_and_generator_makes_draws_repeatable():
    logits = torch.randn(5, 7, 11)
    assert torch.equal(sample_from_logits(logits, temperature=0.0), logits.argmax(-1))
    a = sample_from_logits(logits, 1.0, 0.9, torch.Generator().manual_seed(3))
    b = sample_from_logits(logits, 1.0, 0.9, torch.Generator().manual_seed(3))
    assert a.shape == (5, 7) and torch.equal(a, b)
    # a very low temperature concentrates all mass on the argmax
    assert torch.equal(sample_from_logits(logits, temperature=1e-4), logits.argmax(-1))


def test_sampling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        sample_from_logits(torch.zeros(3), temperature=-1.0)
    with pytest.raises(ValueError, match="top_p"):
        sample_from_logits(torch.zeros(3), top_p=0.0)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(torch.ones(3) / 3, 1.5)
