"""The one training loop every chapter uses.

A chapter supplies only what is its own lesson:

    loss_fn(model, batch) -> (loss, {"name": value, ...})   one training step's objective
    evaluate(model, step) -> {"name": float, ...}            held-out metrics (and pictures)

and `train` does the rest: device placement, AdamW with warmup + cosine, gradient clipping,
autocast, optional `torch.compile`, DDP under `torchrun`, a tqdm bar with live metrics, a JSONL
log, periodic evaluation, atomic checkpoints, `--resume`, and a checkpoint on Ctrl-C so that
an interrupted run loses nothing.

Batches are drawn by `StepSampler`: the indices of step s are a pure function of
(seed, rank, s), so a resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm  # a text bar: readable in terminals and in stored notebooks alike

from worldmodels.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint, unwrap
from worldmodels.config import RunConfig, to_dict
from worldmodels.runlog import RunLog, write_run_info
from worldmodels.runtime import Runtime, move_to, teardown_runtime
from worldmodels.schedule import warmup_cosine

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, Any]]]
EvalFn = Callable[[nn.Module, int], dict[str, float]]


class StepSampler:
    """Batch indices for steps [start, stop): uniform with replacement, seeded by the step.

    Sampling with replacement from a fixed generator per step makes the data order
    independent of how the run was cut into pieces (resume) and of epoch boundaries.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int, start: int, stop: int):
        if size == 0:
            raise ValueError("the training dataset is empty: nothing to sample batches from")
        self.size, self.batch_size = size, batch_size
        self.seed, self.rank, self.start, self.stop = seed, rank, start, stop

    def indices(self, step: int) -> list[int]:
        # A fixed odd-constant mix of (seed, rank, step) gives each a distinct stream.
        mixed = (self.seed * 1_000_003 + self.rank * 7_919 + step * 104_729) % (2**62)
        generator = torch.Generator().manual_seed(mixed)
        return torch.randint(self.size, (self.batch_size,), generator=generator).tolist()

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


def _set_lr(optimizer: torch.optim.Optimizer, run: RunConfig, step: int) -> float:
    lr = warmup_cosine(step, run.lr, run.warmup_steps, run.steps, run.min_lr_ratio)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _prepare_out_dir(out_dir: Path, resume: bool, is_main: bool) -> None:
    """A fresh run never mixes with an old one: the old folder is kept under a new name."""
    has_old = (out_dir / "checkpoints").is_dir() or (out_dir / "log.jsonl").exists()
    if resume or not has_old or not is_main:
        return
    kept = out_dir.with_name(f"{out_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(out_dir), str(kept))
    print(f"{out_dir} held an earlier run; moved it to {kept} (use --resume to continue one)")


def _format(metrics: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in metrics.items()}


def train(
    model: nn.Module,
    loss_fn: LossFn,
    dataset: Dataset,
    run: RunConfig,
    runtime: Runtime,
    out_dir: Path,
    config: dict[str, Any],
    evaluate: EvalFn | None = None,
    collate_fn: Callable | None = None,
) -> dict[str, Any]:
    """Train `model` for `run.steps` optimizer steps; returns the final metrics.

    `config` is the full run config as a dict (saved beside every checkpoint so that
    `validate.py` can rebuild the model). Evaluation and checkpoints happen on rank 0.
    """
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, run.resume, runtime.is_main)
    runtime.barrier()
    model.to(runtime.device)
    optimizer = build_optimizer(model, run, runtime.device)

    start_step, history = 0, {}
    if run.resume:
        state = load_checkpoint(find_checkpoint(out_dir), model, optimizer)
        start_step, history = state["step"], state.get("metrics", {})
        if runtime.is_main:
            print(f"resuming from {state['checkpoint']} at step {start_step}")
    if runtime.is_main:
        write_run_info(out_dir, config, runtime.device, resumed_from_step=start_step)

    if run.compile:
        # Compile the model's forward in place (methods such as `masking_loss` call it too).
        # Compiling the LossModule wrapper instead returned a loss detached from the graph
        # (torch 2.15, CPU), so the model is what gets compiled.
        model.compile()
    step_module: nn.Module = LossModule(model, loss_fn)
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        step_module = DistributedDataParallel(step_module, device_ids=device_ids)

    # float16 needs loss scaling to keep small gradients from flushing to zero; bf16 does not.
    scaler = torch.amp.GradScaler(enabled=runtime.dtype == torch.float16)

    sampler = StepSampler(
        len(dataset), run.batch_size, run.seed, runtime.rank, start_step, run.steps
    )
    # The loader's own generator seeds its workers; without one it would draw from the global
    # RNG, and a resumed run (which creates its loader after restoring that RNG) would drift.
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=run.num_workers,
        collate_fn=collate_fn,
        pin_memory=runtime.device.type == "cuda",
        generator=torch.Generator().manual_seed(run.seed + start_step),
    )
    log = RunLog(out_dir / "log.jsonl", enabled=runtime.is_main)
    bar = tqdm(
        total=run.steps,
        initial=start_step,
        disable=not (run.progress and runtime.is_main),
        desc=out_dir.name,
        dynamic_ncols=True,
        # In a terminal the bar redraws in place; elsewhere (notebooks, logs) each redraw is a
        # new line, so redraw rarely there.
        mininterval=1.0 if sys.stderr.isatty() else 20.0,
    )

    def run_eval(step: int) -> None:
        if evaluate is None:
            return
        if runtime.is_main:
            plain = unwrap(model)
            plain.eval()
            with torch.no_grad(), runtime.autocast():
                metrics = {f"eval/{k}": float(v) for k, v in evaluate(plain, step).items()}
            plain.train()
            history.update(metrics)
            log.write(step=step, **metrics)
            bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        runtime.barrier()

    def save(step: int) -> None:
        if runtime.is_main:
            save_checkpoint(
                out_dir,
                step,
                model,
                optimizer,
                config,
                {"metrics": history},
                keep=run.keep_checkpoints,
            )
        runtime.barrier()

    step = start_step
    window: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    model.train()
    try:
        for batch in loader:
            lr = _set_lr(optimizer, run, step)
            batch = move_to(batch, runtime.device)
            with runtime.autocast():
                loss, metrics = step_module(batch)
            scaler.scale(loss).backward()
            if run.grad_clip > 0:
                scaler.unscale_(optimizer)
                grad_norm = nn.utils.clip_grad_norm_(model.parameters(), run.grad_clip)
                metrics = {**metrics, "grad_norm": grad_norm}
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)

            # Accumulate metrics as tensors; .item() (a device sync) only once per log line.
            for key, value in {"loss": loss.detach(), **metrics}.items():
                window[key] = window.get(key, 0.0) + torch.as_tensor(value).detach().float()
            window_steps += 1
            if step % run.log_every == 0 or step == run.steps:
                seconds = time.perf_counter() - window_start
                means = {k: float(v) / window_steps for k, v in window.items()}
                if not all(math.isfinite(v) for v in means.values()):
                    raise FloatingPointError(f"non-finite metrics at step {step}: {means}")
                speed = window_steps / seconds
                log.write(
                    step=step,
                    lr=lr,
                    steps_per_s=speed,
                    samples_per_s=speed * run.batch_size * runtime.world_size,
                    **means,
                )
                bar.set_postfix(_format({**means, "lr": lr}), refresh=False)
                window, window_start, window_steps = {}, time.perf_counter(), 0
            if run.eval_every and step % run.eval_every == 0 and step < run.steps:
                run_eval(step)
            if run.checkpoint_every and step % run.checkpoint_every == 0 and step < run.steps:
                save(step)
    except KeyboardInterrupt:
        bar.close()
        if step > start_step:
            save(step)
            if runtime.is_main:
                print(f"\ninterrupted: saved step {step} to {out_dir}; continue with --resume")
        raise
    bar.close()
    if step > start_step or not (out_dir / "checkpoints").exists():
        run_eval(step)
        save(step)
    return {"step": step, "out_dir": str(out_dir), **history}


def train_and_report(
    model: nn.Module,
    loss_fn: LossFn,
    datasets: dict[str, Dataset],
    config: Any,
    runtime: Runtime,
    out_dir: Path,
    evaluate: EvalFn | None = None,
) -> dict[str, Any]:
    """The end of every chapter's `train.py`: say how big the model and the data are, train
    on datasets["train"] with `config.run`, print the final metrics, and leave the DDP group.
    `config` is the chapter's dataclass config (saved beside the checkpoints)."""
    if runtime.is_main:
        params = sum(p.numel() for p in model.parameters())
        sizes = ", ".join(f"{split} clips: {len(data)}" for split, data in datasets.items())
        print(f"{params / 1e6:.2f} M parameters; {sizes}")
    result = train(
        model, loss_fn, datasets["train"], config.run, runtime, out_dir, to_dict(config), evaluate
    )
    if runtime.is_main:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    teardown_runtime(runtime)
    return result


def default_out_dir(chapter_dir: Path, preset: str, run: RunConfig) -> Path:
    """`runs/<chapter>/<preset>` at the repository root, unless --out_dir says otherwise."""
    if run.out_dir:
        return Path(run.out_dir).expanduser().resolve()
    repo_root = Path(chapter_dir).resolve().parent
    return repo_root / "runs" / Path(chapter_dir).name / preset


def with_run(config, **changes):
    """A copy of a chapter config with fields of its `run` section changed."""
    return dataclasses.replace(config, run=dataclasses.replace(config.run, **changes))
