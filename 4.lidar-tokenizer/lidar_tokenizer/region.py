"""The region a tokenizer sees, and a sweep's points binned into its voxels, sparsely.

CoPilot4D cuts [-80, 80] x [-80, 80] x [-4.5, 4.5] m around the sensor into 1024 x 1024 x 64
voxels of 15.625 x 15.625 x 14.0625 cm. A dense feature volume of that grid with 16 channels
is 1024 * 1024 * 64 * 16 floats = 4 GiB per sweep, while a sweep of ~100k returns touches at
most 100k voxels (well under 1% of the 67 M). So the grid is never built: a sweep becomes the
list of its non-empty voxels, and every later step (PointNet, BEV pooling) scatters over that
list.

For a point p, the voxel it falls in and its place inside it are

    index  = floor((p - lower) / size)                 per axis, in [0, X) x [0, Y) x [0, Z)
    offset = (p - lower) / size - (index + 1/2)        in [-1/2, 1/2)^3, voxel units

The offset is in voxel units rather than metres (CoPilot4D says only "offset from the voxel
centre"): the same numbers at every voxel size, so the PointNet sees inputs of one scale in
the debug grid and the paper's.

Points outside the region (lower <= p < upper on every axis) are CROPPED, not an error: a
LiDAR sees beyond any region, and CoPilot4D's crop is part of the method. How many were
dropped per sweep is returned, so a caller can see a units or frame mistake (a sweep in
millimetres or in world coordinates loses almost all its points). A sweep with no point at
all, or none inside the region, is an error.

Shapes: B batch (sweeps), P points, V non-empty voxels, X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VoxelGrid:
    """An axis-aligned region in the sensor frame (metres) cut into X x Y x Z voxels."""

    x_range: tuple[float, float] = (-80.0, 80.0)
    y_range: tuple[float, float] = (-80.0, 80.0)
    z_range: tuple[float, float] = (-4.5, 4.5)
    shape: tuple[int, int, int] = (1024, 1024, 64)

    def __post_init__(self):
        for name, (low, high) in zip("xyz", self.bounds):
            if not high > low:
                raise ValueError(
                    f"{name}_range must be (low, high) with high > low, got {(low, high)}"
                )
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be three positive sizes (X, Y, Z), got {self.shape}")

    @classmethod
    def paper(cls) -> VoxelGrid:
        """CoPilot4D: +-80 m x +-80 m x [-4.5, 4.5] m, 1024 x 1024 x 64 voxels of
        15.625 x 15.625 x 14.0625 cm."""
        return cls()

    @classmethod
    def debug(cls) -> VoxelGrid:
        """A CPU size: +-40 m x +-40 m x [-4.5, 4.5] m, 256 x 256 x 32 voxels of
        31.25 x 31.25 x 28.125 cm (a 32 x 32 token grid after the encoder's 8x reduction)."""
        return cls((-40.0, 40.0), (-40.0, 40.0), (-4.5, 4.5), (256, 256, 32))

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)) in metres."""
        return (tuple(self.x_range), tuple(self.y_range), tuple(self.z_range))

    @property
    def lower(self) -> tuple[float, float, float]:
        """The region's corner with the smallest coordinates (m)."""
        return tuple(low for low, _ in self.bounds)

    @property
    def upper(self) -> tuple[float, float, float]:
        """The opposite corner (m); points on it are outside (half-open region)."""
        return tuple(high for _, high in self.bounds)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Edge of a voxel along x, y, z (m)."""
        return tuple((high - low) / n for (low, high), n in zip(self.bounds, self.shape))

    def _tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lower, voxel size (3,) in like's dtype and device, shape (3,) int64."""
        lower = torch.tensor(self.lower, dtype=like.dtype, device=like.device)
        size = torch.tensor(self.voxel_size, dtype=like.dtype, device=like.device)
        return lower, size, torch.tensor(self.shape, device=like.device)

    def inside(self, points: torch.Tensor) -> torch.Tensor:
        """(P, 3) -> (P,) bool: lower <= p < upper on every axis."""
        lower = points.new_tensor(self.lower)
        upper = points.new_tensor(self.upper)
        return ((points >= lower) & (points < upper)).all(dim=-1)

    def locate(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (P, 3) inside the region -> (voxel index (P, 3) int64, offset (P, 3) from
        the voxel's centre in voxel units, in [-1/2, 1/2))."""
        lower, size, shape = self._tensors(points)
        position = (points - lower) / size  # (P, 3): voxel units from the lower corner
        # clamp: a point a rounding error below `upper` may divide to exactly X
        index = position.floor().long().clamp(torch.zeros_like(shape), shape - 1)  # (P, 3)
        return index, position - (index + 0.5)

    def centres(self, index: torch.Tensor) -> torch.Tensor:
        """Voxel indices (..., 3) -> their centres (..., 3) in metres."""
        lower = torch.tensor(self.lower, device=index.device)
        size = torch.tensor(self.voxel_size, device=index.device)
        return lower + (index + 0.5) * size


@dataclass(frozen=True)
class Voxels:
    """A batch of sweeps as its non-empty voxels, sorted by (sweep, x, y, z).

    coords       (V, 3) int64    x, y, z index of each non-empty voxel
    batch        (V,) int64      which sweep it belongs to
    point_voxel  (P,) int64      for each kept point, its row in `coords` (the inverse index)
    offsets      (P, 3) float32  each kept point's offset from its voxel's centre, voxel units
    point_index  (P,) int64      each kept point's row in its own input sweep
    dropped      (B,) int64      points cropped (outside the region) per sweep
    """

    coords: torch.Tensor
    batch: torch.Tensor
    point_voxel: torch.Tensor
    offsets: torch.Tensor
    point_index: torch.Tensor
    dropped: torch.Tensor
    grid: VoxelGrid

    @property
    def batch_size(self) -> int:
        """B, the number of sweeps."""
        return len(self.dropped)

    @property
    def num_voxels(self) -> int:
        """V, the number of non-empty voxels over all sweeps."""
        return len(self.coords)

    @property
    def point_batch(self) -> torch.Tensor:
        """(P,) int64: which sweep each kept point belongs to."""
        return self.batch[self.point_voxel]

    def counts(self) -> torch.Tensor:
        """(V,) int64: how many points fell in each voxel."""
        return torch.bincount(self.point_voxel, minlength=self.num_voxels)


def check_sweep(points, name: str = "points") -> torch.Tensor:
    """A sweep as a float tensor (P, 3) of finite x, y, z in metres, or a ValueError that
    says what was expected."""
    points = torch.as_tensor(points)
    if points.ndim != 2 or points.shape[-1] != 3 or not points.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor of shape (P, 3), x, y, z in metres; "
            f"got shape {tuple(points.shape)} of {points.dtype}"
        )
    if len(points) == 0:
        raise ValueError(f"{name} is empty (shape (0, 3)): a sweep needs at least one return")
    bad = ~torch.isfinite(points).all(dim=-1)  # (P,)
    if bad.any():
        rows = bad.nonzero().flatten()[:5].tolist()
        raise ValueError(
            f"{name} has {int(bad.sum())} rows with NaN or inf coordinates "
            f"(first rows {rows}); drop them before voxelizing"
        )
    # at least float32 for the binning: float16 is 6 cm coarse at 80 m, a third of a voxel
    return points.to(torch.promote_types(points.dtype, torch.float32))


def voxelize(points, grid: VoxelGrid) -> Voxels:
    """One sweep (P, 3) -> its non-empty voxels (a batch of one)."""
    return voxelize_batch([points], grid)


def voxelize_batch(sweeps: Sequence, grid: VoxelGrid) -> Voxels:
    """B sweeps, each (P_b, 3) float x, y, z in metres (their lengths may differ) -> Voxels.

    Points outside the grid's region are cropped and counted in `dropped`; a sweep that is
    empty, malformed, non-finite, or has no point inside the region raises ValueError.
    """
    if isinstance(sweeps, torch.Tensor) and sweeps.ndim == 2:
        raise ValueError("voxelize_batch takes a list of (P, 3) sweeps; use voxelize for one")
    if len(sweeps) == 0:
        raise ValueError("voxelize_batch needs at least one sweep, got an empty list")
    keys, offsets, point_index, dropped = [], [], [], []
    for b, points in enumerate(sweeps):
        points = check_sweep(points, f"sweep {b}")
        keep = grid.inside(points)  # (P,)
        if not keep.any():
            raise ValueError(
                f"none of the {len(points)} points of sweep {b} lies inside the "
                f"region {grid.bounds} m: are they in metres, in the sensor frame?"
            )
        index, offset = grid.locate(points[keep])  # (P', 3), (P', 3)
        keys.append(linear_key(b, index, grid.shape))
        offsets.append(offset.float())  # float32 whatever the input, the model's dtype
        point_index.append(keep.nonzero().flatten())
        dropped.append(int((~keep).sum()))
    # one sorted list of the distinct voxel keys of the batch, and each point's row in it
    unique_keys, point_voxel = torch.unique(torch.cat(keys), return_inverse=True)  # (V,), (P,)
    batch, coords = split_key(unique_keys, grid.shape)
    return Voxels(
        coords=coords,
        batch=batch,
        point_voxel=point_voxel,
        offsets=torch.cat(offsets),
        point_index=torch.cat(point_index),
        dropped=torch.tensor(dropped, device=coords.device),
        grid=grid,
    )


def linear_key(b: int, index: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(P, 3) voxel indices of sweep b -> (P,) int64 key ((b X + x) Y + y) Z + z: one integer
    per voxel of the batch, ordered by sweep, then x, y, z (1.1e9 keys at the paper's size
    and B = 16: int64 is plenty)."""
    X, Y, Z = shape
    x, y, z = index.unbind(-1)
    return ((b * X + x) * Y + y) * Z + z


def split_key(key: torch.Tensor, shape: tuple[int, int, int]):
    """Inverse of `linear_key`: (V,) -> sweep (V,), coords (V, 3)."""
    X, Y, Z = shape
    z, rest = key % Z, key // Z
    y, rest = rest % Y, rest // Y
    x, b = rest % X, rest // X
    return b, torch.stack([x, y, z], dim=-1)
