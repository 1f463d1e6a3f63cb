"""train.py then validate.py end to end on synthetic streets: files appear, the checkpoint
scores what the trainer scored, and each kind's own numbers are there."""

import json
import math
from pathlib import Path

import pytest
from occupancy_tokenizer.build import load_run
from occupancy_tokenizer.pretrained import load_tokenizer

from worldmodels import testing
from worldmodels.checkpoint import CheckpointError
from worldmodels.config import ConfigError
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent
TINY = [
    "--data.preset=synthetic", "--scene.channels=8", "--multiscale.channels=8",
    "--batch_size=4", "--lr=3e-3", "--warmup_steps=2", "--log_every=2", "--eval_frames=8",
    "--progress=false", "--device=cpu",
]  # fmt: skip


def config_of(run):
    return load_run(run)[1]


def load_script(name):
    return testing.load_script(CHAPTER, name)


def test_scene_train_then_validate(tmp_path, capsys):
    out = tmp_path / "scene"
    result = load_script("train").main([*TINY, "--steps=24", "--eval_every=12", f"--out_dir={out}"])
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result["step"] == 24 and (out / "samples" / "step_000012.png").exists()
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["scene"]["grid"] == [32, 32, 8]  # derived from the data, not the default

    results = tmp_path / "results"
    runs = load_script("validate").main(
        [str(out), "--frames=8", "--bootstrap=50", f"--results={results}",
         f"--export={tmp_path / 'pretrained'}"]
    )  # fmt: skip
    metrics = runs[str(out)]
    # the same 8 fixed frames, the same weights: the checkpoint scores what the trainer did
    assert metrics["val_mIoU_occ3d"] == pytest.approx(result["eval/val_mIoU_occ3d"], abs=1e-3)
    difference = metrics["val_mIoU_occ3d"] - metrics["val_codec_mIoU_occ3d"]
    assert metrics["val_mIoU_occ3d_minus_codec"] == pytest.approx(difference, abs=1e-3)
    low, high = (metrics[f"val_mIoU_occ3d_minus_codec_ci_{e}"] for e in ("low", "high"))
    assert low <= metrics["val_mIoU_occ3d_minus_codec"] <= high
    # FSQ (8, 5, 5, 5): 1000 codes; 32 x 32 synthetic grid, 2 x 2 columns per token
    assert metrics["tokens_per_frame"] == 256
    assert metrics["bits_per_frame"] == pytest.approx(256 * math.log2(1000))
    assert set(metrics["per_class_iou"]) == {"val", "heldout"}
    for name in ("bev_val.png", "bev_heldout.png", "per_class.png", "training.png"):
        assert (out / "validation" / name).exists()
    saved = json.loads((results / "scene.json").read_text())
    assert "train.py" in saved["trained_by"] or saved["trained_by"]  # the training command
    assert "| val | all | mIoU (occ3d) |" in capsys.readouterr().out
    # the exported copy loads as chapter 5 will load it, and reconstructs as the run did
    tokenizer, loaded = load_tokenizer(tmp_path / "pretrained" / "scene")
    assert loaded.scene == config_of(out).scene and not tokenizer.training
    exported = json.loads((tmp_path / "pretrained" / "scene" / "metrics.json").read_text())
    assert exported["val_mIoU_occ3d"] == metrics["val_mIoU_occ3d"] and exported["trained_by"]


def test_multiscale_reports_every_scale(tmp_path, capsys):
    out = tmp_path / "ms"
    args = ["--kind=multiscale", "--multiscale.channel_mults=1,2,4", "--multiscale.scales=1,2,4,8",
            "--steps=4", "--eval_every=0"]  # fmt: skip
    load_script("train").main([*TINY, *args, f"--out_dir={out}"])
    metrics = load_script("validate").main([str(out), "--frames=4", "--bootstrap=10"])[str(out)]
    scales = enumerate((1, 2, 4, 8))
    per_scale = [metrics[f"val_scale{k + 1}_{s}x{s}_mIoU_occ3d"] for k, s in scales]
    # the last scale decodes f_hat whole: the model's own reconstruction
    assert per_scale[-1] == pytest.approx(metrics["val_mIoU_occ3d"], abs=1e-6)
    assert metrics["tokens_per_frame"] == 1 + 4 + 16 + 64
    assert (out / "validation" / "coarse_to_fine.png").exists()
    printed = capsys.readouterr().out  # the per-scale table: tokens so far, 1 + 4 + 16 + 64
    assert f"| 1..4 | 8x8 | 85 | {per_scale[-1]:.1f} |" in printed


def test_4d_is_scored_at_its_temporal_compression(tmp_path, capsys):
    runs = {}
    for compression in (1, 2):
        out = runs[compression] = tmp_path / f"4d-t{compression}"
        args = ["--kind=4d", "--fourd.frames=4", "--fourd.channels=16",
                f"--temporal_compression={compression}", "--steps=2", "--eval_every=0"]  # fmt: skip
        load_script("train").main([*TINY, *args, f"--out_dir={out}"])
    both = load_script("validate").main([str(runs[1]), str(runs[2]), "--frames=2",
                                         "--bootstrap=10", f"--results={tmp_path}"])  # fmt: skip
    metrics = both[str(runs[2])]
    assert metrics["items"] == {"val": 2, "heldout": 2}  # clips of 4 frames
    assert metrics["token_cell"] == {"columns": 4, "frames": 2}
    assert metrics["tokens_per_frame"] == 2 * 8 * 8 / 4  # T' h w / T
    assert metrics["codec_bits_per_frame"] == pytest.approx(8 * 8 * 8 * 4.1699 / 2, rel=1e-4)
    assert both[str(runs[1])]["tokens_per_frame"] == 8 * 8
    # the compression table: one row per run, its frames per latent frame and tokens per frame
    printed = capsys.readouterr().out
    assert f"| {runs[1]} | 4d | 1 | 64.0 |" in printed
    assert f"| {runs[2]} | 4d | 2 | 32.0 |" in printed
    # the paired difference, second run minus first on the same clips, with its interval
    paired = json.loads((tmp_path / "paired_4d-t1_vs_4d-t2.json").read_text())
    diff = paired["differences"][str(runs[2])]
    for key in ("val_mIoU_occ3d", "heldout_IoU_occ3d"):
        expected = both[str(runs[2])][key] - both[str(runs[1])][key]
        assert diff[f"{key}_minus"] == pytest.approx(expected, abs=1e-3)
        assert diff[f"{key}_minus_ci_low"] <= diff[f"{key}_minus"] <= diff[f"{key}_minus_ci_high"]
    assert paired["minus"] == str(runs[1]) and "Paired differences" in printed


def test_bad_keys_and_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key"):
        load_script("train").main([*TINY, "--stepz=3"])
    with pytest.raises(ConfigError, match="set from the driving preset"):
        load_script("train").main([*TINY, "--scene.grid=8,8,8"])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_script("validate").main([str(tmp_path / "nothing")])
