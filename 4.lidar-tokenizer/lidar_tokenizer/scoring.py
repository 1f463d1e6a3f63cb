"""From rendered depths to the chapter's numbers: per-frame sums, set summaries, paired
differences with bootstrap intervals over sequences, and temporal coherence of tokens.

Per frame and method (the model, the references) `frame_scores` keeps sums, not means:

    abs_region, rel_region, rays_region     sum |D - D_gt|, sum |D - D_gt| / D_gt, count,
                                            over the rays whose true return lies in the region
    abs_all, rel_all, rays_all              the same over every scored ray
    chamfer_region, chamfer_all             Chamfer distance of the frame, metres

so that a set's depth L1 is a ratio of sums (every ray weighs the same, as
worldmodels.metrics.lidar.depth_errors averages), and a bootstrap over sequences
recomputes it from the drawn sequences' frames. The Chamfer distance of a set is the mean of
its frames' (4D-Occ averages per frame); both in metres, not squared.

Shapes: R rays, h, w token-grid height, width, n a count local to one function (frames).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from worldmodels.metrics.bootstrap import Interval, mean_interval, statistic_interval
from worldmodels.metrics.lidar import chamfer_distance, depth_errors

SUMS = ("abs_region", "rel_region", "rays_region", "abs_all", "rel_all", "rays_all")


def frame_scores(depth: torch.Tensor, truth: torch.Tensor, dirs: torch.Tensor,
                 inside: torch.Tensor, bounds) -> dict[str, float]:  # fmt: skip
    """One frame, one method: depth, truth (R,) m along unit dirs (R, 3) from the sensor;
    inside (R,) bool, the true return lies in the region `bounds`."""
    scores = {}
    for where, keep in (("region", inside), ("all", torch.ones_like(inside))):
        n = int(keep.sum())
        if n:
            errors = depth_errors(depth, truth, keep)  # means over the kept rays
            abs_sum, rel_sum = errors["depth_l1"] * n, errors["depth_absrel"] * n
        else:
            abs_sum = rel_sum = 0.0
        scores |= {f"abs_{where}": abs_sum, f"rel_{where}": rel_sum, f"rays_{where}": n}
    pred, target = dirs * depth[:, None], dirs * truth[:, None]  # (R, 3): p = D d
    scores["chamfer_all"] = chamfer_distance(pred, target)
    try:
        scores["chamfer_region"] = chamfer_distance(pred, target, region=bounds)
    except ValueError:  # nothing of one cloud inside the region
        scores["chamfer_region"] = math.nan
    return scores


def stack(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """A list of per-frame score dicts -> {key: (n,) array}."""
    return {key: np.array([row[key] for row in rows], dtype=np.float64) for key in rows[0]}


def ratio(table: dict[str, np.ndarray], numerator: str, count: str, rows=None) -> float:
    """sum numerator / sum count over `rows` (all frames if None); NaN with no ray."""
    rows = slice(None) if rows is None else rows
    total = table[count][rows].sum()
    return float(table[numerator][rows].sum() / total) if total else math.nan


def summary(table: dict[str, np.ndarray], prefix: str) -> dict[str, float]:
    """{prefix + depth_l1, absrel (region rays), depth_l1_all, absrel_all, chamfer (region),
    chamfer_all}: metres, AbsRel unitless, Chamfer in metres (not squared)."""
    return {
        f"{prefix}depth_l1": ratio(table, "abs_region", "rays_region"),
        f"{prefix}absrel": ratio(table, "rel_region", "rays_region"),
        f"{prefix}depth_l1_all": ratio(table, "abs_all", "rays_all"),
        f"{prefix}absrel_all": ratio(table, "rel_all", "rays_all"),
        f"{prefix}chamfer": float(np.nanmean(table["chamfer_region"])),
        f"{prefix}chamfer_all": float(np.nanmean(table["chamfer_all"])),
    }


def difference_intervals(model: dict, other: dict, groups, samples: int) -> dict[str, Interval]:
    """model minus other on the same frames, with 95% intervals over `groups` (the frames'
    sequences): depth L1 (region rays) as a ratio of sums; Chamfer (region) as a mean over
    frames."""

    def l1_difference(rows) -> float:
        return ratio(model, "abs_region", "rays_region", rows) - ratio(
            other, "abs_region", "rays_region", rows
        )

    out = {"depth_l1": statistic_interval(l1_difference, groups, samples=samples)}
    chamfer = model["chamfer_region"] - other["chamfer_region"]  # (n,)
    finite = np.isfinite(chamfer)
    if finite.any():
        out["chamfer"] = mean_interval(chamfer[finite], np.asarray(groups)[finite], samples)
    return {k: Interval(v.estimate, v.low, v.high, v.groups, "sequences") for k, v in out.items()}


# ---------------------------------------------------------------------- temporal coherence


def token_coherence(earlier: torch.Tensor, later: torch.Tensor) -> float:
    """Share of token cells with the same id in two frames, cell by cell (no ego motion):
    ids (h, w) each."""
    return (earlier == later).float().mean().item()


def ego_coherence(earlier: torch.Tensor, later: torch.Tensor, pose_earlier: torch.Tensor,
                  pose_later: torch.Tensor, region_xy: float) -> float:  # fmt: skip
    """The same share after accounting for ego motion: each token cell of the later frame
    is carried by the true poses (world-from-ego, (4, 4)) into the earlier frame's grid and
    compared with the token of the cell it lands in; cells that land outside are left out.
    The token grid spans [-region_xy, region_xy]^2 of the ego (= sensor) frame in x, y."""
    h, w = later.shape
    size = 2 * region_xy / h
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    centre = torch.stack([-region_xy + (i + 0.5) * size, -region_xy + (j + 0.5) * size,
                          torch.zeros(h, w), torch.ones(h, w)], dim=-1).double()  # fmt: skip
    relative = torch.linalg.inv(pose_earlier.double()) @ pose_later.double()  # later -> earlier
    moved = centre @ relative.T  # (h, w, 4): the later cells' centres in the earlier frame
    row = ((moved[..., 0] + region_xy) / size).floor().long()
    col = ((moved[..., 1] + region_xy) / size).floor().long()
    kept = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    if not kept.any():
        return math.nan
    same = earlier[row[kept], col[kept]] == later[kept]
    return same.float().mean().item()
