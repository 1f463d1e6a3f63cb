"""train.py end to end on the synthetic streets with a tiny untrained tokenizer: checkpoint,
log and motion bins appear, the loss falls, bad keys and kinds are refused by name (the AR
baseline's run: test_ar_baseline.py)."""

import json
from pathlib import Path

import pytest
from world_model.synthetic import synthetic_windows
from world_model.token_data import fit_motion_tokenizer

from worldmodels import testing
from worldmodels.config import ConfigError
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent


def tiny(tokenizer_dir, tmp_path):
    return [
        "--data.preset=synthetic", f"--data.tokenizer={tokenizer_dir}",
        f"--data.cache={tmp_path / 'cache'}", "--model.dim=32", "--model.depth=2",
        "--model.heads=4", "--bins=3,3,3", "--batch_size=4", "--lr=3e-3", "--warmup_steps=2",
        "--log_every=2", "--eval_clips=4", "--progress=false", "--device=cpu",
    ]  # fmt: skip


def test_train_writes_checkpoint_log_and_train_fit_bins(tiny_tokenizer_dir, tmp_path):
    out = tmp_path / "run"
    argv = [*tiny(tiny_tokenizer_dir, tmp_path), "--steps=16", "--eval_every=8",
            "--checkpoint_every=8", f"--out_dir={out}"]  # fmt: skip
    result = testing.load_script(CHAPTER, "train").main(argv)
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses[-1] < losses[0], losses
    assert result["step"] == 16 and 0 <= result["eval/val_scene_accuracy"] <= 1
    step = out / "checkpoints" / "step_000016"
    assert (step / "model.safetensors").exists()
    bins = fit_motion_tokenizer(synthetic_windows("train"), (3, 3, 3)).to_dict()  # train only
    assert json.loads((out / "motion_tokenizer.json").read_text()) == bins
    motion = json.loads((step / "config.json").read_text())["motion"]
    assert (motion["low"], motion["high"]) == (bins["low"], bins["high"])
    assert json.loads((step / "config.json").read_text())["model"]["motion_vocab"] == 27


def test_bad_keys_and_kinds_are_refused(tiny_tokenizer_dir, tmp_path):
    train = testing.load_script(CHAPTER, "train")
    argv = tiny(tiny_tokenizer_dir, tmp_path)
    with pytest.raises(ConfigError, match="Did you mean 'dim'"):
        train.main([*argv, "--dimm=8"])
    with pytest.raises(ConfigError, match="not by hand"):
        train.main([*argv, "--motion.low=0,0,0"])
    with pytest.raises(ConfigError, match="heads=5: expected a divisor"):
        train.main([*argv, "--model.heads=5"])
    ambiguous = (r"ambiguous: write one of \['ar.dim', 'dit.dim', 'lidar.dim', 'maskgit.dim', "
                 r"'model.dim'\]")
    with pytest.raises(ConfigError, match=ambiguous):
        train.main([*argv, "--dim=64"])  # every model section's
    with pytest.raises(ConfigError, match="kind"):
        train.main([*argv, "--kind=diffusion"])
