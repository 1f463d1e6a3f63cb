"""How a discrete bottleneck uses its codebook: usage and perplexity."""

from __future__ import annotations

import torch


def code_histogram(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Counts of each code id in `indices` (any shape, int), as a (K,) int64 tensor."""
    flat = indices.reshape(-1).long()
    if flat.numel() and (flat.min() < 0 or flat.max() >= codebook_size):
        raise ValueError(
            f"code ids must lie in [0, {codebook_size}), got range "
            f"[{int(flat.min())}, {int(flat.max())}]"
        )
    return torch.bincount(flat.cpu(), minlength=codebook_size)


def usage_from_histogram(counts: torch.Tensor) -> float:
    """Fraction of the K codes used at least once."""
    return (counts > 0).float().mean().item()


def perplexity_from_histogram(counts: torch.Tensor) -> float:
    """exp(H(p)) with p the empirical code distribution: the 'effective number of codes'.

    H = -sum_k p_k ln p_k. Perplexity equals K when codes are used uniformly and 1 when one
    code takes everything, so it tells apart 'all codes used once' from 'all codes used evenly'.
    """
    total = counts.sum()
    if total == 0:
        raise ValueError("perplexity of an empty histogram is undefined")
    p = counts.double() / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return entropy.exp().item()


class CodebookStats:
    """Accumulate code counts over an evaluation set, then read usage and perplexity."""

    def __init__(self, codebook_size: int):
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, indices: torch.Tensor) -> None:
        self.counts += code_histogram(indices, len(self.counts))

    def compute(self) -> dict[str, float]:
        return {
            "codebook_usage": usage_from_histogram(self.counts),
            "perplexity": perplexity_from_histogram(self.counts),
        }
