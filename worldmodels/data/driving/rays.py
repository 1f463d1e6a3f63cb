"""Ray geometry shared by the caster and the visibility mask: directions prepared for a DDA,
where rays cross raster planes, which voxel levels a height range passes through, and the
voxel-consistent caster's bookkeeping of the first occupied voxel a ray enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving.config import Preset
from worldmodels.data.driving.voxels import Voxels

LEVEL_EPS = 1e-6  # in voxel heights: touching a level's face is not entering it


@dataclass
class GridGeometry:
    """The voxel grid seen from the raster: raster column offset and subdivision, sizes."""

    offset: int  # raster index of the grid's first column
    r: int  # raster columns per voxel edge
    size: tuple[int, int, int]
    z0: float
    dz: float

    @classmethod
    def of(cls, preset: Preset) -> GridGeometry:
        grid = preset.grid
        offset = round((preset.raster_half_extent - grid.half_extent[0]) / preset.fine_cell)
        return cls(offset, preset.subdivision, grid.size, grid.z_range[0], grid.voxel_z)


def level_bits(z_low, z_high, geom: GridGeometry) -> np.ndarray:
    """Bit mask (int64) of the voxel levels the height range [z_low, z_high] passes through
    (touching a face is not passing through); 0 where the range misses the grid."""
    k_low = np.floor((z_low - geom.z0) / geom.dz + LEVEL_EPS).astype(np.int64)
    k_high = np.ceil((z_high - geom.z0) / geom.dz - LEVEL_EPS).astype(np.int64) - 1
    k_low, k_high = np.maximum(k_low, 0), np.minimum(k_high, geom.size[2] - 1)
    valid = k_low <= k_high
    k_high = np.where(valid, k_high, 0)
    k_low = np.where(valid, k_low, 0)
    bits = ((np.int64(1) << (k_high + 1)) - 1) & ~((np.int64(1) << k_low) - 1)
    return np.where(valid, bits, 0)


def prepare(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directions (R, 3) as float64 with exact +0 for zero x/y components and no exactly
    horizontal ray; their inverses (+inf for zero components); forward (R, 2) bool: the ray
    moves towards +x / +y (a zero component counts as forward, then every plane ahead is at
    t = +inf)."""
    d = np.asarray(dirs, dtype=np.float64).copy()
    d[:, :2] = np.where(d[:, :2] == 0, 0.0, d[:, :2])  # -0.0 -> +0.0, so 1/d = +inf
    d[:, 2] = np.where(np.abs(d[:, 2]) < 1e-12, 1e-12, d[:, 2])
    with np.errstate(divide="ignore"):
        inverse = 1.0 / d
    return d, inverse, d[:, :2] >= 0


def plane_t(plane, origin, inverse, half, cell):
    """Distance t at which rays reach raster plane number `plane` (plane p lies at
    -half + p * cell, the low face of column p)."""
    return (-half + plane * cell - origin) * inverse


def enter_first_voxel(s, t1, voxels: Voxels, geom: GridGeometry, origin, raster) -> None:
    """Mark rays that enter an occupied voxel in their current column (and are not yet in one):
    remember the voxel's class and the t at which they enter and leave it."""
    ox, oy, oz = origin
    X, Y, _ = geom.size
    vi, vj = (s.i - geom.offset) // geom.r, (s.j - geom.offset) // geom.r
    in_grid = (s.i >= geom.offset) & (s.j >= geom.offset) & (vi < X) & (vj < Y)
    check = in_grid & ~s.in_voxel & (t1 - s.t0 > 1e-9)
    if not check.any():
        return
    rows = np.flatnonzero(check)
    vi, vj = vi[rows], vj[rows]
    d, inv, t0, t_end = s.d[rows], s.inv[rows], s.t0[rows], t1[rows]
    z_a, z_b = oz + t0 * d[:, 2], oz + t_end * d[:, 2]
    hits = voxels.bits[vi, vj] & level_bits(np.minimum(z_a, z_b), np.maximum(z_a, z_b), geom)
    found = hits != 0
    if not found.any():
        return
    rows, vi, vj, d, inv, t0, hits = (a[found] for a in (rows, vi, vj, d, inv, t0, hits))
    # The first level met: the lowest set bit going up, the highest going down.
    lowest = np.log2((hits & -hits).astype(np.float64)).astype(np.int64)
    highest = np.floor(np.log2(hits.astype(np.float64))).astype(np.int64)
    level = np.where(d[:, 2] > 0, lowest, highest)
    t_low = (geom.z0 + level * geom.dz - oz) * inv[:, 2]
    t_high = (geom.z0 + (level + 1) * geom.dz - oz) * inv[:, 2]
    forward = s.forward[rows]
    exit_planes = (
        geom.offset + (vi + forward[:, 0]) * geom.r,
        geom.offset + (vj + forward[:, 1]) * geom.r,
    )
    exit_i = plane_t(exit_planes[0], ox, inv[:, 0], raster.half, raster.cell)
    exit_j = plane_t(exit_planes[1], oy, inv[:, 1], raster.half, raster.cell)
    s.in_voxel[rows] = True
    s.t_in[rows] = np.maximum(t0, np.minimum(t_low, t_high))
    s.t_out[rows] = np.minimum.reduce([np.maximum(t_low, t_high), exit_i, exit_j])
    s.voxel_class[rows] = voxels.semantics[vi, vj, level]
