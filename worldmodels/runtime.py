"""Where and how a run computes: seeding, device and dtype choice, autocast, DDP.

The same script runs on a laptop CPU, one GPU, or several GPUs under `torchrun`:

    uv run 1.video-tokenizer/train.py                                  # CPU or one GPU
    uv run torchrun --nproc_per_node=8 1.video-tokenizer/train.py ...  # DDP, one process per GPU

Under `torchrun` the environment carries RANK, LOCAL_RANK and WORLD_SIZE; we then join the
process group (NCCL on CUDA, gloo on CPU, so DDP can be tried on a laptop too).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; anything else is taken as asked."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} asked for, but CUDA is not available here")
    return device


def pick_autocast_dtype(device: torch.device, preference: str = "auto") -> torch.dtype:
    """The dtype that matmuls run in under autocast.

    'auto' is bfloat16 on GPUs that support it (no loss scaling needed, same range as float32)
    and float32 on the CPU, where bf16 autocast slows the small models of the notebooks down
    (measured about 1.8x on a 2-core CPU); ask for --dtype=bfloat16 to try it on big ones.
    """
    if preference == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if preference not in DTYPES:
        raise ValueError(f"dtype must be one of {['auto', *DTYPES]}, got {preference!r}")
    return DTYPES[preference]


@dataclass
class Runtime:
    """The device, the autocast dtype and this process's place among the DDP processes."""

    device: torch.device
    dtype: torch.dtype
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward pass; a no-op context in float32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def max_over_ranks(self, value: int) -> int:
        """The largest of an integer over all processes (used to agree on a stop signal)."""
        if not self.distributed:
            return value
        tensor = torch.tensor(int(value), device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def gather_to_main(self, obj):
        """[obj of rank 0, obj of rank 1, ...] on rank 0 (None elsewhere); every rank calls."""
        if not self.distributed:
            return [obj]
        gathered = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered

    def all_reduce_mean(self, value: float) -> float:
        """The mean of a scalar over all processes (the value itself when not distributed)."""
        if not self.distributed:
            return value
        tensor = torch.tensor(float(value), device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.item() / self.world_size


def setup_runtime(device: str = "auto", dtype: str = "auto", seed: int = 0) -> Runtime:
    """Choose the device, join the DDP group when launched by torchrun, and seed per rank."""
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    chosen = pick_device(device)
    if world_size > 1:
        if chosen.type == "cuda":
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            chosen = torch.device("cuda", local_rank)
            torch.cuda.set_device(chosen)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    if chosen.type == "cuda":
        # TF32 matmuls: ~8x the float32 throughput on Ampere+ for a 10-bit mantissa.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # Each process gets its own stream of randomness (masks, dropout), reproducible per rank.
    seed_everything(seed + rank)
    return Runtime(chosen, pick_autocast_dtype(chosen, dtype), rank, world_size)


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the DDP group cleanly: every rank done, then the group destroyed while Python lives.

    A DDP wrapper keeps the process group alive through reference cycles; if the group's last
    reference went only at interpreter exit, gloo's worker threads would be torn down after
    Python and abort the process (SIGABRT, "terminate called without an active exception").
    So collect those cycles first, wait for every rank, then destroy the group.
    """
    if runtime.distributed and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def move_to(batch, device: torch.device):
    """Move every tensor in a (nested) dict / list / tuple batch to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch
