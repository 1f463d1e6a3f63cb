"""Pictures of video frames: grids of clips (one clip per row) and animated GIFs.

Every function takes frames as a torch tensor or numpy array of shape (T, C, H, W)
(C = 1 or 3), either float in [0, 1] (values outside are clipped) or uint8 in [0, 255];
`save_gif` also takes a list of (H, W, C) uint8 images.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image

Frames = torch.Tensor | np.ndarray  # (T, C, H, W)


def to_uint8_frames(frames: Frames) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] or uint8 -> (T, H, W, 3) uint8 (grey repeated to RGB)."""
    array = (
        frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    )
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"frames must be (T, C, H, W) with C = 1 or 3, got shape {array.shape}")
    if array.dtype != np.uint8:
        # round(255 x) for x in [0, 1]: the inverse of dataset's uint8 / 255
        array = np.round(np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if array.shape[1] == 1:
        array = repeat(array, "t 1 h w -> t 3 h w")
    return rearrange(array, "t c h w -> t h w c")


def frame_grid(rows: Sequence[Frames], pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Lay clips out as a grid: row r holds the T frames of rows[r], left to right.

    rows: clips (T_r, C, H, W) sharing H and W (T_r may differ: short rows end in blank).
    pad: separator width in pixels between frames and rows (and around the grid).
    Returns (R * (H + pad) + pad, T_max * (W + pad) + pad, 3) float32 in [0, 1].
    """
    if len(rows) == 0:
        raise ValueError("frame_grid needs at least one row of frames")
    clips = [to_uint8_frames(row).astype(np.float32) / 255.0 for row in rows]
    sizes = {clip.shape[1:3] for clip in clips}
    if len(sizes) != 1:
        raise ValueError(f"all rows must share the frame size (H, W), got {sorted(sizes)}")
    (height, width), steps = sizes.pop(), max(len(clip) for clip in clips)
    grid = np.full(
        (len(clips) * (height + pad) + pad, steps * (width + pad) + pad, 3),
        pad_value,
        dtype=np.float32,
    )
    for r, clip in enumerate(clips):
        top = pad + r * (height + pad)
        for t, frame in enumerate(clip):
            left = pad + t * (width + pad)
            grid[top : top + height, left : left + width] = frame
    return grid


def show_frames(
    rows: Sequence[Frames],
    ax=None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    pad: int = 1,
):
    """Draw `frame_grid(rows)` on a matplotlib axis (a new figure if None), with one label
    per row on the left (e.g. ["original", "reconstruction"]). Returns the axis."""
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"got {len(labels)} labels for {len(rows)} rows")
    grid = frame_grid(rows, pad=pad)
    if ax is None:
        height, width = grid.shape[:2]
        _, ax = plt.subplots(figsize=(min(16, width / 40 + 1), height / 40 + 0.5))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    row_height = (grid.shape[0] - pad) / len(rows)
    if labels is not None:
        ax.set_yticks([pad + row_height * (r + 0.5) for r in range(len(rows))], labels=labels)
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def save_gif(
    frames: Frames | Sequence[np.ndarray], path: str | Path, fps: float = 8, scale: int = 1
) -> Path:
    """Write an animated GIF (looping) of `frames` to `path`, atomically; returns the path.

    frames: (T, C, H, W) tensor/array, or a list of (H, W, C) uint8 images.
    scale: integer upscaling by pixel repetition (64 px Atari frames read better at 4).
    Pillow stores each frame with its own 256-colour palette, and merges a frame identical
    to the one before into it (longer duration), so a static stretch reads back as fewer frames.
    """
    if len(frames) == 0:
        raise ValueError("save_gif needs at least one frame")
    if isinstance(frames, (list, tuple)):
        frames = rearrange(np.stack([np.asarray(image) for image in frames]), "t h w c -> t c h w")
    images = to_uint8_frames(frames)  # (T, H, W, 3)
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    images = repeat(images, "t h w c -> t (h sh) (w sw) c", sh=int(scale), sw=int(scale))
    pictures = [Image.fromarray(image) for image in images]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=round(1000 / fps),  # milliseconds per frame
        loop=0,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)  # never leaves a half-written GIF behind
    return path


def side_by_side_gif(
    real: Frames, generated: Frames, path: str | Path, fps: float = 8, scale: int = 4, pad: int = 1
) -> Path:
    """GIF of two clips of equal shape (T, C, H, W) playing side by side (real on the left),
    e.g. ground truth against a model's rollout, separated by a white `pad`-pixel bar."""
    real_frames, generated_frames = to_uint8_frames(real), to_uint8_frames(generated)
    if real_frames.shape != generated_frames.shape:
        raise ValueError(
            f"real and generated must have the same (T, C, H, W), got {tuple(real.shape)} "
            f"and {tuple(generated.shape)}"
        )
    steps, height = real_frames.shape[:2]
    bar = np.full((steps, height, pad, 3), 255, dtype=np.uint8)
    both = np.concatenate([real_frames, bar, generated_frames], axis=2)  # (T, H, 2W + pad, 3)
    return save_gif(rearrange(both, "t h w c -> t c h w"), path, fps=fps, scale=scale)
