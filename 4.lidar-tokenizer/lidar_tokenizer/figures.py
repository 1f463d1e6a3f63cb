"""Chapter 4's pictures, for validate.py, the trainer's samples and the README.

save_sample          a sweep from above: measured | rendered (the trainer's samples/)
show_bev_image       an image indexed [x, y] from above, laid out as plot_points_bev draws
plot_bev_tokens      the encoder's input from above (its voxels' BEV occupancy) | the tokens
plot_clouds          true | rendered | codec point clouds from above, one row per frame
plot_range_images    true | rendered range image | signed depth error, one driving frame
plot_depth_error     mean |error| against true range, model and references
plot_code_usage      codes alive, batch usage and restarts against steps, from log.jsonl

Shapes: R rays, H, W range-image height and width, h, w token-grid height, width, X, Y voxel
-grid sizes, n a count local to one function (frames).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from lidar_tokenizer.region import voxelize
from lidar_tokenizer.sweeps import points_of
from worldmodels.runlog import read_log
from worldmodels.viz.driving import plot_points_bev, plot_range_image
from worldmodels.viz.save import save_figure


def _extent(model) -> tuple[float, float, float, float]:
    r = model.config.region_xy
    return (-r, r, -r, r)


def show_bev_image(ax, image, region_xy: float, **imshow_kwargs):
    """An (X, Y) or (X, Y, 3) image indexed [x, y] (the voxel grid's layout, x forward, y left)
    over [-r, r]^2 metres, drawn as plot_points_bev draws points: x forward up, +y (left) on
    the left. Returns the AxesImage."""
    r = region_xy
    shown = ax.imshow(image, origin="lower", extent=(-r, r, -r, r), **imshow_kwargs)
    ax.set_xlim(r, -r)  # column 0 (y = -r, the right side) lands on the right
    ax.set_xlabel("y (m)")
    ax.set_ylabel("x (m)")
    return shown


def _cloud(frame, depth: torch.Tensor) -> torch.Tensor:
    """The frame's scored rays at `depth` (R,) -> points (R, 3)."""
    return frame.rays.dirs * depth[:, None]


def save_sample(last: dict, model, path: Path, title: str) -> Path:
    """The first frame of an evaluated set from above: measured returns | rendered."""
    frame, depth = last["frames"][0], last["depths"][0]["model"]
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
    for ax, (name, cloud) in zip(axes, {"measured (clean)": points_of(frame.rays),
                                        "rendered": _cloud(frame, depth)}.items()):  # fmt: skip
        plot_points_bev(ax, cloud.numpy(), extent=_extent(model), size=0.2, vmin=-3, vmax=2)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_bev_tokens(model, last: dict, path: Path, count: int = 2) -> Path:
    """Per frame: the voxel columns the encoder sees (how many voxels each holds) | the
    token ids, each id its own colour (a repeated colour is a repeated token)."""
    frames = last["frames"][:count]
    fig, axes = plt.subplots(len(frames), 2, figsize=(7, 3.4 * len(frames)), squeeze=False)
    r = model.config.region_xy
    for row, (frame, tokens) in enumerate(zip(frames, last["tokens"])):
        voxels = voxelize(frame.points, model.grid)
        X, Y, _ = model.grid.shape
        x, y, _ = voxels.coords.unbind(-1)  # (V,) each
        columns = torch.zeros(X, Y).index_put_((x, y), torch.ones(len(x)), accumulate=True)
        show_bev_image(axes[row, 0], np.log1p(columns.numpy()), r, cmap="magma")
        axes[row, 0].set_title("input: voxels per column (log)", fontsize=9)
        palette = np.random.default_rng(0).random((model.codebook_size, 3))
        show_bev_image(axes[row, 1], palette[tokens.numpy()], r)
        axes[row, 1].set_title(f"tokens {tuple(tokens.shape)}, a colour per id", fontsize=9)
    return save_figure(fig, path)


def plot_clouds(model, last: dict, path: Path, title: str, count: int = 2) -> Path:
    """Per frame: true returns | model | codec (or what the set has) from above."""
    frames = last["frames"][:count]
    methods = [m for m in ("model", "codec", "floor") if m in last["depths"][0]]
    fig, axes = plt.subplots(len(frames), 1 + len(methods),
                             figsize=(3.4 * (1 + len(methods)), 3.4 * len(frames)),
                             squeeze=False)  # fmt: skip
    for row, frame in enumerate(frames):
        clouds = {"true": points_of(frame.rays)}
        clouds |= {m: _cloud(frame, last["depths"][row][m]) for m in methods}
        for ax, (name, cloud) in zip(axes[row], clouds.items()):
            plot_points_bev(ax, cloud.numpy(), extent=_extent(model), size=0.15, vmin=-3, vmax=2)
            ax.set_title(f"{name} {frame.name}".strip(), fontsize=9)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_range_images(truth: torch.Tensor, rendered: torch.Tensor, path: Path, title: str):
    """True (H, W) | rendered (H, W) range images | rendered - true (m, where both return)."""
    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5))
    top = float(truth.max())
    for ax, (name, image) in zip(axes, {"true": truth, "rendered": rendered}.items()):
        plot_range_image(ax, image.numpy(), max_depth=top, colorbar=True)
        ax.set_title(name, fontsize=9)
    error = torch.where((truth > 0) & (rendered > 0), rendered - truth, torch.nan).numpy()
    shown = axes[2].imshow(error, cmap="coolwarm", vmin=-2, vmax=2, aspect="auto",
                           interpolation="nearest")  # fmt: skip
    fig.colorbar(shown, ax=axes[2], label="rendered - true (m)")
    axes[2].set_title("depth error along each ray", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_depth_error(last: dict, path: Path, title: str, bin_m: float = 5.0) -> Path:
    """Mean |rendered - true| depth in bins of true range, for each method of the set."""
    truth = torch.cat([f.rays.depths for f in last["frames"]])  # (R,) over frames
    edges = np.arange(0, float(truth.max()) + bin_m, bin_m)
    which = np.digitize(truth.numpy(), edges) - 1
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for method in last["depths"][0]:
        depth = torch.cat([d[method] for d in last["depths"]])
        error = (depth - truth).abs().numpy()
        means = [error[which == b].mean() if (which == b).any() else np.nan
                 for b in range(len(edges) - 1)]  # fmt: skip
        ax.plot(edges[:-1] + bin_m / 2, means, marker="o", label=method)
    ax.set_xlabel("true range (m)")
    ax.set_ylabel("mean |depth error| (m)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_code_usage(logs: dict[str, Path], path: Path) -> Path:
    """Codes alive (picked in the last dead_after steps), the share of codes one batch uses,
    and restarts, against steps, one line per run ({label: log.jsonl})."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    for label, log in logs.items():
        records = [r for r in read_log(log) if "codes_alive" in r]
        steps = [r["step"] for r in records]
        left.plot(steps, [100 * r["codes_alive"] for r in records], label=f"{label}: alive")
        left.plot(steps, [100 * r["batch_code_usage"] for r in records], "--",
                  label=f"{label}: one batch")  # fmt: skip
        right.plot(steps, [r["restarts"] for r in records], label=label)
    left.set_xlabel("step")
    left.set_ylabel("codes (%)")
    left.legend(fontsize=7)
    right.set_xlabel("step")
    right.set_ylabel("k-means restarts so far")
    right.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
