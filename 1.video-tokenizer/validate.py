"""Score a trained video tokenizer and draw what it does.

    uv run 1.video-tokenizer/validate.py                                  # runs/.../debug
    uv run 1.video-tokenizer/validate.py runs/1.video-tokenizer/prototype --clips=512

Reports PSNR on held-out episodes and on the held-out game, codebook usage and perplexity,
and saves into `<run>/validation/`:
  reconstructions_val.png, reconstructions_heldout_game.png   original | reconstruction rows
  noise_in.png    what the decoder makes of random token ids (the "noise-in" experiment)
  metrics.json    every number printed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from video_tokenizer.experiment import (
    CHAPTER_DIR,
    Config,
    build_datasets,
    evaluate_sets,
    fixed_subset,
    reconstruct,
    save_reconstructions,
    stack_clips,
)
from video_tokenizer.model import VideoTokenizer

from worldmodels.checkpoint import find_checkpoint, load_weights, read_json, write_json_atomic
from worldmodels.config import from_dict
from worldmodels.runtime import pick_device, seed_everything
from worldmodels.viz.frames import frame_grid


def load_tokenizer(path: Path | str, device: str = "cpu") -> tuple[VideoTokenizer, Config]:
    """Rebuild the model from a checkpoint's config.json and load its weights."""
    step_dir = find_checkpoint(Path(path))
    config = from_dict(Config, read_json(step_dir / "config.json"))
    model = VideoTokenizer(config.model)
    load_weights(step_dir, model)
    return model.to(pick_device(device)).eval(), config


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
    args = parser.parse_args(argv)

    seed_everything(0)
    model, config = load_tokenizer(args.run, args.device)
    out_dir = find_checkpoint(Path(args.run)).parent.parent / "validation"
    out_dir.mkdir(parents=True, exist_ok=True)
    held_out = {name: ds for name, ds in build_datasets(config).items() if name != "train"}
    sets = {name: stack_clips(ds, fixed_subset(ds, args.clips)) for name, ds in held_out.items()}

    metrics = evaluate_sets(model, sets)
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

    metrics = {
        "checkpoint": str(find_checkpoint(Path(args.run))),
        "clips": args.clips,
        **{k: round(v, 4) for k, v in metrics.items()},
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    print(json.dumps(metrics, indent=2))
    print(f"pictures and metrics.json in {out_dir}")
    return metrics


if __name__ == "__main__":
    main()
