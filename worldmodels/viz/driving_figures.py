"""The pictures of worldmodels/data/README.md: one sequence of each scenario kind.

    uv run python -m worldmodels.viz.driving_figures [--preset debug] [--out DIR]

For each scenario, one PNG with four panels of one frame: the BEV semantic map with the ego's
trajectory, a 3D view of the voxels, the LiDAR sweep from above (coloured by class) and its
range image; plus one GIF of a whole sequence. Images are quantised to a small palette so the
committed files stay small.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from worldmodels.data.driving.config import Preset, get_preset  # noqa: E402
from worldmodels.data.driving.generate import generate_sequence  # noqa: E402
from worldmodels.data.driving.traffic import SCENARIOS  # noqa: E402
from worldmodels.viz.driving import (  # noqa: E402
    plot_bev,
    plot_points_bev,
    plot_range_image,
    plot_voxels_3d,
    sequence_gif,
    trajectory_in_frame,
)

FIGURES = Path(__file__).resolve().parents[1] / "data" / "figures"
FIGURE_SEED = 4  # the sequence shown for each scenario (a training-range seed)


def lidar_points(sequence: dict, preset: Preset, t: int):
    """Returns of frame t: points (P, 3) in the sensor frame, labels (P,), beam rows (P,).
    p = r d: the range times the ray's unit direction."""
    from worldmodels.data.driving.shards import RANGE_UNIT

    ranges = sequence["lidar_range"][t].astype(np.float64) * RANGE_UNIT  # (H, W) m
    directions = preset.lidar.ray_directions()  # (H, W, 3)
    valid = ranges > 0
    rows = np.nonzero(valid)[0]
    return ranges[valid, None] * directions[valid], sequence["lidar_label"][t][valid], rows


def range_in_metres(sequence: dict, t: int) -> np.ndarray:
    """Frame t's range image (H, W) in metres; its columns already run as
    `worldmodels.viz.driving.range_image`'s do (behind, left, forward in the middle, right,
    behind): LidarConfig.azimuth_angles."""
    from worldmodels.data.driving.shards import RANGE_UNIT

    return sequence["lidar_range"][t].astype(np.float32) * RANGE_UNIT


def extent(preset: Preset) -> tuple[float, float, float, float]:
    hx, hy = preset.grid.half_extent
    return (-hx, hx, -hy, hy)


def panel(sequence: dict, preset: Preset, t: int, title: str) -> plt.Figure:
    """Four views of frame t of a generated sequence: BEV map with the ego path, 3D voxels,
    LiDAR from above (class colours), and the LiDAR range image below them."""
    grid = preset.grid
    fig = plt.figure(figsize=(13, 7.2), dpi=72)
    layout = fig.add_gridspec(2, 3, height_ratios=(3.2, 1.0))
    ax = fig.add_subplot(layout[0, 0])
    plot_bev(ax, sequence["occupancy"][t], legend=True, extent=extent(preset))
    track = trajectory_in_frame(sequence["ego_pose"], t)  # (T, 3) ego positions in frame t
    ax.plot(track[:, 1], track[:, 0], ".-", color="black", ms=3, lw=1)
    ax.set_xlim(extent(preset)[3], extent(preset)[2])
    ax.set_ylim(extent(preset)[0], extent(preset)[1])
    ax.set_title(f"{title}: occupancy from above, frame {t}, ego path", fontsize=9)
    ax = fig.add_subplot(layout[0, 1], projection="3d")
    origin = (-grid.half_extent[0], -grid.half_extent[1], grid.z_range[0])
    size = (grid.voxel_xy, grid.voxel_xy, grid.voxel_z)
    plot_voxels_3d(ax, sequence["occupancy"][t], voxel_size=size, origin=origin, elev=40)
    ax.set_title("occupancy, 3D", fontsize=9)
    points, labels, rows = lidar_points(sequence, preset, t)
    ax = fig.add_subplot(layout[0, 2])
    reach = min(preset.lidar.max_range, 40.0)
    plot_points_bev(ax, points, labels=labels, extent=(-reach, reach, -reach, reach), size=1.2)
    ax.set_title(f"LiDAR from above, class colours ({len(points)} returns)", fontsize=9)
    ax = fig.add_subplot(layout[1, :])
    plot_range_image(ax, range_in_metres(sequence, t), log=True, colorbar=True)
    ax.set_title("LiDAR range image (log depth; black: no return)", fontsize=9)
    fig.tight_layout()
    return fig


def save_small_png(fig: plt.Figure, path: Path, colors: int = 96) -> None:
    """Save a figure as a palette PNG (quantised colours): a fraction of the RGB size."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    image = Image.open(buffer).convert("RGB").quantize(colors=colors, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)


def make_figures(
    preset: str | Preset = "debug",
    out: Path = FIGURES,
    frames: int = 16,
    scenarios: tuple[str, ...] = tuple(SCENARIOS),
    gif: str | None = "street",
) -> list[Path]:
    """Generate one `frames`-frame sequence per scenario and write the README's pictures
    (a GIF for the scenario named by `gif`)."""
    preset = get_preset(preset)
    short = replace(preset, data=replace(preset.data, frames=frames))
    written = []
    for name in scenarios:
        sequence = generate_sequence(name, FIGURE_SEED, short)
        path = out / f"{preset.name}-{name}.png"
        save_small_png(panel(sequence, short, frames // 2, name), path)
        written.append(path)
        if name == gif:
            gif = out / f"{preset.name}-{name}.gif"
            sequence_gif(
                sequence["occupancy"],
                sequence["ego_pose"],
                gif,
                fps=2.0,
                extent=extent(preset),
                title=name,
                dpi=64,
                legend=False,
            )
            written.append(gif)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.viz.driving_figures")
    parser.add_argument("--preset", default="debug")
    parser.add_argument("--out", type=Path, default=FIGURES)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--gif", default="street", help="scenario to animate ('' none)")
    args = parser.parse_args(argv)
    paths = make_figures(args.preset, args.out, args.frames, tuple(args.scenarios), args.gif)
    for path in paths:
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
