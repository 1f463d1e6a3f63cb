"""The one training loop every chapter uses.

A chapter supplies only what is its own lesson:

    loss_fn(model, batch) -> (loss, {"name": value, ...})   one training step's objective
    evaluate(model, step) -> {"name": float, ...}            held-out metrics (and pictures)

and `train` does the rest: device placement, AdamW with warmup + cosine, gradient clipping,
autocast, optional `torch.compile`, DDP under `torchrun`, a tqdm bar with live metrics, a JSONL
log, periodic evaluation, atomic checkpoints and `--resume`; with `ema_decay > 0`, an average
of the weights that evaluation uses and checkpoints keep (`ema.py`). See `steps.py` for the
batches and `optimizer_step`, `session.py` for what surrounds the loop, `checkpoint.py`,
`runfolder.py` for the lock and resume's checks.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from worldmodels.config import RunConfig, format_config, to_dict
from worldmodels.runfolder import lock_run_folder
from worldmodels.runtime import Runtime, move_to, teardown_runtime
from worldmodels.session import EvalFn, MetricWindow, TrainingSession
from worldmodels.steps import (
    LossFn,
    LossModule,
    StepSampler,
    build_optimizer,
    optimizer_step,
    set_lr,
)

__all__ = [
    "LossModule", "StepSampler", "announce", "build_optimizer", "optimizer_step", "train",
    "train_and_report",
]  # fmt: skip


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
        session = TrainingSession(
            model, loss_fn, dataset, run, runtime, out_dir, config, evaluate, collate_fn
        )
        window = MetricWindow()  # metrics summed as tensors, read once per log line
        with session:  # signals only set a flag; an error in the loop saves the last whole step
            for batch in session.loader:
                session.begin_step()  # keeps the RNG state to save if this step fails
                lr = set_lr(session.optimizer, run, session.step)
                loss, metrics = optimizer_step(
                    session.step_module, session.optimizer, session.scaler,
                    move_to(batch, runtime.device), run.grad_clip, runtime.autocast(),
                    session.position,  # .updating: an error now leaves half-updated weights
                )  # fmt: skip
                session.update_ema()  # ema = decay * ema + (1 - decay) * weights, when on
                step = session.end_step()  # the update is whole: count it
                window.add({"loss": loss, **metrics})
                if step % run.log_every == 0 or step == run.steps:
                    session.log(lr, window)
                if run.eval_every and step % run.eval_every == 0 and step < run.steps:
                    session.evaluate(step)
                if run.checkpoint_every and step % run.checkpoint_every == 0 and step < run.steps:
                    session.save(step)
                if session.stop_agreed():
                    break
            session.finish()  # the last save, before the final evaluation; a signal stops here
        return session.final_evaluation()
    finally:
        if lock is not None:
            lock.release()


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


def announce(runtime: Runtime, what: str, out_dir: Path, config: Any) -> None:
    """The first lines of every chapter's train.py (main process only): what trains on which
    device and dtype, where it writes, and every config key with its value."""
    if runtime.is_main:
        print(f"{what} on {runtime.device} ({runtime.dtype}), writing to {out_dir}")
        print(format_config(config))
