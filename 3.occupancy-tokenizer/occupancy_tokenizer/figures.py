"""Chapter 3's pictures, for validate.py, the trainer's samples and the README.

save_bev_rows        frames from above: original | reconstruction | codec, one row per frame
plot_coarse_to_fine  the multi-scale reconstruction after each scale, coarse to fine
plot_per_class       per-class IoU bars of the model and the codec
plot_training        training loss and held-out mIoU against steps, from log.jsonl

The first three save a PNG; `bev_rows_figure`, `coarse_to_fine_figure` and
`per_class_figure` return the same picture as a matplotlib Figure (the notebook shows it).

Shapes: T time steps, X, Y, Z voxel-grid sizes, n a count of frames, said here.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from worldmodels.runlog import read_log
from worldmodels.viz.driving import plot_bev
from worldmodels.viz.save import plot_training as plot_training_curves
from worldmodels.viz.save import save_figure


def _frames(grids: torch.Tensor) -> torch.Tensor:
    """(n, X, Y, Z) frames, or the frames of the first clip of (n, T, X, Y, Z) clips."""
    return grids[0] if grids.dim() == 5 else grids


def save_bev_rows(columns: dict[str, torch.Tensor], path: Path, title: str) -> Path:
    """A PNG with one column per entry ({"original": (n, X, Y, Z), "reconstruction": ...})
    and one row per frame, each drawn from above (the top-most occupied voxel's class)."""
    return save_figure(bev_rows_figure(columns, title), path)


def bev_rows_figure(columns: dict[str, torch.Tensor], title: str) -> plt.Figure:
    """The figure of `save_bev_rows`: one column per entry, one row per frame."""
    columns = {name: _frames(grids) for name, grids in columns.items()}
    rows = min(len(g) for g in columns.values())
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.4 * len(columns), 2.4 * rows),
                             squeeze=False)  # fmt: skip
    for c, (name, grids) in enumerate(columns.items()):
        for r in range(rows):
            ax = axes[r, c]
            plot_bev(ax, grids[r].numpy(), legend=False, title=name if r == 0 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel("")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_coarse_to_fine(
    truth: torch.Tensor, per_scale: list[torch.Tensor], scales: tuple[int, ...], path: Path,
    scores: list[float] | None = None,
) -> Path:  # fmt: skip
    """One frame: its reconstruction from the scales 1..k (k = 1..K), then the original."""
    return save_figure(coarse_to_fine_figure(truth, per_scale, scales, scores), path)


def coarse_to_fine_figure(
    truth: torch.Tensor, per_scale: list[torch.Tensor], scales: tuple[int, ...],
    scores: list[float] | None = None,
) -> plt.Figure:  # fmt: skip
    """The figure of `plot_coarse_to_fine` (truth (n, X, Y, Z): its first frame is drawn)."""
    panels = len(per_scale) + 1
    fig, axes = plt.subplots(1, panels, figsize=(2.2 * panels, 2.6), squeeze=False)
    for k, pred in enumerate(per_scale):
        label = f"through {scales[k]}x{scales[k]}"
        if scores is not None:
            label += f"\nmIoU {scores[k]:.1f}"
        plot_bev(axes[0, k], pred[0].numpy(), legend=False, title=label)
    plot_bev(axes[0, -1], truth[0].numpy(), legend=False, title="original")
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_per_class(bars: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """Grouped bars: per-class IoU (%) of each entry ({"model": {class: IoU}, "codec": ...});
    a class absent from the set (NaN) is left empty."""
    return save_figure(per_class_figure(bars, title), path)


def per_class_figure(bars: dict[str, dict[str, float]], title: str) -> plt.Figure:
    """The figure of `plot_per_class`."""
    names = list(next(iter(bars.values())))
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for i, (label, values) in enumerate(bars.items()):
        heights = [0.0 if math.isnan(values[n]) else values[n] for n in names]
        ax.bar([j + i * width for j in range(len(names))], heights, width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=45,
                  ha="right", fontsize=8)  # fmt: skip
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_training(log_file: Path, path: Path) -> Path:
    """Training loss and held-out mIoU (Occ3D convention, every voxel) from a run's log."""
    curves = {"eval/val_mIoU_occ3d": "val", "eval/heldout_mIoU_occ3d": "heldout"}
    return plot_training_curves(read_log(log_file), curves, path, eval_label="mIoU (%), Occ3D rule")
