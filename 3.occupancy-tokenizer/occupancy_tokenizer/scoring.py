"""From reconstructed grids to the chapter's numbers: mIoU and IoU in both conventions, over
all voxels and inside the visibility mask, per class, and paired differences with intervals.

mIoU is a ratio of sums over a whole set (one confusion matrix, `worldmodels.metrics.
occupancy`), not a mean of per-frame scores, so a difference of two reconstructions gets its
95% interval from a bootstrap that resamples whole sequences and recomputes both mIoUs from
the summed confusion matrices of the drawn sequences (`statistic_interval`).

    conf = item_confusions(pred, truth, mask)          # (n, Q, Q), one per frame or clip
    scores = summary(conf.sum(0), "val_")               # {"val_mIoU_occ3d": ..., ...}
    diff = difference_interval(conf_model, conf_codec, sequences, "mIoU", "occ3d")

Shapes: n a count of items (frames or clips), said here; Q semantic classes.
"""

from __future__ import annotations

import math

import torch

from worldmodels.metrics.bootstrap import Interval, statistic_interval
from worldmodels.metrics.occupancy import ABSENT_IOU_MODES, confusion_matrix, scores_from_confusion
from worldmodels.occ3d import NUM_CLASSES

REGIONS = ("all", "visible")  # every voxel (OccWorld) / inside the visibility mask (Occ3D)


def item_confusions(pred: torch.Tensor, truth: torch.Tensor, mask=None) -> torch.Tensor:
    """One (Q, Q) confusion matrix per item: (n, ...) grids -> (n, Q, Q) int64."""
    return torch.stack([
        confusion_matrix(pred[i], truth[i], NUM_CLASSES, None if mask is None else mask[i])
        for i in range(len(truth))
    ])  # fmt: skip


def summary(confusion: torch.Tensor, prefix: str = "") -> dict[str, float]:
    """mIoU and geometry IoU of a (Q, Q) confusion matrix in both conventions, in percent:
    {prefix + "mIoU_occ3d": .., "IoU_occ3d": .., "mIoU_occworld": .., "IoU_occworld": ..}."""
    out = {}
    for mode in ABSENT_IOU_MODES:
        scores = scores_from_confusion(confusion, absent_iou=mode)
        out[f"{prefix}mIoU_{mode}"] = 100 * scores.miou
        out[f"{prefix}IoU_{mode}"] = 100 * scores.iou
    return out


def per_class(confusion: torch.Tensor) -> dict[str, float]:
    """IoU of each of the 17 occupied classes in percent (Occ3D's rule: NaN if absent)."""
    scores = scores_from_confusion(confusion, absent_iou="occ3d")
    return {name: 100 * v for name, v in zip(scores.class_names, scores.per_class_iou)}


def _metric(confusion: torch.Tensor, name: str, mode: str) -> float:
    scores = scores_from_confusion(confusion, absent_iou=mode)
    return 100 * (scores.miou if name == "mIoU" else scores.iou)


def difference_interval(
    model: torch.Tensor,
    baseline: torch.Tensor,
    sequences: torch.Tensor,
    name: str = "mIoU",
    mode: str = "occ3d",
    samples: int = 1000,
) -> Interval:
    """model's score minus baseline's (percentage points) on the same items, with a 95%
    bootstrap interval over sequences. model, baseline: (n, Q, Q) confusions; sequences (n,)."""

    def statistic(rows) -> float:
        rows = torch.as_tensor(rows)
        value = _metric(model[rows].sum(0), name, mode) - _metric(baseline[rows].sum(0), name, mode)
        return 0.0 if math.isnan(value) else value

    interval = statistic_interval(statistic, sequences.numpy(), samples=samples)
    return Interval(interval.estimate, interval.low, interval.high, interval.groups, "sequences")


def bits_summary(tokens_per_frame: float, codebook_size: int, grid, codec_bits: float) -> dict:
    """Tokens and bits per frame against the raw grid (X*Y*Z voxels of log2 Q bits each)."""
    X, Y, Z = grid
    raw = X * Y * Z * math.log2(NUM_CLASSES)
    bits = tokens_per_frame * math.log2(codebook_size)
    return {
        "tokens_per_frame": tokens_per_frame,
        "bits_per_frame": bits,
        "raw_bits_per_frame": raw,
        "compression_vs_raw": raw / bits,
        "codec_bits_per_frame": codec_bits,
    }
