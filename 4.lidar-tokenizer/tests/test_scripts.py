"""train.py then validate.py end to end on synthetic streets: files appear, the checkpoint
scores what the trainer scored, the references and intervals are there, bad keys are named."""

import json
from pathlib import Path

import pytest

from worldmodels import testing
from worldmodels.config import ConfigError
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent
TINY = [
    "--data.source=synthetic", "--region_xy=16", "--model.grid=32,32,8", "--dims=8,16",
    "--depths=1,1", "--decoder_depths=1,1", "--heads=1,2", "--window=4", "--patch=2",
    "--point_dim=4", "--bev_dim=8", "--code_dim=8", "--codebook_size=32", "--dead_after=4",
    "--restart_every=4", "--grid_levels=4", "--grid_channels=4", "--occupancy_factor=1",
    "--train_rays=128", "--train_samples=8", "--train_skip_samples=4", "--eval_samples=16",
    "--skip_samples=8", "--pool=4", "--batch_size=4", "--lr=3e-3", "--warmup_steps=2",
    "--log_every=2", "--eval_sequences=2", "--progress=false", "--device=cpu",
]  # fmt: skip


def load_script(name):
    return testing.load_script(CHAPTER, name)


def test_train_then_validate(tmp_path, capsys):
    out = tmp_path / "debug"
    result = load_script("train").main([*TINY, "--steps=12", "--eval_every=6", f"--out_dir={out}"])
    records = read_log(out / "log.jsonl")
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0], losses
    assert {"depth_l1_uniform", "depth_l1_cells", "surface_cells", "occupancy_bce", "vq_loss",
            "codes_alive", "restarts", "batch_code_usage"} <= set(records[0])  # fmt: skip
    assert result["step"] == 12 and (out / "samples" / "step_000006.png").exists()

    results = tmp_path / "results"
    runs = load_script("validate").main(
        [str(out), "--sequences=2", "--bootstrap=20", "--real_points=1500",
         f"--results={results}"]
    )  # fmt: skip
    metrics = runs[str(out)]
    # the same fixed frames, the same weights: the checkpoint scores what the trainer did
    for key in ("val_depth_l1", "val_chamfer", "heldout_absrel", "val_codebook_usage"):
        assert metrics[key] == pytest.approx(result[f"eval/{key}"], abs=1e-4), key
    difference = metrics["val_depth_l1"] - metrics["val_codec_depth_l1"]
    assert metrics["val_depth_l1_minus_codec"] == pytest.approx(difference, abs=1e-4)
    low, high = (
        metrics["val_chamfer_minus_floor_ci_low"],
        metrics["val_chamfer_minus_floor_ci_high"],
    )
    assert low <= metrics["val_chamfer_minus_floor"] <= high
    assert metrics["frames"] == {"val": 4, "heldout": 4, "real": 14}
    assert metrics["val_render_s_uniform"] > 0 and "real_depth_l1" in metrics
    for name in ("bev_tokens.png", "clouds_val.png", "clouds_real.png", "range_image.png",
                 "depth_error.png", "training.png", "code_usage.png"):  # fmt: skip
        assert (out / "validation" / name).exists(), name
    saved = json.loads((results / "debug.json").read_text())
    command = json.loads((out / "run.json").read_text())["command"]  # the training command
    assert saved["trained_by"] == command and saved["val_depth_l1"] == metrics["val_depth_l1"]
    printed = capsys.readouterr().out
    assert "| val | depth L1, rays in region (m) |" in printed and "speedup" in printed

    jsonl = tmp_path / "render.jsonl"
    rows = load_script("render_benchmark").main(
        [str(out), "--uniform=8", "--skip=8", "--steps=0,0.5", "--sequences=2", "--frames=1",
         "--repeats=2", "--bootstrap=10", f"--jsonl={jsonl}", "--device=cpu"]
    )  # fmt: skip
    assert [r["mode"] for r in rows] == [
        "uniform 16", "uniform 8", "skipping 8, exact", "skipping 8, marching 0.5 m"
    ]  # the baseline (the run's eval_samples) first  # fmt: skip
    assert rows[0]["speedup"] == 1.0 and rows[0]["l1_change_pct"] == 0.0
    assert all(r["ms_per_sweep"] > 0 and r["depth_l1"] > 0 for r in rows)
    assert len(jsonl.read_text().splitlines()) == 4
    sharp = load_script("render_benchmark").main(
        [str(out), "--field=voxels", "--uniform=64", "--skip=8", "--steps=0.25", "--sequences=2",
         "--frames=1", "--repeats=1", "--bootstrap=10", f"--jsonl={jsonl}", "--device=cpu"]
    )  # fmt: skip
    assert [r["mode"] for r in sharp] == ["uniform 16", "uniform 64", "skipping 8, marching 0.25 m"]
    assert all(r["field"] == "voxels" and 0 < r["depth_l1"] < 50 for r in sharp)


def test_bad_keys_are_named():
    with pytest.raises(ConfigError, match="Did you mean 'train_rays'"):
        load_script("train").main([*TINY, "--train_ray=5"])
    with pytest.raises(ConfigError, match="occupancy_factor"):
        load_script("train").main([*TINY, "--occupancy_factor=3"])
