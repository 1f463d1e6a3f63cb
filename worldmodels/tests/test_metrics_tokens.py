"""Token metrics against hand-computed cases."""

import math

import pytest
import torch

from worldmodels.metrics.tokens import (
    copy_last_frame_accuracy,
    delta_psnr,
    label_cooccurrence,
    normalized_mutual_information,
    token_cross_entropy,
    unigram_cross_entropy,
    unigram_entropy,
)


def test_uniform_logits_give_ln_k_nats_and_log2_k_bits():
    K = 16
    logits = torch.zeros(3, 5, K)
    targets = torch.randint(K, (3, 5))
    out = token_cross_entropy(logits, targets)
    assert out["nats"] == pytest.approx(math.log(K), abs=1e-6)
    assert out["bits"] == pytest.approx(4.0, abs=1e-6)  # log2 16


def test_cross_entropy_hand_case_and_accuracy():
    # token 1: p(target) = e^2 / (e^2 + 1 + 1); token 2: p(target) = 1/3 (uniform)
    logits = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([0, 2])
    p1 = math.exp(2) / (math.exp(2) + 2)
    out = token_cross_entropy(logits, targets)
    assert out["nats"] == pytest.approx(-(math.log(p1) + math.log(1 / 3)) / 2, abs=1e-6)
    assert out["bits"] == pytest.approx(out["nats"] / math.log(2))
    # argmax of the uniform row is index 0 != 2, so accuracy is 1/2
    assert out["accuracy"] == pytest.approx(0.5)


def test_perfect_prediction_has_accuracy_one_and_near_zero_ce():
    targets = torch.randint(10, (4, 8, 8))
    logits = 50.0 * torch.nn.functional.one_hot(targets, 10).float()
    out = token_cross_entropy(logits, targets)
    assert out["accuracy"] == 1.0
    assert out["nats"] < 1e-6


def test_cross_entropy_rejects_bad_shapes_and_ids():
    with pytest.raises(ValueError, match="must match targets"):
        token_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\)"):
        token_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer token ids"):
        token_cross_entropy(torch.zeros(2, 4), torch.tensor([0.0, 1.0]))


def test_unigram_entropy_hand_cases():
    assert unigram_entropy(torch.tensor([0, 1, 2, 3] * 5), K=8) == pytest.approx(math.log(4))
    assert unigram_entropy(torch.full((10,), 3), K=8) == pytest.approx(0.0, abs=1e-12)
    # p = (3/4, 1/4)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert unigram_entropy(torch.tensor([1, 1, 1, 0]), K=2) == pytest.approx(expected)


def test_unigram_cross_entropy_is_laplace_smoothed_held_out_ce():
    train = torch.tensor([0, 0, 0, 1])
    # q = (3 + 1, 1 + 1, 0 + 1) / (4 + 3) = (4/7, 2/7, 1/7)
    assert unigram_cross_entropy(train, torch.tensor([2]), K=3) == pytest.approx(math.log(7))
    both = unigram_cross_entropy(train, torch.tensor([0, 1]), K=3)
    assert both == pytest.approx(-(math.log(4 / 7) + math.log(2 / 7)) / 2)
    # no smoothing, scored on its own training set: the entropy
    ids = torch.tensor([0, 1, 1, 2, 2, 2])
    assert unigram_cross_entropy(ids, ids, K=3, smoothing=0.0) == pytest.approx(
        unigram_entropy(ids, K=3)
    )
    assert math.isinf(unigram_cross_entropy(train, torch.tensor([2]), K=3, smoothing=0.0))
    with pytest.raises(ValueError, match="smoothing"):
        unigram_cross_entropy(train, train, K=3, smoothing=-1.0)
    with pytest.raises(ValueError, match="eval_ids"):
        unigram_cross_entropy(train, torch.tensor([5]), K=3)


def test_copy_last_frame_accuracy_hand_case():
    tokens = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    tokens[0, 1] = torch.tensor([[0, 0], [0, 1]])  # 3 of 4 tokens equal frame 0
    tokens[0, 2] = torch.tensor([[5, 5], [0, 1]])  # 2 of 4 tokens equal frame 1
    assert copy_last_frame_accuracy(tokens) == pytest.approx(5 / 8)
    assert copy_last_frame_accuracy(tokens, last_only=True) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="T >= 2"):
        copy_last_frame_accuracy(tokens[:, :1])


def test_delta_psnr_is_mean_paired_difference():
    assert delta_psnr(torch.tensor([30.0, 32.0]), torch.tensor([25.0, 26.0])) == pytest.approx(5.5)
    assert delta_psnr(20.0, 21.5) == pytest.approx(-1.5)
    with pytest.raises(ValueError, match="paired"):
        delta_psnr(torch.zeros(3), torch.zeros(2))


def test_label_cooccurrence_hand_case():
    a = torch.tensor([0, 0, 1, 2, 2, 2])
    b = torch.tensor([1, 1, 0, 0, 1, 1])
    expected = torch.tensor([[0, 2], [1, 0], [1, 2]])
    assert torch.equal(label_cooccurrence(a, b, num_a=3, num_b=2), expected)
    with pytest.raises(ValueError, match="labels_b must lie"):
        label_cooccurrence(a, b, num_a=3, num_b=1)
    with pytest.raises(ValueError, match="same shape"):
        label_cooccurrence(a, b[:3], num_a=3, num_b=2)


def test_nmi_identical_relabelled_and_independent():
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 3])
    assert normalized_mutual_information(labels, labels) == pytest.approx(1.0)
    relabelled = (labels + 2) % 4 + 5  # a permutation of the names, shifted
    assert normalized_mutual_information(labels, relabelled) == pytest.approx(1.0)
    n = torch.arange(400)
    independent_a, independent_b = n % 2, (n // 2) % 2  # every (a, b) pair equally often
    assert normalized_mutual_information(independent_a, independent_b) == pytest.approx(
        0.0, abs=1e-12
    )
    # random labelings of many samples: close to 0
    g = torch.Generator().manual_seed(0)
    random_a, random_b = torch.randint(8, (20000,), generator=g), torch.randint(8, (20000,))
    assert normalized_mutual_information(random_a, random_b) < 0.01


def test_nmi_hand_case_arithmetic_normalisation():
    a = torch.tensor([0, 0, 1, 1])
    b = torch.tensor([0, 0, 0, 1])
    h_a = math.log(2)
    h_b = 2 * math.log(2) - 0.75 * math.log(3)  # p = (3/4, 1/4)
    mutual = 0.75 * math.log(4 / 3)  # H(A) + H(B) - H(A, B), H(A, B) = 1.5 ln 2
    expected = mutual / ((h_a + h_b) / 2)
    assert normalized_mutual_information(a, b) == pytest.approx(expected, rel=1e-9)
    assert (
        normalized_mutual_information(torch.zeros(5, dtype=torch.long), torch.ones(5).long()) == 1
    )
