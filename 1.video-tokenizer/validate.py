"""Score a trained video tokenizer and draw what it does.

    uv run 1.video-tokenizer/validate.py                                  # runs/.../debug
    uv run 1.video-tokenizer/validate.py runs/1.video-tokenizer/prototype --clips=512

Reports PSNR on held-out episodes and on the held-out game, codebook usage and perplexity,
the PSNR of the patch-mean codec at the same token grid on the same clips (each patch
replaced by its mean colour, `video_tokenizer/codec.py`: `<set>_patch_mean_psnr`) and the
paired difference tokenizer minus codec (`<set>_psnr_minus_patch_mean`), and saves into
`<run>/validation/`:
  reconstructions_val.png, reconstructions_heldout_game.png   original | reconstruction rows
  noise_in.png    what the decoder makes of random token ids (the "noise-in" experiment)
  codebook.png    how often each code is used on held-out episodes, sorted
  training.png    training loss and held-out PSNR against steps, from log.jsonl
  metrics.json    every number printed
Every PSNR carries a 95% interval from a seeded bootstrap over held-out episodes (clips of
one episode are not independent). `--baseline=RUN` scores a second tokenizer on the same
clips and reports the paired difference (this run minus the baseline) with its interval:
FSQ against VQ in the README is measured this way.
`--figures=DIR` also copies the pictures there (the README's figures are made this way);
`--results=DIR` writes `<run>.json` there with the training command, commits and machine.
`--export=DIR` writes a stand-alone copy of the tokenizer (model.safetensors, config.json and
these metrics): `1.video-tokenizer/pretrained/` is made this way, for chapter 2 to use.
Options are `--key=value` (worldmodels.config.parse_command; `--help` lists them); the one
word without `--` is the run folder.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from video_tokenizer.codec import patch_mean_at
from video_tokenizer.config import CHAPTER_DIR, Config
from video_tokenizer.data import build_datasets
from video_tokenizer.evaluate import evaluate_sets, reconstruct
from video_tokenizer.figures import noise_in, plot_codebook, plot_training, save_reconstructions
from video_tokenizer.model import VideoTokenizer
from video_tokenizer.pretrained import load_tokenizer

from worldmodels.checkpoint import load_model, write_json_atomic
from worldmodels.config import parse_command
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import psnr
from worldmodels.metrics.bootstrap import Interval, mean_interval
from worldmodels.runlog import export_checkpoint, git_commit, write_results
from worldmodels.runtime import pick_device, seed_everything

DEBUG_RUN = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name / "debug"


@dataclass
class Options:
    """Score a trained video tokenizer and draw what it does.

    uv run 1.video-tokenizer/validate.py [RUN] [--key=value ...]"""

    run: str = str(DEBUG_RUN)  # a run or checkpoint folder (default: the debug run)
    clips: int = 256  # held-out clips per set
    device: str = "auto"  # auto | cpu | cuda | mps
    figures: str = ""  # also copy the pictures to this folder
    export: str = ""  # write the tokenizer + metrics here
    baseline: str | None = None  # another tokenizer run: paired PSNR difference
    results: str = ""  # also write <run>.json here


def intervals_of(model, baseline, sets, episodes) -> dict[str, Interval]:
    """Mean clip PSNR of each set with its 95% interval (bootstrap over `episodes`); the same
    for the patch-mean codec at the model's token grid and the paired difference model minus
    codec; and the paired difference from `baseline` on the same clips when one is given."""
    intervals = {}
    for name, frames in sets.items():
        clip_psnr = psnr(reconstruct(model, frames)[1], frames).mean(1)  # (B,) over frames
        intervals[f"{name}_psnr"] = mean_interval(clip_psnr, episodes[name])
        codec = psnr(patch_mean_at(frames, model.config), frames).mean(1)  # (B,)
        intervals[f"{name}_patch_mean_psnr"] = mean_interval(codec, episodes[name])
        intervals[f"{name}_psnr_minus_patch_mean"] = mean_interval(
            clip_psnr - codec, episodes[name]
        )
        if baseline is not None:
            other = psnr(reconstruct(baseline, frames)[1], frames).mean(1)  # (B,)
            intervals[f"{name}_psnr_minus_baseline"] = mean_interval(
                clip_psnr - other, episodes[name]
            )
    return intervals


def draw(model: VideoTokenizer, clip_len: int, sets: dict[str, torch.Tensor], out_dir: Path):
    """The pictures of validate.py's docstring, into out_dir."""
    for name, frames in sets.items():
        shown = frames[:: max(1, len(frames) // 6)][:6]
        _, recon = reconstruct(model, shown)
        save_reconstructions(shown, recon, out_dir / f"reconstructions_{name}.png",
                             f"{name}: original / reconstruction")  # fmt: skip
    noise_in(model, 4, clip_len, out_dir / "noise_in.png")
    plot_codebook(reconstruct(model, sets["val"])[0], model.codebook_size,
                  out_dir / "codebook.png")  # fmt: skip
    if (out_dir.parent / "log.jsonl").exists():
        plot_training(out_dir.parent / "log.jsonl", out_dir / "training.png")


def main(argv=None) -> dict:
    args = parse_command(Options, argv, positional="run")
    seed_everything(0)
    device = pick_device(args.device)
    build = lambda config: VideoTokenizer(config.model)  # noqa: E731
    model, config, step_dir = load_model(args.run, Config, build, device=device)
    out_dir = step_dir.parent.parent / "validation"
    out_dir.mkdir(parents=True, exist_ok=True)
    held_out = {name: ds for name, ds in build_datasets(config).items() if name != "train"}
    rows = {name: fixed_subset(ds, args.clips) for name, ds in held_out.items()}
    sets = {name: stack_items(ds, rows[name])["frames"] for name, ds in held_out.items()}

    metrics = evaluate_sets(model, sets)
    episodes = {  # the bootstrap's groups; a source without episodes resamples clips
        name: ds.clip_episodes()[rows[name]] if hasattr(ds, "clip_episodes") else None
        for name, ds in held_out.items()
    }
    baseline = load_tokenizer(args.baseline, device)[0] if args.baseline else None
    intervals = intervals_of(model, baseline, sets, episodes)
    for key, interval in intervals.items():
        print(f"{key:36s} {interval}")
    draw(model, config.data.clip_len, sets, out_dir)

    for key, interval in intervals.items():
        metrics.update(interval.as_dict(key))
    metrics = {
        "checkpoint": str(step_dir),
        "clips": args.clips,
        "baseline": args.baseline,
        "intervals": "95%, seeded bootstrap over held-out episodes (2000 resamples)",
        **{k: round(v, 4) for k, v in metrics.items()},
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    if args.results:  # the committed copy: the numbers and how the run was made
        validated = {
            "validated_by": "validate.py " + " ".join(sys.argv[1:]),
            "git_commit": git_commit(),
        }
        write_results(args.results, out_dir.parent.name, {**metrics, **validated}, out_dir.parent)
    print(json.dumps(metrics, indent=2))
    print(f"pictures and metrics.json in {out_dir}")
    if args.export:
        export_checkpoint(step_dir, args.export, metrics)
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for picture in out_dir.glob("*.png"):
            shutil.copy(picture, Path(args.figures) / picture.name)
    return metrics


if __name__ == "__main__":
    main()
