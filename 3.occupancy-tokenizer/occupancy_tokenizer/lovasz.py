"""Lovasz-softmax: a loss that optimises IoU itself (Berman, Triki & Blaschko, CVPR 2018).

Cross-entropy scores each voxel alone, so a class that fills 0.1% of the voxels (a bicycle)
costs almost nothing to miss. The benchmark scores IoU per class, which counts that miss as a
whole class wrong. Berman et al. make the Jaccard loss of one class c differentiable:

    Delta_J(M) = 1 - |y == c  and  pred == c| / |y == c  or  pred == c|

is a set function of the mispredicted set M, and it is submodular, so its Lovasz extension

    lovasz(e) = sum_i e_(i) * g_i,      e_(1) >= e_(2) >= ...   the errors sorted, descending
    g_i = Delta_J({1..i}) - Delta_J({1..i-1})                   (gradient of the IoU loss)

is a convex piecewise-linear function of the per-voxel errors e in [0, 1]^n that equals
Delta_J exactly when e is a 0/1 vector. With softmax probabilities p, the error of voxel i for
class c is e_i = |[y_i == c] - p_i(c)|. Sorting descending and writing fg_(i) for the
foreground indicator in that order, with G = |y == c|:

    Delta_J({1..i}) = 1 - (G - sum_{j<=i} fg_(j)) / (G + sum_{j<=i} (1 - fg_(j)))

(the first i voxels are the mispredicted ones: foreground among them left the intersection,
background among them joined the union). The loss averages lovasz(e^c) over the classes
present in the labels (Berman's "present" option), so an absent class neither helps nor hurts.

Skipping the tail of the sort. The sort is the cost (a debug batch holds half a million
voxels, each sorted once per present class). Once the model is confident, almost every error
is tiny. Sorting only the head, the errors >= `tail`, and dropping the
rest changes the loss by at most `tail` per class, and computes the head's terms exactly:

    the head comes first in the full order, so its g_i need only G (counted over *all* the
    voxels) and the head's own running counts; the dropped terms are each e_(i) g_i with
    e_(i) < tail and g_i >= 0 (Delta_J grows with the set), and sum over the tail of g_i
    = Delta_J(all) - Delta_J(head) <= 1, so  0 <= exact - truncated < tail.

The dropped voxels get no Lovasz gradient: they are the ones already right to within `tail`.
`tail=0` is the exact loss, and so is any batch where most errors are >= `tail` (early in
training): one batched sort of every row is then faster than a sort per class of its head.

Shapes: "..." any leading axes (voxels), Q semantic classes, n a count (the voxels scored).
"""

import torch


def lovasz_grad(fg_sorted: torch.Tensor, total: torch.Tensor | None = None) -> torch.Tensor:
    """g (Q, n): the Jaccard loss's increments for foreground indicators (Q, n), each row (one
    class) sorted by descending error. `total` (Q, 1): |y == c| when the rows hold only the
    head of the order (default: the rows' own sums, the whole order)."""
    G = fg_sorted.sum(dim=-1, keepdim=True) if total is None else total  # (Q, 1): |y == c|
    intersection = G - fg_sorted.cumsum(dim=-1)  # (Q, n): G - sum_{j<=i} fg_(j)
    union = G + (1 - fg_sorted).cumsum(dim=-1)  # (Q, n): G + sum_{j<=i} (1 - fg_(j)), >= 1
    jaccard = 1 - intersection / union  # (Q, n): Delta_J({1..i})
    # g_1 = Delta_J({1}) - Delta_J({}) = Delta_J({1}); g_i = Delta_J({1..i}) - Delta_J({1..i-1})
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_softmax(
    probs: torch.Tensor,
    labels: torch.Tensor,
    ignore: torch.Tensor | None = None,
    tail: float = 0.0,
) -> torch.Tensor:
    """Mean over present classes of the Lovasz extension of 1 - IoU: a scalar, float32.

    probs:  (..., Q) softmax probabilities (classes last, as the tied head's logits).
    labels: (...) int class ids in [0, Q).
    ignore: (...) bool, True where a voxel is left out (e.g. ~visibility), or None.
    tail:   errors below it are left out of the sort (at most `tail` lower per class); 0 exact.
    Returns 0 (with a gradient path) when no voxel is scored or no class is present.
    """
    Q = probs.shape[-1]
    if labels.shape != probs.shape[:-1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} must match probs {tuple(probs.shape)} without Q"
        )
    if labels.dtype.is_floating_point:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    probs = probs.float().reshape(-1, Q)  # (n, Q)
    labels = labels.reshape(-1).long()  # (n,)
    if ignore is not None:
        if ignore.numel() != labels.numel():
            raise ValueError(f"ignore mask has {ignore.numel()} entries, labels {labels.numel()}")
        keep = ~ignore.reshape(-1).bool()  # (n,)
        probs, labels = probs[keep], labels[keep]
    if labels.numel() == 0:
        return probs.sum() * 0.0
    if int(labels.min()) < 0 or int(labels.max()) >= Q:
        raise ValueError(f"labels must lie in [0, {Q}), found [{labels.min()}, {labels.max()}]")
    # One row per class present in the labels (absent classes are not scored, and skipping
    # them skips their sort, the costly step): rows are contiguous, so each sort is too.
    fg = torch.nn.functional.one_hot(labels, Q).T.float()  # (Q, n): [y_i == c]
    present = fg.sum(dim=-1) > 0  # (Q,)
    fg, probs = fg[present], probs.T[present]  # (Q', n) each, Q' present classes
    errors = (fg - probs).abs()  # (Q', n): e_i^c = |[y_i == c] - p_i(c)|
    if tail > 0 and bool((errors.detach() < tail).float().mean() > 0.5):  # mostly tail: skip
        return torch.stack([truncated_lovasz(e, f, tail) for e, f in zip(errors, fg)]).mean()
    # (else the one batched sort of every row is the faster way, and exact)
    errors_sorted, order = errors.sort(dim=-1, descending=True)  # (Q', n), per class
    fg_sorted = fg.gather(-1, order)  # (Q', n): fg in each class's error order
    grad = lovasz_grad(fg_sorted)  # (Q', n), constant: the permutation carries no gradient
    return (errors_sorted * grad).sum(dim=-1).mean()  # mean over classes of sum_i e_(i) g_i


def truncated_lovasz(errors: torch.Tensor, fg: torch.Tensor, tail: float) -> torch.Tensor:
    """One class's Lovasz extension over its errors (n,) >= `tail` (the head of the order),
    with G = |y == c| counted over all n: at most `tail` below the exact value."""
    head = errors.detach() >= tail  # (n,)
    head_sorted, order = errors[head].sort(descending=True)  # (n_head,)
    fg_sorted = fg[head][order]  # (n_head,)
    grad = lovasz_grad(fg_sorted[None], total=fg.sum().reshape(1, 1))[0]  # (n_head,)
    return (head_sorted * grad).sum()
