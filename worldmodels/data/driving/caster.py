"""The LiDAR caster: rays marched through the ego raster's columns, all rays at once.

All rays march together, one raster column per iteration (a 2-D DDA, Amanatides & Woo 1987,
vectorised over rays): in column c the ray covers t in [t0, t1] and heights z(t) = o_z + t d_z.
A column holds two disjoint solid intervals (voxels.Columns): the ground (-inf, ground_top]
and a floating object [bottom, top). The ray hits an interval [lo, hi] where

    t_enter = max(t0, min(t_lo, t_hi)),  t_exit = min(t1, max(t_lo, t_hi)),
    t_lo = (lo - o_z) / d_z,  hit  <=>  t_enter < t_exit,

and returns at the first hit: the first surface along the ray at the raster's resolution
("exact", the default). A ray that stays above everything in a square of 1, 4 or 16 voxel
columns crosses the whole square in one step, so a frame takes about a hundred iterations.

The point is reported INSIDE (5 mm) behind the surface, or less where the solid or the voxel
the surface lies in ends sooner, so the point lies in the voxel that holds the surface.
The hit's normal is vertical for a top or bottom and along the crossed plane for a side;
lidar.py uses it for the incidence angle.

caster="voxel" keeps the older voxel-consistent rule: the caster also follows the first
occupied voxel each ray enters, and a ray that leaves it without touching solid (it grazed
a partly filled voxel) stops there, at the middle of its chord through the voxel. Every
point is then in an occupied voxel, but up to tens of metres off the true surface (a ray
that grazes a pole's voxel never reaches the building behind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from einops import reduce

from worldmodels.data.driving.config import Preset
from worldmodels.data.driving.rays import GridGeometry, enter_first_voxel, plane_t, prepare
from worldmodels.data.driving.scene import EgoRaster
from worldmodels.data.driving.shards import NO_RETURN  # label of rays without a return
from worldmodels.data.driving.voxels import BAND, EPS, Columns, Voxels

INSIDE = 0.005  # m, how far a reported point lies inside the surface it hit
DEEP = -1e4  # m, the bottom of the ground interval
CASTERS = ("exact", "voxel")


@dataclass
class CastResult:
    """Per ray: hit distance t (R,) float64 m along the unit direction (inf: no return), the
    hit's class (R,) uint8 (NO_RETURN if none) and the axis of the surface normal there
    (R,) int8: 0 = x, 1 = y (a side), 2 = z (a top or bottom); -1 without a return."""

    t: np.ndarray
    label: np.ndarray
    normal_axis: np.ndarray


def cast_rays(
    raster: EgoRaster, voxels: Voxels, preset: Preset, origin: np.ndarray, dirs: np.ndarray
) -> CastResult:
    """Cast rays (R, 3) unit directions from `origin` (3,) (ego frame, m) up to the LiDAR's
    max range, by `preset.lidar.caster`. Returns the noise-free hit of every ray."""
    mode = preset.lidar.caster
    if mode not in CASTERS:
        raise ValueError(f"unknown LiDAR caster {mode!r}; expected one of {CASTERS}")
    d, inverse, forward = prepare(dirs)
    geom = GridGeometry.of(preset)
    half = raster.half
    ox, oy, oz = (float(v) for v in origin)
    n = len(d)
    result = CastResult(
        np.full(n, np.inf), np.full(n, NO_RETURN, np.uint8), np.full(n, -1, np.int8)
    )
    columns = Columns.of(raster, slice(None), slice(None))

    # Where each ray must stop at the latest: max range, above every solid, below every
    # ground, or the raster's border.
    sky = float(max(np.max(columns.ground_top), np.max(raster.top, initial=-np.inf))) + 0.1
    floor = float(np.min(columns.ground_top)) - 0.1
    t_sky = np.where(d[:, 2] > 0, (sky - oz) * inverse[:, 2], np.inf)
    t_floor = np.where(d[:, 2] < 0, (floor - oz) * inverse[:, 2], np.inf)
    t_border = np.minimum(
        np.where(forward[:, 0], half - ox, -half - ox) * inverse[:, 0],
        np.where(forward[:, 1], half - oy, -half - oy) * inverse[:, 1],
    )
    t_end = np.minimum.reduce([np.full(n, preset.lidar.max_range), t_sky, t_floor, t_border])

    ceilings = _square_ceilings(columns, geom, (geom.r, 4 * geom.r, 16 * geom.r), mode)
    state = _RayState.start(d, inverse, forward, origin, raster, t_end)
    march = _Marcher(columns, raster, voxels, geom, np.asarray(origin, float), ceilings, mode)
    with np.errstate(invalid="ignore"):
        while state.ray.size:
            state = march.step(state, result)
    return result


def _square_ceilings(columns: Columns, geom: GridGeometry, sides, mode: str) -> list:
    """For each side length (in raster columns), the height below which squares of that side
    hold solid: the highest solid top (for the voxel caster raised by BAND, taken over the
    neighbouring columns too and rounded up to a voxel face, so that every occupied voxel,
    including those a nearby surface occupies by voxels.py's band and side-face rules, lies
    below it). A ray that stays at or above it while crossing a
    square can cross the square in one step. Squares align with the raster's corner (padded
    with empty columns to fit); a voxel column is r x r raster columns and the grid's offset
    is a whole number of voxels, so these squares are unions of whole voxel columns."""
    ceiling = np.maximum(columns.ground_top, columns.top)
    if mode == "voxel":  # a voxel is also occupied by a surface within BAND below its floor
        ceiling = _grow(ceiling + BAND)  # or just across one of its side faces
        ceiling = geom.z0 + np.ceil((ceiling - EPS - geom.z0) / geom.dz) * geom.dz
    out = []
    for side in sides:
        pad = -ceiling.shape[0] % side
        padded = np.pad(ceiling, ((0, pad), (0, pad)), constant_values=-np.inf)
        out.append((side, reduce(padded, "(rows a) (cols b) -> rows cols", "max", a=side, b=side)))
    return out


def _grow(height: np.ndarray) -> np.ndarray:
    """(M, N) the highest value among each column and its 8 neighbours."""
    padded = np.pad(height, 1, constant_values=-np.inf)
    M, N = height.shape
    shifted = [padded[a : a + M, b : b + N] for a in range(3) for b in range(3)]
    return np.maximum.reduce(shifted)


@dataclass
class _RayState:
    """The rays still marching (all arrays indexed alike)."""

    ray: np.ndarray  # index into the caller's ray list
    d: np.ndarray  # (n, 3) directions
    inv: np.ndarray  # (n, 3) 1 / directions
    forward: np.ndarray  # (n, 2) moving towards +x / +y
    i: np.ndarray  # raster column
    j: np.ndarray
    t0: np.ndarray  # t at which the ray entered the current column
    t_end: np.ndarray
    axis: np.ndarray  # the axis of the plane it crossed into this column (0 x, 1 y)
    in_voxel: np.ndarray  # voxel caster: inside the first occupied voxel it met
    t_in: np.ndarray  # where it entered that voxel
    t_out: np.ndarray  # where it leaves that voxel
    voxel_class: np.ndarray

    @classmethod
    def start(cls, d, inv, forward, origin, raster, t_end) -> _RayState:
        n = len(d)
        last = raster.ground.shape[0] - 1
        i0, j0 = (int(np.clip((origin[a] + raster.half) // raster.cell, 0, last)) for a in (0, 1))
        return cls(
            ray=np.arange(n),
            d=d,
            inv=inv,
            forward=forward,
            i=np.full(n, i0),
            j=np.full(n, j0),
            t0=np.zeros(n),
            t_end=t_end,
            axis=np.zeros(n, dtype=np.int8),
            in_voxel=np.zeros(n, dtype=bool),
            t_in=np.zeros(n),
            t_out=np.full(n, np.inf),
            voxel_class=np.zeros(n, dtype=np.uint8),
        )

    def subset(self, keep: np.ndarray) -> _RayState:
        return _RayState(**{k: v[keep] for k, v in vars(self).items()})


def _interval(lo, hi, oz, inv_z, t0, t1):
    """Where rays in a column (t in [t0, t1]) are inside the height interval [lo, hi]:
    t_enter, t_exit and whether they are inside at all (t_enter < t_exit)."""
    t_lo, t_hi = (lo - oz) * inv_z, (hi - oz) * inv_z
    enter = np.maximum(t0, np.minimum(t_lo, t_hi))
    leave = np.minimum(t1, np.maximum(t_lo, t_hi))
    return enter, leave, enter < leave


@dataclass
class _Marcher:
    """One step of every marching ray: examine its column, record the rays that stop, move
    the others on (to the next column, or across a whole empty square)."""

    columns: Columns
    raster: EgoRaster
    voxels: Voxels
    geom: GridGeometry
    origin: np.ndarray
    ceilings: list  # (side, map) pairs from small squares to large ones, see _square_ceilings
    mode: str

    def step(self, s: _RayState, result: CastResult) -> _RayState:
        ox, oy, oz = self.origin
        half, cell = self.raster.half, self.raster.cell
        fwd_i, fwd_j = s.forward[:, 0], s.forward[:, 1]
        size = self._square_size(s)
        low_i, low_j = s.i // size * size, s.j // size * size
        # The next plane each ray crosses: the far face of its column, or of the square.
        plane_i, plane_j = low_i + size * fwd_i, low_j + size * fwd_j
        t_next_i = plane_t(plane_i, ox, s.inv[:, 0], half, cell)
        t_next_j = plane_t(plane_j, oy, s.inv[:, 1], half, cell)
        t1 = np.minimum(np.minimum(t_next_i, t_next_j), s.t_end)

        enter, leave, solid, label, axis = self._solid_in_column(s, t1)
        if self.mode == "voxel":
            enter_first_voxel(s, t1, self.voxels, self.geom, self.origin, self.raster)
            on_surface = solid & (~s.in_voxel | (enter < s.t_out))
            grazes = ~on_surface & s.in_voxel & (t1 >= s.t_out)
            depth = np.minimum(leave, s.t_out) - enter
        else:
            on_surface, grazes = solid, np.zeros_like(solid)
            depth = np.minimum(leave, self._next_voxel_face(s, enter)) - enter
        t_hit = np.where(on_surface, enter + np.minimum(INSIDE, depth / 2), np.inf)
        t_hit = np.where(grazes, (s.t_in + s.t_out) / 2, t_hit)
        label = np.where(grazes, s.voxel_class, label)
        stopped = on_surface | grazes | (t1 >= s.t_end)
        returned = on_surface | grazes
        result.t[s.ray[returned]] = t_hit[returned]
        result.label[s.ray[returned]] = label[returned]
        result.normal_axis[s.ray[returned]] = axis[returned]

        # Step the others into the next column: across the plane crossed first; a ray that
        # skipped a square also gets its other index from where it left the square.
        across_i = t_next_i <= t_next_j
        new_i, new_j = plane_i - 1 + fwd_i, plane_j - 1 + fwd_j
        skip = size > 1
        at_i = np.clip((ox + t1 * s.d[:, 0] + half) // cell, low_i, low_i + size - 1)
        at_j = np.clip((oy + t1 * s.d[:, 1] + half) // cell, low_j, low_j + size - 1)
        s.i = np.where(across_i, new_i, np.where(skip, at_i, s.i).astype(np.int64))
        s.j = np.where(across_i, np.where(skip, at_j, s.j).astype(np.int64), new_j)
        s.t0 = t1
        s.axis = np.where(across_i, 0, 1).astype(np.int8)
        count = self.raster.ground.shape[0]
        go = ~stopped & (s.i >= 0) & (s.j >= 0) & (s.i < count) & (s.j < count)
        return s.subset(go)

    def _square_size(self, s: _RayState) -> np.ndarray:
        """Side (in columns) of the square each ray crosses in this step: the largest whose
        ceiling the ray stays at or above (z is monotonic along a ray); 1 if none."""
        ox, oy, oz = self.origin
        half, cell = self.raster.half, self.raster.cell
        z0 = oz + s.t0 * s.d[:, 2]
        size = np.ones_like(s.i)
        for side, ceiling in self.ceilings:
            far_i = plane_t(
                s.i // side * side + side * s.forward[:, 0], ox, s.inv[:, 0], half, cell
            )
            far_j = plane_t(
                s.j // side * side + side * s.forward[:, 1], oy, s.inv[:, 1], half, cell
            )
            t_far = np.minimum(np.minimum(far_i, far_j), s.t_end)
            lowest = np.minimum(z0, oz + t_far * s.d[:, 2])
            size = np.where(lowest >= ceiling[s.i // side, s.j // side], side, size)
        return size

    def _solid_in_column(self, s: _RayState, t1):
        """The first solid each ray meets in its column: t_enter, t_exit of that interval,
        whether there is one, its class at the entry point and the normal's axis there."""
        c, col, oz = self.columns, (s.i, s.j), self.origin[2]
        inv_z = s.inv[:, 2]
        enter_a, leave_a, hit_a = _interval(DEEP, c.ground_top[col], oz, inv_z, s.t0, t1)
        floating = c.bottom[col] < c.top[col]
        enter_b, leave_b, hit_b = _interval(c.bottom[col], c.top[col], oz, inv_z, s.t0, t1)
        hit_b &= floating
        use_a = hit_a & (~hit_b | (enter_a <= enter_b))
        enter = np.where(use_a, enter_a, enter_b)
        leave = np.where(use_a, leave_a, leave_b)
        z = oz + enter * s.d[:, 2]
        object_part = c.merged[col] & (z > c.ground_z[col])
        label_a = np.where(object_part, c.obj_class[col], c.ground[col])
        label = np.where(use_a, label_a, c.obj_class[col]).astype(np.uint8)
        side = (enter <= s.t0) & (s.t0 > 0)  # entered through the column's side
        axis = np.where(side, s.axis, 2).astype(np.int8)
        return enter, leave, use_a | hit_b, label, axis

    def _next_voxel_face(self, s: _RayState, t) -> np.ndarray:
        """Where rays leave the voxel that holds their point at distance t (voxel planes
        continue beyond the grid at the same spacing)."""
        g, half, cell = self.geom, self.raster.half, self.raster.cell
        nudged = t + 1e-9
        faces = []
        for axis in (0, 1):
            u = (self.origin[axis] + nudged * s.d[:, axis] + half) / cell  # raster units
            voxel = np.floor((u - g.offset) / g.r)
            plane = g.offset + (voxel + s.forward[:, axis]) * g.r
            faces.append(plane_t(plane, self.origin[axis], s.inv[:, axis], half, cell))
        z = self.origin[2] + nudged * s.d[:, 2]
        level = np.floor((z - g.z0) / g.dz) + (s.d[:, 2] > 0)
        faces.append((g.z0 + level * g.dz - self.origin[2]) * s.inv[:, 2])
        return np.minimum.reduce(faces)
