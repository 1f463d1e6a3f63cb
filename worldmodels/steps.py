"""The pieces of one optimizer step: which samples, the wrapped loss, AdamW and its schedule,
and `optimizer_step` itself, the one update that the trainer and the benchmarks run.

`StepSampler` decides the batches: the indices of step s are a pure function of (seed, s),
so a resumed run sees exactly the batches the uninterrupted run would have. Under DDP the
step's global batch of batch_size * world_size indices is drawn once and rank r takes the
r-th slice: two processes of batch 8 train on the very samples one process of batch 16 does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from worldmodels.config import RunConfig
from worldmodels.schedule import warmup_cosine

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, Any]]]


class StepSampler:
    """Batch indices for steps [start, stop): uniform with replacement, seeded by the step.

    Sampling with replacement from a fixed generator per step makes the data order
    independent of how the run was cut into pieces (resume) and of epoch boundaries.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, rank: int, start: int, stop: int,
        world_size: int = 1,
    ):  # fmt: skip
        if size == 0:
            raise ValueError("the training dataset is empty: nothing to sample batches from")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.size, self.batch_size, self.world_size = size, batch_size, world_size
        self.seed, self.rank, self.start, self.stop = seed, rank, start, stop

    def indices(self, step: int) -> list[int]:
        # A fixed odd-constant mix of (seed, step) gives each step a distinct stream; the
        # global batch is drawn whole and this rank takes its slice of it.
        mixed = (self.seed * 1_000_003 + step * 104_729) % (2**62)
        generator = torch.Generator().manual_seed(mixed)
        drawn = torch.randint(self.size, (self.batch_size * self.world_size,), generator=generator)
        return drawn[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class LossModule(nn.Module):
    """Wraps `model` and `loss_fn` into one module so DDP and torch.compile see the whole step.

    DDP synchronises gradients only for computation that runs through its own forward; a
    chapter's loss may call any method of its model (e.g. `model.masking_loss`), so the step
    itself is what we wrap.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, batch)


def build_optimizer(model: nn.Module, run: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on tensors of 2+ dims (weights, embeddings), not on gains and biases.

    Decaying a norm's gain or a bias only pulls it towards 0 without regularising anything.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": run.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=run.lr, betas=(run.beta1, run.beta2), fused=device.type == "cuda"
    )


def set_lr(optimizer: torch.optim.Optimizer, run: RunConfig, step: int) -> float:
    lr = warmup_cosine(step, run.lr, run.warmup_steps, run.steps, run.min_lr_ratio)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


@dataclass
class StepPosition:
    """Where an exception found the training loop (`faults.save_after_error` reads it)."""

    in_step: bool = False  # inside a step: the weights are still those of the last whole step
    updating: bool = False  # inside the optimizer's update: the weights are half-written


def optimizer_step(
    step_module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: Any,
    grad_clip: float,
    autocast: contextlib.AbstractContextManager,
    position: StepPosition | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One update of the weights; returns (loss, metrics) as tensors, never `.item()`: reading
    a number back is a device sync, which the caller does once per log line, not per step.

    loss = step_module(batch) under `autocast`; backward of scale * loss (the scale is 1 unless
    `scaler` is enabled, for float16); with grad_clip > 0 the gradients are unscaled and
    clipped to a global norm of grad_clip (their norm before clipping joins the metrics as
    "grad_norm"); then the optimizer steps (skipped by the scaler on inf/NaN gradients) and
    the gradients are freed. `position.updating` is set before the update starts: from there
    until the caller counts the step, an exception leaves half-updated weights.
    """
    with autocast:
        loss, metrics = step_module(batch)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        # g <- g * min(1, grad_clip / ||g||), ||g|| over every parameter together
        grad_norm = nn.utils.clip_grad_norm_(step_module.parameters(), grad_clip)
        metrics = {**metrics, "grad_norm": grad_norm}
    if position is not None:
        position.updating = True
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach(), metrics
