"""A picture of LiDAR forecasts: the clouds seen from above, each method beside the truth.

    draw_lidar_forecast(model, tokenizer, sweeps, clips, index, folders, name)

One window, the 3 s protocol (6 sweeps in, 6 out): rows are the true sweep, the model's
forecast, copy_last, warp_last and the tokenizer's ceiling; columns are +0.5, +1 and +3 s.
Every cloud is one point per true ray at the depth that method gives it (p = D d), the way
the scores see them, coloured by height; the dashed square is the tokenizer's region.

Shapes: R rays, N tokens per frame (h*w).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from lidar_tokenizer.sweeps import frame_rays

from world_model.lidar_data import LIDAR_PAST
from world_model.lidar_forecast import forecast_ids, protocol_free, true_frame
from worldmodels.viz.save import save_figure

COLUMNS = {"+0.5 s": 0, "+1 s": 1, "+3 s": 5}  # future frame offsets of the 3 s protocol
ROWS = ("truth", "model", "copy_last", "warp_last", "ceiling")


@torch.no_grad()
def lidar_forecast_depths(model, tokenizer, sweeps, clips, index: int, steps: int = 10,
                          guidance: float = 0.0, temperature: float = 0.0, seed: int = 0,
                          max_rays: int = 4096) -> dict:  # fmt: skip
    """{column: (frame, {row: depth (R,)})} of window `index` under the 3 s protocol."""
    k, s = clips.starts[index]
    ids = forecast_ids(model, clips.batch([index]), "3s", steps, guidance, temperature, seed)
    decoded = tokenizer.decode(ids.reshape(-1, *tokenizer.token_grid))  # (6, ...)
    last, out = s + LIDAR_PAST - 1, {}
    for column, j in COLUMNS.items():
        frame = true_frame(sweeps, k, last + 1 + j, max_rays)
        rays, _ = frame_rays(tokenizer, frame)
        skipping = tokenizer.render_config.eval_skipping
        depth = tokenizer.render(decoded.frame(j), rays, skipping=skipping).depth[0].float().cpu()
        others = protocol_free(tokenizer, sweeps, clips, k, last + 1 + j, last, rays)
        out[column] = (frame, {"truth": frame.rays.depths, "model": depth, **others})
    return out


def lidar_forecast_figure(depths: dict, region_xy: float, title: str = "") -> plt.Figure:
    fig, axes = plt.subplots(len(ROWS), len(depths), figsize=(2.6 * len(depths), 2.5 * len(ROWS)),
                             squeeze=False)  # fmt: skip
    for c, (column, (frame, rows)) in enumerate(depths.items()):
        for r, name in enumerate(ROWS):
            ax = axes[r, c]
            points = frame.rays.dirs * rows[name][:, None]  # (R, 3)
            ax.scatter(points[:, 1], points[:, 0], c=points[:, 2], s=0.3, cmap="viridis",
                       vmin=-2.0, vmax=3.0, rasterized=True)  # fmt: skip
            edge = [-region_xy, region_xy, region_xy, -region_xy, -region_xy]
            ax.plot(edge, [-region_xy, -region_xy, region_xy, region_xy, -region_xy], "k--", lw=0.5)
            ax.set_xlim(region_xy * 1.3, -region_xy * 1.3)  # y to the left, as seen from above
            ax.set_ylim(-region_xy * 1.3, region_xy * 1.3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(column if r == 0 else "", fontsize=9)
            ax.set_ylabel(name if c == 0 else "", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def draw_lidar_forecast(model, tokenizer, sweeps, clips, index: int, folders, name: str,
                        **sampling) -> list[Path]:  # fmt: skip
    """The figure of window `index`, saved as `<name>_forecast_<split>.png` in each folder."""
    depths = lidar_forecast_depths(model, tokenizer, sweeps, clips, index, **sampling)
    k, s = clips.starts[index]
    title = f"{clips.split} sequence {k}, frames {s}-{s + 5} in, 3 s protocol; x forward (up)"
    region = float(tokenizer.config.region_xy)
    paths = []
    for folder in folders:
        fig = lidar_forecast_figure(depths, region, title)
        paths.append(save_figure(fig, Path(folder) / f"{name}_forecast_{clips.split}.png"))
    return paths
