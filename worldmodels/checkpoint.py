"""Checkpoints that are safe to load and never half-written.

A checkpoint is a folder `<out_dir>/checkpoints/step_000500/` holding

    model.safetensors   the weights (safetensors: a flat tensor file, no code inside)
    optimizer.pt        optimizer state + RNG states, tensors and plain containers only,
                        so `torch.load(..., weights_only=True)` reads it without unpickling code
    config.json         the full run config
    state.json          the step, the latest metrics and anything else the run wants back

The folder is written under a temporary name and renamed into place in one step, then
`latest.json` is replaced atomically to point at it: an interrupted write leaves the
previous checkpoint untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete, corrupt or made for another model."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):  # DistributedDataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Save to `<out_dir>/checkpoints/step_XXXXXX/` atomically; keep the newest `keep` ones."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp_"))
    weights = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    if optimizer is not None:
        torch.save({"optimizer": optimizer.state_dict(), "rng": _rng_state()}, tmp / "optimizer.pt")
    write_json_atomic(tmp / "config.json", config)
    write_json_atomic(tmp / "state.json", {"step": step, **(state or {})})
    if final.exists():  # saving the same step twice (e.g. interrupted right after a save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json_atomic(root / "latest.json", {"step": step, "path": final.name})
    steps = sorted(root.glob("step_*"))
    for old in steps[: max(0, len(steps) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: Path) -> Path:
    """Resolve a run folder, its `checkpoints/` folder or a step folder to one step folder."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    latest = root / "latest.json"
    if latest.exists():
        try:
            step_dir = root / json.loads(latest.read_text())["path"]
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(
                f"{latest} is corrupt ({err}); delete it to use the newest step folder"
            ) from None
        if step_dir.exists():
            return step_dir
    steps = sorted(root.glob("step_*")) if root.is_dir() else []
    if not steps:
        raise CheckpointError(
            f"no checkpoint in {path}: expected a folder with model.safetensors, or a run "
            "folder with checkpoints/step_XXXXXX/ (train first, or check the path)"
        )
    return steps[-1]


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} is missing") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON ({err})") from None


def load_weights(step_dir: Path, model: nn.Module, strict: bool = True) -> None:
    """Load `model.safetensors` into `model`, with errors that say what is wrong."""
    file = Path(step_dir) / "model.safetensors"
    if not file.exists():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete")
    try:
        weights = load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt and cannot be read ({err})") from None
    try:
        unwrap(model).load_state_dict(weights, strict=strict)
    except RuntimeError as err:
        raise CheckpointError(
            f"{file} does not fit this model (was it trained with another config?): {err}"
        ) from None


def load_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Load weights (and optimizer + RNG state when given an optimizer); returns state.json."""
    step_dir = find_checkpoint(path)
    load_weights(step_dir, model)
    if optimizer is not None:
        file = step_dir / "optimizer.pt"
        try:
            saved = torch.load(file, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{file} is missing: cannot resume the optimizer") from None
        except Exception as err:  # torch raises several types for a damaged file
            raise CheckpointError(f"{file} is corrupt and cannot be read ({err})") from None
        optimizer.load_state_dict(saved["optimizer"])
        _set_rng_state(saved["rng"])
    state = read_json(step_dir / "state.json")
    state["checkpoint"] = str(step_dir)
    return state
