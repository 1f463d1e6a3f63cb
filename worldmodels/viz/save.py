"""Writing figures: the one place that knows how a chapter's PNGs are saved.

fig, ax = plt.subplots()
...
save_figure(fig, out_dir / "psnr_vs_horizon.png")   # parents made, tight box, closed
save_frame_rows([real, generated], path, "real / generated")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from worldmodels.viz.frames import Frames, frame_grid


def save_figure(fig, path: Path | str, dpi: int = 100) -> Path:
    """Save `fig` as `path` (its folder made if missing), trimmed to its content; close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def save_frame_rows(
    rows: Sequence[Frames], path: Path | str, title: str, scale: float = 1.0
) -> Path:
    """A PNG of clips one above the other (row r: the frames (T, C, H, W) of rows[r]), titled;
    e.g. original / reconstruction pairs, or real / generated rollouts."""
    steps = max(len(row) for row in rows)
    fig, ax = plt.subplots(figsize=(scale * steps, scale * len(rows)))
    ax.imshow(frame_grid(rows))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return save_figure(fig, path)


def plot_training(
    records: Sequence[dict],
    curves: dict[str, str],
    path: Path | str,
    loss_label: str = "training loss",
    eval_label: str = "held-out score",
) -> Path:
    """Training loss (left, log scale) and held-out scores (right) against steps, from a run's
    log.jsonl records; `curves` maps an evaluation key ("eval/val_psnr") to its legend label.
    Every chapter's validate.py draws its training.png with it."""
    train = [r for r in records if "loss" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
    left.plot([r["step"] for r in train], [r["loss"] for r in train])
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel(loss_label)
    for key, label in curves.items():
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            right.plot(*zip(*points), marker="o", label=label)
    right.set_xlabel("step")
    right.set_ylabel(eval_label)
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
