"""MaskGIT's confidence-based iterative decoding, apart from any network (Chang et al. 2022).

The algorithm needs only a function that, given a partly filled sequence of N tokens (unknown
ones hold `mask_id`), returns logits for every position:

    logits_fn(partial_ids (B, N)) -> (B, N, K)

Chapter 2's Atari dynamics model passes "the next frame of this clip, given the past frames
and the action"; chapter 5's CoPilot4D-style diffusion and its MaskGIT baseline pass their
own networks. Decoding in S steps:

    start:      every token masked
    step i:     sample every still-masked token from its distribution (temperature, top-p);
                rank the samples by confidence, log p(sampled) under the untempered softmax,
                plus Gumbel noise * confidence_noise * (1 - (i+1)/S) (MaskGIT's annealed
                "choice temperature"; 0 = none);
                fix the most confident, so that N - round(N cos(pi/2 (i+1)/S)) tokens are
                fixed after step i (all N after the last); a fixed token never changes.

The cosine schedule fixes few tokens first (when the model knows least) and many at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


def mask_schedule(u: torch.Tensor | float) -> torch.Tensor | float:
    """Cosine schedule: the fraction of tokens masked at progress u in [0, 1], r = cos(pi/2 u).

    r(0) = 1 (all masked), r(1) = 0 (none masked); it decreases slowly at first and fast at
    the end.
    """
    if isinstance(u, torch.Tensor):
        return torch.cos(math.pi / 2 * u)
    return math.cos(math.pi / 2 * u)


def gumbel_noise(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """-log(-log U), U ~ U(0, 1): adding it to log-probabilities and taking the top-k samples
    k items without replacement (the Gumbel-top-k trick)."""
    uniform = torch.rand(*shape, generator=generator, device=device)
    return -torch.log(-torch.log(uniform.clamp(1e-20, 1 - 1e-7)))


class Decoded(NamedTuple):
    """What `maskgit_decode` returns (N tokens per sequence, S steps)."""

    ids: torch.Tensor  # (B, N) int64, every token filled
    fixed_at_step: torch.Tensor  # (B, N) int64: the step 0..S-1 that fixed each token
    partial: torch.Tensor  # (B, S, N) int64: the sequence after each step (mask_id = unfixed)


@torch.no_grad()
def maskgit_decode(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    batch: int,
    num_tokens: int,
    mask_id: int,
    steps: int,
    sampler: Callable[[torch.Tensor], torch.Tensor],
    confidence_noise: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Decoded:
    """Fill `batch` sequences of `num_tokens` tokens in `steps` steps of confident unmasking.

    logits_fn(partial (B, N) int64) -> logits (B, N, K); sampler(logits (B, N, K)) -> ids
    (B, N) (e.g. `sample_from_logits` with a temperature, top-p and generator bound);
    `generator` draws the confidence noise.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    B, N = batch, num_tokens
    ids = torch.full((B, N), mask_id, dtype=torch.long, device=device)  # (B, N)
    fixed = torch.zeros(B, N, dtype=torch.bool, device=device)  # (B, N)
    fixed_at_step = torch.full_like(ids, -1)  # (B, N)
    partial = []
    for i in range(steps):
        logits = logits_fn(ids)  # (B, N, K)
        sampled = sampler(logits)  # (B, N)
        log_p = F.log_softmax(logits.float(), dim=-1)  # (B, N, K)
        confidence = log_p.gather(-1, sampled[..., None])[..., 0]  # (B, N) log p(sampled)
        noise_scale = confidence_noise * (1 - (i + 1) / steps)
        if noise_scale > 0:
            confidence = confidence + noise_scale * gumbel_noise((B, N), generator, ids.device)
        confidence = confidence.masked_fill(fixed, math.inf)  # fixed tokens stay fixed
        # after step i: N - round(N * r((i+1)/S)) fixed; r(1) = 0, so all N at the end
        target = N - round(N * mask_schedule((i + 1) / steps)) if i < steps - 1 else N
        best = confidence.argsort(dim=-1, descending=True)[:, :target]  # (B, target)
        keep = torch.zeros_like(fixed).scatter(1, best, True)  # (B, N)
        newly_fixed = keep & ~fixed  # (B, N)
        ids = torch.where(newly_fixed, sampled, ids)
        fixed_at_step = fixed_at_step.masked_fill(newly_fixed, i)
        fixed = fixed | newly_fixed
        partial.append(ids)
    return Decoded(ids, fixed_at_step, torch.stack(partial, dim=1))
