"""Learning-rate schedule: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import math


def warmup_cosine(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """The learning rate at optimizer step `step` (0-based).

    Warmup (step < warmup):  lr = peak * (step + 1) / warmup
    Decay:                   lr = floor + (peak - floor) * (1 + cos(pi * progress)) / 2,
                             progress = (step - warmup) / (total - warmup) in [0, 1],
                             floor = peak * min_ratio.
    Warmup keeps Adam's first updates small while its second-moment estimates are still noisy;
    the cosine spends most steps at a high rate and anneals smoothly at the end.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * min_ratio
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
