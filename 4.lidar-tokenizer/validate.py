"""Score trained LiDAR tokenizers on held-out sweeps and real scans, beside the references.

    uv run 4.lidar-tokenizer/validate.py                          # runs/4.lidar-tokenizer/debug
    uv run 4.lidar-tokenizer/validate.py runs/4.lidar-tokenizer/debug \\
        runs/4.lidar-tokenizer/debug-norestart --results=4.lidar-tokenizer/results
    uv run 4.lidar-tokenizer/validate.py --help                   # every option, typed

Sets: "val" (unseen sequences of the training scenarios), "heldout" (the roundabout
scenario, never trained on) and "real" (the Ouster scans of worldmodels/data/real_lidar).
Each frame is encoded from its measured (noisy) returns and rendered along its returned
rays; depths are scored against the noise-free range (the measured one for real scans).
Beside the model: the voxelization floor (the input's own voxels ray-cast) and the OR codec
at the token grid (references.py), on the same rays; model-minus-reference differences
carry a 95% interval from a seeded bootstrap over sequences (recordings for "real"). The
skipping table times rendering the same rays with and without spatial skipping.

Writes into `<run>/validation/`: metrics.json, bev_tokens.png, clouds_<set>.png,
range_image.png, depth_error.png, code_usage.png (every run validated together) and
training.png. `--figures=DIR` copies the pictures there; `--results=DIR` writes
`<run>.json` there: the metrics with the training command, the commit and the machine;
`--export=DIR` copies the trained tokenizer to `DIR/<run>` (how `pretrained/` is made, for
chapter 5).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from lidar_tokenizer.build import build_datasets, load_run, make_evaluator
from lidar_tokenizer.config import CHAPTER_DIR
from lidar_tokenizer.data import real_scans
from lidar_tokenizer.figures import (
    plot_bev_tokens,
    plot_clouds,
    plot_code_usage,
    plot_depth_error,
    plot_range_images,
)
from lidar_tokenizer.model import FrameRays
from lidar_tokenizer.sweeps import ray_far, returns
from lidar_tokenizer.tables import runs_table, scores_table, skipping_table, tokens_table

from worldmodels.checkpoint import write_json_atomic
from worldmodels.config import at_least, parse_command
from worldmodels.runlog import export_checkpoint, read_log, validation_record, write_results
from worldmodels.runtime import pick_device, seed_everything
from worldmodels.viz.save import plot_training

RUNS_DIR = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name


@dataclass
class Options:
    """validate.py's options (`--key=value`; run folders as plain words)."""

    runs: tuple[str, ...] = ()  # run or checkpoint folders; () = runs/4.lidar-tokenizer/debug
    sequences: int = 0  # sequences per driving set, evenly spread; 0 = every one
    frames: int = 2  # consecutive frames from the middle of each sequence
    real: bool = True  # also score the real Ouster scans
    real_points: int = 0  # keep at most this many returns of each real scan; 0 = all
    bootstrap: int = 1000  # bootstrap resamples of the sequences per interval
    eval_samples: int = 0  # samples per ray of the uniform render; 0 = the run's own setting
    skip_step: float = -1.0  # skipping's marching step (m), 0 = exact cut; -1 = the run's own
    device: str = "auto"
    out_name: str = "validation"  # folder in the run for the results
    figures: str = ""  # also copy the pictures to this folder (the README's figures)
    results: str = ""  # also write <run>.json here: metrics + train command + commit
    export: str = ""  # also copy the checkpoint + metrics to DIR/<run> (how pretrained/ is made)

    def __post_init__(self):
        at_least(self, 0, "sequences", "real_points", "eval_samples")
        at_least(self, 1, "frames")
        at_least(self, 10, "bootstrap")


@torch.no_grad()
def rendered_range_image(model, item: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(true (H, W), rendered (H, W)) range images of one driving item, 0 where no return."""
    device = next(model.parameters()).device
    measured = returns(item["range"], item["dirs"])
    decoded = model.decode(model.encode([(measured.dirs * measured.depths[:, None]).to(device)]))
    truth = item["range_clean"]
    rays = returns(truth, item["dirs"])
    far = ray_far(rays, model.grid, model.render_config.near)
    batch = FrameRays(*(t[None].to(device) for t in (rays.origins, rays.dirs, rays.depths, far)))
    depth = model.render(decoded, batch, skipping=model.render_config.eval_skipping).depth[0]
    rendered = torch.zeros_like(truth)
    rendered[truth > 0] = depth.float().cpu()
    return truth, rendered


def draw(evaluator, model, datasets, out_dir: Path, run_dir: Path) -> list[Path]:
    last = evaluator.last
    pictures = [plot_bev_tokens(model, last["val"], out_dir / "bev_tokens.png")]
    for name in last:
        title = f"{name}: true returns and rendered clouds, from above"
        pictures.append(plot_clouds(model, last[name], out_dir / f"clouds_{name}.png", title))
    first = last["val"]["frames"][0]
    item = datasets["val"][datasets["val"].frames_of(first.sequence)[first.frame]]
    truth, rendered = rendered_range_image(model, item)
    title = f"val sequence {first.sequence}, frame {first.frame}"
    pictures.append(plot_range_images(truth, rendered, out_dir / "range_image.png", title))
    pictures.append(plot_depth_error(last["val"], out_dir / "depth_error.png",
                                     "val: depth error against range"))  # fmt: skip
    if (run_dir / "log.jsonl").exists():
        curves = {"eval/val_depth_l1": "val depth L1 (m)", "eval/val_chamfer": "val Chamfer (m)"}
        pictures.append(plot_training(read_log(run_dir / "log.jsonl"), curves,
                                      out_dir / "training.png", eval_label="metres"))  # fmt: skip
    return pictures


def validate_run(path: Path | str, args: Options) -> dict:
    """Full held-out evaluation of one run; writes its metrics.json and pictures."""
    seed_everything(0)
    model, config, step_dir = load_run(path, pick_device(args.device))
    if args.eval_samples:  # e.g. uniform rendering at the training density against skipping
        model.render_config.eval_samples = args.eval_samples
    if args.skip_step >= 0:  # e.g. 0: the exact cut at the coarse cells' faces
        model.render_config.skip_step = args.skip_step
    run_dir = step_dir.parent.parent
    out_dir = run_dir / args.out_name
    datasets = build_datasets(config, splits=("val", "heldout"))
    real = real_scans(max_points=args.real_points or None) if args.real else None
    evaluator = make_evaluator(config, datasets, sequences=args.sequences, frames=args.frames,
                               full=True, real=real, bootstrap=args.bootstrap)  # fmt: skip
    scores = evaluator(model, step=0)
    metrics = {
        **validation_record("lidar-tokenizer", step_dir,
                            "95%, seeded bootstrap over held-out sequences"),  # fmt: skip
        "frames": {name: len(frames) for name, frames in evaluator.sets.items()},
        "token_grid": list(model.token_grid), "codebook_size": model.codebook_size,
        "restarts": config.model.restarts, "restarts_done": int(model.quantizer.restarts),
        "uniform_samples": model.render_config.eval_samples,
        "skipping_samples": model.render_config.skip_samples,
        "skipping_step": model.render_config.skip_step,
        "truth": "driving sets: lidar_range_clean (noise-free) along the returned rays; "
                 "real: the measured returns; input: the noisy returns",
        **{k: round(v, 5) if isinstance(v, float) else v for k, v in scores.items()},
    }  # fmt: skip
    write_json_atomic(out_dir / "metrics.json", metrics)
    if args.results:  # the committed copy: the numbers, and how the run and they were made
        suffix = "" if args.out_name == "validation" else f"-{args.out_name}"
        write_results(args.results, f"{run_dir.name}{suffix}", metrics, run_dir)
    if args.export:
        export_checkpoint(step_dir, Path(args.export) / run_dir.name, metrics)
    metrics["pictures"] = [str(p) for p in draw(evaluator, model, datasets, out_dir, run_dir)]
    return metrics


def main(argv=None) -> dict[str, dict]:
    args = parse_command(Options, argv, positional="runs")
    results, logs = {}, {}
    for run in args.runs or [str(RUNS_DIR / "debug")]:
        metrics = results[run] = validate_run(run, args)
        print(f"\n## {run}: frames {metrics['frames']}, {metrics['restarts_done']} restarts\n")
        print(scores_table(metrics))
        print(f"\nTokens ({metrics['token_grid']} per frame, {metrics['codebook_size']} codes)\n")
        print(tokens_table(metrics))
        print("\nRendering the same rays with and without spatial skipping\n")
        print(skipping_table(metrics))
        run_dir = Path(metrics["checkpoint"]).parent.parent
        if (run_dir / "log.jsonl").exists():
            logs[run_dir.name] = run_dir / "log.jsonl"
    if logs:
        for metrics in results.values():
            out_dir = Path(metrics["checkpoint"]).parent.parent / args.out_name
            metrics["pictures"].append(str(plot_code_usage(logs, out_dir / "code_usage.png")))
    if len(results) > 1:
        print(f"\n## The runs side by side\n\n{runs_table(results)}")
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for metrics in results.values():
            name = Path(metrics["checkpoint"]).parent.parent.name
            for picture in metrics["pictures"]:
                shutil.copy(picture, Path(args.figures) / f"{name}_{Path(picture).name}")
    return results


if __name__ == "__main__":
    main()
