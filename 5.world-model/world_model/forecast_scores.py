"""Scoring forecasts: confusion counts per sequence and horizon, then every score with its
95% interval over sequences, and paired differences between forecasters.

Horizons. The future frames of a window are 0.5 s apart; OccWorld reports the frames 2, 4
and 6 steps ahead of the last observed frame (1 s, 2 s, 3 s: future indices 1, 3, 5) and
the mean of the three.

Scores of one forecaster at one horizon, as `worldmodels.metrics.occupancy` defines them,
from ONE confusion matrix summed over every window of the set (never a mean of per-window
scores), in percent, in both conventions (names as chapter 3's `scoring.summary`):
    mIoU_occ3d, IoU_occ3d            Occ3D: a class absent from truth and prediction is
                                     left out of the mean (NaN)
    mIoU_occworld, IoU_occworld      OccWorld: a class absent from the truth scores 1
    dynamic_IoU_occ3d                the dynamic classes (vehicles, pedestrians, cyclists:
                                     DYNAMIC_CLASSES) merged into one class, its IoU
                                     TP / (TP + FP + FN) with any dynamic class counting as
                                     a hit for any other (Occ3D's rule: NaN if absent)
    <h>_IoU/<class>                  each of the 17 classes (Occ3D's rule, every voxel)
each over every voxel (as OccWorld scores; no prefix) and inside the visibility mask of
the future frame (as Occ3D scores; "visible_").

Intervals. Windows of one sequence overlap, so the bootstrap resamples whole sequences
(`worldmodels.metrics.bootstrap`). The counts are kept per sequence, as sums, so each
resample recomputes every mIoU from the summed confusion matrices of the drawn sequences:

    mIoU*  = mIoU( sum over drawn sequences s of confusion_s )
    diff*  = score*(model) - score*(baseline)       paired: the same draws for both

and the 95% interval is the 2.5th and 97.5th percentile of 1000 such resamples. Every score
of every forecaster comes from the same resamples (`statistics_intervals`), so a
difference's interval is that of the paired difference, not of two separate scores.

Shapes: B batch (windows), T time steps (frames), X, Y, Z voxel-grid sizes, Q semantic
classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from occupancy_tokenizer.scoring import REGIONS, per_class, summary
from torch.nn.functional import one_hot

from world_model.windows import FUTURE_FRAMES, Window
from worldmodels.metrics.bootstrap import statistics_intervals
from worldmodels.metrics.occupancy import confusion_matrix, scores_from_confusion
from worldmodels.occ3d import CLASS_ID, FREE, NUM_CLASSES

HORIZONS = {"1s": 2, "2s": 4, "3s": 6}  # name -> frames ahead of the last observed frame
DYNAMIC_CLASSES = tuple(CLASS_ID[name] for name in (
    "car", "bus", "truck", "trailer", "construction_vehicle",  # vehicles
    "pedestrian", "bicycle", "motorcycle",  # pedestrians and cyclists
))  # fmt: skip
METRICS = ("mIoU_occ3d", "IoU_occ3d", "mIoU_occworld", "IoU_occworld", "dynamic_IoU_occ3d")


def check_forecast(pred, window: Window, name: str = "forecaster") -> torch.Tensor:
    """A forecast as uint8 class ids on the CPU, or a ValueError saying what was expected:
    (B, 6, X, Y, Z) integer class ids in [0, 17], B and X, Y, Z those of the window."""
    pred = torch.as_tensor(pred)
    expected = tuple(window.future.shape)  # (B, T, X, Y, Z)
    if tuple(pred.shape) != expected:
        raise ValueError(f"{name} returned a forecast of shape {tuple(pred.shape)}; expected "
                         f"(B, {FUTURE_FRAMES}, X, Y, Z) = {expected}")  # fmt: skip
    if pred.is_floating_point() or pred.is_complex() or pred.dtype == torch.bool:
        raise ValueError(f"{name} returned dtype {pred.dtype}: a forecast is integer class "
                         "ids (take the argmax of logits)")  # fmt: skip
    low, high = int(pred.min()), int(pred.max())
    if low < 0 or high >= NUM_CLASSES:
        raise ValueError(f"{name} returned class ids in [{low}, {high}]; expected [0, "
                         f"{NUM_CLASSES - 1}] (Occ3D's 18 labels, {FREE} = free)")  # fmt: skip
    return pred.cpu().to(torch.uint8)


class HorizonCounts:
    """Confusion counts of one forecaster, summed per sequence, horizon and region:
    `counts[s, h, r]` is the (Q, Q) confusion (rows truth) of sequence s's windows at
    horizon h (HORIZONS order) over region r (REGIONS: every voxel, the visible ones)."""

    def __init__(self, sequences: int, horizons: Mapping[str, int] = HORIZONS):
        self.horizons = dict(horizons)
        shape = (sequences, len(self.horizons), len(REGIONS), NUM_CLASSES, NUM_CLASSES)
        self.counts = torch.zeros(shape, dtype=torch.int64)
        self.windows = 0

    def add(self, pred: torch.Tensor, window: Window) -> None:
        """Count a checked forecast (B, T, X, Y, Z) against its window's future."""
        for b, sequence in enumerate(window.sequence.tolist()):
            for h, ahead in enumerate(self.horizons.values()):
                t = ahead - 1  # future index: the frame `ahead` steps after the last past one
                truth, guess = window.future[b, t], pred[b, t]
                visible = window.visible[b, t]
                self.counts[sequence, h, 0] += confusion_matrix(guess, truth)  # every voxel
                self.counts[sequence, h, 1] += confusion_matrix(guess, truth, mask=visible)
        self.windows += len(window.sequence)


def dynamic_group_iou(confusion: torch.Tensor) -> float:
    """IoU (percent) of the dynamic classes merged into one: the (Q, Q) confusion collapsed
    to 3 x 3 (dynamic, other occupied, free), Occ3D's rule (NaN when absent)."""
    group = torch.ones(NUM_CLASSES, dtype=torch.long)  # 1: other occupied
    group[list(DYNAMIC_CLASSES)] = 0
    group[FREE] = 2
    member = one_hot(group, 3)  # (Q, 3): member[c, g] = 1 if class c is in group g
    collapsed = member.T @ confusion.long() @ member  # (3, 3) summed over each group's classes
    scores = scores_from_confusion(collapsed, free_class=2, class_names=("dyn", "occ", "free"))
    return 100 * scores.per_class_iou[0]


def scores_of(confusion: torch.Tensor) -> list[float]:
    """The METRICS of one (Q, Q) confusion, in percent, in METRICS order."""
    point = summary(confusion)  # {"mIoU_occ3d": .., "IoU_occ3d": .., ...} (chapter 3)
    point["dynamic_IoU_occ3d"] = dynamic_group_iou(confusion)
    return [point[m] for m in METRICS]


def score_table(counts: Sequence[torch.Tensor], rows) -> np.ndarray:
    """(entries, horizons + 1, regions, metrics): every score of every entry from the summed
    counts of sequences `rows` (repeats count twice); the last horizon is the mean."""
    table = np.array([
        [[scores_of(entry[rows, h, r].sum(0)) for r in range(entry.shape[2])]
         for h in range(entry.shape[1])]
        for entry in counts
    ])  # fmt: skip
    return np.concatenate([table, table.mean(axis=1, keepdims=True)], axis=1)


def _region_prefix(region: str) -> str:
    return "" if region == "all" else f"{region}_"


def benchmark_metrics(
    counts: Mapping[str, HorizonCounts],
    pairs: Sequence[tuple[str, str]],
    samples: int = 1000,
    seed: int = 0,
    prefix: str = "",
) -> dict[str, float]:
    """The flat metrics dict: every score of every entry at each horizon and their mean,
    `<prefix><entry>_<h>_<region_><metric>` with `_ci_low`/`_ci_high`, per-class IoU, and
    each pair's paired difference `<prefix><a>_minus_<b>_<h>_<region_><metric>` with its
    interval over sequences (see the module docstring)."""
    names = list(counts)
    tensors = [counts[n].counts for n in names]
    horizons = [*next(iter(counts.values())).horizons, "mean"]
    index = {n: i for i, n in enumerate(names)}

    def statistics(rows) -> np.ndarray:
        table = score_table(tensors, torch.as_tensor(rows))
        diffs = np.stack([table[index[a]] - table[index[b]] for a, b in pairs]) if pairs else []
        return np.concatenate([table.ravel(), np.ravel(diffs)])

    sequences = tensors[0].shape[0]
    intervals = iter(statistics_intervals(statistics, np.arange(sequences), samples, seed,
                                          unit="sequences"))  # fmt: skip
    out: dict[str, float] = {f"{prefix}windows": counts[names[0]].windows,
                             f"{prefix}sequences": sequences}  # fmt: skip
    labels = [*names, *(f"{a}_minus_{b}" for a, b in pairs)]
    for label in labels:  # the same order as `statistics` ravels: entry, horizon, region, metric
        for h in horizons:
            for region in REGIONS:
                for metric in METRICS:
                    key = f"{prefix}{label}_{h}_{_region_prefix(region)}{metric}"
                    out.update(next(intervals).as_dict(key))
    for name, tensor in zip(names, tensors):
        for h, horizon in enumerate(horizons[:-1]):
            classes = per_class(tensor[:, h, 0].sum(0))  # every voxel, Occ3D's rule
            out.update({f"{prefix}{name}_{horizon}_IoU/{c}": v for c, v in classes.items()})
    return out
