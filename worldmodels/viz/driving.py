"""Pictures of driving data: BEV semantic maps, 3D voxel views, point clouds, range images.

One orientation everywhere, the way a driver reads a map: the ego frame has x forward,
y left, z up (Occ3D, KITTI), and every top-down picture puts **x forward = up** in the image
and **y left = left**. For a grid `semantics[x, y, z]` of shape (X, Y, Z) that means

    image[i, j] = colour of column (x = X - 1 - i, y = Y - 1 - j)

so the image is (X, Y, 3): rows run along x (top row = largest x), columns along y
(left column = largest y). Metric axes follow the same rule: the horizontal axis is y with
+y on the left, the vertical axis is x with +x at the top.

Colours come from `worldmodels.occ3d.PALETTE` (one fixed colour per class, free = white).
Inputs may be numpy arrays or torch tensors; outputs are numpy arrays.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from worldmodels.occ3d import CLASS_NAMES, FREE, PALETTE

PALETTE_RGB = np.asarray(PALETTE, dtype=np.uint8)  # (Q, 3) uint8, Q = 18 (free included)


def _to_numpy(array) -> np.ndarray:
    """A numpy view of a numpy array or a (CPU or GPU) torch tensor."""
    if hasattr(array, "detach"):  # torch.Tensor, without importing torch here
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _check_semantics(semantics, name: str = "semantics", ndim: int = 3) -> np.ndarray:
    """Check a grid of integer class ids in [0, Q) and return it as an int64 numpy array."""
    grid = _to_numpy(semantics)
    if grid.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(grid.shape)}")
    if not (np.issubdtype(grid.dtype, np.integer) or grid.dtype == np.bool_):
        raise ValueError(f"{name} must hold integer class ids, got dtype {grid.dtype}")
    grid = grid.astype(np.int64)
    if grid.size and (grid.min() < 0 or grid.max() >= len(PALETTE_RGB)):
        raise ValueError(
            f"{name} holds ids in [{grid.min()}, {grid.max()}]; "
            f"expected class ids in [0, {len(PALETTE_RGB) - 1}]"
        )
    return grid


# ----------------------------------------------------------------------------------------
# Bird's-eye view of a semantic occupancy grid
# ----------------------------------------------------------------------------------------


def bev_classes(semantics, free_class: int = FREE) -> np.ndarray:
    """The class of the top-most occupied voxel of each (x, y) column.

    semantics: (X, Y, Z) integer class ids, z index 0 = lowest layer.
    Returns (X, Y) int64 in the grid's own index order (not flipped for display);
    columns with no occupied voxel get `free_class`.
    """
    grid = _check_semantics(semantics)  # (X, Y, Z)
    occupied = grid != free_class  # (X, Y, Z)
    # argmax finds the first True; searching the z-reversed column finds the top-most one.
    top_from_above = np.argmax(occupied[..., ::-1], axis=-1)  # (X, Y)
    top_z = grid.shape[2] - 1 - top_from_above  # (X, Y)
    top_class = np.take_along_axis(grid, top_z[..., None], axis=-1)[..., 0]  # (X, Y)
    return np.where(occupied.any(axis=-1), top_class, free_class)  # (X, Y)


def bev_semantic_image(semantics, free_class: int = FREE) -> np.ndarray:
    """Colour top-down map of an occupancy grid, x forward = up, y left = left.

    semantics: (X, Y, Z) integer class ids (Occ3D ids 0-17), numpy or torch.
    Returns (X, Y, 3) uint8 RGB: pixel [i, j] is the palette colour of the top-most occupied
    voxel of column (X - 1 - i, Y - 1 - j); empty columns are white (the free colour).
    """
    classes = bev_classes(semantics, free_class)  # (X, Y)
    image = PALETTE_RGB[classes]  # (X, Y, 3)
    image[classes == free_class] = PALETTE_RGB[FREE]  # free is white even if free_class != 17
    return np.ascontiguousarray(image[::-1, ::-1])  # x up, y left


def _imshow_extent(extent, shape_xy: tuple[int, int]) -> tuple[float, float, float, float]:
    """matplotlib's (left, right, bottom, top) for a grid covering `extent` in metres.

    extent = (x_min, x_max, y_min, y_max); None means voxel units centred on the grid.
    The horizontal axis is y with +y on the left, so left = y_max and right = y_min.
    """
    if extent is None:
        size_x, size_y = shape_xy
        extent = (-size_x / 2, size_x / 2, -size_y / 2, size_y / 2)
    x_min, x_max, y_min, y_max = (float(v) for v in extent)
    return (y_max, y_min, x_min, x_max)


def _label_bev_axes(ax, unit: str) -> None:
    ax.set_xlabel(f"y ({unit}, left +)")
    ax.set_ylabel(f"x ({unit}, forward +)")


def _draw_ego(ax, length: float) -> None:
    """A small black triangle at the origin pointing forward (up in the picture)."""
    half = length / 2
    # Triangle vertices in (horizontal = y, vertical = x) plot coordinates.
    ax.fill(
        [half * 0.6, -half * 0.6, 0.0],
        [-half, -half, half],
        color="black",
        zorder=5,
    )


def class_legend(ax, classes: Sequence[int], **legend_kwargs):
    """Add a legend of coloured patches for the given class ids; returns the Legend."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=PALETTE_RGB[c] / 255.0, edgecolor="0.5", label=f"{c} {CLASS_NAMES[c]}")
        for c in classes
    ]
    options = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    options.update(legend_kwargs)
    return ax.legend(handles=handles, **options)


def plot_bev(
    ax,
    semantics,
    legend: bool | str = True,
    extent: tuple[float, float, float, float] | None = None,
    title: str | None = None,
    free_class: int = FREE,
    ego: bool = True,
):
    """Draw `bev_semantic_image(semantics)` on a matplotlib Axes with metric axes.

    semantics: (X, Y, Z) class ids. extent: (x_min, x_max, y_min, y_max) in metres that the
    grid covers in the ego frame, e.g. Occ3D's (-40, 40, -40, 40); None labels the axes in
    voxels centred on the grid. legend: True or "present" lists the classes present in the
    picture, "all" lists the 17 occupied classes, False draws none. ego: a triangle at the
    origin pointing forward. Returns the AxesImage.
    """
    image = bev_semantic_image(semantics, free_class)  # (X, Y, 3)
    shape_xy = image.shape[:2]
    shown = _imshow_extent(extent, shape_xy)
    artist = ax.imshow(image, extent=shown, interpolation="nearest")
    _label_bev_axes(ax, "m" if extent is not None else "voxels")
    if ego:
        x_span = abs(shown[3] - shown[2])
        _draw_ego(ax, length=0.04 * x_span)
    if title:
        ax.set_title(title)
    if legend:
        if legend == "all":
            classes = [c for c in range(len(CLASS_NAMES)) if c != FREE]
        else:
            present = np.unique(bev_classes(semantics, free_class))
            classes = [int(c) for c in present if c != free_class]
        if classes:
            class_legend(ax, classes)
    return artist


# ----------------------------------------------------------------------------------------
# 3D view of an occupancy grid
# ----------------------------------------------------------------------------------------


def surface_voxels(semantics, free_class: int = FREE) -> np.ndarray:
    """Indices of occupied voxels that touch free space or the grid's boundary.

    A voxel hidden on all six sides by occupied voxels cannot be seen in a 3D view, so
    drawing only the surface loses nothing and saves most of the points.
    semantics: (X, Y, Z). Returns (V, 3) int64 voxel indices (x, y, z).
    """
    grid = _check_semantics(semantics)  # (X, Y, Z)
    occupied = grid != free_class
    padded = np.pad(occupied, 1, constant_values=False)  # outside the grid counts as free
    inner = padded[1:-1, 1:-1, 1:-1]
    hidden = inner.copy()
    for axis in range(3):  # occupied on both sides along every axis -> hidden
        hidden &= np.roll(padded, 1, axis)[1:-1, 1:-1, 1:-1]
        hidden &= np.roll(padded, -1, axis)[1:-1, 1:-1, 1:-1]
    return np.argwhere(occupied & ~hidden)  # (V, 3)


def plot_voxels_3d(
    ax,
    semantics,
    voxel_size: float | tuple[float, float, float] = 1.0,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    free_class: int = FREE,
    max_points: int = 60_000,
    marker_size: float | None = None,
    seed: int = 0,
    elev: float = 35.0,
    azim: float = -160.0,
    z_scale: float = 2.0,
):
    """3D scatter of the surface voxels of an occupancy grid, coloured by class.

    `ax.voxels` takes minutes on a 200x200x16 grid, so this draws one square marker per
    surface voxel (see `surface_voxels`) at its centre, randomly thinned to `max_points`
    (seeded). ax must be a 3D Axes (`fig.add_subplot(projection="3d")`).
    semantics: (X, Y, Z) class ids. voxel_size: metres per voxel (one value or per axis);
    origin: ego-frame metres of the grid's corner (e.g. Occ3D's (-40, -40, -1)).
    The default view looks forward from behind-left of the ego; z_scale stretches the
    height axis of the box (a 80 m x 80 m x 6.4 m grid is flat). Returns the PathCollection.
    """
    grid = _check_semantics(semantics)
    voxels = surface_voxels(grid, free_class)  # (V, 3)
    if len(voxels) > max_points:
        keep = np.random.default_rng(seed).choice(len(voxels), max_points, replace=False)
        voxels = voxels[np.sort(keep)]
    size = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    centres = np.asarray(origin, dtype=np.float64) + (voxels + 0.5) * size  # (V, 3) metres
    colours = PALETTE_RGB[grid[tuple(voxels.T)]] / 255.0  # (V, 3)
    if marker_size is None:  # smaller markers for bigger grids, so surfaces stay readable
        marker_size = float(np.clip(4000.0 / max(grid.shape[:2]) ** 1.3, 0.5, 60.0))
    artist = ax.scatter(
        centres[:, 0],
        centres[:, 1],
        centres[:, 2],
        c=colours,
        s=marker_size,
        marker="s",
        depthshade=True,
        linewidths=0,
    )
    extent = np.asarray(grid.shape) * size
    ax.set_xlim(origin[0], origin[0] + extent[0])
    ax.set_ylim(origin[1], origin[1] + extent[1])
    ax.set_zlim(origin[2], origin[2] + extent[2])
    ax.set_box_aspect((extent[0], extent[1], extent[2] * z_scale))
    ax.set_xlabel("x (forward)")
    ax.set_ylabel("y (left)")
    ax.set_zlabel("z (up)")
    ax.view_init(elev=elev, azim=azim)
    return artist


# ----------------------------------------------------------------------------------------
# Point clouds and range images
# ----------------------------------------------------------------------------------------


def _check_points(points, name: str = "points") -> np.ndarray:
    cloud = _to_numpy(points)
    if cloud.ndim != 2 or cloud.shape[1] < 3:
        raise ValueError(f"{name} must be (P, 3+) with x, y, z first, got {tuple(cloud.shape)}")
    return cloud[:, :3].astype(np.float32)


def plot_points_bev(
    ax,
    points,
    colors=None,
    labels=None,
    extent: tuple[float, float, float, float] | None = None,
    size: float = 0.3,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    ego: bool = True,
):
    """Points seen from above, x forward = up, y left = left (same layout as `plot_bev`).

    points: (P, 3+) metres, ego/sensor frame (x forward, y left, z up); extra columns ignored.
    Colour, in order of precedence: labels (P,) class ids -> palette colours; colors (P,)
    scalars -> `cmap` (e.g. intensity), or (P, 3) RGB in [0, 1] or uint8; default: height z
    -> `cmap`, with vmin/vmax at the 2nd/98th percentiles. extent: (x_min, x_max, y_min,
    y_max) metres to show; points outside are not drawn. Returns the PathCollection.
    """
    cloud = _check_points(points)  # (P, 3)
    count = len(cloud)
    if labels is not None:
        labels = _check_semantics(labels, "labels", ndim=1)
        if len(labels) != count:
            raise ValueError(f"labels has {len(labels)} entries for {count} points")
        colour_values = PALETTE_RGB[labels] / 255.0  # (P, 3)
    elif colors is not None:
        colour_values = _to_numpy(colors)
        if len(colour_values) != count:
            raise ValueError(f"colors has {len(colour_values)} entries for {count} points")
        if colour_values.ndim == 2 and colour_values.dtype == np.uint8:
            colour_values = colour_values / 255.0
    else:
        colour_values = cloud[:, 2]  # height
        if count:
            low, high = np.percentile(colour_values, [2, 98])
            vmin = low if vmin is None else vmin
            vmax = high if vmax is None else vmax
    if extent is not None:
        x_min, x_max, y_min, y_max = extent
        inside = (
            (cloud[:, 0] >= x_min)
            & (cloud[:, 0] <= x_max)
            & (cloud[:, 1] >= y_min)
            & (cloud[:, 1] <= y_max)
        )
        cloud, colour_values = cloud[inside], colour_values[inside]
    scalar = colour_values.ndim == 1
    artist = ax.scatter(
        cloud[:, 1],  # horizontal axis: y
        cloud[:, 0],  # vertical axis: x
        c=colour_values,
        s=size,
        cmap=cmap if scalar else None,
        vmin=vmin if scalar else None,
        vmax=vmax if scalar else None,
        linewidths=0,
    )
    if extent is not None:
        ax.set_xlim(extent[3], extent[2])  # +y on the left
        ax.set_ylim(extent[0], extent[1])
    else:
        left, right = ax.get_xlim()
        ax.set_xlim(max(left, right), min(left, right))
    ax.set_aspect("equal")
    _label_bev_axes(ax, "m")
    if ego:
        x_low, x_high = ax.get_ylim()
        _draw_ego(ax, length=0.03 * abs(x_high - x_low))
    return artist


def range_image(
    points,
    beams: int,
    columns: int,
    fov_up: float | None = None,
    fov_down: float | None = None,
    rings=None,
) -> np.ndarray:
    """Spherical projection of a point cloud into a (beams, columns) depth image.

    points: (P, 3+) metres in the sensor frame (x forward, y left, z up), origin at the
    sensor. depth d = |p|, azimuth phi = atan2(y, x), elevation theta = asin(z / d).
      column u = floor((1 - phi / pi) / 2 * columns)   -> forward (phi = 0) in the middle,
                                                         left (phi = +90 deg) at 1/4 width
      row    v = floor((fov_up - theta) / (fov_up - fov_down) * beams)  -> row 0 = top beam
    fov_up, fov_down: the vertical field of view in degrees (e.g. +3 and -25 for a
    Velodyne HDL-64E). rings: (P,) beam index per point (0 = top beam, as Ouster stores
    it); when given it is used as the row directly and the fov is not needed -- exact for
    sensors whose beams are not evenly spaced.
    Points outside the fov, and points at range 0, are dropped; when several points fall
    in one pixel the nearest wins. Returns (beams, columns) float32 depth in metres,
    0 where no return.
    """
    cloud = _check_points(points).astype(np.float64)  # (P, 3)
    depth = np.linalg.norm(cloud, axis=1)  # (P,)
    azimuth = np.arctan2(cloud[:, 1], cloud[:, 0])  # (P,) in (-pi, pi]
    col = np.floor((1.0 - azimuth / np.pi) / 2.0 * columns).astype(np.int64) % columns
    if rings is not None:
        row = _to_numpy(rings).astype(np.int64)
        if row.shape != depth.shape:
            raise ValueError(f"rings must be ({len(depth)},), got {tuple(row.shape)}")
    else:
        if fov_up is None or fov_down is None:
            raise ValueError("range_image needs fov_up and fov_down (degrees) or rings")
        if not fov_up > fov_down:
            raise ValueError(f"fov_up ({fov_up}) must be above fov_down ({fov_down})")
        elevation = np.degrees(np.arcsin(np.clip(cloud[:, 2] / np.maximum(depth, 1e-12), -1, 1)))
        row = np.floor((fov_up - elevation) / (fov_up - fov_down) * beams).astype(np.int64)
    valid = (depth > 0) & (row >= 0) & (row < beams)
    image = np.full((beams, columns), np.inf)
    np.minimum.at(image, (row[valid], col[valid]), depth[valid])  # nearest return per pixel
    image[np.isinf(image)] = 0.0
    return image.astype(np.float32)


def plot_range_image(
    ax,
    depth,
    max_depth: float | None = None,
    cmap: str = "turbo",
    colorbar: bool = False,
    log: bool = False,
):
    """Show a (beams, columns) depth image; pixels with no return (depth 0) are black.

    Columns run from behind the sensor (left edge, azimuth +180 deg) through left, forward
    (centre), right, back to behind (right edge), as `range_image` lays them out. log: use
    a logarithmic colour scale, which shows near and far structure at once.
    Returns the AxesImage.
    """
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    image = _to_numpy(depth).astype(np.float32)
    if image.ndim != 2:
        raise ValueError(f"depth must be (beams, columns), got {tuple(image.shape)}")
    shown = np.ma.masked_less_equal(image, 0.0)
    top = max_depth if max_depth is not None else float(shown.max() if shown.count() else 1.0)
    bottom = float(shown.min()) if shown.count() else 0.1
    norm = LogNorm(max(bottom, 0.1), top) if log else Normalize(0.0, top)
    colour_map = colormaps[cmap].with_extremes(bad="black")
    artist = ax.imshow(shown, cmap=colour_map, norm=norm, aspect="auto", interpolation="nearest")
    ax.set_xlabel("column (azimuth: back, left, forward, right, back)")
    ax.set_ylabel("beam (0 = top)")
    if colorbar:
        ax.figure.colorbar(artist, ax=ax, label="depth (m)")
    return artist


# ----------------------------------------------------------------------------------------
# A sequence as a GIF with the ego trajectory
# ----------------------------------------------------------------------------------------


def trajectory_in_frame(ego_poses, t: int) -> np.ndarray:
    """Ego positions of every frame expressed in the ego frame of frame t.

    ego_poses: (T, 4, 4) ego-to-world transforms (world_p = pose @ ego_p).
    p_k^(t) = inv(pose_t) @ pose_k @ [0, 0, 0, 1]. Returns (T, 3) float64 metres.
    """
    poses = _to_numpy(ego_poses).astype(np.float64)  # (T, 4, 4)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"ego_poses must be (T, 4, 4), got {tuple(poses.shape)}")
    world_positions = poses[:, :, 3]  # (T, 4), homogeneous origins of each ego frame
    local = np.linalg.inv(poses[t]) @ world_positions.T  # (4, T)
    return local[:3].T  # (T, 3)


def _figure_to_rgb(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) uint8


def write_gif_atomic(frames: Sequence[np.ndarray], path, fps: float) -> Path:
    """Write (H, W, 3) uint8 frames as a looping GIF; a temp file is renamed into place
    so a reader never sees a half-written file."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    handle, temp_name = tempfile.mkstemp(suffix=".gif", dir=path.parent)
    os.close(handle)
    try:
        images[0].save(
            temp_name,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(round(1000 / fps)),
            loop=0,
        )
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def sequence_gif(
    semantics_seq,
    ego_poses,
    path,
    fps: float = 2.0,
    extent: tuple[float, float, float, float] = (-40.0, 40.0, -40.0, 40.0),
    title: str = "",
    dpi: int = 80,
    legend: bool = True,
) -> Path:
    """Animate a driving sequence as BEV maps with the ego trajectory, written as a GIF.

    semantics_seq: (T, X, Y, Z) class ids, each frame in its own ego frame.
    ego_poses: (T, 4, 4) ego-to-world transforms. Frame t shows the map of frame t and the
    ego positions of all frames moved into ego frame t: past ones (and now) in blue,
    future ones in orange. extent: (x_min, x_max, y_min, y_max) metres covered by the grid
    (default: Occ3D's 80 m square); pass the right one for smaller grids, or the trajectory
    is drawn at the wrong scale.
    The GIF is written atomically to `path` (parent folders made); returns the Path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sequence = _to_numpy(semantics_seq)
    if sequence.ndim != 4:
        raise ValueError(f"semantics_seq must be (T, X, Y, Z), got {tuple(sequence.shape)}")
    num_frames = sequence.shape[0]
    poses = _to_numpy(ego_poses)
    if poses.shape != (num_frames, 4, 4):
        raise ValueError(f"ego_poses must be ({num_frames}, 4, 4), got {tuple(poses.shape)}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = []
    for t in range(num_frames):
        fig, ax = plt.subplots(figsize=(5.6 if legend else 4.2, 4.2), dpi=dpi)
        plot_bev(ax, sequence[t], legend=legend, extent=extent)
        track = trajectory_in_frame(poses, t)  # (T, 3)
        past, future = track[: t + 1], track[t:]
        ax.plot(past[:, 1], past[:, 0], "o-", color="tab:blue", ms=3, lw=1.5, label="past")
        ax.plot(future[:, 1], future[:, 0], "o--", color="tab:orange", ms=3, lw=1.5)
        shown = _imshow_extent(extent, sequence.shape[1:3])
        ax.set_xlim(shown[0], shown[1])
        ax.set_ylim(shown[2], shown[3])
        ax.set_title(f"{title}  t = {t}/{num_frames - 1}".strip(), fontsize=9)
        fig.tight_layout()
        frames.append(_figure_to_rgb(fig))
        plt.close(fig)
    return write_gif_atomic(frames, path, fps)
