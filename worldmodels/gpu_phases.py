"""The phases `gpu_check.py` runs for every chapter, whatever the chapter: build its model,
time its training step in each dtype and compile setting, train it through the shared trainer
(the loss must fall), save, reload and resume the checkpoint, and score it once.

A chapter is described by a `Plan` (gpu_chapters_*.py make one per chapter, importing the
chapter's package inside the function that makes it); the phases here never name a chapter.
"""

from __future__ import annotations

import importlib.util
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from worldmodels.benchmark import StepTiming, time_training_step
from worldmodels.checkpoint import find_checkpoint, load_weights, unwrap
from worldmodels.config import to_dict
from worldmodels.runlog import read_log
from worldmodels.runtime import Runtime, pick_autocast_dtype, seed_everything
from worldmodels.trainer import train, with_run

VARIANTS = (("float32", False), ("bfloat16", False), ("bfloat16", True), ("float32", True))
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Context:
    """What every chapter's plan is made for: the device, the preset (prototype, or debug
    sizes with --tiny) and the benchmark's step counts."""

    device: torch.device
    tiny: bool
    bench_steps: int
    bench_warmup: int

    @property
    def preset(self) -> str:
        return "debug" if self.tiny else "prototype"


def chapter_script(folder: str, name: str) -> ModuleType:
    """A chapter's script (`benchmark.py`, ...) imported by path as `ch<N>_<name>`: scripts are
    not in the chapter's package, and the check runs the chapter's own benchmark code."""
    number = folder.split(".", 1)[0]
    spec = importlib.util.spec_from_file_location(
        f"ch{number}_{name}", REPO_ROOT / folder / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


@dataclass
class Plan:
    """What the check needs of one chapter.

    config       the chapter's run config the training phase uses (its `run` section is the
                 preset's; the check changes steps, checkpoints, logging and out_dir only)
    build_model  () -> a fresh model of `config`
    loss_fn      the trainer's (model, batch) -> (loss, metrics)
    datasets     () -> {"train": ..., held-out sets}: data that needs no extra package
    bench        ({"run.dtype": ..., "run.compile": ...}) -> one benchmark row (the chapter's
                 benchmark.py where it has one, else `bench_row`)
    evaluate     (model, datasets, out_dir) -> metrics: the chapter's evaluator, once
    """

    config: Any
    build_model: Callable[[], nn.Module]
    loss_fn: Callable
    datasets: Callable[[], dict]
    bench: Callable[[dict], dict]
    evaluate: Callable[[nn.Module, dict, Path], dict]
    notes: list[str] = field(default_factory=list)


def peak_memory_MB(device: torch.device) -> dict:
    """CUDA: the most memory allocated since the last reset; CPU: the process's peak RSS (it
    never goes down, so it bounds every step measured so far, not this one alone)."""
    if device.type == "cuda":
        return {"peak_memory_MB": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    rss_kB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return {"process_peak_rss_MB": round(rss_kB / (2**20 if sys.platform == "darwin" else 2**10))}


def bench_row(config, build_model, loss_fn, make_batch, device, steps, warmup, rates) -> dict:
    """A benchmark row for a chapter without a benchmark.py, timed as theirs are
    (`time_training_step`); `rates(config, seconds)` gives its items/s columns."""
    timing: StepTiming = time_training_step(
        config.run, build_model, loss_fn, make_batch, device, warmup, steps
    )
    return {"params_M": timing.params_M(), "batch": config.run.batch_size,
            **timing.columns(**rates(config, timing.seconds))}  # fmt: skip


def skip_reason(dtype: str, compile: bool, device: torch.device, tiny: bool) -> str | None:
    """Why a (dtype, compile) variant is not timed here, or None: compiling is for GPUs, and
    the tiny CPU check times float32 alone (bf16 on a CPU only slows small models)."""
    if device.type != "cuda" and compile:
        return "skipped: cpu (torch.compile is timed on a GPU)"
    if device.type != "cuda" and tiny and dtype != "float32":
        return "skipped: cpu (--tiny times float32 only)"
    return None


def benchmark(plan: Plan, device: torch.device, tiny: bool, deadline: float) -> dict:
    """One row per (dtype, compile) variant; variants left when the phase's budget is spent
    are recorded as skipped, and a variant that fails records its error and the rest go on."""
    rows = []
    for dtype, compile in VARIANTS:
        row = {"dtype": dtype, "compile": compile}
        reason = skip_reason(dtype, compile, device, tiny)
        if reason is None and time.monotonic() > deadline:
            reason = "skipped: the phase's time budget was spent"
        if reason is not None:
            rows.append({**row, "status": reason})
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            measured = plan.bench({"run.dtype": dtype, "run.compile": compile})
            rows.append({**measured, **row, "status": "ok", **peak_memory_MB(device)})
        except Exception as err:  # noqa: BLE001 (recorded; the other variants still run)
            rows.append({**row, "status": f"failed: {type(err).__name__}: {err}"})
    speedups(rows)
    return {"rows": rows}


def speedups(rows: list[dict]) -> None:
    """bf16 over float32 (eager) and compiled over eager (each dtype), where both were timed."""
    rate = {(r["dtype"], r["compile"]): r["steps_per_s"] for r in rows if r["status"] == "ok"}
    for row in rows:
        if row["status"] != "ok":
            continue
        if row["dtype"] == "bfloat16" and not row["compile"] and ("float32", False) in rate:
            row["bf16_speedup"] = round(row["steps_per_s"] / rate["float32", False], 2)
        if row["compile"] and (row["dtype"], False) in rate:
            row["compile_speedup"] = round(row["steps_per_s"] / rate[row["dtype"], False], 2)


def train_config(plan: Plan, out_dir: Path, steps: int, device: torch.device, tiny: bool):
    """The plan's config with the check's run settings: `steps` steps, a checkpoint at the
    end only, every step logged, no evaluation inside (the evaluate phase scores once)."""
    changes = dict(
        steps=steps,
        checkpoint_every=0,
        eval_every=0,
        log_every=1,
        warmup_steps=min(plan.config.run.warmup_steps, max(1, steps // 10)),
        out_dir=str(out_dir),
        progress=False,
        device=str(device),
        num_workers=0,
    )
    if tiny or device.type != "cuda":
        changes["compile"] = False  # compiling is timed (and trained) on a GPU only
    return with_run(plan.config, **changes)  # fmt: skip


def losses_fall(losses: list[float]) -> tuple[bool, float, float]:
    """(did the loss fall, first, mean of the last quarter of the steps): a run whose loss is
    no lower at its end than at its first step has not learned anything."""
    tail = losses[-max(1, len(losses) // 4) :]
    last = sum(tail) / len(tail)
    return last < losses[0], losses[0], last


def train_and_resume(
    plan: Plan,
    datasets: dict,
    device: torch.device,
    out_dir: Path,
    steps: int,
    resume_steps: int,
    tiny: bool,
) -> tuple[nn.Module, dict]:
    """Train `steps` steps, check the loss fell, reload the saved weights into a fresh model
    (they must equal the trained ones), then `--resume` for `resume_steps` more steps. Returns
    (the resumed model, the phase's numbers)."""
    config = train_config(plan, out_dir, steps, device, tiny)
    runtime = Runtime(device, pick_autocast_dtype(device, config.run.dtype))
    seed_everything(config.run.seed)
    model = plan.build_model()
    start = time.perf_counter()
    first = train(model, plan.loss_fn, datasets["train"], config.run, runtime, out_dir,
                  to_dict(config))  # fmt: skip
    seconds = time.perf_counter() - start
    losses = [r["loss"] for r in read_log(out_dir / "log.jsonl") if "loss" in r]
    fell, loss_first, loss_last = losses_fall(losses)
    if not fell:
        raise AssertionError(f"the loss did not fall over {steps} steps: {losses}")
    step_dir = find_checkpoint(out_dir)
    reloaded = plan.build_model()
    load_weights(step_dir, reloaded)
    trained = unwrap(model).state_dict()
    same = all(torch.equal(v.cpu(), trained[k].cpu()) for k, v in reloaded.state_dict().items())
    if not same:
        raise AssertionError(f"the weights reloaded from {step_dir} differ from the trained ones")
    resumed_config = with_run(config, steps=steps + resume_steps, resume=True)
    resumed = plan.build_model()
    result = train(resumed, plan.loss_fn, datasets["train"], resumed_config.run, runtime,
                   out_dir, to_dict(resumed_config))  # fmt: skip
    if result["step"] != steps + resume_steps:
        raise AssertionError(f"resumed to step {result['step']}, not {steps + resume_steps}")
    return resumed, {
        "steps": steps, "batch": config.run.batch_size, "dtype": str(runtime.dtype),
        "compile": config.run.compile, "seconds": round(seconds, 2),
        "steps_per_s": round(steps / seconds, 2), "loss_first": round(loss_first, 4),
        "loss_last": round(loss_last, 4), "loss_fell": fell, "checkpoint": step_dir.name,
        "reloaded_equal": same, "resumed_to_step": result["step"], "first_run_step": first["step"],
    }  # fmt: skip


def evaluate_once(
    plan: Plan, model: nn.Module, datasets: dict, device: torch.device, out_dir: Path
) -> dict:
    """The chapter's evaluator on `model`, as the trainer calls it (no_grad, eval mode,
    the run's autocast); every value a plain float."""
    dtype = pick_autocast_dtype(device, plan.config.run.dtype)
    runtime = Runtime(device, dtype)
    model = unwrap(model).to(device).eval()
    with torch.no_grad(), runtime.autocast():
        metrics = plan.evaluate(model, datasets, out_dir)
    return {k: float(v) if isinstance(v, int | float) else str(v) for k, v in metrics.items()}
