"""Chapter 1's pictures, for validate.py, the trainer's samples and the README.

save_reconstructions   original / reconstruction rows of a few clips
noise_in               what the decoder makes of uniformly random token ids
plot_codebook          how often each code is used, most used first
plot_training          training loss and held-out PSNR against steps, from log.jsonl
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from video_tokenizer.model import VideoTokenizer
from worldmodels.metrics import CodebookStats
from worldmodels.runlog import read_log
from worldmodels.viz.save import plot_training as plot_training_curves
from worldmodels.viz.save import save_figure, save_frame_rows


def save_reconstructions(frames: torch.Tensor, recon: torch.Tensor, path: Path, title: str):
    """A PNG of original | reconstruction rows, one pair of rows per clip (B, T, C, H, W)."""
    rows = [row for pair in zip(frames, recon) for row in pair]
    save_frame_rows(rows, path, title, scale=1.2)


def noise_in(model: VideoTokenizer, num_clips: int, num_frames: int, path: Path) -> None:
    """Decode uniformly random token ids: the decoder's prior over what a frame looks like."""
    generator = torch.Generator().manual_seed(0)
    T, h, w = model.tokens_shape(num_frames)
    ids = torch.randint(model.codebook_size, (num_clips, T, h, w), generator=generator)
    with torch.no_grad():
        frames = model.decode(ids.to(next(model.parameters()).device)).cpu()
    save_frame_rows(list(frames), path, "decoded from uniformly random token ids", scale=1.2)


def plot_codebook(ids: torch.Tensor, codebook_size: int, path: Path) -> None:
    """Code counts of token ids (held-out clips), most used first, on a log scale."""
    stats = CodebookStats(codebook_size)
    stats.update(ids)
    summary = stats.compute()
    counts = stats.counts.sort(descending=True).values
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.bar(range(len(counts)), counts.clamp_min(1e-1), width=1.0, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel(f"code rank (of K = {codebook_size})")
    ax.set_ylabel("count")
    ax.set_title(
        f"held-out code usage {summary['codebook_usage']:.1%}, perplexity "
        f"{summary['perplexity']:.0f} ({ids.numel()} tokens)",
        fontsize=9,
    )
    save_figure(fig, path)


def plot_training(log_file: Path, path: Path) -> None:
    """Training loss and held-out PSNR from a run's log.jsonl."""
    curves = {"eval/val_psnr": "held-out episodes", "eval/heldout_game_psnr": "held-out game"}
    plot_training_curves(read_log(log_file), curves, path, "training loss (MSE)", "PSNR (dB)")
