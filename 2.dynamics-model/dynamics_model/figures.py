"""Chapter 2's pictures, for validate.py and the notebook: rollout strips, PSNR against the
horizon, and what each latent action means per game."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from einops import rearrange

from worldmodels.data.atari import NUM_ACTIONS
from worldmodels.metrics.tokens import label_cooccurrence, normalized_mutual_information
from worldmodels.viz.save import save_figure, save_frame_rows


def save_rollout_strip(last: dict, path: Path, title: str, max_clips: int = 6) -> None:
    """A PNG of real / generated rows, one pair per clip (one clip per game when possible)."""
    games = last["games"].tolist()
    picks = [games.index(g) for g in sorted(set(games))][:max_clips]
    rows = [row for b in picks for row in (last["real"][b], last["generated"][b])]
    save_frame_rows(rows, path, title)


def plot_psnr_vs_horizon(metrics_by_run: dict[str, dict], path: Path) -> None:
    """Rollout PSNR against frames ahead, per run, with copy-last-frame and the tokenizer."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    baseline = None
    for label, metrics in metrics_by_run.items():
        horizons = sorted(
            int(k.rsplit("_h", 1)[1]) for k in metrics if k.startswith("rollout_psnr_h")
        )
        if not horizons:
            continue
        baseline = baseline or metrics
        ax.plot(horizons, [metrics[f"rollout_psnr_h{k}"] for k in horizons], "o-", label=label)
        if f"random_actions_psnr_h{horizons[0]}" in metrics:
            ax.plot(
                horizons,
                [metrics[f"random_actions_psnr_h{k}"] for k in horizons],
                "x:",
                label=f"{label}, random actions",
            )
    if baseline is not None:
        horizons = sorted(
            int(k.rsplit("_h", 1)[1]) for k in baseline if k.startswith("copy_last_psnr_h")
        )
        curves = (
            ("copy_last_psnr", "s--", "grey", "copy last frame (pixels)"),
            ("copy_last_tokens_psnr", "s-.", "tab:brown", "copy last frame (tokens)"),
            ("tokenizer_psnr", "--", "black", "tokenizer ceiling (true tokens)"),
        )
        for key, style, colour, label in curves:
            if f"{key}_h{horizons[0]}" not in baseline:
                continue
            values = [baseline[f"{key}_h{k}"] for k in horizons]
            ax.plot(horizons, values, style, color=colour, label=label)
    ax.set_xlabel("frames ahead")
    ax.set_ylabel("PSNR (dB), held-out episodes")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(last_lam: dict, game_names, action_meanings, path: Path) -> None:
    """P(latent action | true action) per game: one panel per game, columns = its actions."""
    games = last_lam["games"]
    present = sorted(set(games.tolist()))
    cols = min(3, len(present))
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, g in zip(axes.flat, present):
        lat = last_lam["latent"][games == g].flatten()
        act = last_lam["true"][games == g].flatten()
        counts = label_cooccurrence(lat, act, last_lam["num_codes"], NUM_ACTIONS).float()
        used = (counts.sum(0) > 0).nonzero()[:, 0]  # the game's actions
        share = counts[:, used] / counts[:, used].sum(0, keepdim=True)  # columns sum to 1
        ax.axis("on")
        ax.imshow(share, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(used)), [action_meanings[a] for a in used], rotation=90, fontsize=6)
        ax.set_yticks(range(last_lam["num_codes"]))
        ax.set_ylabel("latent action", fontsize=7)
        nmi = normalized_mutual_information(lat, act)
        ax.set_title(f"{game_names[g]} (NMI {nmi:.2f})", fontsize=8)
    fig.suptitle("P(latent action | true action), held-out episodes", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def generated_strip_frames(last: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, generated) (T, C, H', W) with one clip per game stacked top to bottom."""
    games = last["games"].tolist()
    picks = [games.index(g) for g in sorted(set(games))]
    real = rearrange(last["real"][picks], "g t c h w -> t c (g h) w")
    generated = rearrange(last["generated"][picks], "g t c h w -> t c (g h) w")
    return real, generated
