"""From a batch of range images to what the tokenizer eats (points) and what it is scored on
(rays with their true depths, and how far each ray can look inside the region).

A LiDAR sweep arrives as a range image: ranges (H, W) metres (0 = no return) and the unit
direction of every pixel (H, W, 3), both in the sensor frame, every ray starting at the
sensor (origin 0). Its returns are the points p = r d of the pixels with r > 0.

The renderer can only see inside the tokenizer's region, so every ray is rendered from
`near` to the depth at which it leaves the region's box, its `far`:

    far = min over axes a of  (hi_a - o_a) / d_a  if d_a > 0,  (lo_a - o_a) / d_a  if d_a < 0

(a ray from inside the box leaves it through the first face it reaches). The decoder's
alpha is 0 outside the box anyway, so samples beyond `far` would be wasted, and a ray that
meets nothing renders as "no return before the region's edge" (depth = far).

Training rays are drawn among the returns that lie inside the region: a return outside it
could only be explained by a surface the tokenizer cannot represent, and fitting it would
teach the model to draw fake walls at the region's edge.

Shapes: B batch (sweeps), H, W range-image height and width (beams, azimuth columns),
P points, R rays, "..." any leading axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from einops import rearrange

from lidar_tokenizer.rays import Rays
from lidar_tokenizer.region import VoxelGrid
from worldmodels.data.driving.shards import RANGE_UNIT


class FrameRays(NamedTuple):
    """Rays of B frames, R each: origins, dirs (B, R, 3); true depths, far (B, R) metres."""

    origins: torch.Tensor
    dirs: torch.Tensor
    depths: torch.Tensor
    far: torch.Tensor


def returns(ranges: torch.Tensor, dirs: torch.Tensor) -> Rays:
    """The returns of one range image: ranges (H, W) or (R,) metres, 0 = no return; dirs
    (H, W, 3) or (R, 3) unit -> Rays (origins 0, dirs, depths) of the pixels with r > 0."""
    flat_range = ranges.reshape(-1)  # (H*W,)
    flat_dirs = dirs.reshape(-1, 3)  # (H*W, 3)
    hit = flat_range > 0
    depth, direction = flat_range[hit], flat_dirs[hit]  # (P,), (P, 3)
    return Rays(torch.zeros_like(direction), direction, depth)


def points_of(rays: Rays) -> torch.Tensor:
    """p = o + r d: (..., R, 3) metres."""
    return rays.origins + rays.depths[..., None] * rays.dirs


def batch_returns(batch: dict, key: str = "range") -> list[Rays]:
    """One Rays per frame of a batch {"range": (B, H, W), "dirs": (B, H, W, 3)}."""
    return [returns(r, d) for r, d in zip(batch[key], batch["dirs"])]


def exit_depth(origins: torch.Tensor, dirs: torch.Tensor, grid: VoxelGrid) -> torch.Tensor:
    """Depth at which each ray from inside the region leaves it: (..., R, 3) -> (..., R)."""
    low = dirs.new_tensor(grid.lower)  # (3,)
    high = dirs.new_tensor(grid.upper)
    face = torch.where(dirs > 0, high, low)  # (..., R, 3): the face ahead on each axis
    safe = torch.where(dirs == 0, 1.0, dirs)
    travel = torch.where(dirs == 0, torch.inf, (face - origins) / safe)  # (..., R, 3)
    return travel.amin(dim=-1).clamp(min=0)


def ray_far(rays: Rays, grid: VoxelGrid, near: float) -> torch.Tensor:
    """far (..., R) of every ray: where it leaves the region, at least a centimetre past near."""
    return exit_depth(rays.origins, rays.dirs, grid).clamp(min=near + 0.01)


def pick_rays(frames: list[Rays], grid: VoxelGrid, count: int, near: float) -> FrameRays:
    """`count` rays per frame, drawn (global RNG) among the returns inside the region (all of
    them, repeated at random, when there are fewer) -> FrameRays (B, count, ...)."""
    picked = []
    for b, rays in enumerate(frames):
        inside = (grid.inside(points_of(rays)) & (rays.depths > near)).nonzero()[:, 0]  # (n,)
        if len(inside) == 0:
            raise ValueError(f"frame {b} has no return inside the region {grid.bounds} m")
        if len(inside) >= count:
            chosen = inside[torch.randperm(len(inside), device=inside.device)[:count]]
        else:
            chosen = inside[torch.randint(len(inside), (count,), device=inside.device)]
        picked.append(Rays(rays.origins[chosen], rays.dirs[chosen], rays.depths[chosen]))
    origins, dirs, depths = (torch.stack(parts) for parts in zip(*picked))  # (B, R, ...)
    far = ray_far(Rays(origins, dirs, depths), grid, near)  # (B, R)
    return FrameRays(origins, dirs, depths, torch.maximum(far, depths))


def range_image(depths: torch.Tensor, hit: torch.Tensor, shape: tuple[int, int]):
    """Rendered depths of all H*W pixels (R = H*W, row by row) -> (H, W), 0 where no return."""
    return rearrange(torch.where(hit, depths, 0.0), "(H W) -> H W", H=shape[0])


def metres(stored: np.ndarray) -> torch.Tensor:
    """Stored ranges (uint16, RANGE_UNIT = 2 mm steps) -> float32 metres."""
    return torch.from_numpy(stored.astype(np.float32) * np.float32(RANGE_UNIT))


def stored(ranges: torch.Tensor) -> np.ndarray:
    """Metres -> uint16 in 2 mm steps, as the driving world stores them."""
    return (ranges / RANGE_UNIT).round().numpy().astype(np.uint16)


@dataclass
class Frame:
    """One scored sweep: the encoder's input points (P, 3), the scored rays (truth depths),
    its sequence (bootstrap group), its frame index and world-from-ego pose (or None)."""

    points: torch.Tensor
    rays: Rays
    sequence: int
    frame: int
    pose: torch.Tensor | None = None
    name: str = ""


def spread(rays: Rays, max_rays: int) -> Rays:
    """At most max_rays of them, every k-th (k the smallest that fits)."""
    step = -(-len(rays.depths) // max_rays)
    return Rays(*(part[::step] for part in rays)) if step > 1 else rays


def frame_rays(model, frame: Frame) -> tuple[FrameRays, torch.Tensor]:
    """The frame's scored rays as a batch of one on the model's device (a LidarTokenizer:
    its grid, render_config.near, parameters), and inside (R,)."""
    device, rays = next(model.parameters()).device, frame.rays
    far = ray_far(rays, model.grid, model.render_config.near)  # (R,)
    inside = model.grid.inside(points_of(rays))  # (R,)
    batch = FrameRays(*(t[None].to(device) for t in (rays.origins, rays.dirs, rays.depths, far)))
    return batch, inside
