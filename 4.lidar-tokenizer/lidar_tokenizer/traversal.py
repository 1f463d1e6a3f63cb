"""Which cells of a regular grid a ray crosses, and over which depths: a vectorised DDA.

Amanatides and Woo's DDA walks a ray from cell to cell, one face crossing at a time. The
same sequence of cells falls out of all the crossings at once: a ray r(h) = o + h d meets
the k-th plane of axis a, at coordinate lo_a + k s_a, at depth

    h = (lo_a + k s_a - o_a) / d_a          (never, if d_a = 0)

Sorting the crossings of all three axes' planes (clamped to [near, far], with near and far
themselves) cuts [near, far] into segments; no plane crosses the inside of a segment, so
each lies in exactly one cell, the one holding its midpoint. That is one sort per ray
instead of a loop with one step per cell: fine for a few hundred planes, and a GPU does all
rays at once. Segments outside the grid, or of zero length (two planes crossed at one
point, or clamped to near/far), are marked not `inside` and carry no length.

Used by the spatial skipping sampler (skipping.py: where does a ray cross non-empty cells?)
and by the references' ray caster (references.py: where does it first enter an occupied
voxel?).

Shapes: R rays, X, Y, Z voxel-grid sizes (cells per axis), n a count local to one function
(here: segments per ray, X + Y + Z + 4 between all the planes and near and far), "..." any
leading axes (e.g. B batch).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Bounds = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


class Segments(NamedTuple):
    """Pieces of rays, each in one cell: start, end (..., R, n) depths in metres, sorted along
    the ray; cell (..., R, n, 3) int64 x, y, z indices (clamped into the grid); inside
    (..., R, n) bool: the piece has positive length and lies in the grid."""

    start: torch.Tensor
    end: torch.Tensor
    cell: torch.Tensor
    inside: torch.Tensor


def grid_geometry(bounds: Bounds, shape, like: torch.Tensor):
    """(lo (3,), cell size (3,), shape (3,) int64) on like's device and dtype."""
    box = torch.as_tensor(bounds, dtype=like.dtype, device=like.device)  # (3, 2)
    if box.shape != (3, 2) or not (box[:, 1] > box[:, 0]).all():
        raise ValueError(f"bounds must be ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)), got {bounds}")
    cells = torch.as_tensor(tuple(shape), dtype=torch.int64, device=like.device)  # (3,)
    if cells.shape != (3,) or (cells < 1).any():
        raise ValueError(f"grid shape must be three positive sizes, got {tuple(shape)}")
    return box[:, 0], (box[:, 1] - box[:, 0]) / cells.to(like.dtype), cells


def _plane_crossings(origins, dirs, low, size, cells) -> torch.Tensor:
    """Depths at which each ray meets each grid plane: (..., R, 3) -> (..., R, X + Y + Z + 3),
    +inf where the ray runs parallel to the planes of an axis."""
    crossings = []
    for axis in range(3):
        count = int(cells[axis]) + 1
        k = torch.arange(count, dtype=origins.dtype, device=origins.device)  # (count,)
        plane = low[axis] + k * size[axis]  # (count,) plane coordinates, metres
        o, d = origins[..., axis, None], dirs[..., axis, None]  # (..., R, 1)
        parallel = d == 0
        h = (plane - o) / torch.where(parallel, 1.0, d)  # h = (plane - o_a) / d_a
        crossings.append(torch.where(parallel, torch.inf, h))  # (..., R, count)
    return torch.cat(crossings, dim=-1)


def cell_segments(
    origins: torch.Tensor, dirs: torch.Tensor, near, far, bounds: Bounds, shape
) -> Segments:
    """Cut each ray's [near, far] at every face of the grid: origins, dirs (..., R, 3) metres;
    near, far floats or (..., R); bounds the grid's box, shape its (X, Y, Z) cells."""
    if origins.shape != dirs.shape or origins.shape[-1] != 3:
        raise ValueError(
            f"origins, dirs must both be (..., R, 3), got {origins.shape}, {dirs.shape}"
        )
    low, size, cells = grid_geometry(bounds, shape, origins)
    near = torch.as_tensor(near, dtype=origins.dtype, device=origins.device).expand(
        origins.shape[:-1]
    )[..., None]  # (..., R, 1)
    far = torch.as_tensor(far, dtype=origins.dtype, device=origins.device).expand(
        origins.shape[:-1]
    )[..., None]  # (..., R, 1)
    crossings = _plane_crossings(origins, dirs, low, size, cells)  # (..., R, n - 1)
    crossings = crossings.clamp(min=near, max=far)  # crossings outside [near, far] collapse
    cuts = torch.cat([near, crossings, far], dim=-1).sort(dim=-1).values  # (..., R, n + 1)
    start, end = cuts[..., :-1], cuts[..., 1:]  # (..., R, n)
    # the midpoint's cell: floor((o + h d - lo) / s), with o and d in cell units first
    origin_cells = ((origins - low) / size)[..., None, :]  # (..., R, 1, 3)
    dir_cells = (dirs / size)[..., None, :]  # (..., R, 1, 3)
    index = (origin_cells + ((start + end) / 2)[..., None] * dir_cells).floor()  # (..., R, n, 3)
    within = ((index >= 0) & (index < cells)).all(dim=-1)  # (..., R, n)
    cell = index.clamp_(min=torch.zeros_like(low), max=(cells - 1).to(index.dtype)).long()
    return Segments(start, end, cell, within & (end > start))  # cell: safe to index with


def lookup(grid: torch.Tensor, segments: Segments) -> torch.Tensor:
    """grid[cell] for every segment, False outside: grid (X, Y, Z) with rays (R, 3), or
    (B, X, Y, Z) with rays (B, R, 3) -> (..., R, n) bool."""
    cell = segments.cell  # (..., R, n, 3)
    size_x, size_y, size_z = grid.shape[-3:]
    if grid.ndim == 3 and cell.ndim == 3:
        first = 0
    elif grid.ndim == 4 and cell.ndim == 4 and grid.shape[0] == cell.shape[0]:
        first = torch.arange(grid.shape[0], device=grid.device)[:, None, None] * size_x  # (B,1,1)
    else:
        raise ValueError(
            f"grid {tuple(grid.shape)} must be (X, Y, Z) for rays (R, 3) or (B, X, Y, Z) for "
            f"rays (B, R, 3); segments are {tuple(segments.cell.shape[:-1])}"
        )
    # one flat gather: index (((b X + x) Y + y) Z + z) of the grid laid out in memory order
    flat = ((first + cell[..., 0]) * size_y + cell[..., 1]) * size_z + cell[..., 2]
    value = grid.reshape(-1).take(flat)  # (..., R, n)
    return value.bool() & segments.inside
