"""The one training loop every chapter uses.

A chapter supplies only what is its own lesson:

    loss_fn(model, batch) -> (loss, {"name": value, ...})   one training step's objective
    evaluate(model, step) -> {"name": float, ...}            held-out metrics (and pictures)

and `train` does the rest: device placement, AdamW with warmup + cosine, gradient clipping,
autocast, optional `torch.compile`, DDP under `torchrun`, a tqdm bar with live metrics, a JSONL
log, periodic evaluation, atomic checkpoints and `--resume` (see `steps.py` for the batches,
`checkpoint.py`, `runfolder.py` for the lock and resume's checks).

What it promises when things go wrong (`faults.py`; tested in tests/test_faults.py):
- SIGINT / SIGTERM only set a flag; the run saves at the next step boundary and stops, so a
  checkpoint never holds a half-updated model or a step mislabelled;
- any other error saves the last whole step before it propagates; the final checkpoint is
  written before the final evaluation; weights are checked finite before every save;
- under DDP, every rank meets every barrier (evaluation runs on rank 0 only), every rank's
  RNG state is saved, and the ranks agree on the step at which they stop.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm  # a text bar: readable in terminals and in stored notebooks alike

from worldmodels.checkpoint import rng_state, save_checkpoint, unwrap
from worldmodels.config import RunConfig, to_dict
from worldmodels.faults import StopRequest, save_after_error
from worldmodels.runfolder import (
    lock_run_folder,
    prepare_out_dir,
    record_final_metrics,
    resume_run,
)
from worldmodels.runlog import RunLog, write_run_info
from worldmodels.runtime import Runtime, move_to, teardown_runtime
from worldmodels.steps import LossFn, LossModule, StepSampler, build_optimizer, set_lr

__all__ = ["LossModule", "StepSampler", "build_optimizer", "train", "train_and_report"]

EvalFn = Callable[[nn.Module, int], dict[str, float]]


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
    `validate.py` can rebuild the model). Evaluation and checkpoints happen on rank 0; other
    ranks may pass `evaluate=None`. Rank 0 holds the run folder's lock throughout.
    """
    out_dir = Path(out_dir)
    lock = lock_run_folder(out_dir, runtime)
    try:
        return _train(model, loss_fn, dataset, run, runtime, out_dir, config, evaluate, collate_fn)
    finally:
        if lock is not None:
            lock.release()


def _train(model, loss_fn, dataset, run, runtime, out_dir, config, evaluate, collate_fn):
    if runtime.is_main:
        prepare_out_dir(out_dir, run.resume)
    runtime.barrier()
    model.to(runtime.device)
    optimizer = build_optimizer(model, run, runtime.device)

    start_step, history, changed = 0, {}, {}
    if run.resume:
        start_step, history, changed = resume_run(out_dir, model, optimizer, run, runtime, config)
    if runtime.is_main:
        extra = {"changed": changed} if changed else {}
        write_run_info(out_dir, config, runtime.device, start_step, **extra)

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
        len(dataset), run.batch_size, run.seed, runtime.rank, start_step, run.steps,
        world_size=runtime.world_size,
    )  # fmt: skip
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
        if evaluate is not None and runtime.is_main:
            plain = unwrap(model)
            plain.eval()
            with torch.no_grad(), runtime.autocast():
                metrics = {f"eval/{k}": float(v) for k, v in evaluate(plain, step).items()}
            plain.train()
            history.update(metrics)
            log.write(step=step, **metrics)
            bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        runtime.barrier()  # met by every rank, whether or not it evaluates

    saved_step = start_step if run.resume else None  # the step whose checkpoint is on disk

    def save(step: int, rng: dict | None = None, collective: bool = True) -> None:
        """Rank 0 writes the checkpoint with every rank's RNG state (gathered: `collective`);
        after an error, rank 0 alone writes its own (other ranks may be stuck)."""
        nonlocal saved_step
        rng = rng or rng_state()
        if collective:
            ranks = runtime.gather_to_main(rng)
        else:
            ranks = [rng] + [None] * (runtime.world_size - 1)
        error = None
        if runtime.is_main:
            state = {"metrics": history, "world_size": runtime.world_size}
            try:
                save_checkpoint(
                    out_dir, step, model, optimizer, config, state, run.keep_checkpoints, ranks
                )
            except Exception as err:  # noqa: BLE001 (re-raised below, on every rank)
                error = err
        if collective and runtime.max_over_ranks(error is not None):
            raise error or RuntimeError(f"rank 0 could not save step {step} (see its error)")
        if error is not None:
            raise error
        saved_step = step

    step = start_step
    window: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    stop, signum = StopRequest(), 0
    in_step = updating = False  # where an exception found the loop (see the except below)
    step_rng = rng_state()  # the RNG state at the start of the step in progress
    model.train()
    with stop:
        try:
            for batch in loader:
                in_step, step_rng = True, rng_state()
                lr = set_lr(optimizer, run, step)
                batch = move_to(batch, runtime.device)
                with runtime.autocast():
                    loss, metrics = step_module(batch)
                scaler.scale(loss).backward()
                if run.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), run.grad_clip)
                    metrics = {**metrics, "grad_norm": grad_norm}
                updating = True  # an exception from here to `step += 1`: half-updated weights
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                in_step = updating = False
                bar.update(1)

                # Accumulate metrics as tensors; .item() (a device sync) once per log line.
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
                # A signal only set a flag; here, between steps, every rank agrees to stop.
                signum = runtime.max_over_ranks(stop.signum or 0)
                if signum:
                    break
        except BaseException as err:
            bar.close()
            # During a step, the RNG state to save is the one from before that step began.
            rng = step_rng if in_step else rng_state()
            last = start_step if saved_step is None else saved_step
            save_after_error(err, step, last, in_step, updating,
                             lambda s: save(s, rng, collective=False))  # fmt: skip
            raise
        bar.close()
        # The final (or interrupted) save comes before the final evaluation, so an error
        # in the evaluation loses nothing. A fresh run of 0 steps saves its initial weights.
        if step != saved_step and (step > start_step or not run.resume):
            save(step)
        if signum:
            if runtime.is_main:
                print(f"\nstopped by signal {signum}: saved step {step} to {out_dir}; "
                      "continue with --resume")  # fmt: skip
            stop.stop(signum)
    if step > start_step or not run.resume:
        run_eval(step)
        if runtime.is_main and evaluate is not None:  # the final metrics beside the weights
            record_final_metrics(out_dir, step, history)
    elif runtime.is_main:
        print(f"{out_dir} is already at step {step} of {run.steps}; raise --steps to go on")
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
