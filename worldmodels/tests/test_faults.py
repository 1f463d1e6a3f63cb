"""The trainer under faults: a signal inside the optimizer step, SIGTERM, an error, a NaN,
a full disk, two runs in one folder, a resume with another config.

Each test injects its fault deterministically (a hook that fires at a chosen step) and
checks that no trained step is lost and no wrong checkpoint is left behind.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from worldmodels import checkpoint
from worldmodels.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, read_state
from worldmodels.config import ConfigError, RunConfig
from worldmodels.runfolder import RunLock, RunLockedError
from worldmodels.runlog import read_log
from worldmodels.tests.test_trainer import Noisy, fit, mse
from worldmodels.trainer import train

torch.set_num_threads(1)


def optimizer_steps(step_dir) -> int:
    """How many updates the saved optimizer state has seen (AdamW counts them per tensor)."""
    saved = torch.load(step_dir / "optimizer.pt", weights_only=True)
    return int(next(iter(saved["optimizer"]["state"].values()))["step"])


def equal_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_ctrl_c_inside_the_optimizer_step_saves_that_step_whole(tmp_path):
    """SIGINT arriving inside optimizer.step (here: at the end of the 14th update) must not
    save a half-updated model, nor step 14's weights labelled 13."""
    straight, _ = fit(tmp_path, steps=20, name="straight")
    calls = {"n": 0}

    def sigint_inside_step(optimizer, args, kwargs):
        calls["n"] += 1
        if calls["n"] == 14:
            os.kill(os.getpid(), signal.SIGINT)

    handle = register_optimizer_step_post_hook(sigint_inside_step)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path, steps=20, name="split")
    finally:
        handle.remove()
    step_dir = find_checkpoint(tmp_path / "split")
    assert read_state(step_dir)["step"] == 14 == optimizer_steps(step_dir)
    resumed, result = fit(tmp_path, steps=20, name="split", resume=True)
    assert result["step"] == 20 and equal_weights(straight, resumed)


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys
    from worldmodels.tests.test_trainer import fit
    from pathlib import Path
    fit(Path(sys.argv[1]), steps=100_000, log_every=1, checkpoint_every=0, eval_every=0)
    """
)


def test_sigterm_saves_the_last_whole_step_and_exits_143(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SIGTERM_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    log, deadline = tmp_path / "run" / "log.jsonl", time.monotonic() + 60
    while not (log.exists() and len(read_log(log)) >= 5):  # it is training
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    step_dir = find_checkpoint(tmp_path / "run")
    step = read_state(step_dir)["step"]
    assert step >= 5 and optimizer_steps(step_dir) == step  # weights and label agree
    assert "SIGTERM: saving at the end of this step" in stderr


def test_an_error_saves_what_was_trained_and_the_final_save_precedes_the_evaluation(tmp_path):
    calls = {"n": 0}

    def failing_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise ValueError("a bad batch")
        return mse(model, batch)

    with pytest.raises(ValueError, match="a bad batch"):
        fit(tmp_path, steps=20, name="error", loss=failing_loss)
    step_dir = find_checkpoint(tmp_path / "error")
    assert read_state(step_dir)["step"] == 7 == optimizer_steps(step_dir)

    def failing_evaluation(model, step):
        raise RuntimeError("bad sampling settings")

    with pytest.raises(RuntimeError, match="bad sampling"):
        fit(tmp_path, steps=5, name="eval", evaluate=failing_evaluation)
    assert read_state(find_checkpoint(tmp_path / "eval"))["step"] == 5


def test_nan_weights_never_become_the_latest_checkpoint(tmp_path):
    calls = {"n": 0}

    def nan_at_step_13(model, batch):
        calls["n"] += 1
        loss, metrics = mse(model, batch)
        return (loss * float("nan") if calls["n"] == 13 else loss), metrics

    # the log (every 100 steps) would not see it; the save at step 15 must
    with pytest.raises(FloatingPointError, match="not finite at step 15"):
        fit(tmp_path, steps=30, name="nan", loss=nan_at_step_13, log_every=100,
            checkpoint_every=5)  # fmt: skip
    step_dir = find_checkpoint(tmp_path / "nan")
    assert step_dir.name == "step_000010"
    model = Noisy()
    load_checkpoint(step_dir, model)
    assert all(p.isfinite().all() for p in model.parameters())
    assert not list((tmp_path / "nan" / "checkpoints").glob(".tmp_*"))


def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(tmp_path, monkeypatch):
    model = Noisy()
    checkpoint.save_checkpoint(tmp_path, 1, model, None, {})

    def disk_full(tensors, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(CheckpointError, match="step_000002 .*No space left.*disk full"):
        checkpoint.save_checkpoint(tmp_path, 2, model, None, {})
    assert find_checkpoint(tmp_path).name == "step_000001"
    assert not list((tmp_path / "checkpoints").glob(".tmp_*"))


def test_two_runs_in_one_folder(tmp_path):
    fit(tmp_path, steps=5)  # an earlier, finished run: a fresh run would move it aside
    live = RunLock(tmp_path / "run")  # another process training into the folder now
    try:
        with pytest.raises(RunLockedError, match=f"in use by another run: pid {os.getpid()}"):
            fit(tmp_path, steps=5)
        assert (tmp_path / "run" / "checkpoints" / "step_000005").is_dir()  # not moved
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["run"]
    finally:
        live.release()
    fit(tmp_path, steps=5)  # once the other run is gone, the folder is free again


def test_resume_refuses_a_changed_meaning_and_keeps_the_record(tmp_path):
    fit(tmp_path, steps=10, log_every=1)
    with pytest.raises(ConfigError, match=r"run\.lr: 0\.03 -> 0\.1"):
        fit(tmp_path, steps=20, resume=True, lr=0.1)
    with pytest.raises(ConfigError, match=r"run\.seed: 0 -> 1"):
        fit(tmp_path, steps=20, resume=True, seed=1)
    _, result = fit(tmp_path, steps=20, resume=True, log_every=1)  # --steps extends: safe
    assert result["step"] == 20
    fit(tmp_path, steps=25, resume=True, lr=0.1, allow_config_change=True, log_every=1)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["run"]["steps"] == 10  # the original record stays
    assert [r["from_step"] for r in info["resumes"]] == [10, 20]
    assert info["resumes"][1]["changed"]["run.lr"] == [0.03, 0.1]
    steps = [r["step"] for r in read_log(tmp_path / "run" / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, 26))


def test_resume_drops_log_lines_of_replayed_steps(tmp_path):
    calls = {"n": 0}

    def killed_at_step_13(model, batch):  # as if killed -9 after logging steps 11-12
        calls["n"] += 1
        if calls["n"] == 13:
            raise SystemError("killed")
        return mse(model, batch)

    with pytest.raises(SystemError):
        fit(tmp_path, steps=20, loss=killed_at_step_13, log_every=1)
    # the error path saved step 12; make it look like kill -9 left only step 10
    run = tmp_path / "run" / "checkpoints"
    (run / "step_000012" / "model.safetensors").unlink()
    with pytest.warns(checkpoint.CheckpointWarning, match="step_000012"):
        fit(tmp_path, steps=20, resume=True, log_every=1)
    steps = [r["step"] for r in read_log(tmp_path / "run" / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, 21))


def test_rotation_is_by_step_number(tmp_path):
    model = Noisy()
    for step in (999_999, 1_000_000, 1_000_001):
        checkpoint.save_checkpoint(tmp_path, step, model, None, {}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert names == ["step_1000000", "step_1000001"]
    assert find_checkpoint(tmp_path).name == "step_1000001"
    with pytest.raises(ValueError, match="keep=0"):
        checkpoint.save_checkpoint(tmp_path, 1_000_002, model, None, {}, keep=0)


def test_a_run_of_zero_steps_saves_its_initial_weights(tmp_path):
    run = RunConfig(steps=0, progress=False)
    from worldmodels.runtime import setup_runtime

    train(Noisy(), mse, [0], run, setup_runtime("cpu", "float32"), tmp_path / "r", {})
    assert read_state(find_checkpoint(tmp_path / "r"))["step"] == 0
