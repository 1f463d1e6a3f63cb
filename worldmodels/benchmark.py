"""Measuring training throughput honestly: the machine's matmul peak, a step's FLOPs, MFU.

Model FLOPs utilisation (MFU) = (FLOPs of one training step / seconds per step) / peak FLOP/s,
with the step's FLOPs counted by PyTorch's FlopCounterMode on the real forward + backward
(matmuls, convolutions and attention; elementwise work is not counted, as is customary), and
the peak *measured* here on a large square matmul rather than read off a datasheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


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
