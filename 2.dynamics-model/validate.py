"""Score trained chapter-2 models on held-out episodes and draw what they do.

    uv run 2.dynamics-model/validate.py                         # the three debug runs
    uv run 2.dynamics-model/validate.py runs/2.dynamics-model/maskgit-debug --temperature=1
    uv run 2.dynamics-model/validate.py RUN [RUN ...] --figures=2.dynamics-model/figures
    uv run 2.dynamics-model/validate.py --help                  # every option, typed

Every difference is paired clip by clip and carries a 95% interval from a seeded bootstrap
over the held-out episodes the clips come from (`worldmodels.metrics.bootstrap`); a table cell
reads `estimate [low, high]`, and says "contains 0" when it does.

Each run's saved config says its kind. MaskGIT and AR runs are scored by teacher-forced
cross-entropy (beside the unigram baseline), rollout PSNR 1..8 frames ahead (beside copying
the last frame, in pixels and through the tokenizer, and the tokenizer's ceiling), ΔtPSNR
(true minus random actions, overall and per game) and sampling time per frame; LAM runs by
the NMI of latent vs true actions (beside shuffled labels). An AR run on temporally compressed
tokens (`--tokenizer=1.video-tokenizer/pretrained-t3`) is scored on the last latent frame of
each clip: teacher-forced CE, and the PSNR of the t frames it decodes to. Prints one
markdown table with a
column per run and writes into `<run>/validation/`:
  metrics.json          every number
  rollout.png           real / generated rows, one clip per game
  rollout.gif           real (left) and generated (right), one clip per game stacked
  psnr_vs_horizon.png   PSNR against frames ahead, with the baselines
  lam_confusion.png     P(latent action | true action) per game (LAM runs)
`--figures=DIR` also copies the pictures there as `<kind>_<name>` (the README's figures);
`--results=DIR` writes `<run>.json` there: the metrics with the training command, the commit
and the machine (`2.dynamics-model/results/` holds the README's numbers, made this way).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from dynamics_model.build import build_datasets, load_run, make_evaluator
from dynamics_model.config import KINDS, MAX_HORIZON
from dynamics_model.figures import (
    generated_strip_frames,
    plot_confusion,
    plot_psnr_vs_horizon,
    save_rollout_strip,
)
from dynamics_model.tokens import CHAPTER_DIR, load_tokenizer

from worldmodels.checkpoint import write_json_atomic
from worldmodels.config import at_least, override, parse_command, require
from worldmodels.data.atari import ACTION_MEANINGS
from worldmodels.metrics.bootstrap import mean_interval
from worldmodels.runlog import git_commit, validation_record, write_results
from worldmodels.runtime import pick_device, seed_everything
from worldmodels.viz.frames import side_by_side_gif

RUNS_DIR = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name


@dataclass
class Options:
    """validate.py's options (`--key=value`; run folders as plain words)."""

    runs: tuple[str, ...] = ()  # run or checkpoint folders; () = the debug runs that exist
    clips: int = 512  # held-out clips for teacher-forced CE and NMI
    rollout_clips: int = 96  # held-out clips rolled out
    horizon: int = MAX_HORIZON  # frames rolled out
    temperature: float | None = None  # replaces the run's sample.temperature
    maskgit_steps: int | None = None  # replaces the run's sample.maskgit_steps
    device: str = "auto"
    out_name: str = "validation"  # folder in the run for the results (e.g. a second study)
    figures: str = ""  # also copy the pictures to this folder (the README's figures)
    results: str = ""  # also write <run>.json here: metrics + train command + commits

    def __post_init__(self):
        at_least(self, 1, "clips", "rollout_clips")
        require(self, "horizon", 1 <= self.horizon <= MAX_HORIZON, f"in [1, {MAX_HORIZON}]")


def validate_run(path: Path | str, args: Options) -> dict:
    """Full held-out evaluation of one run; writes its metrics.json and pictures."""
    seed_everything(0)
    model, config, step_dir = load_run(path, pick_device(args.device))
    changes = {"sample.temperature": args.temperature, "sample.maskgit_steps": args.maskgit_steps}
    config = override(config, {k: v for k, v in changes.items() if v is not None})
    sample = config.sample
    tokenizer, _ = load_tokenizer(config.data.tokenizer, next(model.parameters()).device)
    out_dir = step_dir.parent.parent / args.out_name
    out_dir.mkdir(parents=True, exist_ok=True)

    datasets = build_datasets(config, progress=False)
    evaluator = make_evaluator(
        config,
        datasets,
        tokenizer,
        full=True,
        horizon=args.horizon,
        eval_clips=args.clips,
        rollout_clips=args.rollout_clips,
    )
    with torch.no_grad():
        scores = evaluator(model, step=0)
    pictures = []
    if config.kind == "lam":
        pictures.append(out_dir / "lam_confusion.png")
        plot_confusion(
            evaluator.last_lam, datasets["val"].game_names, ACTION_MEANINGS, pictures[-1]
        )
    else:
        pictures.append(out_dir / "rollout.png")
        context = config.data.context_frames
        if config.data.temporal_compression > 1:  # all but the last latent's t frames
            context = config.data.clip_len - evaluator.horizon
        save_rollout_strip(
            evaluator.last,
            pictures[-1],
            f"{config.kind}: real / generated, {context} context frames "
            f"then {evaluator.horizon} generated (held-out episodes)",
        )
        real, generated = generated_strip_frames(evaluator.last)
        pictures.append(side_by_side_gif(real, generated, out_dir / "rollout.gif", fps=4, scale=2))
        pictures.append(out_dir / "psnr_vs_horizon.png")
        plot_psnr_vs_horizon({config.kind: scores}, pictures[-1])
    metrics = {
        **validation_record(config.kind, step_dir, "95%, seeded bootstrap over held-out episodes"),
        "clips": args.clips,
        "rollout_clips": args.rollout_clips,
        **({} if config.kind == "lam" else {"temperature": sample.temperature}),
        **({"maskgit_steps": sample.maskgit_steps} if config.kind == "maskgit" else {}),
        **{k: round(v, 4) for k, v in scores.items()},
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    if args.results:  # the committed copy: the numbers, and how the run and they were made
        suffix = "" if args.out_name == "validation" else f"-{args.out_name}"
        if Path(path).name.startswith("step_"):  # a checkpoint of a run, not its latest
            suffix = f"-{Path(path).name}{suffix}"
        run_dir = step_dir.parent.parent
        write_results(args.results, f"{run_dir.name}{suffix}", metrics, run_dir)
    metrics["pictures"] = [str(p) for p in pictures]
    metrics["per_clip"] = getattr(evaluator, "per_clip", {})  # not saved: for paired_vs_first
    return metrics


def paired_vs_first(results: dict[str, dict]) -> None:
    """For every run after the first that was scored on the same clips (same kind of data,
    games and clip counts), add `<score>_minus_first` with a 95% interval over episodes:
    the difference of two models clip by clip (e.g. MaskGIT minus AR, Genie's masking minus
    the cosine schedule), which intervals of each model alone cannot give."""
    first = next(iter(results.values()))
    for metrics in list(results.values())[1:]:
        for key, (values, episodes) in metrics["per_clip"].items():
            if key not in first["per_clip"]:
                continue
            base_values, base_episodes = first["per_clip"][key]
            if values.shape != base_values.shape or not (episodes == base_episodes).all():
                continue  # other clips: no paired difference
            interval = mean_interval(values - base_values, episodes)
            metrics.update(interval.as_dict(f"{key}_minus_first"))


def _cell(metrics: dict, key: str) -> str:
    """'0.123', or '+0.52 [+0.31, +0.74]' where the metric has a 95% interval ('contains 0'
    is written out when it does)."""
    value = metrics.get(key)
    if not isinstance(value, float):
        return "-"
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is None or high is None:
        return f"{value:.3f}"
    text = f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"
    return text if low > 0 or high < 0 else f"{text}, contains 0"


def markdown_table(results: dict[str, dict]) -> str:
    """One row per metric, one column per run; '-' where a run has no such metric. A metric
    with an interval shows it in its cell (95%, bootstrap over held-out episodes)."""
    keys: list[str] = []
    for metrics in results.values():
        keys += [
            k
            for k, v in metrics.items()
            if isinstance(v, float) and k not in keys and not k.endswith(("_ci_low", "_ci_high"))
        ]
    lines = ["| metric | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_cell(m, key) for m in results.values()) + " |")
    return "\n".join(lines)


def default_runs() -> list[str]:
    """The debug runs that exist (all three kinds), or the MaskGIT one to fail clearly on."""
    runs = [RUNS_DIR / f"{kind}-debug" for kind in KINDS]
    return [str(r) for r in runs if r.exists()] or [str(runs[0])]


def main(argv=None) -> dict[str, dict]:
    args = parse_command(Options, argv, positional="runs")

    results = {}
    for run in args.runs or default_runs():
        metrics = validate_run(run, args)
        results[f"{Path(run).name} ({metrics['kind']})"] = metrics
        print(f"{run}: metrics.json and pictures in {Path(metrics['pictures'][0]).parent}")
    paired_vs_first(results)
    if args.results and len(results) > 1:
        pairs = {
            name: {k: v for k, v in m.items() if "_minus_first" in k}
            for name, m in list(results.items())[1:]
        }
        names = "-vs-".join(Path(run).name for run in args.runs)
        write_json_atomic(
            Path(args.results) / f"paired-{names}.json",
            {"first": next(iter(results)), "command": "validate.py " + " ".join(sys.argv[1:]),
             "git_commit": git_commit(), **pairs},
        )  # fmt: skip
    print()
    print(markdown_table(results))
    if args.figures:
        figures = Path(args.figures)
        figures.mkdir(parents=True, exist_ok=True)
        for metrics in results.values():
            for picture in metrics["pictures"]:
                shutil.copy(picture, figures / f"{metrics['kind']}_{Path(picture).name}")
        dynamics = {k: m for k, m in results.items() if m["kind"] != "lam"}
        if dynamics:
            plot_psnr_vs_horizon(dynamics, figures / "psnr_vs_horizon.png")
    print(json.dumps({k: m["checkpoint"] for k, m in results.items()}, indent=2))
    return results


if __name__ == "__main__":
    main()
