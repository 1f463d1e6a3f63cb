"""Pictures of forecasts: BEV strips beside the truth, and planned paths.

    forecast_strip({"truth": (T, X, Y, Z), "warp_last": ..., "tensformer": ...}, path)
    plan_figure({"truth": (B, T, 3), "tensformer": ..., "constant_velocity": ...}, path)

Shapes: B batch (windows), T time steps (future frames), X, Y, Z voxel-grid sizes, "3" a pose
(x, y, yaw) in the last observed ego frame.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from world_model.forecast_scores import HORIZONS
from world_model.planning import constant_velocity_path, true_path
from worldmodels.viz.driving import plot_bev
from worldmodels.viz.save import save_figure

FRAME_SECONDS = 0.5  # the benchmark's 2 Hz


def forecast_strip_figure(rows: dict[str, torch.Tensor], title: str = "") -> plt.Figure:
    """One row per entry (each (T, X, Y, Z) class ids: the truth, a baseline, a forecast), one
    column per horizon of HORIZONS (+1, +2, +3 s), each seen from above."""
    frames = list(HORIZONS.values())
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(2.3 * len(frames), 2.3 * len(rows)),
                             squeeze=False)  # fmt: skip
    for r, (name, grids) in enumerate(rows.items()):
        for c, frame in enumerate(frames):
            ax = axes[r, c]
            plot_bev(ax, grids[frame - 1].cpu().numpy(), legend=False)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"+{frame * FRAME_SECONDS:g} s" if r == len(rows) - 1 else "")
            ax.set_ylabel(name if c == 0 else "", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def forecast_strip(rows: dict[str, torch.Tensor], path: Path, title: str = "") -> Path:
    return save_figure(forecast_strip_figure(rows, title), path)


def plan_figure(paths: dict[str, torch.Tensor], title: str = "") -> plt.Figure:
    """Up to 6 windows side by side: each planner's path (B, T, 3) from the ego (0, 0)."""
    n = min(6, len(next(iter(paths.values()))))
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        for name, path in paths.items():
            xy = torch.cat([torch.zeros(1, 2), path[i, :, :2].float().cpu()])  # (T + 1, 2)
            ax.plot(xy[:, 1], xy[:, 0], marker="o", markersize=2.5, label=name)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("y (m)")
        if i == 0:
            ax.set_ylabel("x, forward (m)")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_plan_figure(paths: dict[str, torch.Tensor], path: Path, title: str = "") -> Path:
    return save_figure(plan_figure(paths, title), path)


def draw_examples(forecasters: dict, windows, folders: list[Path], name: str,
                  planners: dict | None = None) -> list[Path]:  # fmt: skip
    """The middle window of the split: truth, warp_last and the forecasts (true and
    alternative trajectories) as BEV strips, `<name>_forecast_<split>.png`; for each of
    `planners` ({model: window -> path}), six evenly spread windows' planned paths beside
    the truth and constant velocity, `<model>_plan_<split>.png`."""
    middle = windows.batch([len(windows) // 2])
    rows = {"truth": middle.future[0]}
    for label, forecaster in forecasters.items():
        if label != "copy_last":
            rows[label] = forecaster(middle.past, middle.past_poses, middle.future_poses)[0]
    split, title = windows.split, f"{windows.split}: window {len(windows) // 2}, from above"
    saved = [forecast_strip(rows, f / f"{name}_forecast_{split}.png", title) for f in folders]
    spread = windows.batch(torch.linspace(0, len(windows) - 1, 6).round().long().tolist())
    T_f = spread.future_poses.shape[1]
    for planner_name, planner in (planners or {}).items():
        paths = {"truth": true_path(spread.past_poses, spread.future_poses),
                 planner_name: planner(spread),
                 "constant_velocity": constant_velocity_path(spread.past_poses, T_f)}  # fmt: skip
        title = f"{split}: planned paths, last observed ego frame"
        saved += [save_plan_figure(paths, f / f"{planner_name}_plan_{split}.png", title)
                  for f in folders]  # fmt: skip
    return saved
