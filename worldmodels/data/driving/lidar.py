"""One LiDAR sweep: cast every beam (caster.py), drop returns as real sensors lose them, add
range noise, and mark the voxels the returned rays crossed (Occ3D's mask_lidar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from einops import rearrange

from worldmodels.data.driving.caster import NO_RETURN, CastResult, cast_rays
from worldmodels.data.driving.config import LidarConfig, Preset
from worldmodels.data.driving.rays import GridGeometry, level_bits, plane_t, prepare
from worldmodels.data.driving.scene import EgoRaster
from worldmodels.data.driving.voxels import Voxels

__all__ = ["NO_RETURN", "Sweep", "cast_rays", "drop_probability", "lidar_sweep", "visibility"]


def visibility(voxels: Voxels, preset: Preset, origin, dirs, t_hit) -> np.ndarray:
    """(X, Y, Z) bool: voxels that rays (R, 3) crossed or ended in, from `origin` up to their
    hit distances t_hit (R,) (rays with t_hit = inf are ignored), like Occ3D's mask_lidar.
    A 2-D DDA over voxel columns; in each column the ray's height range marks its levels."""
    grid = preset.grid
    X, Y, Z = grid.size
    keep = np.isfinite(t_hit)
    d, inv, forward = prepare(np.asarray(dirs)[keep])
    t_stop = np.asarray(t_hit)[keep]
    geom = GridGeometry(0, 1, grid.size, grid.z_range[0], grid.voxel_z)
    hx, size = grid.half_extent[0], grid.voxel_xy
    ox, oy, oz = (float(v) for v in origin)
    i = np.full(len(d), int((ox + hx) // size))
    j = np.full(len(d), int((oy + hx) // size))
    t0 = np.zeros(len(d))
    bits = np.zeros((X, Y), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        while len(d):
            t_i = plane_t(i + forward[:, 0], ox, inv[:, 0], hx, size)
            t_j = plane_t(j + forward[:, 1], oy, inv[:, 1], hx, size)
            t1 = np.minimum(np.minimum(t_i, t_j), t_stop)
            z_a, z_b = oz + t0 * d[:, 2], oz + t1 * d[:, 2]
            crossed = level_bits(np.minimum(z_a, z_b), np.maximum(z_a, z_b), geom)
            np.bitwise_or.at(bits, (i, j), np.where(t1 > t0, crossed, 0))
            across_i = t_i <= t_j
            i = np.where(across_i, i - 1 + 2 * forward[:, 0], i)
            j = np.where(across_i, j, j - 1 + 2 * forward[:, 1])
            go = (t1 < t_stop) & (i >= 0) & (j >= 0) & (i < X) & (j < Y)
            i, j, t0, t_stop = i[go], j[go], t1[go], t_stop[go]
            d, inv, forward = d[go], inv[go], forward[go]
    return ((bits[..., None] >> np.arange(Z)) & 1).astype(bool)


def drop_probability(cast: CastResult, dirs: np.ndarray, lidar: LidarConfig) -> np.ndarray:
    """(R,) probability that each return is lost (LidarConfig's formula): more at long range
    and at grazing incidence, where less light comes back.

        p = dropout + dropout_range (t / max_range)^2 + dropout_grazing (1 - |cos i|)^8
    """
    axis = np.clip(cast.normal_axis, 0, 2)
    cos_i = np.abs(np.take_along_axis(dirs, axis[:, None].astype(np.int64), axis=1)[:, 0])
    t = np.where(np.isfinite(cast.t), cast.t, lidar.max_range)
    p = (
        lidar.dropout
        + lidar.dropout_range * (t / lidar.max_range) ** 2
        + lidar.dropout_grazing * (1 - cos_i) ** 8
    )
    return np.clip(p, 0.0, 1.0)


@dataclass
class Sweep:
    """One LiDAR sweep as a range image (rows = beams, top first; columns = azimuths).

    range: (H, W) float32 m from the sensor, with noise; 0 where there is no return.
    clean_range: (H, W) float32 the same returns without noise (0 where none).
    label: (H, W) uint8 class of the hit, NO_RETURN (255) where there is no return.
    clean_t: (H, W) float64 noise-free range before dropout (inf: no return), for checks.
    visibility: (X, Y, Z) bool, voxels crossed by the returned rays (Occ3D's mask_lidar).
    """

    range: np.ndarray
    clean_range: np.ndarray
    label: np.ndarray
    clean_t: np.ndarray
    visibility: np.ndarray


def lidar_sweep(
    raster: EgoRaster, voxels: Voxels, preset: Preset, rng: np.random.Generator
) -> Sweep:
    """Cast every beam, then drop returns (`drop_probability`) and add Gaussian range noise;
    the visibility mask comes from the kept returns (their noise-free paths)."""
    lidar: LidarConfig = preset.lidar
    dirs = rearrange(lidar.ray_directions(), "H W xyz -> (H W) xyz")  # sensor frame = ego axes
    origin = np.array([0.0, 0.0, lidar.sensor_height])
    cast = cast_rays(raster, voxels, preset, origin, dirs)
    lost = rng.random(len(dirs)) < drop_probability(cast, dirs, lidar)
    kept = np.isfinite(cast.t) & ~lost
    noise = rng.normal(0.0, lidar.noise_std, len(dirs))
    noisy = np.where(kept, np.maximum(cast.t + noise, 0.0), 0.0)  # (R,), R = H * W
    label = np.where(kept, cast.label, NO_RETURN).astype(np.uint8)
    image = lambda rays: rearrange(rays, "(H W) -> H W", H=lidar.beams)  # noqa: E731
    return Sweep(
        range=image(noisy.astype(np.float32)),
        clean_range=image(np.where(kept, cast.t, 0.0).astype(np.float32)),
        label=image(label),
        clean_t=image(cast.t),
        visibility=visibility(voxels, preset, origin, dirs, np.where(kept, cast.t, np.inf)),
    )
