"""Measuring training throughput honestly: the machine's matmul peak, a step's FLOPs, MFU.

Model FLOPs utilisation (MFU) = (FLOPs of one training step / seconds per step) / peak FLOP/s,
with the step's FLOPs counted by PyTorch's FlopCounterMode on the real forward + backward
(matmuls, convolutions and attention; elementwise work is not counted, as is customary), and
the peak *measured* here on a large square matmul rather than read off a datasheet.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from worldmodels.config import RunConfig, override, parse_command
from worldmodels.runlog import git_commit, machine_description
from worldmodels.runtime import Runtime, pick_autocast_dtype, pick_device, seed_everything
from worldmodels.steps import LossFn, LossModule, build_optimizer, optimizer_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    device: torch.device, dtype: torch.dtype, size: int = 1024, seconds: float = 1.0
) -> float:
    """Measured FLOP/s of a (size x size) @ (size x size) matmul: 2 * size^3 FLOPs each."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):  # warm-up: thread pools, kernels, clocks
        a @ b
    synchronize(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    synchronize(device)
    return 2 * size**3 * count / (time.perf_counter() - start)


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of `step` (forward + backward), counted by FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def seconds_per_step(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> float:
    """Mean wall-clock seconds of `step` after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


# ---------------------------------------------------------------------------------------
# One preset's training step, timed the same way in every chapter


@dataclass
class StepTiming:
    """A training step, timed: its model (for a chapter's own columns) and its numbers."""

    model: nn.Module
    dtype: torch.dtype  # the autocast dtype the step ran under
    compile: bool  # whether the model was compiled
    flops: int  # FLOPs of one step (forward + backward), counted eagerly
    seconds: float  # mean wall-clock seconds of a step, after warm-up
    first_step: float  # seconds of the first call, compilation included
    peak: float  # measured matmul FLOP/s of the device at `dtype`

    def params_M(self) -> float:
        """The model's parameters in millions, to 2 decimals."""
        return round(sum(p.numel() for p in self.model.parameters()) / 1e6, 2)

    def columns(self, **rates: Any) -> dict:
        """The columns every benchmark reports, with the chapter's own `rates` (clips/s,
        tokens/s, ..., already rounded) after steps/s: dtype, compile, steps_per_s, *rates,
        step_GFLOP, achieved_GFLOPs, peak_GFLOPs, MFU, first_step_s."""
        achieved = self.flops / self.seconds
        return {
            "dtype": str(self.dtype).replace("torch.", ""), "compile": self.compile,
            "steps_per_s": round(1 / self.seconds, 3), **rates,
            "step_GFLOP": round(self.flops / 1e9, 2), "achieved_GFLOPs": round(achieved / 1e9, 1),
            "peak_GFLOPs": round(self.peak / 1e9, 1), "MFU": round(achieved / self.peak, 3),
            "first_step_s": round(self.first_step, 1),
        }  # fmt: skip


def time_training_step(
    run: RunConfig,
    build_model: Callable[[], nn.Module],
    loss_fn: LossFn,
    make_batch: Callable[[], Any],
    device: torch.device,
    warmup: int,
    steps: int,
) -> StepTiming:
    """Time the trainer's own step, `optimizer_step` (forward under the run's autocast, the
    loss, scaled backward, gradient clipping, AdamW), on `make_batch()`.

    Seeded with 0, then the model is built, then the batch (so random batches repeat). FLOPs
    are counted eagerly, before compiling (the same math either way); with `run.compile` the
    model is compiled in place as the trainer does, and the first call, which pays for
    compilation, is timed apart from the `steps` timed after `warmup` untimed ones."""
    seed_everything(0)
    runtime = Runtime(device, pick_autocast_dtype(device, run.dtype))
    model = build_model().to(device)
    optimizer = build_optimizer(model, run, device)
    step_module = LossModule(model, loss_fn)
    scaler = torch.amp.GradScaler(enabled=runtime.dtype == torch.float16)  # as the trainer does
    batch = make_batch()

    def step():
        optimizer_step(step_module, optimizer, scaler, batch, run.grad_clip, runtime.autocast())

    flops = count_flops(step)
    if run.compile:
        model.compile()
    start = time.perf_counter()
    step()
    first_step = time.perf_counter() - start
    seconds = seconds_per_step(step, device, warmup, steps)
    peak = matmul_peak(device, runtime.dtype)
    return StepTiming(model, runtime.dtype, run.compile, flops, seconds, first_step, peak)


# ---------------------------------------------------------------------------------------
# The command around the measurement, the same in every chapter's benchmark.py


def split_overrides(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(the command's own words, {dotted config key: text}): `--run.compile=false` changes
    the presets, as train.py reads it (a bare dotted `--run.compile` means true); undotted
    words are the benchmark's own options."""
    own, overrides = [], {}
    for word in argv:
        key, has_value, text = word.removeprefix("--").partition("=")
        if word.startswith("--") and "." in key:
            overrides[key] = text if has_value else "true"
        else:
            own.append(word)
    return own, overrides


def preset_names(
    requested: str, presets: Mapping[str, Callable], device: torch.device, overrides: dict
) -> list[str]:
    """The presets to time: the comma-separated `requested`, or debug (plus prototype on a
    GPU). Unknown names, or an override that no preset accepts, stop before any timing."""
    default = ["debug", "prototype"] if device.type == "cuda" else ["debug"]
    names = requested.split(",") if requested else default
    unknown = [n for n in names if n not in presets]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; choose from {sorted(presets)}")
    for name in names:
        override(presets[name](), overrides)
    return names


def report(rows: list[dict], keys: Sequence[str], device: torch.device, jsonl: Path) -> None:
    """Print the machine and a markdown table of `keys`; append each row to `jsonl` with the
    machine, host, commit and date (the record a README's throughput table cites)."""
    machine = machine_description(device)
    print(f"\n{machine}, torch {torch.__version__}\n")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "-")) for k in keys) + " |" for r in rows]
    print("\n".join(lines))
    with Path(jsonl).open("a") as f:
        for row in rows:
            record = {"machine": machine, "host": platform.node(), "commit": git_commit(),
                      "date": time.strftime("%Y-%m-%d"), **row}  # fmt: skip
            f.write(json.dumps(record) + "\n")


def run_benchmark(
    argv: Sequence[str] | None,
    options: type,
    presets: Mapping[str, Callable],
    measure: Callable[[str, Any, torch.device, dict], dict | list[dict]],
    keys: Sequence[str],
    jsonl: Path,
) -> list[dict]:
    """A chapter's benchmark command: parse `argv` (default: the command line) into the
    chapter's `options` dataclass (with `presets`, `device`) and dotted config overrides, then
    for each preset print `measure(name, options, device, overrides)`'s row (or rows: one
    per model a chapter compares) as JSON as it comes, and at the end `report` them all to
    `jsonl`. Returns the rows."""
    own, overrides = split_overrides(sys.argv[1:] if argv is None else argv)
    args = parse_command(options, own)
    device = pick_device(args.device)
    rows = []
    for name in preset_names(args.presets, presets, device, overrides):
        measured = measure(name, args, device, overrides)
        for row in measured if isinstance(measured, list) else [measured]:
            rows.append(row)
            print(json.dumps(row))
    report(rows, keys, device, jsonl)
    return rows
