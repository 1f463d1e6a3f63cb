"""Semantic occupancy metrics as Occ3D and OccWorld define them: mIoU and geometry IoU.

Both come from ONE confusion matrix accumulated over the whole evaluation set, never from
per-sample scores averaged afterwards (that would weight a nearly empty frame as much as a
crowded one and is not what the benchmarks report):

    confusion[t, p] = number of evaluated voxels with true class t and predicted class p
    IoU_c  = TP_c / (TP_c + FP_c + FN_c)
           = confusion[c, c] / (row_c + col_c - confusion[c, c])
    mIoU   = mean of IoU_c over the occupied classes 0..16 (free = 17 is excluded)
    IoU    = geometry: occupied (any class but free) versus free, one binary IoU

A class can be undefined over the set. Two benchmark conventions, chosen by `absent_iou`:
- "occ3d" (default): a class with an empty union (absent from truth and prediction) is NaN
  and left out of the mean (nanmean), as Occ3D's evaluation does. A class predicted but
  never true scores 0.
- "occworld": a class with no truth voxels scores IoU 1 whatever is predicted, as OccWorld's
  `MeanIoU` does (`if total_seen == 0: iou = 1`), which raises mIoU on sets where some class
  never occurs. A class predicted but never true therefore scores 1, not 0.
On a set where every class occurs in the truth (the full Occ3D-nuScenes val set) the two
agree. The geometry IoU follows the same rule: NaN ("occ3d") when nothing is occupied in
either grid; 1 ("occworld") when nothing is occupied in the truth.

Visibility: Occ3D evaluates only voxels seen by the cameras (`mask_camera`); OccWorld
evaluates every voxel. `update(..., mask=...)` restricts the count to mask == 1.
Scores are fractions in [0, 1] (papers print them as percentages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange

from worldmodels.occ3d import CLASS_NAMES, FREE, NUM_CLASSES


@dataclass(frozen=True)
class OccupancyScores:
    """The scores of an evaluation set; IoUs are fractions in [0, 1], NaN where undefined."""

    miou: float  # mean IoU over the occupied classes that are defined (nanmean)
    iou: float  # geometry IoU, occupied versus free
    per_class_iou: tuple[float, ...]  # IoU of each occupied class, in class-id order
    class_names: tuple[str, ...]  # names of those classes
    voxels: int  # number of voxels evaluated

    def as_dict(self) -> dict[str, float]:
        """Flat {"mIoU": .., "IoU": .., "IoU/car": .., ...} for a run log."""
        scores = {"mIoU": self.miou, "IoU": self.iou}
        pairs = zip(self.class_names, self.per_class_iou, strict=True)
        scores.update({f"IoU/{name}": value for name, value in pairs})
        return scores


def _as_labels(array, name: str) -> torch.Tensor:
    """A tensor of integer class ids from a numpy array or tensor."""
    labels = torch.as_tensor(array)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class ids (take argmax of logits first), "
            f"got dtype {labels.dtype}"
        )
    return labels


def confusion_matrix(pred, target, num_classes: int = NUM_CLASSES, mask=None) -> torch.Tensor:
    """Confusion matrix of integer label grids of any (equal) shape, e.g. (B, X, Y, Z).

    pred, target: integer class ids in [0, num_classes). mask: same shape, bool or 0/1;
    only voxels with mask true are counted. Returns (Q, Q) int64 on the input's device,
    rows = true class, columns = predicted class.
    """
    pred, target = _as_labels(pred, "pred"), _as_labels(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    pred = pred.to(target.device)
    if mask is not None:
        mask = torch.as_tensor(mask, device=target.device)
        if mask.shape != target.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must match target {tuple(target.shape)}")
        if mask.is_floating_point() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be bool or integer 0/1")
        keep = mask.bool()
        pred, target = pred[keep], target[keep]
    pred = rearrange(pred, "... -> (...)").long()  # (V,)
    target = rearrange(target, "... -> (...)").long()  # (V,)
    for name, labels in (("pred", pred), ("target", target)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} holds ids in [{int(labels.min())}, {int(labels.max())}], "
                f"expected [0, {num_classes - 1}]"
            )
    # One bincount over the pair index t * Q + p counts every (truth, prediction) pair.
    pair_index = target * num_classes + pred  # (V,)
    counts = torch.bincount(pair_index, minlength=num_classes * num_classes)  # (Q * Q,)
    return rearrange(counts, "(t p) -> t p", t=num_classes)  # (Q, Q)


ABSENT_IOU_MODES = ("occ3d", "occworld")


def _check_mode(absent_iou: str) -> str:
    if absent_iou not in ABSENT_IOU_MODES:
        raise ValueError(
            f"absent_iou must be one of {ABSENT_IOU_MODES} (Occ3D's NaN rule or OccWorld's "
            f"IoU-1 rule), got {absent_iou!r}"
        )
    return absent_iou


def _iou(true_positive, union, truth_count, absent_iou: str) -> torch.Tensor:
    """TP / union as float64; where the benchmark's rule says the class is absent: NaN
    (occ3d: empty union) or 1 (occworld: no truth voxels, whatever is predicted)."""
    ratio = true_positive.double() / union.double().clamp(min=1)
    if absent_iou == "occworld":
        return torch.where(truth_count > 0, ratio, torch.ones_like(ratio))
    return torch.where(union > 0, ratio, torch.full_like(ratio, math.nan))


def scores_from_confusion(
    confusion: torch.Tensor,
    free_class: int = FREE,
    absent_iou: str = "occ3d",
    class_names: tuple[str, ...] | None = None,
) -> OccupancyScores:
    """mIoU, geometry IoU and per-class IoU from a (Q, Q) confusion matrix (rows = truth);
    absent_iou: "occ3d" or "occworld", the rule for classes absent from the truth (above)."""
    _check_mode(absent_iou)
    confusion = torch.as_tensor(confusion).cpu().long()
    num_classes = confusion.shape[0]
    true_positive = confusion.diagonal()  # (Q,)
    union = confusion.sum(dim=1) + confusion.sum(dim=0) - true_positive  # (Q,) TP + FN + FP
    truth_count = confusion.sum(dim=1)  # (Q,)
    class_iou = _iou(true_positive, union, truth_count, absent_iou)  # (Q,)
    occupied = [c for c in range(num_classes) if c != free_class]
    per_class = class_iou[occupied]  # (Q - 1,)
    defined = ~per_class.isnan()
    miou = per_class[defined].mean().item() if defined.any() else math.nan

    # Geometry: collapse the classes to occupied / free.
    occupied_ids = torch.tensor(occupied)
    both_occupied = confusion[occupied_ids][:, occupied_ids].sum()
    false_occupied = confusion[free_class, occupied_ids].sum()  # truth free, predicted occupied
    missed = confusion[occupied_ids, free_class].sum()  # truth occupied, predicted free
    geometry_union = both_occupied + false_occupied + missed
    truth_occupied = confusion[occupied_ids].sum()
    iou = _iou(both_occupied, geometry_union, truth_occupied, absent_iou).item()

    if class_names is None:
        class_names = (
            CLASS_NAMES if num_classes == NUM_CLASSES else tuple(map(str, range(num_classes)))
        )
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    return OccupancyScores(
        miou=miou,
        iou=iou,
        per_class_iou=tuple(per_class.tolist()),
        class_names=tuple(class_names[c] for c in occupied),
        voxels=int(confusion.sum()),
    )


class OccupancyMetric:
    """Accumulates one confusion matrix over an evaluation set; `compute()` gives the scores.

    metric = OccupancyMetric()
    for pred, target, visible in loader:  # integer grids (B, X, Y, Z), same shape
        metric.update(pred, target, mask=visible)  # mask=None counts every voxel
    scores = metric.compute()  # OccupancyScores: .miou, .iou, .per_class_iou

    Tensors (any device) or numpy arrays. For distributed evaluation all-reduce
    `metric.confusion` (a (Q, Q) int64 CPU tensor) before `compute()`.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        free_class: int = FREE,
        absent_iou: str = "occ3d",
    ):
        _check_mode(absent_iou)
        if not 0 <= free_class < num_classes:
            raise ValueError(f"free_class {free_class} is not in [0, {num_classes})")
        self.num_classes = num_classes
        self.free_class = free_class
        self.absent_iou = absent_iou
        self.reset()

    def reset(self) -> None:
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred, target, mask=None) -> None:
        """Add a batch: pred, target integer class ids of equal shape; mask bool or 0/1."""
        self.confusion += confusion_matrix(pred, target, self.num_classes, mask).cpu()

    def compute(self) -> OccupancyScores:
        """Scores of everything added since the last reset; raises if nothing was counted."""
        if self.confusion.sum() == 0:
            raise ValueError(
                "OccupancyMetric counted no voxels: no update yet, or every mask hid everything"
            )
        return scores_from_confusion(self.confusion, self.free_class, self.absent_iou)


def occupancy_scores(pred, target, mask=None, absent_iou: str = "occ3d") -> OccupancyScores:
    """One-shot scores of a single pair of grids (or a batch): OccupancyMetric in one call."""
    metric = OccupancyMetric(absent_iou=absent_iou)
    metric.update(pred, target, mask)
    return metric.compute()
