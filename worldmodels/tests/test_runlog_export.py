"""export_checkpoint: what a chapter's `pretrained/` folder holds, and how it was made."""

import json

import pytest

from worldmodels.runlog import export_checkpoint

FILES = ("model.safetensors", "config.json", "state.json")  # what load_model reads


def test_export_copies_the_checkpoint_and_says_how_it_was_made(tmp_path):
    run = tmp_path / "run"
    step = run / "checkpoints" / "step_000010"
    step.mkdir(parents=True)
    for name in FILES:
        (step / name).write_text(f"content of {name}")
    info = {"command": "train.py --steps=10", "machine": "cpu", "git_commit": "abc"}
    (run / "run.json").write_text(json.dumps(info))

    out = export_checkpoint(step, tmp_path / "pretrained", {"val_mIoU": 61.5})
    for name in FILES:
        assert (out / name).read_text() == f"content of {name}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {"val_mIoU": 61.5, "trained_by": "train.py --steps=10",
                       "machine": "cpu", "git_commit": "abc"}  # fmt: skip


def test_export_of_an_incomplete_checkpoint_fails_loudly(tmp_path):
    step = tmp_path / "run" / "checkpoints" / "step_000010"
    step.mkdir(parents=True)
    (step / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        export_checkpoint(step, tmp_path / "pretrained", {})
