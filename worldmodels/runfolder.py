"""One run per folder, and a resumed run that is still the same run.

- `RunLock`: an exclusive `fcntl.flock` on `<parent>/.<name>.lock`, beside the run folder
  (not inside it, so moving an old run away never moves the lock). A second run on the same
  folder stops with an error naming the first (its pid and command); the kernel drops the
  lock when its holder exits, however it exits (kill -9 included), so a lock is never stale.
- `prepare_out_dir`: a fresh run never mixes with an old one; the old folder is kept under a
  new name (only ever after the lock is held, so a live run's folder is never moved).
- `check_resume_config`: `--resume` compares the checkpoint's config with the new one and
  refuses a change that alters what the run computes, unless --allow_config_change.
- `resume_run`: all the checks above, then the checkpoint loaded and the log cut back to it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worldmodels.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    read_json,
    read_state,
    write_json_atomic,
)
from worldmodels.config import ConfigError, RunConfig
from worldmodels.ema import EMA
from worldmodels.runlog import truncate_log
from worldmodels.runtime import Runtime

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second run
    fcntl = None


class RunLockedError(RuntimeError):
    """Another live process is training into the same run folder."""


class RunLock:
    """Held for the whole of `train`; release() (or process exit) frees it."""

    def __init__(self, out_dir: Path):
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = out_dir.parent / f".{out_dir.name}.lock"
        self._file = None
        if fcntl is None:
            return
        file = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "(no details written yet)"
            file.close()
            raise RunLockedError(
                f"{out_dir} is in use by another run: {holder}. Wait for it, stop it, or "
                f"give this run another --out_dir (lock file: {self.path})"
            ) from None
        file.seek(0)
        file.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        file.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}, command: {command}\n")  # fmt: skip
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


def lock_run_folder(out_dir: Path, runtime: Runtime) -> RunLock | None:
    """Rank 0 takes the lock; if it cannot, every rank raises (none is left waiting)."""
    lock, error = None, None
    if runtime.is_main:
        try:
            lock = RunLock(out_dir)
        except RunLockedError as err:
            error = err
    if runtime.max_over_ranks(error is not None):
        raise error or RunLockedError(f"rank 0 could not lock {out_dir} (see its error)")
    return lock


def prepare_out_dir(out_dir: Path, resume: bool) -> None:
    """A fresh run never mixes with an old one: the old folder is kept under a new name."""
    out_dir = Path(out_dir)
    has_old = (out_dir / "checkpoints").is_dir() or (out_dir / "log.jsonl").exists()
    if resume or not has_old:
        return
    kept = out_dir.with_name(f"{out_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(out_dir), str(kept))
    print(f"{out_dir} held an earlier run; moved it to {kept} (use --resume to continue one)")


# Keys of the `run` section that --resume may change: they decide how long the run goes on
# and what it reports or keeps, not what a step computes. Raising `steps` extends a run
# (the cosine then decays over the new length from where the run is); every other key
# (lr, batch_size, seed, warmup, the model, the data, ...) changes the run's meaning.
RESUME_SAFE_KEYS = (
    "steps", "eval_every", "log_every", "checkpoint_every", "keep_checkpoints", "progress",
    "resume", "allow_config_change", "num_workers", "out_dir", "device", "compile",
)  # fmt: skip


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _is_safe(key: str) -> bool:
    section, _, name = key.rpartition(".")
    return section.split(".")[-1] == "run" and name in RESUME_SAFE_KEYS


# RunConfig keys added after runs were saved, with the value that means what such a run did
# (an older config.json lacks them): resuming it with that value changes nothing.
RUN_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING
}


def _saved_value(before: dict[str, Any], key: str) -> Any:
    if key in before:
        return before[key]
    section, _, name = key.rpartition(".")
    if section.split(".")[-1] == "run" and name in RUN_DEFAULTS:
        return RUN_DEFAULTS[name]
    return "<absent>"


def check_resume_config(
    saved: dict[str, Any], new: dict[str, Any], allow: bool, source: Path
) -> dict[str, list]:
    """{key: [saved, new]} of every changed key; a ConfigError if one is unsafe and not `allow`.

    `saved` comes from the checkpoint's config.json (`source`), `new` from this command line.
    """
    before, after = _flatten(json.loads(json.dumps(saved))), _flatten(json.loads(json.dumps(new)))
    switches = ("run.resume", "run.allow_config_change")  # how to start, not what to run
    changed = {
        key: [_saved_value(before, key), after.get(key, "<absent>")]
        for key in sorted(set(before) | set(after))
        if _saved_value(before, key) != after.get(key, "<absent>") and key not in switches
    }
    unsafe = {key: pair for key, pair in changed.items() if not _is_safe(key)}
    if unsafe and not allow:
        lines = "\n".join(f"  {key}: {old!r} -> {new!r}" for key, (old, new) in unsafe.items())
        raise ConfigError(
            f"--resume would change what the run computes (saved config: {source}):\n{lines}\n"
            f"Resume with the saved values, start a new run (another --out_dir), or pass "
            f"--allow_config_change to continue anyway. Keys safe to change: "
            f"{', '.join(RESUME_SAFE_KEYS)}"
        )
    return changed


def resume_run(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    run: RunConfig,
    runtime: Runtime,
    config: dict[str, Any],
    ema: EMA | None = None,
) -> tuple[int, dict[str, Any], dict[str, list]]:
    """Load the newest complete checkpoint of `out_dir` once it is known to be this run's.

    Checks, before anything is loaded: state.json (an integer step >= 0 that matches its
    folder and is <= run.steps), the config diff, the number of processes. Then drops the
    log lines after the checkpoint's step. Returns (step, metrics, changed keys). `ema`, the
    run's weight average, is restored too (or restarted at the weights, when the checkpoint
    has none: ema_decay turned on with --allow_config_change).
    """
    step_dir = find_checkpoint(out_dir)
    state = read_state(step_dir)
    if state["step"] > run.steps:
        raise ConfigError(
            f"{step_dir / 'state.json'} is at step {state['step']}, beyond steps={run.steps}: "
            "raise --steps to continue this run"
        )
    saved = read_json(step_dir / "config.json")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{step_dir / 'config.json'} is malformed: expected an object")
    allow = run.allow_config_change
    changed = check_resume_config(saved, config, allow, step_dir / "config.json")
    saved_world = state.get("world_size", 1)
    if saved_world != runtime.world_size:
        if not allow:
            raise ConfigError(
                f"{step_dir} was trained by {saved_world} process(es), this run has "
                f"{runtime.world_size}: the global batch would change (pass "
                "--allow_config_change to continue anyway)"
            )
        changed["world_size"] = [saved_world, runtime.world_size]
    state = load_checkpoint(step_dir, model, optimizer, rank=runtime.rank, ema=ema)
    if ema is not None and not state["ema_restored"]:
        warnings.warn(
            f"{step_dir} holds no EMA weights: the average restarts at step {state['step']}'s "
            "weights",
            stacklevel=2,
        )
    if not state["rng_restored"]:
        warnings.warn(
            f"{step_dir / 'optimizer.pt'} holds no RNG state for rank {runtime.rank} (saved "
            "after an error on another rank): it continues from a fresh seed, so this resumed "
            "run is not bit-identical to an uninterrupted one",
            stacklevel=2,
        )
    if runtime.is_main:
        dropped = truncate_log(Path(out_dir) / "log.jsonl", state["step"])
        print(
            f"resuming from {step_dir} at step {state['step']}"
            + (f"; changed: {changed}" if changed else "")
            + (f"; dropped {dropped} log lines after it" if dropped else "")
        )
    metrics = state.get("metrics")
    return state["step"], metrics if isinstance(metrics, dict) else {}, changed


def record_final_metrics(out_dir: Path, step: int, metrics: dict[str, Any]) -> None:
    """Write the final evaluation's metrics into the final checkpoint's state.json (the
    checkpoint itself was saved before that evaluation, so an error there loses nothing)."""
    step_dir = Path(out_dir) / "checkpoints" / f"step_{step:06d}"
    try:
        state = read_state(step_dir)
    except CheckpointError:
        return
    write_json_atomic(step_dir / "state.json", {**state, "metrics": metrics})
