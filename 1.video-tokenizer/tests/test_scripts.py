"""train.py and validate.py end to end on synthetic sprites: loss falls, files appear."""

import json
from pathlib import Path

import pytest
import torch
from video_tokenizer.codec import patch_mean
from video_tokenizer.config import Config
from video_tokenizer.data import build_datasets
from video_tokenizer.model import VideoTokenizer

from worldmodels import testing
from worldmodels.checkpoint import CheckpointError, load_model
from worldmodels.config import ConfigError
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import psnr
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent


def load_script(name):
    return testing.load_script(CHAPTER, name)


TINY = [
    "--source=sprites",
    "--image_size=32",
    "--dim=32",
    "--heads=2",
    "--encoder_depth=1",
    "--decoder_depth=1",
    "--clip_len=3",
    "--batch_size=8",
    "--lr=3e-3",
    "--warmup_steps=5",
    "--log_every=5",
    "--eval_clips=16",
    "--progress=false",
]


def test_train_then_validate(tmp_path):
    out = tmp_path / "run"
    result = load_script("train").main([*TINY, "--steps=60", "--eval_every=30", f"--out_dir={out}"])
    log = read_log(out / "log.jsonl")
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result["step"] == 60 and result["eval/val_psnr"] > 15
    assert 0 < result["eval/val_patch_mean_psnr"] < 100  # the codec beside it, every evaluation
    assert (out / "samples" / "step_000060.png").exists()
    assert json.loads((out / "run.json").read_text())["config"]["model"]["dim"] == 32

    metrics = load_script("validate").main([str(out), "--clips=8", "--device=cpu"])
    assert metrics["val_psnr"] == pytest.approx(result["eval/val_psnr"], abs=2.0)
    assert 0 < metrics["val_codebook_usage"] <= 1
    # the patch-mean codec on the same clips, and the paired difference, with intervals
    for key in ("val_patch_mean_psnr", "val_psnr_minus_patch_mean"):
        assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"], key
    _, config, _ = load_model(out, Config, lambda c: VideoTokenizer(c.model))
    val = build_datasets(config)["val"]
    frames = stack_items(val, fixed_subset(val, 8))["frames"]  # validate's 8 clips
    codec = psnr(patch_mean(frames, config.model.patch), frames).mean().item()
    assert metrics["val_patch_mean_psnr"] == pytest.approx(codec, abs=1e-3)
    difference = metrics["val_psnr"] - metrics["val_patch_mean_psnr"]
    assert metrics["val_psnr_minus_patch_mean"] == pytest.approx(difference, abs=1e-3)
    for name in ("reconstructions_val.png", "noise_in.png", "metrics.json"):
        assert (out / "validation" / name).exists()


def test_bad_config_and_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key"):
        load_script("train").main([*TINY, "--stepz=3"])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_script("validate").main([str(tmp_path / "nothing")])


def test_train_with_torch_compile(tmp_path):
    """--compile goes through torch.compile and still trains (the loss keeps its graph)."""
    out = tmp_path / "compiled"
    load_script("train").main(
        [*TINY, "--steps=10", "--eval_every=0", "--compile", f"--out_dir={out}"]
    )
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


def test_validate_options_are_key_value():
    validate = load_script("validate")
    with pytest.raises(ConfigError, match="unknown option --rollout-clips"):
        validate.main(["--rollout-clips=3"])
    with pytest.raises(ConfigError, match="--clips expects int"):
        validate.main(["--clips=many"])
    with pytest.raises(ConfigError, match="at most one run"):
        validate.main(["run_a", "run_b"])


def test_benchmark_runs_the_trainers_step_with_dotted_overrides():
    benchmark = load_script("benchmark")
    words = ["--steps=1", "--run.compile=false", "--model.dim=32"]
    own, overrides = benchmark.split_overrides(words)
    assert own == ["--steps=1"] and overrides == {"run.compile": "false", "model.dim": "32"}
    small = {"run.batch_size": "2", "model.dim": "32", "model.heads": "2", "run.dtype": "float32"}
    row = benchmark.benchmark_preset("debug", torch.device("cpu"), 1, 0, small)
    assert row["batch"] == 2 and row["step_GFLOP"] > 0 and row["steps_per_s"] > 0
    with pytest.raises(ConfigError, match="unknown config key 'model.dimm'.*'model.dim'"):
        benchmark.main(["--presets=debug", "--model.dimm=3"])
