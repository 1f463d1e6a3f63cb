"""Scores come from summed confusion counts; intervals resample whole sequences and recompute
every mIoU from the drawn sequences' counts (as chapter 3's `difference_interval` does from
per-window counts); the dynamic classes merge into one group."""

import numpy as np
import pytest
import torch
from occupancy_tokenizer.scoring import difference_interval, item_confusions
from world_model.baselines import standard_baselines
from world_model.benchmark import difference_pairs, run_benchmark
from world_model.forecast_scores import HORIZONS, dynamic_group_iou

from worldmodels.metrics.occupancy import confusion_matrix, scores_from_confusion
from worldmodels.occ3d import CLASS_ID, FREE


def forecasts_at(windows, forecaster, ahead: int):
    """(preds, truths, visible, sequences) of every window at one horizon, window by window."""
    rows = [windows.batch([i]) for i in range(len(windows))]
    preds = torch.cat(
        [forecaster(w.past, w.past_poses, w.future_poses)[:, ahead - 1] for w in rows]
    )
    truths = torch.cat([w.future[:, ahead - 1] for w in rows])
    visible = torch.cat([w.visible[:, ahead - 1] for w in rows])
    return preds, truths, visible, torch.cat([w.sequence for w in rows])


def test_intervals_resample_sequences_and_recompute_from_counts(streets):
    windows = streets.windows(sequences=6)
    baselines = standard_baselines(windows.grid)
    m = run_benchmark(windows, baselines, samples=200, batch_size=5)
    warp, truth, visible, sequences = forecasts_at(windows, baselines["warp_last"], 2)
    copy = forecasts_at(windows, baselines["copy_last"], 2)[0]
    # The score is one confusion matrix over every window, not a mean of per-window scores.
    total = scores_from_confusion(confusion_matrix(warp, truth))
    assert m["val_warp_last_1s_mIoU_occ3d"] == pytest.approx(100 * total.miou)
    per_window = np.mean([scores_from_confusion(confusion_matrix(p, t)).miou
                          for p, t in zip(warp, truth)])  # fmt: skip
    assert abs(100 * per_window - m["val_warp_last_1s_mIoU_occ3d"]) > 0.1  # would differ
    # Chapter 3's paired bootstrap over sequences, from per-window counts: the same interval.
    for region, mask in (("visible_", visible), ("", None)):
        reference = difference_interval(item_confusions(warp, truth, mask),
                                        item_confusions(copy, truth, mask), sequences,
                                        "mIoU", "occ3d", samples=200)  # fmt: skip
        key = f"val_warp_last_minus_copy_last_1s_{region}mIoU_occ3d"
        assert m[key] == pytest.approx(reference.estimate)
        assert (m[f"{key}_ci_low"], m[f"{key}_ci_high"]) == pytest.approx(
            (reference.low, reference.high)
        )
        spread = reference.high - reference.low
    assert spread > 0  # (every voxel) six different sequences: a real spread
    # Every score has its interval too, and the point estimate lies inside it.
    key = "val_copy_last_3s_IoU_occworld"
    assert m[f"{key}_ci_low"] <= m[key] <= m[f"{key}_ci_high"]
    assert list(HORIZONS.values()) == [2, 4, 6] and m["val_sequences"] == 6


def test_dynamic_classes_form_one_group():
    truth = torch.full((4, 4, 2), FREE, dtype=torch.uint8)
    pred = truth.clone()
    truth[0, 0, 0], pred[0, 0, 0] = CLASS_ID["car"], CLASS_ID["truck"]  # a hit for the group
    truth[1, 0, 0] = CLASS_ID["pedestrian"]  # missed
    pred[2, 0, 0] = CLASS_ID["bicycle"]  # false alarm
    truth[3, 0, 0] = pred[3, 0, 0] = CLASS_ID["manmade"]  # not dynamic
    assert dynamic_group_iou(confusion_matrix(pred, truth)) == pytest.approx(100 / 3)
    assert scores_from_confusion(confusion_matrix(pred, truth)).per_class_iou[CLASS_ID["car"]] == 0


def test_differences_are_every_entry_minus_each_earlier_reference():
    names = ["copy_last", "warp_last", "model", "ceiling"]
    assert difference_pairs(names, ("copy_last", "warp_last")) == [
        ("warp_last", "copy_last"), ("model", "copy_last"), ("ceiling", "copy_last"),
        ("model", "warp_last"), ("ceiling", "warp_last"),
    ]  # fmt: skip
