"""Score a trained video tokenizer and draw what it does.

    uv run 1.video-tokenizer/validate.py                                  # runs/.../debug
    uv run 1.video-tokenizer/validate.py runs/1.video-tokenizer/prototype --clips=512

Reports PSNR on held-out episodes and on the held-out game, codebook usage and perplexity,
and saves into `<run>/validation/`:
  reconstructions_val.png, reconstructions_heldout_game.png   original | reconstruction rows
  noise_in.png    what the decoder makes of random token ids (the "noise-in" experiment)
  codebook.png    how often each code is used on held-out episodes, sorted
  training.png    training loss and held-out PSNR against steps, from log.jsonl
  metrics.json    every number printed
Every PSNR carries a 95% interval from a seeded bootstrap over held-out episodes (clips of
one episode are not independent). `--baseline RUN` scores a second tokenizer on the same
clips and reports the paired difference (this run minus the baseline) with its interval:
FSQ against VQ in the README is measured this way.
`--figures DIR` also copies the pictures there (the README's figures are made this way);
`--results DIR` writes `<run>.json` there with the training command, commits and machine.
`--export DIR` writes a stand-alone copy of the tokenizer (model.safetensors, config.json and
these metrics): `1.video-tokenizer/pretrained/` is made this way, for chapter 2 to use.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from video_tokenizer.experiment import (
    CHAPTER_DIR,
    build_datasets,
    evaluate_sets,
    fixed_subset,
    load_tokenizer,
    reconstruct,
    save_reconstructions,
    stack_clips,
)
from video_tokenizer.model import VideoTokenizer

from worldmodels.checkpoint import find_checkpoint, read_json, write_json_atomic
from worldmodels.metrics import CodebookStats, psnr
from worldmodels.metrics.bootstrap import mean_interval
from worldmodels.runlog import git_commit, read_log
from worldmodels.runtime import pick_device, seed_everything
from worldmodels.viz.frames import frame_grid


def noise_in(model: VideoTokenizer, num_clips: int, num_frames: int, path: Path) -> None:
    """Decode uniformly random token ids: the decoder's prior over what a frame looks like."""
    generator = torch.Generator().manual_seed(0)
    T, h, w = model.tokens_shape(num_frames)
    ids = torch.randint(model.codebook_size, (num_clips, T, h, w), generator=generator)
    with torch.no_grad():
        frames = model.decode(ids.to(next(model.parameters()).device)).cpu()
    fig, ax = plt.subplots(figsize=(1.2 * frames.shape[1], 1.2 * num_clips))
    ax.imshow(frame_grid(list(frames)))
    ax.set_title("decoded from uniformly random token ids", fontsize=9)
    ax.axis("off")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_codebook(model: VideoTokenizer, frames: torch.Tensor, path: Path) -> None:
    """Code counts on held-out clips, most used first, on a log scale."""
    ids, _ = reconstruct(model, frames)
    stats = CodebookStats(model.codebook_size)
    stats.update(ids)
    summary = stats.compute()
    counts = stats.counts.sort(descending=True).values
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.bar(range(len(counts)), counts.clamp_min(1e-1), width=1.0, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel(f"code rank (of K = {model.codebook_size})")
    ax.set_ylabel("count")
    ax.set_title(
        f"held-out code usage {summary['codebook_usage']:.1%}, perplexity "
        f"{summary['perplexity']:.0f} ({ids.numel()} tokens)",
        fontsize=9,
    )
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_training(log_file: Path, path: Path) -> None:
    """Training loss and held-out PSNR from a run's log.jsonl."""
    records = read_log(log_file)
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval/val_psnr" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
    left.plot([r["step"] for r in train], [r["loss"] for r in train])
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("training loss (MSE)")
    for key, label in (
        ("eval/val_psnr", "held-out episodes"),
        ("eval/heldout_game_psnr", "held-out game"),
    ):
        points = [(r["step"], r[key]) for r in evals if key in r]
        if points:
            right.plot(*zip(*points), marker="o", label=label)
    right.set_xlabel("step")
    right.set_ylabel("PSNR (dB)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_run = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name / "debug"
    parser.add_argument(
        "run",
        nargs="?",
        default=str(default_run),
        help="a run folder or checkpoint folder (default: the debug run)",
    )
    parser.add_argument("--clips", type=int, default=256, help="held-out clips per set")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--figures", default=None, help="also copy the pictures to this folder")
    parser.add_argument("--export", default=None, help="write the tokenizer + metrics here")
    parser.add_argument(
        "--baseline", default=None, help="another tokenizer run: paired PSNR difference"
    )
    parser.add_argument("--results", default=None, help="also write <run>.json here")
    args = parser.parse_args(argv)

    seed_everything(0)
    model, config = load_tokenizer(args.run, pick_device(args.device))
    out_dir = find_checkpoint(Path(args.run)).parent.parent / "validation"
    out_dir.mkdir(parents=True, exist_ok=True)
    held_out = {name: ds for name, ds in build_datasets(config).items() if name != "train"}
    sets = {name: stack_clips(ds, fixed_subset(ds, args.clips)) for name, ds in held_out.items()}

    metrics = evaluate_sets(model, sets)
    episodes = {  # the bootstrap's groups; a source without episodes resamples clips
        name: held_out[name].clip_episodes()[fixed_subset(held_out[name], args.clips)]
        if hasattr(held_out[name], "clip_episodes")
        else None
        for name in sets
    }
    baseline = load_tokenizer(args.baseline, pick_device(args.device))[0] if args.baseline else None
    intervals = {}
    for name, frames in sets.items():
        clip_psnr = psnr(reconstruct(model, frames)[1], frames).mean(1)  # (B,) over frames
        intervals[f"{name}_psnr"] = mean_interval(clip_psnr, episodes[name])
        if baseline is not None:
            other = psnr(reconstruct(baseline, frames)[1], frames).mean(1)  # (B,)
            intervals[f"{name}_psnr_minus_baseline"] = mean_interval(
                clip_psnr - other, episodes[name]
            )
    for key, interval in intervals.items():
        print(f"{key:32s} {interval}")
    for name, frames in sets.items():
        shown = frames[:: max(1, len(frames) // 6)][:6]
        _, recon = reconstruct(model, shown)
        save_reconstructions(
            shown,
            recon,
            out_dir / f"reconstructions_{name}.png",
            f"{name}: original / reconstruction",
        )
    noise_in(model, 4, config.data.clip_len, out_dir / "noise_in.png")
    plot_codebook(model, sets["val"], out_dir / "codebook.png")
    run_dir = out_dir.parent
    if (run_dir / "log.jsonl").exists():
        plot_training(run_dir / "log.jsonl", out_dir / "training.png")

    for key, interval in intervals.items():
        metrics.update(interval.as_dict(key))
    metrics = {
        "checkpoint": str(find_checkpoint(Path(args.run))),
        "clips": args.clips,
        "baseline": args.baseline,
        "intervals": "95%, seeded bootstrap over held-out episodes (2000 resamples)",
        **{k: round(v, 4) for k, v in metrics.items()},
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    if args.results:  # the committed copy: the numbers and how the run was made
        run_info = read_json(out_dir.parent / "run.json")
        Path(args.results).mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            Path(args.results) / f"{out_dir.parent.name}.json",
            {**metrics, "trained_by": run_info.get("command"),
             "trained_at_commit": run_info.get("git_commit"), "machine": run_info.get("machine"),
             "validated_by": "validate.py " + " ".join(sys.argv[1:]), "git_commit": git_commit()},
        )  # fmt: skip
    print(json.dumps(metrics, indent=2))
    print(f"pictures and metrics.json in {out_dir}")
    if args.export:
        export = Path(args.export)
        export.mkdir(parents=True, exist_ok=True)
        step_dir = find_checkpoint(Path(args.run))
        for name in ("model.safetensors", "config.json", "state.json"):
            shutil.copy(step_dir / name, export / name)
        run_info = read_json(step_dir.parent.parent / "run.json")
        write_json_atomic(
            export / "metrics.json",
            {
                **metrics,
                "trained_by": run_info["command"],
                "machine": run_info["machine"],
                "git_commit": run_info["git_commit"],
            },
        )
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        for picture in out_dir.glob("*.png"):
            shutil.copy(picture, Path(args.figures) / picture.name)
    return metrics


if __name__ == "__main__":
    main()
