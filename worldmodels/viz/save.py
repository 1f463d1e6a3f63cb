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
