"""Score trained chapter-3 tokenizers on held-out driving sequences, beside the codec.

    uv run 3.occupancy-tokenizer/validate.py                        # runs/.../scene-debug
    uv run 3.occupancy-tokenizer/validate.py runs/3.occupancy-tokenizer/multiscale-debug
    uv run 3.occupancy-tokenizer/validate.py RUN --results=3.occupancy-tokenizer/results
    uv run 3.occupancy-tokenizer/validate.py --help                 # every option, typed

Every frame (4d: every clip) of "val" (unseen sequences of the training scenarios) and
"heldout" (the roundabout scenario, never trained on) is reconstructed and scored: mIoU over
the 17 classes and geometry IoU, in Occ3D's convention (a class absent from truth and
prediction is left out) and OccWorld's (a class absent from the truth scores 1), over every
voxel and inside the LiDAR visibility mask; per-class IoU; codebook usage and perplexity;
tokens and bits per frame against the raw grid. The non-learned codec at the same token grid
(`occupancy_tokenizer/codec.py`) is scored on the same frames, and each model-minus-codec
difference carries a 95% interval from a seeded bootstrap over sequences; a cell reads
`estimate [low, high]` and says "contains 0" when it does. A multi-scale run also reports
the reconstruction after each scale; a 4D run is scored at its temporal compression. With
several runs, each later run's scores minus the first run's on the same items are printed with
their 95% intervals (paired over sequences; `--results` also writes them to
`paired_<first>_vs_<...>.json`).

Writes into `<run>/validation/`: metrics.json, bev_val.png and bev_heldout.png (original |
reconstruction | codec from above), per_class.png, training.png, and coarse_to_fine.png
(multi-scale). `--figures=DIR` copies the pictures there as `<kind>_<name>`; `--results=DIR`
writes `<run>.json` there: the metrics with the training command, the commit and the machine;
`--export=DIR` copies the trained tokenizer to `DIR/<run>` (how `pretrained/` was made, read
by `occupancy_tokenizer.pretrained.load_tokenizer`).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from occupancy_tokenizer.build import build_datasets, load_run, make_evaluator
from occupancy_tokenizer.config import CHAPTER_DIR
from occupancy_tokenizer.evaluate import token_cell
from occupancy_tokenizer.figures import (
    plot_coarse_to_fine,
    plot_per_class,
    plot_training,
    save_bev_rows,
)
from occupancy_tokenizer.scoring import difference_interval
from occupancy_tokenizer.tables import (
    SETS,
    classes_by_run_table,
    other_table,
    paired_table,
    per_class_table,
    runs_table,
    scales_table,
    scores_table,
)

from worldmodels.checkpoint import write_json_atomic
from worldmodels.config import at_least, parse_command
from worldmodels.runlog import export_checkpoint, validation_record, write_results
from worldmodels.runtime import pick_device, seed_everything

RUNS_DIR = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name


@dataclass
class Options:
    """validate.py's options (`--key=value`; run folders as plain words)."""

    runs: tuple[str, ...] = ()  # run or checkpoint folders; () = runs/.../scene-debug
    frames: int = 0  # frames (4d: clips) per held-out set, evenly spread; 0 = every one
    bootstrap: int = 1000  # bootstrap resamples of the sequences per interval
    device: str = "auto"
    out_name: str = "validation"  # folder in the run for the results
    figures: str = ""  # also copy the pictures to this folder (the README's figures)
    results: str = ""  # also write <run>.json here: metrics + train command + commit
    export: str = ""  # also copy the checkpoint + metrics to DIR/<run> (how pretrained/ is made)

    def __post_init__(self):
        at_least(self, 0, "frames")
        at_least(self, 10, "bootstrap")


def draw(evaluator, model, config, metrics: dict, out_dir: Path, run_dir: Path) -> list[Path]:
    pictures = []
    for name, shown in evaluator.last.items():
        columns = {k: v for k, v in shown.items() if k != "scales"}
        step = max(1, len(columns["original"]) // 4)
        pictures.append(save_bev_rows(
            {k: v[::step][:4] for k, v in columns.items()}, out_dir / f"bev_{name}.png",
            f"{config.kind} tokenizer on {name}: original | reconstruction | codec, from above",
        ))  # fmt: skip
        if "scales" in shown and name == "val":
            scales = model.quantizer.scales
            scores = [metrics[f"val_scale{k + 1}_{s}x{s}_mIoU_occ3d"] for k, s in enumerate(scales)]
            one = slice(len(shown["original"]) // 2, len(shown["original"]) // 2 + 1)
            pictures.append(plot_coarse_to_fine(
                shown["original"][one], [p[one] for p in shown["scales"]], scales,
                out_dir / "coarse_to_fine.png", scores,
            ))  # fmt: skip
    bars = {f"{s} {w}": v for s, d in evaluator.per_class.items() for w, v in d.items()}
    pictures.append(plot_per_class(bars, out_dir / "per_class.png", "per-class IoU (%)"))
    if (run_dir / "log.jsonl").exists():
        pictures.append(plot_training(run_dir / "log.jsonl", out_dir / "training.png"))
    return pictures


def validate_run(path: Path | str, args: Options) -> dict:
    """Full held-out evaluation of one run; writes its metrics.json and pictures."""
    seed_everything(0)
    model, config, step_dir = load_run(path, pick_device(args.device))
    run_dir = step_dir.parent.parent
    out_dir = run_dir / args.out_name
    datasets = build_datasets(config, splits=SETS)
    evaluator = make_evaluator(config, datasets, frames=args.frames or 10**9, full=True,
                               bootstrap=args.bootstrap)  # fmt: skip
    with torch.no_grad():
        scores = evaluator(model, step=0)
    metrics = {
        **validation_record(config.kind, step_dir, "95%, seeded bootstrap over held-out sequences"),
        "items": {name: len(items["occupancy"]) for name, items in evaluator.sets.items()},
        "token_cell": dict(zip(("columns", "frames"), token_cell(model), strict=True)),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
        "per_class_iou": evaluator.per_class,
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    if args.results:  # the committed copy: the numbers, and how the run and they were made
        suffix = "" if args.out_name == "validation" else f"-{args.out_name}"
        write_results(args.results, f"{run_dir.name}{suffix}", metrics, run_dir)
    if args.export:
        export_checkpoint(step_dir, Path(args.export) / run_dir.name, metrics)
    metrics["pictures"] = [str(p) for p in draw(evaluator, model, config, metrics, out_dir,
                                                run_dir)]  # fmt: skip
    metrics["items_scored"] = {name: (evaluator.confusions[name], items["sequence"])
                               for name, items in evaluator.sets.items()}  # fmt: skip
    return metrics


def paired_differences(first: dict, other: dict, bootstrap: int) -> dict:
    """other's scores minus first's on the same items (per-item confusions of both runs),
    with 95% intervals over sequences: `<set>_<score>_occ3d_minus` (+ _ci_low, _ci_high)."""
    diffs = {}
    for name, (conf_first, sequences) in first["items_scored"].items():
        conf_other, other_sequences = other["items_scored"][name]
        if not torch.equal(sequences, other_sequences) or conf_first.shape != conf_other.shape:
            raise ValueError(f"the runs were scored on different {name} items: compare runs "
                             "of the same kind and grid with the same --frames")  # fmt: skip
        for score in ("mIoU", "IoU"):
            interval = difference_interval(conf_other, conf_first, sequences, score, "occ3d",
                                           bootstrap)  # fmt: skip
            diffs.update(interval.as_dict(f"{name}_{score}_occ3d_minus"))
    return diffs


def main(argv=None) -> dict[str, dict]:
    args = parse_command(Options, argv, positional="runs")
    results = {}
    for run in args.runs or [str(RUNS_DIR / "scene-debug")]:
        metrics = results[run] = validate_run(run, args)
        print(f"\n## {run} ({metrics['kind']}): {metrics['items']}\n")
        print(scores_table(metrics))
        print()
        print(per_class_table(metrics["per_class_iou"]))
        print()
        print(other_table(metrics))
        if scales := scales_table(metrics):
            print(f"\nReconstruction after each scale (val):\n\n{scales}")
        if args.figures:
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            for picture in metrics["pictures"]:
                shutil.copy(picture, Path(args.figures) / f"{metrics['kind']}_{Path(picture).name}")
    if len(results) > 1:
        print(f"\n## The runs side by side\n\n{runs_table(results)}\n")
        print(classes_by_run_table(results))
        first, *others = results
        pairs = {run: paired_differences(results[first], results[run], args.bootstrap)
                 for run in others}  # fmt: skip
        print(f"\nPaired differences on the same items, each run minus {first}:\n")
        print(paired_table(pairs))
        if args.results:
            name = "_vs_".join(Path(run).name for run in results)
            write_json_atomic(Path(args.results) / f"paired_{name}.json",
                              {"command": " ".join(["validate.py", *(argv or sys.argv[1:])]),
                               "minus": first, "differences": pairs})  # fmt: skip
    return results


if __name__ == "__main__":
    main()
