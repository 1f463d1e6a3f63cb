"""Two non-learned references for the tokenizer, scored on the same rays as the model.

1. The voxelization floor. The encoder sees the sweep only through its voxels; ray-cast that
   occupancy grid directly (the first occupied voxel along each true ray) and score the
   depths. A tokenizer could at best give its voxels back exactly, so at that voxel size
   its depth error is bounded below by this, up to what rendering inside a voxel can
   recover (a learned grid can place the surface inside a voxel, a cast grid cannot).
2. A non-learned codec at the token grid. The tokenizer keeps h x w tokens per frame; the
   simplest codec at the same BEV resolution keeps, per token cell, one occupancy bit per
   height bucket:

       coarse[i, j, k] = OR over the voxels of block (i, j, k)          (the "any" rule)

   with blocks of (X/h, Y/w, z_factor) voxels, and ray-casts that coarse grid. OR, not
   majority: a wall one voxel thick fills 1/8 of an 8-voxel-wide block column and a
   majority vote would erase it; OR keeps every surface, at the cost of fattening it to the
   block's size, which is the error a learned codec has to beat. Its bits per frame are
   h * w * (Z / z_factor); `codec_bits` gives them, e.g. 16 x 16 tokens over 32 levels:
   16 * 16 * 32 = 8192 bits, against 16 * 16 * log2(256) = 2048 for 256-code tokens (the
   codec keeps 4x the bits; z_factor 4 would match them).

The cast (both references): cut each ray at every voxel face (traversal.cell_segments, a
vectorised DDA), take the first segment in an occupied voxel, and report

    surface="entry":   D = h_in                 the face where the ray enters the voxel
    surface="middle":  D = (h_in + h_out) / 2   the middle of its path through the voxel

"middle" (the default) is the unbiased guess when all that is known is that the return lies
somewhere in that voxel; "entry" is what a hard occupancy renderer would give. A ray that
meets no occupied voxel before `far` reports `far` (render.py's convention for "no return")
and hit = False.

Shapes: V non-empty voxels, X, Y, Z voxel-grid sizes, R rays, h, w token-grid height, width
(BEV cells of the codec), n a count local to one function (here: segments per ray).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from lidar_tokenizer.traversal import Bounds, cell_segments, lookup


def occupancy_grid(coords: torch.Tensor, shape, batch=None, batch_size=None) -> torch.Tensor:
    """Sparse voxel set -> dense grid: coords (V, 3) integer x, y, z indices -> (X, Y, Z) bool
    (duplicates are fine). With `batch` (V,), each voxel's sweep, -> (B, X, Y, Z): the BCE
    target of the binary head (render.occupancy_loss). Fine at the debug size (2 M voxels
    a sweep); at the paper's 67 M per sweep, build it for a few sweeps at a time.
    Raises ValueError on indices outside the grid."""
    coords = torch.as_tensor(coords)
    if coords.ndim != 2 or coords.shape[1] != 3 or coords.is_floating_point():
        raise ValueError(f"coords must be (V, 3) integer voxel indices, got {coords.shape}")
    size = torch.as_tensor(tuple(shape), device=coords.device)
    if len(coords) and ((coords < 0) | (coords >= size)).any():
        raise ValueError(f"voxel indices outside the grid {tuple(shape)}")
    x, y, z = coords.unbind(dim=-1)  # (V,) each
    if batch is None:
        grid = torch.zeros(tuple(shape), dtype=torch.bool, device=coords.device)
        grid[x, y, z] = True
        return grid  # (X, Y, Z)
    count = int(batch.max()) + 1 if batch_size is None else batch_size
    grid = torch.zeros((count, *shape), dtype=torch.bool, device=coords.device)
    grid[batch, x, y, z] = True
    return grid  # (B, X, Y, Z)


def pool_occupancy(occupied: torch.Tensor, token_grid: tuple[int, int], z_factor: int = 1):
    """OR-pool (X, Y, Z) bool to (h, w, Z / z_factor): a block is occupied if any voxel is."""
    size_x, size_y, levels = occupied.shape
    h, w = token_grid
    if size_x % h or size_y % w or levels % z_factor:
        raise ValueError(
            f"token grid {token_grid} x z_factor {z_factor} must divide {occupied.shape}"
        )
    volume = rearrange(occupied.float(), "x y z -> 1 1 x y z")  # (1, 1, X, Y, Z)
    block = (size_x // h, size_y // w, z_factor)
    return F.max_pool3d(volume, kernel_size=block, stride=block)[0, 0].bool()  # (h, w, Z')


def codec_bits(token_grid: tuple[int, int], levels: int, z_factor: int = 1) -> int:
    """Bits per frame of the OR codec: one per block, h * w * Z / z_factor."""
    return math.prod(token_grid) * (levels // z_factor)


def cast_depth(
    occupied: torch.Tensor,
    bounds: Bounds,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near: float,
    far: float,
    surface: str = "middle",
    chunk: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth of the first occupied cell along each ray (see the module doc).

    occupied (X, Y, Z) bool spanning `bounds` (metres); origins, dirs (R, 3), unit dirs.
    Returns depth (R,) metres (far where nothing is hit) and hit (R,) bool. Rays are cast
    `chunk` at a time (each costs X + Y + Z + 4 segments)."""
    if surface not in ("entry", "middle"):
        raise ValueError(f"surface must be 'entry' or 'middle', got {surface!r}")
    if occupied.ndim != 3 or origins.ndim != 2:
        raise ValueError(f"need occupied (X, Y, Z) and rays (R, 3), got {occupied.shape}")
    depths, hits = [], []
    for start in range(0, len(origins), chunk):
        part = slice(start, start + chunk)
        pieces = cell_segments(origins[part], dirs[part], near, far, bounds, occupied.shape)
        full = lookup(occupied, pieces)  # (n_rays, n): segment in an occupied voxel
        first = full.int().argmax(dim=-1, keepdim=True)  # index of the first True (0 if none)
        h_in = pieces.start.gather(-1, first)[:, 0]  # (n_rays,)
        h_out = pieces.end.gather(-1, first)[:, 0]
        depth = h_in if surface == "entry" else (h_in + h_out) / 2
        hit = full.any(dim=-1)
        depths.append(torch.where(hit, depth, torch.full_like(depth, far)))
        hits.append(hit)
    return torch.cat(depths), torch.cat(hits)


def voxel_floor_depth(coords: torch.Tensor, grid, origins, dirs, near, far, surface="middle"):
    """Reference 1: one sweep's own voxels, coords (V, 3) of `grid` (a region.VoxelGrid, or
    anything with .bounds and .shape), ray-cast. Returns depth (R,), hit (R,)."""
    occupied = occupancy_grid(coords, grid.shape)  # (X, Y, Z)
    return cast_depth(occupied, grid.bounds, origins, dirs, near, far, surface)


def token_codec_depth(
    coords: torch.Tensor,
    grid,
    token_grid: tuple[int, int],
    origins,
    dirs,
    near,
    far,
    z_factor: int = 1,
    surface: str = "middle",
):
    """Reference 2: one sweep's voxels (coords (V, 3) of `grid`, as above) OR-pooled to the
    token grid (h, w) and Z / z_factor height buckets, ray-cast over the same region.
    Returns depth (R,), hit (R,)."""
    occupied = occupancy_grid(coords, grid.shape)  # (X, Y, Z)
    coarse = pool_occupancy(occupied, token_grid, z_factor)  # (h, w, Z')
    return cast_depth(coarse, grid.bounds, origins, dirs, near, far, surface)
