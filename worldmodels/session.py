"""What surrounds the training loop, so that `trainer.train` reads as the loop itself.

`TrainingSession` sets a run up (run folder, optimizer, the weight average, `--resume`,
torch.compile, DDP, the loss scaler, the batches, the log, the progress bar), then serves the
loop: `save` and `evaluate` at its checkpoints, `begin_step`/`update_ema`/`end_step` around
each update, and, as a context manager, the fault rules of `faults.py`: while inside,
SIGINT/SIGTERM only set a flag, and an error raised by the loop saves the last whole step
before it propagates. `MetricWindow` averages the logged metrics with one device sync per
log line.
"""

from __future__ import annotations

import contextlib
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
from worldmodels.config import RunConfig
from worldmodels.ema import EMA
from worldmodels.faults import StopRequest, save_after_error
from worldmodels.runfolder import prepare_out_dir, record_final_metrics, resume_run
from worldmodels.runlog import RunLog, write_run_info
from worldmodels.runtime import Runtime
from worldmodels.steps import LossFn, LossModule, StepPosition, StepSampler, build_optimizer

EvalFn = Callable[[nn.Module, int], dict[str, float]]


class MetricWindow:
    """Sums each step's metrics as tensors; `flush` turns them into means for one log line.

    Reading a tensor's value (`float(t)`, `.item()`) waits for the device, so it happens once
    per metric per log line, never per step.
    """

    def __init__(self):
        self._restart()

    def _restart(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps, self.start = 0, time.perf_counter()

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            value = torch.as_tensor(value).detach().float()
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1

    def flush(self, step: int) -> tuple[dict[str, float], float]:
        """(mean of each metric over the window, steps per second); starts a new window."""
        means = {k: float(v) / self.steps for k, v in self.sums.items()}
        if not all(math.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"non-finite metrics at step {step}: {means}")
        speed = self.steps / (time.perf_counter() - self.start)
        self._restart()
        return means, speed


class TrainingSession:
    """One run's state around the loop; `with session:` is where the loop runs."""

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, dataset: Dataset, run: RunConfig,
        runtime: Runtime, out_dir: Path, config: dict[str, Any], evaluate: EvalFn | None,
        collate_fn: Callable | None,
    ):  # fmt: skip
        self.model, self.run, self.runtime, self.out_dir = model, run, runtime, out_dir
        self.config, self.evaluate_fn = config, evaluate
        if runtime.is_main:
            prepare_out_dir(out_dir, run.resume)
        runtime.barrier()
        model.to(runtime.device)
        self.optimizer = build_optimizer(model, run, runtime.device)
        # The weight average (RunConfig.ema_decay > 0): what evaluation and ema.safetensors use.
        self.ema = EMA(unwrap(model), run.ema_decay) if run.ema_decay > 0 else None
        self.start_step, self.history, changed = 0, {}, {}
        if run.resume:
            self.start_step, self.history, changed = resume_run(
                out_dir, model, self.optimizer, run, runtime, config, self.ema
            )
        if runtime.is_main:
            extra = {"changed": changed} if changed else {}
            write_run_info(out_dir, config, runtime.device, self.start_step, **extra)
        if run.compile:
            # Compile the model's forward in place (methods such as `masking_loss` call it
            # too). Compiling the LossModule wrapper instead returned a loss detached from the
            # graph (torch 2.15, CPU), so the model is what gets compiled.
            model.compile()
        self.step_module: nn.Module = LossModule(model, loss_fn)
        if runtime.distributed:
            device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.step_module = DistributedDataParallel(self.step_module, device_ids=device_ids)
        # float16 needs loss scaling to keep small gradients from flushing to zero; bf16 not.
        self.scaler = torch.amp.GradScaler(enabled=runtime.dtype == torch.float16)
        self.loader = self._loader(dataset, collate_fn)
        self.log_file = RunLog(out_dir / "log.jsonl", enabled=runtime.is_main)
        self.bar = tqdm(
            total=run.steps, initial=self.start_step, desc=out_dir.name, dynamic_ncols=True,
            disable=not (run.progress and runtime.is_main),
            # A terminal redraws the bar in place; elsewhere (notebooks, logs) each redraw is
            # a new line, so redraw rarely there.
            mininterval=1.0 if sys.stderr.isatty() else 20.0,
        )  # fmt: skip
        self.step = self.start_step  # optimizer steps done
        self.saved_step = self.start_step if run.resume else None  # the step on disk
        self.stop, self.signum = StopRequest(), 0
        self.position = StepPosition()  # where an exception would find the loop
        self.step_rng = rng_state()  # the RNG state at the start of the step in progress
        self.looping = False

    def _loader(self, dataset: Dataset, collate_fn: Callable | None) -> DataLoader:
        run, runtime = self.run, self.runtime
        sampler = StepSampler(
            len(dataset), run.batch_size, run.seed, runtime.rank, self.start_step, run.steps,
            world_size=runtime.world_size,
        )  # fmt: skip
        # The loader's own generator seeds its workers; without one it would draw from the
        # global RNG, and a resumed run (which makes its loader after restoring that RNG)
        # would drift.
        return DataLoader(
            dataset, batch_sampler=sampler, num_workers=run.num_workers, collate_fn=collate_fn,
            pin_memory=runtime.device.type == "cuda",
            generator=torch.Generator().manual_seed(run.seed + self.start_step),
        )  # fmt: skip

    # ----------------------------------------------------------------- around one step

    def begin_step(self) -> None:
        self.position.in_step, self.step_rng = True, rng_state()

    def update_ema(self) -> None:
        """After the optimizer's update: ema = decay * ema + (1 - decay) * weights (if on).
        Still inside the update (`position.updating`): an error here saves nothing."""
        if self.ema is not None:
            self.ema.update(unwrap(self.model))

    def end_step(self) -> int:
        """The update is whole: count it. Returns the number of steps done."""
        self.step += 1
        self.position = StepPosition()
        self.bar.update(1)
        return self.step

    def log(self, lr: float, window: MetricWindow) -> None:
        means, speed = window.flush(self.step)
        samples = speed * self.run.batch_size * self.runtime.world_size
        self.log_file.write(step=self.step, lr=lr, steps_per_s=speed, samples_per_s=samples,
                            **means)  # fmt: skip
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in {**means, "lr": lr}.items()}, refresh=False)

    def stop_agreed(self) -> bool:
        """A signal only set a flag; here, between steps, every rank agrees to stop."""
        self.signum = self.runtime.max_over_ranks(self.stop.signum or 0)
        return bool(self.signum)

    def evaluate(self, step: int) -> None:
        """Held-out metrics of the model, with the EMA weights when the run keeps an EMA (the
        model's own are back in place after)."""
        if self.evaluate_fn is not None and self.runtime.is_main:
            plain = unwrap(self.model)
            plain.eval()
            averaged = contextlib.nullcontext() if self.ema is None else self.ema.applied(plain)
            with torch.no_grad(), self.runtime.autocast(), averaged:
                metrics = {f"eval/{k}": float(v) for k, v in self.evaluate_fn(plain, step).items()}
            plain.train()
            self.history.update(metrics)
            self.log_file.write(step=step, **metrics)
            self.bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        self.runtime.barrier()  # met by every rank, whether or not it evaluates

    def save(self, step: int, rng: dict | None = None, collective: bool = True) -> None:
        """Rank 0 writes the checkpoint with every rank's RNG state (gathered: `collective`);
        after an error, rank 0 alone writes its own (other ranks may be stuck)."""
        runtime = self.runtime
        rng = rng or rng_state()
        ranks = (
            runtime.gather_to_main(rng) if collective else [rng] + [None] * (runtime.world_size - 1)
        )
        error = None
        if runtime.is_main:
            state = {"metrics": self.history, "world_size": runtime.world_size}
            try:
                save_checkpoint(self.out_dir, step, self.model, self.optimizer, self.config,
                                state, self.run.keep_checkpoints, ranks, self.ema)  # fmt: skip
            except Exception as err:  # noqa: BLE001 (re-raised below, on every rank)
                error = err
        if collective and runtime.max_over_ranks(error is not None):
            raise error or RuntimeError(f"rank 0 could not save step {step} (see its error)")
        if error is not None:
            raise error
        self.saved_step = step

    # ----------------------------------------------------------------- around the loop

    def __enter__(self) -> TrainingSession:
        self.model.train()
        self.stop.__enter__()
        self.looping = True
        return self

    def __exit__(self, exc_type, err, traceback) -> None:
        try:
            if err is not None and self.looping:  # raised by the loop: save what is whole
                self.bar.close()
                # During a step, the RNG state to save is the one from before it began.
                rng = self.step_rng if self.position.in_step else rng_state()
                last = self.start_step if self.saved_step is None else self.saved_step
                save_after_error(err, self.step, last, self.position.in_step,
                                 self.position.updating,
                                 lambda s: self.save(s, rng, collective=False))  # fmt: skip
        finally:
            self.stop.__exit__(exc_type, err, traceback)

    def finish(self) -> None:
        """After the loop: the final (or interrupted) save comes before the final evaluation,
        so an error in the evaluation loses nothing (a fresh run of 0 steps saves its initial
        weights); then a signal stops the run, with the exit it asked for."""
        self.looping = False
        self.bar.close()
        step, run = self.step, self.run
        if step != self.saved_step and (step > self.start_step or not run.resume):
            self.save(step)
        if self.signum:
            if self.runtime.is_main:
                print(f"\nstopped by signal {self.signum}: saved step {step} to {self.out_dir}; "
                      "continue with --resume")  # fmt: skip
            self.stop.stop(self.signum)

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate the final weights (unless a resumed run had nothing left to do)."""
        step, runtime = self.step, self.runtime
        if step > self.start_step or not self.run.resume:
            self.evaluate(step)
            if runtime.is_main and self.evaluate_fn is not None:  # metrics beside the weights
                record_final_metrics(self.out_dir, step, self.history)
        elif runtime.is_main:
            print(f"{self.out_dir} is already at step {step} of {self.run.steps}; "
                  "raise --steps to go on")  # fmt: skip
        return {"step": step, "out_dir": str(self.out_dir), **self.history}
