"""The record of a run: `run.json` (what was run, where, from which commit) and `log.jsonl`."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from worldmodels.checkpoint import read_json, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """The repository's HEAD commit, with '+dirty' when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({torch.cuda.device_count()} visible)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def write_run_info(
    out_dir: Path,
    config: dict[str, Any],
    device: torch.device,
    resumed_from_step: int = 0,
    **extra,
) -> None:
    """Save the config, the command line, the commit and the machine beside the checkpoints.

    A fresh run writes `run.json`; a resumed run keeps the original record and appends one
    entry (command, commit, time, machine, step, changed keys) to its "resumes" list.
    """
    path = Path(out_dir) / "run.json"
    info = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_description(device),
        "torch": torch.__version__,
    }
    original = None
    if resumed_from_step and path.exists():
        try:
            original = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            original = None  # unreadable: written afresh below, and the log says so
    if isinstance(original, dict):
        resume = {**info, "from_step": resumed_from_step, **extra}
        original["resumes"] = [*original.get("resumes", []), resume]
        write_json_atomic(path, original)
        return
    write_json_atomic(path, {**info, "config": config, "resumed_from_step": resumed_from_step,
                             **extra})  # fmt: skip


def truncate_log(path: Path, step: int) -> int:
    """Drop the records after `step` (steps a resumed run replays); returns how many went.

    A run killed after its last checkpoint logged steps that the resumed run trains again;
    without this, `log.jsonl` would hold those steps twice.
    """
    path = Path(path)
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a last line cut short by a crash
        logged = record.get("step") if isinstance(record, dict) else None
        if not isinstance(logged, (int, float)) or logged <= step:
            kept.append(line)
    if len(kept) != len(lines):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, path)
    return len(lines) - len(kept)


class RunLog:
    """Append one JSON object per line; flushed each line so a killed run keeps its log."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every record of a `log.jsonl` file (skipping a last line cut short by a crash)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def write_results(results_dir: Path | str, name: str, metrics: dict, run_dir: Path) -> Path:
    """The committed copy of a validation (`validate.py --results=DIR`): `metrics` plus how
    the run was made (its training command, commit and machine, from run_dir/run.json), as
    DIR/<name>.json. Every chapter's README numbers are read from these files."""
    run_info = read_json(Path(run_dir) / "run.json")
    path = Path(results_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {
        **metrics,
        "trained_by": run_info.get("command"),
        "trained_at_commit": run_info.get("git_commit"),
        "machine": run_info.get("machine"),
    })  # fmt: skip
    return path


def validation_record(kind: str, step_dir: Path, intervals: str) -> dict[str, str]:
    """The first keys of a validate.py metrics.json: what was scored (kind, checkpoint), by
    which command at which commit, and what its intervals are."""
    return {
        "kind": kind,
        "checkpoint": str(step_dir),
        "command": "validate.py " + " ".join(sys.argv[1:]),
        "git_commit": git_commit(),
        "intervals": intervals,
    }


EXPORTED_FILES = ("model.safetensors", "config.json", "state.json")  # of a checkpoint folder


def export_checkpoint(step_dir: Path, export_dir: Path | str, metrics: dict) -> Path:
    """A stand-alone copy of a trained model for later chapters (`validate.py --export=DIR`,
    how each chapter's `pretrained/` is made): the checkpoint's weights, config and state, and
    metrics.json with the scores and how the run was made (command, commit, machine)."""
    step_dir, export = Path(step_dir), Path(export_dir)
    export.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED_FILES:
        shutil.copy(step_dir / name, export / name)
    run_info = read_json(step_dir.parent.parent / "run.json")
    made_by = {key: run_info.get(key) for key in ("machine", "git_commit")}
    write_json_atomic(export / "metrics.json",
                      {**metrics, "trained_by": run_info.get("command"), **made_by})  # fmt: skip
    return export
