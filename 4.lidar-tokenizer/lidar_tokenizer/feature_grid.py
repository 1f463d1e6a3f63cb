"""The decoder's two heads: a neural feature grid read into occupancy, and a coarse binary one.

(a) Neural feature grid. The decoder ends on a BEV image (B, X', Y', D), channels last as the
Swin decoder emits it: one feature vector per BEV cell. Rendering needs an occupancy anywhere
in 3D, so each BEV cell emits a small block of a 3D grid, f x f cells in x, y and all Z
levels, C features per cell:

    LN -> Linear(D, f*f*Z*C) -> (f, f, Z, C) per cell -> grid (B, C, Z, f X', f Y')

(CoPilot4D: (256, 256) BEV cells each emit (2, 2, 64, 16) -> a (512, 512, 64, 16) grid.)
A point r in metres is read from the grid by trilinear interpolation of its 8 surrounding
cells, and a small MLP turns the feature into an occupancy alpha = sigmoid(MLP(feature)) in
(0, 1), what render.py consumes. The grid spans the region `bounds`; interpolation is
`F.grid_sample` in 5D with align_corners=False: normalised -1 and +1 are the region's
outer faces, so cell i's centre lies at lo + (i + 1/2) s metres, like a voxel's:

    u = 2 (r - lo) / (hi - lo) - 1        per axis, in [-1, 1] inside the region

grid_sample reads its last coordinate as the FIRST spatial axis: for a grid laid out
(B, C, Z, X, Y) the coordinates go in as (u_y, u_x, u_z). Outside the region alpha is 0
(empty space, where the sweep has no say); inside, the half cell between the outer centres
and the faces is read with border padding (the edge value), not faded towards zero.

(b) Coarse binary occupancy: the same trick with one logit per cell and a factor f that lands
on the voxel grid (CoPilot4D: (4, 4, 64) per BEV cell -> (1024, 1024, 64) logits), trained
with BCE against the voxelized sweep and used at inference to skip empty space (skipping.py).

Shapes: B batch, D model width of the decoder, X', Y' the decoder's BEV grid size, X, Y, Z
voxel-grid sizes of a head's output (X = f X'), C feature channels per grid cell, n a count
local to one function (here: points queried per frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

Bounds = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def unfold_subvolumes(cells: torch.Tensor, factor: int, levels: int) -> torch.Tensor:
    """Each BEV cell's f*f*Z*C numbers as its (f, f, Z, C) block of the 3D grid.

    cells (B, X', Y', f*f*Z*C) -> grid (B, C, Z, f X', f Y'); the block of cell (x, y) fills
    x-indices f x .. f x + f - 1 and y-indices f y .. f y + f - 1, all Z levels.
    """
    return rearrange(
        cells, "b x y (fx fy z c) -> b c z (x fx) (y fy)", fx=factor, fy=factor, z=levels
    )


def _check_bev(bev: torch.Tensor, dim: int) -> torch.Tensor:
    if bev.ndim != 4 or bev.shape[-1] != dim:
        raise ValueError(f"expected a BEV map (B, X', Y', {dim}), got {tuple(bev.shape)}")
    return bev


class FeatureGridHead(nn.Module):
    """BEV features (B, X', Y', D) -> neural feature grid (B, C, Z, f X', f Y')."""

    def __init__(self, dim: int, levels: int, channels: int, factor: int = 2):
        super().__init__()
        self.dim, self.levels, self.channels, self.factor = dim, levels, channels, factor
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, factor * factor * levels * channels)

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        bev = _check_bev(bev, self.dim)  # (B, X', Y', D)
        cells = self.proj(self.norm(bev))  # (B, X', Y', factor*factor*Z*C)
        return unfold_subvolumes(cells, self.factor, self.levels)  # (B, C, Z, X, Y)


class OccupancyHead(nn.Module):
    """BEV features (B, X', Y', D) -> binary occupancy logits (B, f X', f Y', Z), the voxel
    grid's [x, y, z] layout (the BCE target's and skipping.py's)."""

    def __init__(self, dim: int, levels: int, factor: int = 4):
        super().__init__()
        self.dim, self.levels, self.factor = dim, levels, factor
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, factor * factor * levels)

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        bev = _check_bev(bev, self.dim)  # (B, X', Y', D)
        cells = self.proj(self.norm(bev))  # (B, X', Y', factor*factor*Z)
        logits = unfold_subvolumes(cells, self.factor, self.levels)  # (B, 1, Z, X, Y)
        return rearrange(logits, "b 1 z x y -> b x y z")  # (B, X, Y, Z)


def normalise_points(points: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Metres (..., 3) as x, y, z -> u = 2 (r - lo) / (hi - lo) - 1 (..., 3), still x, y, z."""
    box = torch.as_tensor(bounds, dtype=points.dtype, device=points.device)  # (3, 2): lo, hi
    low, high = box[:, 0], box[:, 1]
    return 2 * (points - low) / (high - low) - 1


def read_features(grid: torch.Tensor, points: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Trilinear read of grid (B, C, Z, X, Y) at points (B, ..., 3) in metres -> (B, ..., C).

    Border padding: a point outside the region reads the nearest edge cell (callers that care
    mask it, as OccupancyField does)."""
    if grid.ndim != 5 or points.shape[0] != grid.shape[0] or points.shape[-1] != 3:
        raise ValueError(
            f"expected grid (B, C, Z, X, Y) and points (B, ..., 3), got {tuple(grid.shape)} "
            f"and {tuple(points.shape)}"
        )
    u = normalise_points(points.to(grid.dtype), bounds)  # (B, ..., 3): u_x, u_y, u_z
    flat = rearrange(u, "b ... xyz -> b (...) 1 1 xyz")  # (B, n, 1, 1, 3)
    # grid_sample's coordinates run from the last spatial axis to the first: for a grid laid
    # out Z, X, Y they are u_y, u_x, u_z.
    where = flat[..., [1, 0, 2]]  # (B, n, 1, 1, 3): u_y, u_x, u_z
    features = F.grid_sample(
        grid, where, mode="bilinear", padding_mode="border", align_corners=False
    )
    features = rearrange(features, "b c n 1 1 -> b n c")  # (B, n, C)
    return features.reshape(*points.shape[:-1], grid.shape[1])  # (B, ..., C)


def inside(points: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """(..., 3) metres -> (...,) bool: lo <= r <= hi on every axis."""
    u = normalise_points(points, bounds)  # (..., 3)
    return (u.abs() <= 1).all(dim=-1)


class OccupancyField(nn.Module):
    """alpha(r) = sigmoid(MLP(trilinear(grid, r))), and 0 outside `bounds`.

    A callable alpha function for render.py once bound to a grid:
    `lambda points: field(grid, points)` (one alpha per sample, whatever their spacing). The
    tokenizer uses only its `mlp`: model.py turns the MLP's logit into the opacity of the
    sample's stretch of ray (sampling.slab_alpha), so that any spacing renders one field."""

    def __init__(self, channels: int, bounds: Bounds, hidden: int = 32):
        super().__init__()
        self.bounds = tuple(tuple(float(v) for v in axis) for axis in bounds)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """grid (B, C, Z, X, Y), points (B, ..., 3) metres -> alpha (B, ...) in [0, 1)."""
        features = read_features(grid, points, self.bounds)  # (B, ..., C)
        alpha = torch.sigmoid(self.mlp(features)[..., 0])  # (B, ...): alpha = sigmoid(MLP(f))
        return alpha * inside(points, self.bounds)  # empty outside the region
