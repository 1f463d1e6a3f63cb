"""Drawing tokens from predicted distributions: temperature and nucleus (top-p) sampling.

Both dynamics models (MaskGIT and the autoregressive GPT) end in logits over the K codes of
the tokenizer, one distribution per token. How we turn them into tokens decides between
sharp-but-repetitive and diverse-but-noisy videos:

- temperature tau: p_k ∝ exp(logit_k / tau). tau -> 0 is argmax (greedy), tau = 1 the
  model's own distribution, tau > 1 flatter.
- top-p (nucleus, Holtzman et al. 2020): keep the smallest set of most probable codes whose
  mass reaches p, renormalise, sample inside it. Cuts off the long tail of unlikely codes
  that each have tiny probability but together are drawn often.

Every draw goes through an optional `torch.Generator`, so two samplers given generators in
the same state draw identical tokens (the KV-cache equivalence test relies on it).
"""

import math
from dataclasses import dataclass

import torch
from einops import pack, unpack

from worldmodels.config import at_least, require


@dataclass
class SampleConfig:
    """How a rollout draws tokens, for MaskGIT and AR alike (the `sample` section of a run)."""

    maskgit_steps: int = 8  # S, MaskGIT refinement steps per frame (AR: unused)
    temperature: float = 0.0  # 0 = greedy (argmax), best for PSNR; 1 = the model's own p
    top_p: float = 1.0
    confidence_noise: float = 0.0  # MaskGIT's annealed Gumbel noise on confidences
    seed: int = 0

    def __post_init__(self):  # checked at start-up, not at the first evaluation
        at_least(self, 1, "maskgit_steps")
        require(self, "temperature", 0 <= self.temperature < math.inf, ">= 0 (0 = greedy)")
        require(self, "top_p", 0 < self.top_p <= 1, "in (0, 1]")
        require(self, "confidence_noise", 0 <= self.confidence_noise < math.inf, ">= 0")


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the nucleus of each distribution: probs (..., K) -> renormalised probs (..., K).

    Sort the codes by probability, p_(1) >= p_(2) >= ...; code (i) is kept when the mass of
    the codes before it, sum_{j<i} p_(j), is still < top_p. The kept set is then the
    smallest prefix with mass >= top_p (the most probable code is always kept).
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # (..., K)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (..., K) sum_{j<i} p_(j)
    keep_sorted = mass_before < top_p  # (..., K)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to code order
    kept = probs * keep  # (..., K)
    return kept / kept.sum(dim=-1, keepdim=True)


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one code per distribution: logits (..., K) -> ids (...) int64.

    temperature = 0 means greedy (argmax, no randomness used); otherwise
    p = softmax(logits / temperature), optionally restricted to its top-p nucleus.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (..., K)
    if top_p < 1.0:
        probs = top_p_filter(probs, top_p)
    flat, packed_shape = pack([probs], "* k")  # (L, K): multinomial wants 2-D
    ids = torch.multinomial(flat, num_samples=1, generator=generator)  # (L, 1)
    [ids] = unpack(ids[:, 0], packed_shape, "*")  # (...)
    return ids
