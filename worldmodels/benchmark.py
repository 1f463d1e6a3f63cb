"""Measuring training throughput honestly: the machine's matmul peak, a step's FLOPs, MFU.

Model FLOPs utilisation (MFU) = (FLOPs of one training step / seconds per step) / peak FLOP/s,
with the step's FLOPs counted by PyTorch's FlopCounterMode on the real forward + backward
(matmuls, convolutions and attention; elementwise work is not counted, as is customary), and
the peak *measured* here on a large square matmul rather than read off a datasheet.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from worldmodels.config import override
from worldmodels.runlog import git_commit, machine_description


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
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    print("\n".join(lines))
    with Path(jsonl).open("a") as f:
        for row in rows:
            record = {"machine": machine, "host": platform.node(), "commit": git_commit(),
                      "date": time.strftime("%Y-%m-%d"), **row}  # fmt: skip
            f.write(json.dumps(record) + "\n")
