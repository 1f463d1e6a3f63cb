"""Rays: where the renderer looks, and where along each look it asks "is something here?".

A LiDAR return is a point p measured from a sensor at o. It defines a ray and its true depth:

    d = (p - o) / |p - o|        (unit direction)
    D_gt = |p - o|               (distance from the sensor, metres)
    r(h) = o + h d               (the point at depth h along the ray)

so rendering "what depth does the model see along d?" and comparing with D_gt supervises the
decoder with the sweep itself, no voxel labels needed. Along a ray the renderer reads the
occupancy at S depths h_1 < ... < h_S between `near` and `far`:

    uniform:     h_i = near + (i + 1/2) delta,          delta = (far - near) / S
    stratified:  h_i = near + (i + u_i) delta,          u_i ~ U(0, 1), one per sample

Uniform takes the middle of each of S equal bins (deterministic, for evaluation); stratified
takes a random point in each bin (training: over many steps the network is asked about every
depth, not only S fixed ones). Both keep h sorted, which the rendering weights need.

For pictures, `sensor_directions` builds a whole spinning-LiDAR pattern with the driving
world's layout (worldmodels.data.driving.config.LidarConfig.ray_directions): rows are beams
from the top elevation down, columns azimuths phi_w = pi - (w + 1/2) 2 pi / W.

Shapes: P points, R rays, S samples per ray, H, W range-image height and width in pixels
(beams and azimuth columns), "..." any leading axes (e.g. B batch).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from einops import rearrange


class Rays(NamedTuple):
    """Rays from a sensor: origins (..., R, 3) m, unit dirs (..., R, 3), depths (..., R) m."""

    origins: torch.Tensor
    dirs: torch.Tensor
    depths: torch.Tensor


def _check_points(points: torch.Tensor, name: str) -> None:
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"{name} must be (..., 3) x, y, z in metres, got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {points.dtype}")
    if not torch.isfinite(points).all():
        raise ValueError(f"{name} holds NaN or infinite coordinates")


def rays_from_points(points: torch.Tensor, origin, min_depth: float = 1e-3) -> Rays:
    """The ray from `origin` through each measured point.

    points: (..., R, 3) metres; origin: (3,) or (..., R, 3) or anything broadcastable (the
    sensor, in the points' frame). Returns Rays with origins broadcast to the points' shape,
    unit directions and depths |p - o|. Raises ValueError on NaN/inf, a wrong shape, or a
    point closer than `min_depth` to the sensor (a zero-length ray has no direction).
    """
    _check_points(points, "points")
    origin = torch.as_tensor(origin, dtype=points.dtype, device=points.device)
    _check_points(origin, "origin")
    offset = points - origin  # (..., R, 3): p - o
    depths = torch.linalg.vector_norm(offset, dim=-1)  # (..., R): D_gt = |p - o|
    if (depths < min_depth).any():
        count = int((depths < min_depth).sum())
        raise ValueError(f"{count} point(s) within {min_depth} m of the sensor: zero-length ray")
    dirs = offset / depths[..., None]  # (..., R, 3): d = (p - o) / |p - o|
    return Rays(origin.expand_as(points), dirs, depths)


def points_at(origins: torch.Tensor, dirs: torch.Tensor, depths: torch.Tensor) -> torch.Tensor:
    """r(h) = o + h d: origins, dirs (..., R, 3) and depths (..., R, S) -> (..., R, S, 3).

    With depths (..., R) (one per ray, e.g. a rendered depth) -> (..., R, 3): the point cloud
    back from a depth map."""
    if depths.shape == origins.shape[:-1]:
        return origins + depths[..., None] * dirs  # (..., R, 3)
    return origins[..., None, :] + depths[..., None] * dirs[..., None, :]  # (..., R, S, 3)


def uniform(shape, generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    """U(0, 1) numbers of `shape` on `device`, drawn on the generator's own device (a CPU
    generator cannot fill a CUDA tensor), so a seeded run draws the same numbers anywhere."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device=device, dtype=dtype)


def sample_depths(
    near,
    far,
    samples: int,
    shape: tuple[int, ...] = (),
    stratified: bool = False,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """S sorted depths per ray in [near, far]: the middle of each of S equal bins, or with
    `stratified` a uniform random point in each bin.

    near, far: floats or tensors broadcastable to `shape` (the rays' shape, e.g. (R,) or
    (B, R)). Returns (*shape, S) metres in `dtype`.
    """
    if samples < 1:
        raise ValueError(f"need at least one sample per ray, got {samples}")
    near = torch.as_tensor(near, dtype=dtype, device=device)
    far = torch.as_tensor(far, dtype=dtype, device=near.device)
    if not (torch.isfinite(near).all() and torch.isfinite(far).all()):
        raise ValueError("near and far must be finite")
    if (far <= near).any():
        raise ValueError("need far > near on every ray")
    near, far = near.expand(shape), far.expand(shape)  # (*shape,)
    step = (far - near) / samples  # delta = (far - near) / S
    bins = torch.arange(samples, dtype=dtype, device=near.device)  # (S,): i
    if stratified:
        offset = uniform((*shape, samples), generator, near.device, dtype)
    else:
        offset = torch.full((*shape, samples), 0.5, dtype=dtype, device=near.device)
    return near[..., None] + (bins + offset) * step[..., None]  # h_i = near + (i + u_i) delta


def subsample_rays(
    rays: Rays, count: int, generator: torch.Generator | None = None
) -> tuple[Rays, torch.Tensor]:
    """`count` rays drawn without replacement from one frame's (R, 3) rays (all of them, in
    random order, if R <= count). CoPilot4D trains on 4096 rays per frame; on a CPU ~1024.

    Returns the chosen Rays and their indices (n,) into the R rays, so that the caller can
    pick the matching true depths, labels or pixels."""
    total = rays.depths.shape[-1]
    if rays.depths.ndim != 1:
        raise ValueError(f"subsample one frame at a time: depths (R,), got {rays.depths.shape}")
    if total == 0:
        raise ValueError("no rays to sample from (an empty sweep?)")
    where = generator.device if generator is not None else "cpu"
    index = torch.randperm(total, generator=generator, device=where)[:count]  # (n,)
    index = index.to(rays.depths.device)
    return Rays(rays.origins[index], rays.dirs[index], rays.depths[index]), index


def sensor_directions(
    beams: int,
    azimuths: int,
    elevation_up: float,
    elevation_down: float,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(H, W, 3) unit directions of a spinning LiDAR in the sensor frame (x forward, y left,
    z up): H = `beams` rows evenly spaced from `elevation_up` down to `elevation_down`
    (degrees), W = `azimuths` columns at phi_w = pi - (w + 1/2) 2 pi / W. The same layout as
    the driving world's `LidarConfig.ray_directions()`, so a rendered range image lines up
    with the dataset's `lidar_range`.

        d = (cos(el) cos(phi), cos(el) sin(phi), sin(el))
    """
    if beams < 1 or azimuths < 1:
        raise ValueError(f"need beams >= 1 and azimuths >= 1, got {beams}, {azimuths}")
    up, down = math.radians(elevation_up), math.radians(elevation_down)
    elevation = torch.linspace(up, down, beams, dtype=torch.float64)  # (H,)
    column = torch.arange(azimuths, dtype=torch.float64)  # (W,)
    azimuth = math.pi - (column + 0.5) * (2 * math.pi / azimuths)  # (W,)
    el, az = torch.meshgrid(elevation, azimuth, indexing="ij")  # (H, W) each
    dirs = torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], dim=-1)
    dirs = torch.where(dirs.abs() < 1e-12, 0.0, dirs)  # cos(90 deg) = 6e-17 -> exactly 0
    return dirs.to(dtype)  # (H, W, 3)


def sensor_rays(dirs_HW3: torch.Tensor, origin) -> tuple[torch.Tensor, torch.Tensor]:
    """A sensor pattern (H, W, 3) as flat rays: origins (R, 3), dirs (R, 3), R = H * W (row by
    row, so `rearrange(depth, "(H W) -> H W", H=H)` gives the range image back)."""
    dirs = rearrange(dirs_HW3, "H W xyz -> (H W) xyz")  # (R, 3)
    origin = torch.as_tensor(origin, dtype=dirs.dtype, device=dirs.device)
    _check_points(origin, "origin")
    return origin.expand_as(dirs), dirs
