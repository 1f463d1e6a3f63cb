"""95% confidence intervals by a seeded bootstrap over episodes (or clips).

Every difference a chapter claims (model minus baseline, true minus random actions, FSQ
minus VQ) is a mean over held-out clips, and clips cut from one episode are not independent:
neighbouring windows share frames. So the bootstrap resamples whole *groups* (episodes)
with replacement and recomputes the statistic on the clips of the drawn groups, B times; the
interval is the 2.5th and 97.5th percentile of those B values (the percentile bootstrap,
Efron & Tibshirani 1993, ch. 13). With one clip per group it is the ordinary bootstrap over
clips. The seed is fixed, so the same scores always give the same interval.

    interval = mean_interval(model_psnr - copy_psnr, groups=episode_of_clip)
    print(interval)            # +0.52 dB [+0.31, +0.74] (95%, 48 episodes)
    interval.excludes_zero()   # True: the difference is not noise at this sample size
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

SAMPLES = 2000  # bootstrap resamples: percentile error ~0.5% of the spread at 95%


@dataclass(frozen=True)
class Interval:
    """A statistic and its bootstrap confidence interval."""

    estimate: float  # the statistic on the data as observed
    low: float  # 2.5th percentile of the bootstrap distribution (for level 0.95)
    high: float
    groups: int  # how many groups (episodes or clips) were resampled
    unit: str = "episodes"  # what a group is
    level: float = 0.95

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self, prefix: str) -> dict[str, float]:
        """{prefix: estimate, prefix_ci_low: ..., prefix_ci_high: ...} for a metrics.json."""
        return {prefix: self.estimate, f"{prefix}_ci_low": self.low, f"{prefix}_ci_high": self.high}

    def format(self, digits: int = 2, unit: str = "") -> str:
        """'+0.52 dB [+0.31, +0.74]'; says 'contains 0' when the interval does."""
        f = f"{{:+.{digits}f}}"
        text = f"{f.format(self.estimate)}{unit} [{f.format(self.low)}, {f.format(self.high)}]"
        return text if self.excludes_zero() else f"{text}, contains 0"

    def __str__(self) -> str:
        return f"{self.format()} ({100 * self.level:.0f}%, {self.groups} {self.unit})"

    def to_json(self) -> dict:
        return asdict(self)


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def _group_ids(groups, n: int) -> tuple[np.ndarray, int, str]:
    """(n,) dense group ids in [0, G), G, and the unit's name."""
    if groups is None:
        return np.arange(n), n, "clips"
    groups = _as_numpy(groups).astype(np.int64).reshape(-1)
    if len(groups) != n:
        raise ValueError(f"groups must give one group per value: {len(groups)} for {n} values")
    _, dense = np.unique(groups, return_inverse=True)
    return dense, int(dense.max()) + 1, "episodes"


def _percentiles(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(
    values, groups=None, samples: int = SAMPLES, seed: int = 0, level: float = 0.95
) -> Interval:
    """The mean of `values` (one per clip; extra dims are averaged per clip first) with a
    bootstrap interval that resamples `groups` (one id per clip, e.g. its episode).

    Resampling G groups with replacement, the mean of a draw is sum of the drawn groups'
    sums / sum of their clip counts, so every clip keeps its weight.
    """
    values = _as_numpy(values)
    if values.ndim == 0 or len(values) == 0:
        raise ValueError("mean_interval needs one value per clip, got none")
    per_clip = values.reshape(len(values), -1).mean(axis=1)  # (n,)
    if not np.isfinite(per_clip).all():
        raise ValueError("mean_interval got non-finite values")
    dense, G, unit = _group_ids(groups, len(per_clip))
    sums = np.bincount(dense, weights=per_clip, minlength=G)  # (G,)
    counts = np.bincount(dense, minlength=G).astype(np.float64)  # (G,)
    rng = np.random.default_rng(seed)
    draws_idx = rng.integers(G, size=(samples, G))  # (samples, G)
    draws = sums[draws_idx].sum(1) / counts[draws_idx].sum(1)  # (samples,)
    low, high = _percentiles(draws, level)
    return Interval(float(per_clip.mean()), low, high, G, unit, level)


def statistic_interval(
    statistic: Callable[[np.ndarray], float],
    groups,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """A statistic that is not a mean (NMI, a ratio) with a bootstrap over groups.

    `statistic(indices)` gets the item indices of one resample (items of the drawn groups,
    a group drawn twice contributing its items twice) and returns a float.
    """
    groups = _as_numpy(groups).astype(np.int64).reshape(-1)
    dense, G, unit = _group_ids(groups, len(groups))
    members = [np.flatnonzero(dense == g) for g in range(G)]
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            statistic(np.concatenate([members[g] for g in rng.integers(G, size=G)]))
            for _ in range(samples)
        ]
    )
    low, high = _percentiles(draws, level)
    return Interval(float(statistic(np.arange(len(groups)))), low, high, G, unit, level)


def statistics_intervals(
    statistics: Callable[[np.ndarray], np.ndarray],
    groups,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    unit: str = "episodes",
) -> list[Interval]:
    """Many statistics of the SAME resamples at once, e.g. every score of every model at
    every horizon of a benchmark: one Interval per entry of the vector `statistics` returns.

    `statistics(indices)` gets the item indices of one resample, drawn exactly as
    `statistic_interval` draws them (same seed, same groups: the same resamples, so one
    entry's interval equals `statistic_interval`'s for that statistic), and returns (m,)
    floats. An entry that is NaN on a resample (a class absent from the drawn groups) is
    left out of that entry's percentiles; an entry NaN on every resample gets NaN bounds.
    """
    groups = _as_numpy(groups).astype(np.int64).reshape(-1)
    dense, G, _ = _group_ids(groups, len(groups))
    members = [np.flatnonzero(dense == g) for g in range(G)]
    rng = np.random.default_rng(seed)

    def resample() -> np.ndarray:  # item indices of G groups drawn with replacement
        return np.concatenate([members[g] for g in rng.integers(G, size=G)])

    draws = np.stack([np.asarray(statistics(resample()), np.float64) for _ in range(samples)])
    estimates = np.asarray(statistics(np.arange(len(groups))), dtype=np.float64)  # (m,)
    tail = 100 * (1 - level) / 2
    intervals = []
    for estimate, column in zip(estimates, draws.T):
        finite = column[~np.isnan(column)]
        low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (np.nan,) * 2
        intervals.append(Interval(float(estimate), float(low), float(high), G, unit, level))
    return intervals
