"""Occupancy mIoU / IoU against hand-computed confusion matrices."""

import math

import numpy as np
import pytest
import torch

from worldmodels.metrics.occupancy import OccupancyMetric, confusion_matrix, occupancy_scores
from worldmodels.occ3d import CLASS_ID, FREE

CAR, ROAD, TERRAIN = CLASS_ID["car"], CLASS_ID["driveable_surface"], CLASS_ID["terrain"]

# Six voxels: truth car car road free free free / prediction car road road free car free.
TARGET = torch.tensor([CAR, CAR, ROAD, FREE, FREE, FREE])
PRED = torch.tensor([CAR, ROAD, ROAD, FREE, CAR, FREE])


def test_hand_computed_scores():
    scores = occupancy_scores(PRED, TARGET)
    iou = dict(zip(scores.class_names, scores.per_class_iou, strict=True))
    # car: TP 1, FN 1 (-> road), FP 1 (free -> car): 1 / 3.  road: TP 1, FP 1: 1 / 2.
    assert iou["car"] == pytest.approx(1 / 3)
    assert iou["driveable_surface"] == pytest.approx(1 / 2)
    # The 15 classes absent from both are NaN and left out of the mean (Occ3D's nanmean).
    assert sum(math.isnan(v) for v in scores.per_class_iou) == 15
    assert scores.miou == pytest.approx((1 / 3 + 1 / 2) / 2)
    # Geometry: truth occupied at 0-2, predicted at 0-2 and 4 -> TP 3, FP 1, FN 0.
    assert scores.iou == pytest.approx(3 / 4)
    assert scores.voxels == 6
    assert len(scores.per_class_iou) == 17 and "free" not in scores.class_names


def test_occworld_convention_counts_absent_classes_as_one():
    scores = occupancy_scores(PRED, TARGET, absent_iou="occworld")
    assert scores.miou == pytest.approx((1 / 3 + 1 / 2 + 15 * 1.0) / 17)


def test_a_class_predicted_but_absent_from_the_truth_under_each_convention():
    # Truth: road, free. Prediction: road, terrain. Terrain has 0 truth voxels, 1 predicted.
    target = torch.tensor([ROAD, FREE])
    pred = torch.tensor([ROAD, TERRAIN])
    occ3d = occupancy_scores(pred, target, absent_iou="occ3d")
    occworld = occupancy_scores(pred, target, absent_iou="occworld")
    by_name = lambda s: dict(zip(s.class_names, s.per_class_iou, strict=True))  # noqa: E731
    # Occ3D: terrain's union is 1 (the false positive) -> IoU 0; the 15 classes with an empty
    # union are NaN and left out: mIoU = (road 1 + terrain 0) / 2.
    assert by_name(occ3d)["terrain"] == 0.0
    assert occ3d.miou == pytest.approx(0.5)
    # OccWorld: no truth voxels -> IoU 1 whatever is predicted, for all 16 such classes.
    assert by_name(occworld)["terrain"] == 1.0
    assert occworld.miou == pytest.approx(1.0)
    # Geometry: truth occupied at 0 only, predicted at 0 and 1 -> 1/2 under both rules.
    assert occ3d.iou == occworld.iou == pytest.approx(0.5)
    # Nothing occupied in the truth, something predicted: geometry 0 (occ3d) vs 1 (occworld).
    free_truth = torch.tensor([FREE, FREE])
    assert occupancy_scores(pred, free_truth, absent_iou="occ3d").iou == 0.0
    assert occupancy_scores(pred, free_truth, absent_iou="occworld").iou == 1.0


def test_unknown_absent_rule_is_refused():
    with pytest.raises(ValueError, match="occ3d.*occworld"):
        occupancy_scores(PRED, TARGET, absent_iou=1.0)
    with pytest.raises(ValueError, match="absent_iou"):
        OccupancyMetric(absent_iou="nan")


def test_class_predicted_but_never_true_scores_zero():
    target = torch.tensor([ROAD, FREE])
    pred = torch.tensor([ROAD, TERRAIN])  # terrain only in the prediction: IoU 0, not NaN
    scores = occupancy_scores(pred, target)
    iou = dict(zip(scores.class_names, scores.per_class_iou, strict=True))
    assert iou["terrain"] == 0.0 and iou["driveable_surface"] == 1.0
    assert scores.miou == pytest.approx(0.5)


def test_one_confusion_matrix_over_the_set_not_a_mean_of_samples():
    metric = OccupancyMetric()
    metric.update(PRED[:3], TARGET[:3])
    metric.update(PRED[3:].numpy(), TARGET[3:].numpy())  # numpy works too
    whole = occupancy_scores(PRED, TARGET)
    assert torch.equal(metric.confusion, confusion_matrix(PRED, TARGET))
    assert metric.compute().miou == whole.miou and metric.compute().iou == whole.iou
    # Sample 2 alone: truth all free, prediction has one car -> car IoU 0, mIoU 0.
    per_sample_mean = (occupancy_scores(PRED[:3], TARGET[:3]).miou + 0.0) / 2
    assert whole.miou != pytest.approx(per_sample_mean)
    metric.reset()
    with pytest.raises(ValueError, match="no voxels"):
        metric.compute()


def test_mask_restricts_the_count():
    visible = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.uint8)  # hides both mistakes
    scores = occupancy_scores(PRED, TARGET, mask=visible)
    assert scores.miou == 1.0 and scores.iou == 1.0 and scores.voxels == 4
    metric = OccupancyMetric()
    metric.update(PRED, TARGET, mask=torch.zeros(6, dtype=torch.bool))  # hides everything
    with pytest.raises(ValueError, match="every mask hid everything"):
        metric.compute()
    metric.update(PRED, TARGET)  # a later visible update still counts
    assert metric.compute().voxels == 6


def test_all_free_grids_have_undefined_ious():
    free = torch.full((4, 4, 2), FREE)
    scores = occupancy_scores(free, free)
    assert math.isnan(scores.miou) and math.isnan(scores.iou)
    assert scores.voxels == 32
    assert occupancy_scores(free, free, absent_iou="occworld").iou == 1.0


def test_confusion_matrix_matches_a_loop_on_random_grids():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 18, (2, 6, 5, 4), generator=generator)
    pred = torch.randint(0, 18, (2, 6, 5, 4), generator=generator)
    expected = np.zeros((18, 18), dtype=np.int64)
    for t, p in zip(target.flatten().tolist(), pred.flatten().tolist(), strict=True):
        expected[t, p] += 1
    assert np.array_equal(confusion_matrix(pred, target).numpy(), expected)
    scores = occupancy_scores(pred, target)
    for c, value in enumerate(scores.per_class_iou):
        union = expected[c].sum() + expected[:, c].sum() - expected[c, c]
        assert value == pytest.approx(expected[c, c] / union)
    log = scores.as_dict()
    assert log["mIoU"] == scores.miou and log["IoU/car"] == scores.per_class_iou[CAR]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="integer class ids"):
        occupancy_scores(PRED.float(), TARGET)
    with pytest.raises(ValueError, match=r"target holds ids in \[4, 18\]"):
        occupancy_scores(PRED, torch.tensor([CAR, CAR, ROAD, FREE, FREE, 18]))
    with pytest.raises(ValueError, match="differ"):
        occupancy_scores(PRED[:5], TARGET)
    with pytest.raises(ValueError, match="0/1"):
        occupancy_scores(PRED, TARGET, mask=torch.full((6,), 2))
