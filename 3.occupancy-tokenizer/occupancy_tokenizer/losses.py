"""The reconstruction loss of every occupancy tokenizer in this chapter (OccWorld's):

    loss = 10 * CE(logits, grid) + 1 * Lovasz-softmax(softmax(logits), grid) + 1 * aux_loss

CE (no class weights, free an ordinary class) gets the voxels right one at a time; Lovasz
pushes each present class's IoU, which is what the benchmark scores and where rare classes
live (its sort skips the errors below LOVASZ_TAIL: at most 1e-3 off per class, lovasz.py);
aux_loss is the quantizer's (VQ's codebook + commitment terms, VAR's per-scale terms, 0 for
FSQ). The weights are OccWorld's.

Shapes: B batch, X, Y, Z voxel-grid sizes, Q semantic classes, "..." any leading axes.
"""

import torch
import torch.nn.functional as F
from einops import rearrange

from occupancy_tokenizer.lovasz import lovasz_softmax

LOVASZ_TAIL = 1e-3  # errors below it skip Lovasz's sort (lovasz.py: the loss moves < 1e-3)


def reconstruction_loss(
    logits: torch.Tensor,
    grid: torch.Tensor,
    aux_loss: torch.Tensor,
    ce_weight: float = 10.0,
    lovasz_weight: float = 1.0,
    ignore: torch.Tensor | None = None,
    lovasz_tail: float = LOVASZ_TAIL,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """logits (..., Q), class ids grid (...), the quantizer's aux_loss () -> (loss, metrics).

    `ignore` (...) bool leaves voxels out of both terms (True = not scored); metrics are
    detached tensors (the trainer reads them once per log line).
    """
    if logits.shape[:-1] != grid.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match grid {tuple(grid.shape)}")
    flat_logits = rearrange(logits.float(), "... q -> (...) q")  # (n, Q)
    target = grid.reshape(-1).long()  # (n,)
    if ignore is not None:
        target = target.masked_fill(ignore.reshape(-1).bool(), -100)  # CE's ignore_index
    log_probs = F.log_softmax(flat_logits, dim=-1)  # (n, Q), shared by both terms
    ce = F.nll_loss(log_probs, target, ignore_index=-100)  # = cross_entropy(flat_logits, ...)
    # exp(log_softmax) = softmax, without a second softmax and its backward pass
    lovasz = lovasz_softmax(log_probs.exp(), grid.reshape(-1), ignore, lovasz_tail)
    loss = ce_weight * ce + lovasz_weight * lovasz + aux_loss.float()
    metrics = {"ce": ce.detach(), "lovasz": lovasz.detach(), "aux": aux_loss.detach().float()}
    return loss, metrics
