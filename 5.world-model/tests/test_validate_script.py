"""validate.py end to end on a tiny run of the synthetic streets: the benchmark's rows, the
control difference and the planning scores are all written, with intervals."""

import json
from pathlib import Path

import pytest
import torch
from world_model.planning import (
    PlanningScores,
    constant_velocity_path,
    stop_trajectory,
    true_path,
    with_trajectory,
)
from world_model.synthetic import pose_at

from worldmodels import testing

from .test_train_script import tiny

CHAPTER = Path(__file__).resolve().parent.parent


def test_validate_scores_forecast_control_and_plan(tiny_tokenizer_dir, tmp_path):
    out = tmp_path / "run"
    argv = [*tiny(tiny_tokenizer_dir, tmp_path), "--steps=4", "--eval_every=0",
            "--checkpoint_every=4", f"--out_dir={out}"]  # fmt: skip
    testing.load_script(CHAPTER, "train").main(argv)
    results = tmp_path / "results"
    validate = testing.load_script(CHAPTER, "validate")
    record = validate.main([str(out), "--splits=val", "--samples=10", "--device=cpu",
                            f"--results={results}"])[str(out)]  # fmt: skip
    saved = json.loads((results / "run.json").read_text())
    assert saved["val_windows"] == 9 and saved["command"].startswith("validate.py")
    for key in (
        "val_tensformer_mean_mIoU_occ3d",
        "val_tensformer_minus_warp_last_mean_mIoU_occ3d",
        "val_tensformer_minus_tensformer_stop_mean_mIoU_occ3d_ci_low",
        "val_ceiling_mean_mIoU_occ3d",
        "val_plan_tensformer_l2_at_3s",
        "val_plan_tensformer_minus_constant_velocity_l2_avg_to_3s_ci_high",
        "tensformer_ms_per_frame_batch1",
        "tensformer_ms_per_frame_batch8",
    ):
        assert key in record and key in saved, key
    pictures = [Path(p).name for p in record["val_pictures"]]
    assert pictures == ["tensformer_forecast_val.png", "tensformer_plan_val.png"]
    assert all(Path(p).stat().st_size > 0 for p in record["val_pictures"])
    with pytest.raises(Exception, match="control"):
        validate.main([str(out), "--control=swerve"])


def test_an_ar_run_beside_a_tensformer_run_gets_the_speed_ratio(
    tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tmp_path
):
    train = testing.load_script(CHAPTER, "train")
    tens, ar = tmp_path / "tens", tmp_path / "ar"
    short = ["--steps=2", "--eval_every=0", "--checkpoint_every=2"]
    train.main([*tiny(tiny_tokenizer_dir, tmp_path), *short, f"--out_dir={tens}"])
    train.main([*tiny(tiny_tokenizer_dir, tmp_path), *short, f"--out_dir={ar}", "--kind=ar",
                f"--data.single_scale_tokenizer={tiny_scene_tokenizer_dir}", "--ar.dim=32",
                "--ar.depth=2", "--ar.heads=4"])  # fmt: skip
    validate = testing.load_script(CHAPTER, "validate")
    folder = tmp_path / "results"
    results = validate.main([str(tens), str(ar), "--splits=val", "--samples=10",
                             f"--results={folder}", "--device=cpu", "--control="])  # fmt: skip
    saved = json.loads((folder / "tens_ar.json").read_text())  # one file, shared keys once
    assert [p.name for p in folder.iterdir()] == ["tens_ar.json"]
    assert saved["val_ar_minus_tensformer_mean_mIoU_occ3d"] == results[str(ar)][
        "val_ar_minus_tensformer_mean_mIoU_occ3d"]  # fmt: skip
    assert saved["runs"][str(ar)]["kind"] == "ar" and "val_windows" not in saved["runs"][str(ar)]
    assert saved["runs"][str(tens)]["tensformer_ms_per_frame_batch1"] > 0
    record = results[str(ar)]
    assert record["kind"] == "ar" and "val_ar_minus_warp_last_mean_mIoU_occ3d" in record
    assert not any(k.startswith("val_plan_ar") for k in record)  # no motion head, no plan
    both = results[str(tens)]
    for key in ("val_ar_minus_tensformer_mean_mIoU_occ3d_ci_low",
                "val_ceiling_ar_mean_IoU_occ3d", "val_ceiling_tensformer_mean_IoU_occ3d",
                "val_tensformer_minus_warp_last_1s_mIoU_occ3d"):  # fmt: skip
        assert record[key] == both[key], key  # one benchmark pass scored both runs
    ratio = record["ar_ms_per_frame_batch1"] / results[str(tens)]["tensformer_ms_per_frame_batch1"]
    assert record["ar_over_tensformer_ms_per_frame_batch1"] == round(ratio, 2)


def test_trajectories_by_hand():
    past = torch.stack([pose_at(float(x)) for x in range(5)])[None]  # 1 m a frame along +x
    future = torch.stack([pose_at(5.0 + 2 * k) for k in range(6)])[None]  # then 2 m a frame
    truth = true_path(past, future)  # (1, 6, 3) in the last observed ego frame (x = 4)
    assert torch.allclose(truth[0, :, 0], torch.tensor([1.0, 3, 5, 7, 9, 11]))
    cv = constant_velocity_path(past, 6)
    assert torch.allclose(cv[0, :, 0], torch.arange(1.0, 7.0))
    scores = PlanningScores()
    scores.add({"cv": cv, "perfect": truth}, truth, torch.tensor([0]))
    m = scores.metrics(reference="cv", samples=10)
    # errors of cv at frames 1..6: 0, 1, 2, 3, 4, 5 -> at 1 s (frame 2) 1 m, avg to 1 s 0.5 m
    assert m["cv_l2_at_1s"] == 1.0 and m["cv_l2_avg_to_1s"] == 0.5 and m["cv_l2_at_3s"] == 5.0
    assert m["perfect_minus_cv_l2_at_3s"] == -5.0
    stopped = stop_trajectory(past, future)
    assert torch.equal(stopped, past[:, -1:].expand(1, 6, 4, 4))
    seen = []
    with_trajectory(lambda p, pp, fp: seen.append(fp), stop_trajectory)(None, past, future)
    assert torch.equal(seen[0], stopped)
