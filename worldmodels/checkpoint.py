"""Checkpoints that are safe to load, never half-written, never non-finite.

A checkpoint is a folder `<out_dir>/checkpoints/step_000500/` holding

    model.safetensors   the weights (safetensors: a flat tensor file, no code inside)
    optimizer.pt        optimizer state + the RNG state of every rank, tensors and plain
                        containers only, so `torch.load(..., weights_only=True)` reads it
                        without unpickling code
    config.json         the full run config
    state.json          the step, the latest metrics and anything else the run wants back
    ema.safetensors     only when the run keeps an EMA of its weights (`worldmodels/ema.py`):
                        the averaged trainable parameters, by name

The folder is written under a temporary name (`.tmp_*`) and renamed into place in one step,
then `latest.json` is replaced atomically to point at it: an interrupted write (kill -9, a
full disk) leaves the previous checkpoint untouched, and the next save removes the leftover
`.tmp_*` folder. Weights are checked to be finite before anything is written. Every file is
validated on load: whatever is wrong raises one `CheckpointError` that names the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from worldmodels.config import ConfigError, from_dict
from worldmodels.ema import EMA
from worldmodels.ema import FILE as EMA_FILE
from worldmodels.faults import assert_finite, assert_finite_tensors

C = TypeVar("C")  # a config dataclass
M = TypeVar("M", bound=nn.Module)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete, corrupt, unwritable or made for another model."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (incomplete) and an older one used instead."""


REQUIRED = ("model.safetensors", "config.json", "state.json")  # what makes a step complete


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
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    """This process's torch RNG state (CPU, and every CUDA device when there is one)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def step_of(folder: Path) -> int | None:
    """500 for `step_000500` (any number of digits); None for any other name."""
    match = re.fullmatch(r"step_(\d+)", Path(folder).name)
    return int(match.group(1)) if match else None


def _step_folders(root: Path) -> list[Path]:
    """The `step_N` folders of `root`, sorted by N as a number (not as text)."""
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and step_of(p) is not None]
    return sorted(folders, key=step_of)


def _is_complete(step_dir: Path) -> bool:
    return all((step_dir / name).is_file() for name in REQUIRED)


def _remove_leftovers(root: Path) -> None:
    """Folders and files of saves that were killed half-way (only ever one writer: the lock)."""
    for leftover in root.glob(".tmp_*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in root.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    keep: int = 2,
    rng: list[dict[str, Any] | None] | None = None,
    ema: EMA | None = None,
) -> Path:
    """Save to `<out_dir>/checkpoints/step_XXXXXX/` atomically; keep the newest `keep` ones.

    `rng` holds the RNG state of every rank (None where a rank's state is unknown); by
    default, this process's state as the only rank. `ema`: the run's weight average, written
    to ema.safetensors.
    """
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep={keep!r}: expected an integer >= 1 (the new checkpoint is kept)")
    assert_finite(unwrap(model), step)
    averaged = ema.state_dict() if ema is not None else None
    if averaged is not None:
        assert_finite_tensors(averaged, step, "EMA weights")
    root = Path(out_dir) / "checkpoints"
    final = root / f"step_{step:06d}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(root)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp_"))
        try:
            _write_step(tmp, step, model, optimizer, config, state, rng)
            if averaged is not None:
                save_file(averaged, tmp / EMA_FILE)
            if final.exists():  # the same step saved twice (e.g. interrupted right after)
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # only left when the write failed
        write_json_atomic(root / "latest.json", {"step": step, "path": final.name})
    except (OSError, RuntimeError, SafetensorError) as err:
        # torch.save reports a full disk as "enforce fail at inline_container.cc".
        raise CheckpointError(
            f"could not write checkpoint {final} ({type(err).__name__}: {err}); is the disk "
            f"full or the folder read-only? Earlier checkpoints in {root} are untouched"
        ) from err
    older = [p for p in _step_folders(root) if step_of(p) < step]
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_step(tmp: Path, step, model, optimizer, config, state, rng) -> None:
    weights = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    if optimizer is not None:
        ranks = rng if rng is not None else [rng_state()]
        saved = {"optimizer": optimizer.state_dict(), "rng": ranks[0], "rng_ranks": ranks}
        torch.save(saved, tmp / "optimizer.pt")
    write_json_atomic(tmp / "config.json", config)
    write_json_atomic(tmp / "state.json", {**(state or {}), "step": step})


def find_checkpoint(path: Path) -> Path:
    """Resolve a run folder, its `checkpoints/` folder or a step folder to one step folder.

    The step `latest.json` names, when it is complete; otherwise (a save killed between its
    steps, a deleted file) the newest complete step folder, with a warning.
    """
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    latest = root / "latest.json"
    named = None
    if latest.exists():
        pointer = read_json(latest)
        if not isinstance(pointer, dict) or not isinstance(pointer.get("path"), str):
            raise CheckpointError(
                f"{latest} is corrupt (expected {{'step': N, 'path': 'step_N'}}, got "
                f"{pointer!r}); delete it to use the newest step folder"
            )
        named = root / Path(pointer["path"]).name
        if _is_complete(named):
            return named
    folders = _step_folders(root)
    complete = [p for p in folders if _is_complete(p)]
    if not complete:
        found = f" ({', '.join(p.name for p in folders)} incomplete)" if folders else ""
        raise CheckpointError(
            f"no checkpoint in {path}{found}: expected a folder with model.safetensors, or a "
            "run folder with checkpoints/step_XXXXXX/ (train first, or check the path)"
        )
    skipped = [p.name for p in folders if step_of(p) > step_of(complete[-1])]
    if named is not None and named.name not in skipped:
        skipped.append(named.name)
    if skipped:
        warnings.warn(
            f"checkpoint {', '.join(skipped)} in {root} is incomplete (missing one of "
            f"{REQUIRED}); using {complete[-1].name}, the newest complete one",
            CheckpointWarning,
            stacklevel=2,
        )
    return complete[-1]


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON ({err})") from None
    except OSError as err:
        raise CheckpointError(f"checkpoint file {path} cannot be read ({err})") from None


def read_state(step_dir: Path) -> dict[str, Any]:
    """state.json, checked: an object whose "step" is an integer >= 0 matching the folder."""
    file = Path(step_dir) / "state.json"
    state = read_json(file)
    step = state.get("step") if isinstance(state, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(
            f'{file} is malformed: expected an object with an integer "step" >= 0, got '
            f"{json.dumps(state)[:200]}"
        )
    named = step_of(step_dir)
    if named is not None and named != step:
        raise CheckpointError(f"{file} says step {step}, but its folder is {step_dir.name}")
    return state


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


def read_ema(step_dir: Path, ema: EMA) -> dict[str, torch.Tensor] | None:
    """The checkpoint's EMA weights, checked against `ema`; None when it has none (a run
    without EMA, or one saved before the option existed)."""
    file = Path(step_dir) / EMA_FILE
    if not file.exists():
        return None
    try:
        tensors = load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt and cannot be read ({err})") from None
    try:
        ema.check(tensors)
    except ValueError as err:
        raise CheckpointError(f"{file} does not fit this model: {err}") from None
    return tensors


def load_model(
    path: Path | str,
    config_cls: type[C],
    build: Callable[[C], M],
    section: str | None = None,
    device: str | torch.device = "cpu",
    ema: bool = False,
) -> tuple[M, C, Path]:
    """(model in eval mode on `device`, its config, the step folder) from a run folder, a
    checkpoint or an exported folder.

    The model is rebuilt from the checkpoint's own config.json: `config_cls` is read from
    the whole file, or from its `section` (e.g. "model" of a run config), and `build(config)`
    makes the model the weights are loaded into, so a checkpoint of any preset loads.
    `ema=True` loads the run's averaged weights (ema.safetensors, what its evaluation used)
    over the trained ones; a CheckpointError when the run kept none.
    """
    step_dir = find_checkpoint(Path(path))
    file = step_dir / "config.json"
    data = read_json(file)
    if section is not None:
        if not isinstance(data, dict) or not isinstance(data.get(section), dict):
            raise CheckpointError(f"{file} has no {section!r} section (a config of another run?)")
        data = data[section]
    try:
        config = from_dict(config_cls, data)
    except (ConfigError, ValueError, TypeError) as err:  # unknown keys, bad types or ranges
        raise CheckpointError(f"{file} is not a {config_cls.__name__}: {err}") from None
    model = build(config)
    load_weights(step_dir, model)
    if ema:
        average = EMA(model, decay=0.0)
        tensors = read_ema(step_dir, average)
        if tensors is None:
            raise CheckpointError(
                f"{step_dir} holds no {EMA_FILE}: the run kept no EMA (RunConfig.ema_decay "
                "was 0); load it without ema=True"
            )
        average.load_state_dict(tensors)
        average.copy_to(model)
    return model.to(device).eval(), config, step_dir


def _read_optimizer_file(file: Path, optimizer: torch.optim.Optimizer, rank: int):
    """(optimizer state dict, this rank's RNG state or None), checked against `optimizer`."""
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing: cannot resume the optimizer") from None
    except Exception as err:  # torch raises several types for a damaged file
        raise CheckpointError(f"{file} is corrupt and cannot be read ({err})") from None
    opt = saved.get("optimizer") if isinstance(saved, dict) else None
    if not isinstance(opt, dict) or not {"state", "param_groups"} <= opt.keys():
        raise CheckpointError(f"{file} is malformed: no optimizer state ('optimizer' key)")
    ranks = saved.get("rng_ranks") or ([saved["rng"]] if "rng" in saved else None)
    if not isinstance(ranks, list) or not ranks or not isinstance(ranks[0], dict):
        raise CheckpointError(f"{file} is malformed: no RNG state ('rng' key)")
    rng = ranks[rank] if rank < len(ranks) else None
    if rng is not None and not isinstance(rng.get("torch"), torch.Tensor):
        raise CheckpointError(f"{file} is malformed: the RNG state of rank {rank} has no 'torch'")
    groups = optimizer.param_groups
    if len(opt["param_groups"]) != len(groups) or any(
        len(s.get("params", ())) != len(g["params"]) for s, g in zip(opt["param_groups"], groups)
    ):
        raise CheckpointError(f"{file} holds the optimizer of another model (parameter counts)")
    for saved_group, group in zip(opt["param_groups"], groups):
        for index, param in zip(saved_group["params"], group["params"]):
            for key, value in opt["state"].get(index, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                    raise CheckpointError(
                        f"{file} holds the optimizer of another model: its {key!r} for "
                        f"parameter {index} is {tuple(value.shape)}, the parameter "
                        f"{tuple(param.shape)}"
                    )
    return opt, rng


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    rank: int = 0,
    ema: EMA | None = None,
) -> dict[str, Any]:
    """Load weights (and optimizer + this rank's RNG state when given an optimizer; and the
    weight average into `ema` when given one).

    Returns state.json plus "checkpoint" (the step folder), "rng_restored" (False when
    the checkpoint holds no RNG state for `rank`) and "ema_restored" (False when it holds no
    ema.safetensors: `ema` then restarts at the loaded weights). Everything is checked
    before anything is loaded.
    """
    step_dir = find_checkpoint(path)
    state = read_state(step_dir)
    state["checkpoint"], state["rng_restored"] = str(step_dir), False
    opt = rng = None
    if optimizer is not None:
        opt, rng = _read_optimizer_file(step_dir / "optimizer.pt", optimizer, rank)
    averaged = read_ema(step_dir, ema) if ema is not None else None
    load_weights(step_dir, model)
    if ema is not None:
        if averaged is not None:
            ema.load_state_dict(averaged)
        else:  # a checkpoint from before the EMA was on: the average starts here
            ema.copy_from(unwrap(model))
        state["ema_restored"] = averaged is not None
    if optimizer is None:
        return state
    try:
        optimizer.load_state_dict(opt)
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{step_dir / 'optimizer.pt'} cannot be loaded ({err})") from None
    state["rng_restored"] = rng is not None
    return state
