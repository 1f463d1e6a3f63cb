"""Lovasz-softmax equals 1 - IoU on one-hot predictions, averages present classes only, skips
ignored voxels, and passes gradients to the probabilities."""

import torch
from occupancy_tokenizer.losses import reconstruction_loss
from occupancy_tokenizer.lovasz import lovasz_grad, lovasz_softmax


def one_hot(ids, Q):
    return torch.nn.functional.one_hot(torch.tensor(ids), Q).float()


def test_one_hot_prediction_gives_one_minus_iou_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2])
    probs = one_hot([0, 1, 1, 1, 0], 4)  # class 3 absent from both: not counted
    # IoU_0 = |{0}| / |{0, 1, 4}| = 1/3, IoU_1 = |{2, 3}| / |{1, 2, 3}| = 2/3, IoU_2 = 0 / 1
    expected = ((1 - 1 / 3) + (1 - 2 / 3) + (1 - 0)) / 3
    torch.testing.assert_close(lovasz_softmax(probs, labels), torch.tensor(expected))


def test_one_hot_prediction_gives_one_minus_iou_on_random_grids():
    g = torch.Generator().manual_seed(0)
    Q = 5
    labels = torch.randint(0, Q, (3, 7, 6), generator=g)
    predicted = torch.randint(0, Q, (3, 7, 6), generator=g)
    ious = []
    for c in range(Q):
        if (labels == c).any():
            inter = ((labels == c) & (predicted == c)).sum()
            union = ((labels == c) | (predicted == c)).sum()
            ious.append(inter / union)
    expected = 1 - torch.stack(ious).float().mean()
    got = lovasz_softmax(torch.nn.functional.one_hot(predicted, Q).float(), labels)
    torch.testing.assert_close(got, expected)


def test_a_perfect_prediction_costs_zero():
    labels = torch.tensor([[0, 2], [2, 1]])
    assert lovasz_softmax(torch.nn.functional.one_hot(labels, 3).float(), labels) == 0


def test_grad_is_the_increment_of_the_jaccard_loss():
    # fg sorted by error: [1, 0, 1]; G = 2. Delta_J after 1, 2, 3 mistakes:
    # 1 - 1/2, 1 - 1/3, 1 - 0/3 -> increments 1/2, 1/6, 1/3 (they sum to Delta_J(all) = 1)
    grad = lovasz_grad(torch.tensor([[1.0, 0.0, 1.0]]))  # (Q = 1, n = 3)
    torch.testing.assert_close(grad[0], torch.tensor([1 / 2, 1 / 6, 1 / 3]))


def test_ignored_voxels_are_left_out():
    g = torch.Generator().manual_seed(1)
    probs = torch.rand(40, 4, generator=g).softmax(-1)
    labels = torch.randint(0, 4, (40,), generator=g)
    ignore = torch.rand(40, generator=g) < 0.3
    torch.testing.assert_close(
        lovasz_softmax(probs, labels, ignore), lovasz_softmax(probs[~ignore], labels[~ignore])
    )
    everything = torch.ones(40, dtype=torch.bool)
    assert lovasz_softmax(probs, labels, everything) == 0


def test_gradients_flow_to_the_logits():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 3, 5, generator=g, requires_grad=True)  # (..., Q)
    labels = torch.randint(0, 5, (2, 4, 3), generator=g)
    lovasz_softmax(logits.softmax(-1), labels).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # a small step against the gradient lowers the loss
    with torch.no_grad():
        before = lovasz_softmax(logits.softmax(-1), labels)
        after = lovasz_softmax((logits - 0.5 * logits.grad).softmax(-1), labels)
    assert after < before


def test_reconstruction_loss_is_occworlds_weighted_sum():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 3, 2, 18, generator=g)
    grid = torch.randint(0, 18, (2, 3, 3, 2), generator=g)
    aux = torch.tensor(0.5)
    loss, metrics = reconstruction_loss(logits, grid, aux)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 18), grid.reshape(-1))
    lovasz = lovasz_softmax(logits.softmax(-1), grid)
    torch.testing.assert_close(loss, 10 * ce + lovasz + 0.5)
    torch.testing.assert_close(metrics["ce"], ce)


def test_reconstruction_loss_leaves_ignored_voxels_out_of_both_terms():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 3, 2, 18, generator=g)
    grid = torch.randint(0, 18, (2, 3, 3, 2), generator=g)
    ignore = torch.rand(2, 3, 3, 2, generator=g) < 0.4  # e.g. ~visibility
    aux = torch.tensor(0.0)
    masked, _ = reconstruction_loss(logits, grid, aux, ignore=ignore)
    kept, _ = reconstruction_loss(logits[~ignore], grid[~ignore], aux)
    torch.testing.assert_close(masked, kept)


def confident_case(seed: int = 5):
    """Sharp logits: most (voxel, class) errors are tiny, as in a trained tokenizer's batch."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 6, (4000,), generator=g)
    logits = 12 * torch.nn.functional.one_hot(labels, 6).float()
    wrong = torch.rand(4000, generator=g) < 0.2  # a fifth of the voxels lean elsewhere
    logits = logits + 6 * wrong[:, None] * torch.randn(4000, 6, generator=g)  # no ties at 1
    return logits.requires_grad_(), labels


def test_skipping_the_tail_of_the_sort_costs_at_most_tail_per_class():
    logits, labels = confident_case()
    exact = lovasz_softmax(logits.softmax(-1), labels)
    for tail in (1e-4, 1e-3, 1e-2, 0.1):
        probs = logits.softmax(-1)
        truncated = lovasz_softmax(probs, labels, tail=tail)
        errors = (torch.nn.functional.one_hot(labels, 6) - probs).abs()
        assert (errors < tail).float().mean() > 0.5  # most of the sort is really skipped
        assert 0 <= float((exact - truncated).detach()) < tail
    torch.testing.assert_close(lovasz_softmax(logits.softmax(-1), labels, tail=0.0), exact)


def test_the_heads_terms_are_the_exact_ones():
    # the head comes first in the full order, so its Lovasz weights g_i, hence the gradient of
    # every error >= tail, match the exact loss's; the skipped errors get none
    logits, labels = confident_case(6)
    probs = logits.detach().softmax(-1).requires_grad_()
    lovasz_softmax(probs, labels).backward()
    exact_grad, probs.grad = probs.grad.clone(), None
    lovasz_softmax(probs, labels, tail=1e-3).backward()
    head = (torch.nn.functional.one_hot(labels, 6) - probs.detach()).abs() >= 1e-3
    assert 100 < head.sum() < head.numel() / 2
    torch.testing.assert_close(probs.grad[head], exact_grad[head])
    assert (probs.grad[~head] == 0).all()
