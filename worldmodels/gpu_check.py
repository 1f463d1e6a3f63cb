"""The GPU path, checked in one command: every chapter's `prototype` model built, timed,
trained, checkpointed, resumed and scored, each phase on its own time budget.

    python -m worldmodels.gpu_check --out=runs/gpu_check               # a CUDA GPU: prototype
    python -m worldmodels.gpu_check --out=DIR --device=cpu --tiny      # CI: debug sizes, seconds
    python -m worldmodels.gpu_check --out=DIR --chapters=1,3 --train_steps=100

For every chapter folder that exists (1-5), in this order, four phases:

    build      the chapter's config (prototype; --tiny: its debug sizes, smaller) and model
    benchmark  the trainer's own step timed in float32 and bf16, eager and torch.compile'd
               (the chapter's benchmark.py where it has one, else `worldmodels.benchmark`):
               steps/s, items/s, peak memory, MFU against the measured matmul peak, bf16 and
               compile speed-ups; on a CPU, compiling (and with --tiny, bf16) is skipped
    train      a few hundred (--tiny: a dozen) optimizer steps through the shared trainer on
               the chapter's synthetic data: the loss must fall; the checkpoint is reloaded
               into a fresh model (equal weights) and the run `--resume`d for a few more steps
    evaluate   the chapter's evaluator, once, on the trained model

A phase that fails records its traceback and the check goes on; a phase past its budget is
stopped (SIGALRM) and recorded as failed. Writes DIR/report.json and DIR/report.txt (a short
table); exits 1 if any phase failed.

It needs only torch, numpy, einops, safetensors, tqdm and matplotlib: the chapter packages are
imported from this checkout with no install step (the script puts the repository root on
`sys.path` and finds each chapter package in its folder, as pyproject's package-dir mapping
does: `cd REPO && python -m worldmodels.gpu_check ...` with any Python that has torch), and no
phase reads Atari (ale-py) or video files (PyAV). The report lists which optional packages
were imported on the way (none of ale-py, PyAV and highway-env is: the tests check it; the
driving data is read without highway-env, which only generating it needs).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("ale_py", "av", "highway_env", "gymnasium")  # not needed on the GPU path
# chapter folder -> (package, "module:function" of its plan)
CHAPTERS = {
    "1.video-tokenizer": ("video_tokenizer", "worldmodels.gpu_chapters_video:chapter1"),
    "2.dynamics-model": ("dynamics_model", "worldmodels.gpu_chapters_video:chapter2"),
    "3.occupancy-tokenizer": ("occupancy_tokenizer", "worldmodels.gpu_chapters_driving:chapter3"),
    "4.lidar-tokenizer": ("lidar_tokenizer", "worldmodels.gpu_chapters_driving:chapter4"),
    "5.world-model": ("world_model", "worldmodels.gpu_chapters_driving:chapter5"),
}
PHASES = ("build", "benchmark", "train", "evaluate")


@dataclass
class Options:
    """Build, time, train, resume and score every chapter's prototype model (GPU), or its
    debug sizes with --tiny (CPU, seconds). Writes DIR/report.json and DIR/report.txt."""

    out: str = ""  # the folder of the report and of every chapter's run
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    tiny: bool = False  # the chapters' debug sizes, a dozen steps: the CPU check of the tests
    chapters: str = ""  # comma-separated chapter numbers; "" = every chapter folder there is
    train_steps: int = 0  # optimizer steps of the train phase; 0 = 12 (--tiny) or 300
    resume_steps: int = 0  # steps the resumed run adds; 0 = 2 (--tiny) or 20
    bench_steps: int = 0  # timed steps per benchmark variant; 0 = 2 (--tiny) or 10
    bench_warmup: int = 0  # untimed steps before them; 0 = 1 (--tiny) or 3
    budget_s: float = 0.0  # seconds each phase may take; 0 = 60 (--tiny) or PHASE_BUDGETS


PHASE_BUDGETS = {"build": 120.0, "benchmark": 240.0, "train": 240.0, "evaluate": 120.0}


class PhaseTimeout(Exception):
    """A phase ran past its budget."""


@contextmanager
def budget(seconds: float):
    """Raise PhaseTimeout in this (main) thread after `seconds`; elsewhere, no limit."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise PhaseTimeout(f"over its budget of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_phase(name: str, seconds: float, body: Callable[[float], dict]) -> dict:
    """{"status", "seconds", "budget_s", "result" | "error"}: `body(deadline)` under the
    budget; an exception (or the budget running out) is recorded with its traceback."""
    start = time.monotonic()
    record = {"phase": name, "budget_s": seconds}
    try:
        with budget(seconds):
            record["result"] = body(start + seconds * 0.8)
        record["status"] = "ok"
    except Exception as err:  # noqa: BLE001 (recorded; the check goes on)
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc())  # fmt: skip
    record["seconds"] = round(time.monotonic() - start, 2)
    return record


class ChapterFinder(importlib.abc.MetaPathFinder):
    """Finds a chapter package (`video_tokenizer`, ...) in its chapter folder, as pyproject's
    package-dir mapping does once installed; consulted after the installed packages, and only
    for the chapter packages' names (putting the chapter folders on sys.path would expose
    their scripts, `train`, `benchmark`, ..., as top-level modules too)."""

    def find_spec(self, name, path=None, target=None):
        folder = next((REPO_ROOT / f for f, (package, _) in CHAPTERS.items() if package == name),
                      None)  # fmt: skip
        if folder is None or not folder.is_dir():
            return None
        return importlib.machinery.PathFinder.find_spec(name, [str(folder)])


def add_chapter_paths() -> None:
    """The repository root on sys.path and the chapter packages importable from this checkout,
    with no install step (`ChapterFinder`)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    if not any(isinstance(f, ChapterFinder) for f in sys.meta_path):
        sys.meta_path.append(ChapterFinder())


def load_plan_maker(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


def check_chapter(folder: str, ctx, args: Options, out: Path) -> dict:
    """The four phases of one chapter; a phase that cannot start (no plan) says why."""
    from worldmodels.gpu_phases import benchmark, evaluate_once, train_and_resume

    package, target = CHAPTERS[folder]
    work = out / folder
    loaded_before = {m for m in OPTIONAL if m in sys.modules}
    state: dict = {}
    budgets = {p: args.budget_s or (60.0 if args.tiny else PHASE_BUDGETS[p]) for p in PHASES}

    def build(deadline):
        state["plan"] = plan = load_plan_maker(target)(ctx, work)
        model = plan.build_model()
        params = sum(p.numel() for p in model.parameters())
        return {"preset": ctx.preset, "params_M": round(params / 1e6, 3), "notes": plan.notes}

    def bench(deadline):
        state["bench"] = result = benchmark(state["plan"], ctx.device, ctx.tiny, deadline)
        failed = [r["status"] for r in result["rows"] if r["status"].startswith("failed")]
        if failed:
            raise RuntimeError(f"{len(failed)} variant(s) failed: {failed}")
        return result

    def train(deadline):
        plan = state["plan"]
        state["datasets"] = plan.datasets()
        steps = args.train_steps or (12 if args.tiny else 300)
        resume = args.resume_steps or (2 if args.tiny else 20)
        state["model"], result = train_and_resume(
            plan, state["datasets"], ctx.device, work / "run", steps, resume, ctx.tiny
        )
        return result

    def evaluate(deadline):
        plan = state["plan"]
        model = state.get("model") or plan.build_model().to(ctx.device)  # untrained if need be
        datasets = state.get("datasets") or plan.datasets()
        metrics = evaluate_once(plan, model, datasets, ctx.device, work / "eval")
        return {"trained": "model" in state, **metrics}

    phases = {}
    for name, body in zip(PHASES, (build, bench, train, evaluate)):
        if name != "build" and "plan" not in state:
            phases[name] = {"phase": name, "status": "skipped: the build phase failed"}
            continue
        phases[name] = run_phase(name, budgets[name], body)
        if name == "benchmark" and "bench" in state:  # the rows, also when a variant failed
            phases[name]["result"] = state["bench"]
        print(f"{folder} {name}: {phases[name]['status']} ({phases[name]['seconds']} s)",
              flush=True)  # fmt: skip
    added = sorted({m for m in OPTIONAL if m in sys.modules} - loaded_before)
    return {"chapter": folder, "package": package, "phases": phases, "optional_imports": added}


def main(argv=None) -> dict:
    add_chapter_paths()
    import torch

    from worldmodels.config import parse_command
    from worldmodels.gpu_phases import Context
    from worldmodels.gpu_report import machine_record, write_report
    from worldmodels.runtime import pick_device

    args = parse_command(Options, argv)
    if not args.out:
        raise SystemExit("--out=DIR is required: the folder of the report and the runs")
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    ctx = Context(device, args.tiny, args.bench_steps or (2 if args.tiny else 10),
                  args.bench_warmup or (1 if args.tiny else 3))  # fmt: skip
    wanted = {n.strip() for n in args.chapters.split(",") if n.strip()}
    folders = [f for f in CHAPTERS if (REPO_ROOT / f).is_dir()
               and (not wanted or f.split(".", 1)[0] in wanted)]  # fmt: skip
    start = time.monotonic()
    report = {**machine_record(device, torch), "command": ["-m", "worldmodels.gpu_check",
              *(sys.argv[1:] if argv is None else argv)], "options": vars(args),
              "missing_chapters": [f for f in CHAPTERS if not (REPO_ROOT / f).is_dir()],
              "chapters": []}  # fmt: skip
    for folder in folders:
        report["chapters"].append(check_chapter(folder, ctx, args, out))
    report["seconds"] = round(time.monotonic() - start, 1)
    report["optional_imports"] = sorted(m for m in OPTIONAL if m in sys.modules)
    report["ok"] = all(p["status"] == "ok" for c in report["chapters"]
                       for p in c["phases"].values())  # fmt: skip
    print(write_report(report, out))
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
