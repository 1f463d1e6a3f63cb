"""LiDAR: rays cast from the sensor through the ego raster, consistent with the voxel grid.

All rays march together, one raster column per iteration (a 2-D DDA, Amanatides & Woo 1987,
vectorised over rays): in column c the ray covers t in [t0, t1] and heights z(t) = o_z + t d_z.
It hits the column's solid [bottom, top) if the two intervals overlap:

    t_enter = max(t0, min(t_bottom, t_top)),  t_exit = min(t1, max(t_bottom, t_top)),
    t_bottom = (bottom - o_z) / d_z,  hit  <=>  t_enter < t_exit.

The ground is the plane z = ROAD_Z_EGO, hit in closed form at t = (ROAD_Z_EGO - o_z) / d_z.
A ray that stays above everything in a square of 1, 4 or 16 voxel columns crosses the whole
square in one step (most of the world is open road and fields), so a frame takes about a
hundred iterations rather than a thousand.

Consistency with the voxel grid, by construction. A voxel is occupied when any raster column in
it holds solid at its height (scene.voxelize), so the first occupied voxel a ray enters is
always entered at or before its first solid. The caster tracks that voxel v:
- if the ray meets solid before leaving v, the point is that surface (the usual case);
- if it leaves v without touching solid (it grazed a voxel that is only partly filled), the
  ray stops there and the point is the middle of its chord through v.
So every noise-free point lies in an occupied voxel and every voxel the ray crossed before the
point's voxel is free. Points are reported 5 mm inside the surface (or halfway to where the
ray would leave the solid or v, if closer) so that a point on a voxel face is unambiguously
in v. Beyond the voxel grid (the LiDAR reaches farther) rays simply stop at the first solid.
The one degenerate case is a ray running exactly along a raster plane; the default beam
pattern has none (its azimuths sit half a step off the axes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from einops import rearrange, reduce

from worldmodels.data.driving.config import ROAD_Z_EGO, LidarConfig, Preset
from worldmodels.data.driving.scene import SOLID_EPS, EgoRaster, Voxels
from worldmodels.occ3d import FREE

NO_RETURN = 255  # label of rays without a return
INSIDE = 0.005  # m, how far a reported point lies inside the surface it hit
LEVEL_EPS = 1e-6  # in voxel heights: touching a level's face is not entering it


@dataclass
class CastResult:
    """Per ray: hit distance t (R,) float64 m along the unit direction (inf: no return) and the
    hit's class (R,) uint8 (NO_RETURN if none)."""

    t: np.ndarray
    label: np.ndarray


@dataclass
class _GridGeometry:
    """The voxel grid seen from the raster: raster column offset and subdivision, sizes."""

    offset: int  # raster index of the grid's first column
    r: int  # raster columns per voxel edge
    size: tuple[int, int, int]
    z0: float
    dz: float

    @classmethod
    def of(cls, preset: Preset) -> _GridGeometry:
        grid = preset.grid
        offset = round((preset.raster_half_extent - grid.half_extent[0]) / preset.fine_cell)
        return cls(offset, preset.subdivision, grid.size, grid.z_range[0], grid.voxel_z)


def _level_bits(z_low, z_high, geom: _GridGeometry) -> np.ndarray:
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


def _prepare(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _plane_t(plane, origin, inverse, half, cell):
    """Distance t at which rays reach raster plane number `plane` (plane p lies at
    -half + p * cell, the low face of column p)."""
    return (-half + plane * cell - origin) * inverse


def cast_rays(
    raster: EgoRaster, voxels: Voxels, preset: Preset, origin: np.ndarray, dirs: np.ndarray
) -> CastResult:
    """Cast rays (R, 3) unit directions from `origin` (3,) (ego frame, m) up to the LiDAR's
    max range. Returns the noise-free hit distance and class of every ray."""
    d, inverse, forward = _prepare(dirs)
    geom = _GridGeometry.of(preset)
    half = raster.half
    ox, oy, oz = (float(v) for v in origin)
    result = CastResult(np.full(len(d), np.inf), np.full(len(d), NO_RETURN, np.uint8))

    # Where each ray must stop at the latest: max range, the road plane, above every solid,
    # or the raster's border.
    t_ground = np.where(d[:, 2] < 0, (ROAD_Z_EGO - oz) * inverse[:, 2], np.inf)
    sky = float(np.max(raster.top, initial=ROAD_Z_EGO)) + 0.1
    t_sky = np.where(d[:, 2] > 0, (sky - oz) * inverse[:, 2], np.inf)
    t_border = np.minimum(
        np.where(forward[:, 0], half - ox, -half - ox) * inverse[:, 0],
        np.where(forward[:, 1], half - oy, -half - oy) * inverse[:, 1],
    )
    t_end = np.minimum.reduce([np.full(len(d), preset.lidar.max_range), t_ground, t_sky, t_border])

    ceilings = _square_ceilings(raster, geom, (geom.r, 4 * geom.r, 16 * geom.r))
    state = _RayState.start(d, inverse, forward, origin, raster, t_end, t_end == t_ground)
    with np.errstate(invalid="ignore"):
        while state.ray.size:
            state = _march_one_column(state, raster, voxels, geom, origin, ceilings, result)
    return result


def _square_ceilings(raster: EgoRaster, geom: _GridGeometry, sides: tuple[int, ...]) -> list:
    """For each side length (in raster columns), the height below which squares of that side
    hold solid (and occupied voxels): the highest solid top, rounded up to a voxel face;
    -inf for an empty square. A ray that stays at or above it while crossing a square can
    cross the square in one step. Squares align with the raster's corner (padded with empty
    columns to fit); a voxel column is r x r raster columns and the grid's offset is a whole
    number of voxels, so these squares are unions of whole voxel columns."""
    levels = np.ceil((raster.top - SOLID_EPS - geom.z0) / geom.dz)  # above the top level
    ceiling = np.where(raster.obj_class != FREE, geom.z0 + levels * geom.dz, -np.inf)
    out = []
    for side in sides:
        pad = -ceiling.shape[0] % side
        padded = np.pad(ceiling, ((0, pad), (0, pad)), constant_values=-np.inf)
        out.append((side, reduce(padded, "(i a) (j b) -> i j", "max", a=side, b=side)))
    return out


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
    on_ground: np.ndarray  # t_end is the road plane
    in_voxel: np.ndarray  # inside the first occupied voxel it met
    t_in: np.ndarray  # where it entered that voxel
    t_out: np.ndarray  # where it leaves that voxel
    voxel_class: np.ndarray

    @classmethod
    def start(cls, d, inv, forward, origin, raster, t_end, on_ground) -> _RayState:
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
            on_ground=on_ground,
            in_voxel=np.zeros(n, dtype=bool),
            t_in=np.zeros(n),
            t_out=np.full(n, np.inf),
            voxel_class=np.zeros(n, dtype=np.uint8),
        )

    def subset(self, keep: np.ndarray) -> _RayState:
        return _RayState(**{k: v[keep] for k, v in vars(self).items()})


def _march_one_column(state, raster, voxels, geom, origin, ceilings, result) -> _RayState:
    """Examine each ray's current column; record the rays that stop; step the others on.

    A ray that stays above everything in a square of raster columns (the square's ceiling,
    see _square_ceilings) crosses the whole square in one step: nothing there can stop it or
    start a voxel. `ceilings` lists (side, map) pairs from small squares to large ones."""
    s = state
    ox, oy, oz = origin
    half, cell = raster.half, raster.cell
    fwd_i, fwd_j = s.forward[:, 0], s.forward[:, 1]
    z0 = oz + s.t0 * s.d[:, 2]
    size = np.ones_like(s.i)  # side of the square (in columns) the ray crosses in this step
    for side, ceiling in ceilings:
        far_i = _plane_t(s.i // side * side + side * fwd_i, ox, s.inv[:, 0], half, cell)
        far_j = _plane_t(s.j // side * side + side * fwd_j, oy, s.inv[:, 1], half, cell)
        t_far = np.minimum(np.minimum(far_i, far_j), s.t_end)
        lowest = np.minimum(z0, oz + t_far * s.d[:, 2])  # z is monotonic along a ray
        size = np.where(lowest >= ceiling[s.i // side, s.j // side], side, size)
    low_i, low_j = s.i // size * size, s.j // size * size
    # The next plane each ray crosses: the far face of its column, or of the square it skips.
    plane_i, plane_j = low_i + size * fwd_i, low_j + size * fwd_j
    t_next_i = _plane_t(plane_i, ox, s.inv[:, 0], half, cell)
    t_next_j = _plane_t(plane_j, oy, s.inv[:, 1], half, cell)
    t1 = np.minimum(np.minimum(t_next_i, t_next_j), s.t_end)

    # 1. Solid in this column? (Its interval shrunk by 2 SOLID_EPS: a ray that only scrapes
    # a float32 rounding sliver, which the voxels ignore, passes.)
    cls = raster.obj_class[s.i, s.j]
    t_bottom = (raster.bottom[s.i, s.j] + 2 * SOLID_EPS - oz) * s.inv[:, 2]
    t_top = (raster.top[s.i, s.j] - 2 * SOLID_EPS - oz) * s.inv[:, 2]
    enter = np.maximum(s.t0, np.minimum(t_bottom, t_top))
    leave = np.minimum(t1, np.maximum(t_bottom, t_top))
    solid = (cls != FREE) & (enter < leave)

    # 2. Does the ray enter its first occupied voxel in this column?
    _enter_first_voxel(s, t1, voxels, geom, origin, raster)

    # 3. Who stops here, and where: on a surface (5 mm inside it, staying in the voxel), in
    # the middle of a grazed voxel, or on the road plane (5 mm below it, in the same column).
    on_surface = solid & (~s.in_voxel | (enter < s.t_out))
    grazes = ~on_surface & s.in_voxel & (t1 >= s.t_out)
    ends = ~on_surface & ~grazes & (t1 >= s.t_end)
    ground = ends & s.on_ground
    t_hit = np.where(
        on_surface,
        enter + np.minimum(INSIDE, (np.minimum(leave, s.t_out) - enter) / 2),
        np.where(grazes, (s.t_in + s.t_out) / 2, np.inf),
    )
    label = np.where(on_surface, cls, np.where(grazes, s.voxel_class, NO_RETURN))
    if ground.any():
        rows = np.flatnonzero(ground)
        room = _column_exit(s, rows, s.t_end[rows], origin, raster) - s.t_end[rows]
        t_hit[rows] = s.t_end[rows] + np.minimum(INSIDE, room / 2)
        label[rows] = raster.ground[s.i[rows], s.j[rows]]
    stopped = on_surface | grazes | ends
    result.t[s.ray[stopped]] = t_hit[stopped]
    result.label[s.ray[stopped]] = label[stopped]

    # 4. Step the others into the next column: across the plane crossed first; a ray that
    # skipped a square also gets its other index from where it left the square.
    across_i = t_next_i <= t_next_j
    new_i, new_j = plane_i - 1 + fwd_i, plane_j - 1 + fwd_j
    skip = size > 1
    at_i = np.clip((ox + t1 * s.d[:, 0] + half) // cell, low_i, low_i + size - 1)
    at_j = np.clip((oy + t1 * s.d[:, 1] + half) // cell, low_j, low_j + size - 1)
    s.i = np.where(across_i, new_i, np.where(skip, at_i, s.i).astype(np.int64))
    s.j = np.where(across_i, np.where(skip, at_j, s.j).astype(np.int64), new_j)
    s.t0 = t1
    count = raster.ground.shape[0]
    go = ~stopped & (s.i >= 0) & (s.j >= 0) & (s.i < count) & (s.j < count)
    return s.subset(go)


def _column_exit(s: _RayState, rows, t, origin, raster: EgoRaster) -> np.ndarray:
    """Where rays `rows` leave the raster column that holds their point at distance t."""
    exits = []
    for axis in (0, 1):
        d, inv = s.d[rows, axis], s.inv[rows, axis]
        column = (origin[axis] + t * d + raster.half) // raster.cell
        plane = column + s.forward[rows, axis]
        exits.append(_plane_t(plane, origin[axis], inv, raster.half, raster.cell))
    return np.minimum(*exits)


def _enter_first_voxel(s, t1, voxels: Voxels, geom: _GridGeometry, origin, raster) -> None:
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
    hits = voxels.bits[vi, vj] & _level_bits(np.minimum(z_a, z_b), np.maximum(z_a, z_b), geom)
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
    exit_i = _plane_t(exit_planes[0], ox, inv[:, 0], raster.half, raster.cell)
    exit_j = _plane_t(exit_planes[1], oy, inv[:, 1], raster.half, raster.cell)
    s.in_voxel[rows] = True
    s.t_in[rows] = np.maximum(t0, np.minimum(t_low, t_high))
    s.t_out[rows] = np.minimum.reduce([np.maximum(t_low, t_high), exit_i, exit_j])
    s.voxel_class[rows] = voxels.semantics[vi, vj, level]


def visibility(voxels: Voxels, preset: Preset, origin, dirs, t_hit) -> np.ndarray:
    """(X, Y, Z) bool: voxels that rays (R, 3) crossed or ended in, from `origin` up to their
    hit distances t_hit (R,) (rays with t_hit = inf are ignored), like Occ3D's mask_lidar.
    A 2-D DDA over voxel columns; in each column the ray's height range marks its levels."""
    grid = preset.grid
    X, Y, Z = grid.size
    keep = np.isfinite(t_hit)
    d, inv, forward = _prepare(np.asarray(dirs)[keep])
    t_stop = np.asarray(t_hit)[keep]
    geom = _GridGeometry(0, 1, grid.size, grid.z_range[0], grid.voxel_z)
    hx, size = grid.half_extent[0], grid.voxel_xy
    ox, oy, oz = (float(v) for v in origin)
    i = np.full(len(d), int((ox + hx) // size))
    j = np.full(len(d), int((oy + hx) // size))
    t0 = np.zeros(len(d))
    bits = np.zeros((X, Y), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        while len(d):
            t_i = _plane_t(i + forward[:, 0], ox, inv[:, 0], hx, size)
            t_j = _plane_t(j + forward[:, 1], oy, inv[:, 1], hx, size)
            t1 = np.minimum(np.minimum(t_i, t_j), t_stop)
            z_a, z_b = oz + t0 * d[:, 2], oz + t1 * d[:, 2]
            level_bits = _level_bits(np.minimum(z_a, z_b), np.maximum(z_a, z_b), geom)
            np.bitwise_or.at(bits, (i, j), np.where(t1 > t0, level_bits, 0))
            across_i = t_i <= t_j
            i = np.where(across_i, i - 1 + 2 * forward[:, 0], i)
            j = np.where(across_i, j, j - 1 + 2 * forward[:, 1])
            go = (t1 < t_stop) & (i >= 0) & (j >= 0) & (i < X) & (j < Y)
            i, j, t0, t_stop = i[go], j[go], t1[go], t_stop[go]
            d, inv, forward = d[go], inv[go], forward[go]
    return ((bits[..., None] >> np.arange(Z)) & 1).astype(bool)


@dataclass
class Sweep:
    """One LiDAR sweep as a range image (rows = beams, top first; columns = azimuths).

    range: (H, W) float32 m from the sensor, with noise; 0 where there is no return.
    label: (H, W) uint8 class of the hit, NO_RETURN (255) where there is no return.
    clean_t: (H, W) float64 noise-free range before dropout (inf: no return), for checks.
    visibility: (X, Y, Z) bool, voxels crossed by the returned rays (Occ3D's mask_lidar).
    """

    range: np.ndarray
    label: np.ndarray
    clean_t: np.ndarray
    visibility: np.ndarray


def lidar_sweep(
    raster: EgoRaster, voxels: Voxels, preset: Preset, rng: np.random.Generator
) -> Sweep:
    """Cast every beam, then drop returns with probability `dropout` and add Gaussian range
    noise; the visibility mask comes from the kept returns (their noise-free paths)."""
    lidar: LidarConfig = preset.lidar
    dirs = rearrange(lidar.ray_directions(), "H W xyz -> (H W) xyz")  # sensor frame = ego axes
    origin = np.array([0.0, 0.0, lidar.sensor_height])
    cast = cast_rays(raster, voxels, preset, origin, dirs)
    kept = np.isfinite(cast.t) & (rng.random(len(dirs)) >= lidar.dropout)
    noise = rng.normal(0.0, lidar.noise_std, len(dirs))
    noisy = np.where(kept, np.maximum(cast.t + noise, 0.0), 0.0)  # (R,), R = H * W
    label = np.where(kept, cast.label, NO_RETURN).astype(np.uint8)
    image = lambda rays: rearrange(rays, "(H W) -> H W", H=lidar.beams)
    return Sweep(
        range=image(noisy.astype(np.float32)),
        label=image(label),
        clean_t=image(cast.t),
        visibility=visibility(voxels, preset, origin, dirs, np.where(kept, cast.t, np.inf)),
    )
