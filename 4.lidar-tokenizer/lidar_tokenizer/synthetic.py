"""A synthetic street for tests: boxes by a road and a ground plane, ray-cast in
milliseconds around a sensor driving along it (chapter 4's tests, chapter 5's LiDAR tests).

    ranges, clean, poses, dirs = synthetic_street(seed, frames=4)

Shapes: H, W range-image height and width (beams, azimuth columns), P points (rays here),
M boxes, n a count local to one function (here: frames).
"""

from __future__ import annotations

import torch

from lidar_tokenizer.rays import sensor_directions

SYNTHETIC_FRAMES = 4
SYNTHETIC_SENSOR = dict(beams=16, azimuths=128, elevation_up=10.0, elevation_down=-30.0)
SENSOR_HEIGHT = 1.84  # m above the ground, the driving world's
MAX_RANGE = 30.0


def cast_boxes(dirs: torch.Tensor, origin: torch.Tensor, low: torch.Tensor, high: torch.Tensor):
    """Depth of the first hit of rays from `origin` (3,) along dirs (P, 3) on axis-aligned
    boxes [low, high] (M, 3) and the ground z = 0 -> (P,) metres, inf where nothing is hit.
    Slab method: a ray is inside box m between max_a t_enter and min_a t_exit."""
    safe = torch.where(dirs == 0, 1e-12, dirs)[:, None, :]  # (P, 1, 3)
    t_low, t_high = (low - origin) / safe, (high - origin) / safe  # (P, M, 3)
    enter = torch.minimum(t_low, t_high).amax(-1)  # (P, M)
    leave = torch.maximum(t_low, t_high).amin(-1)
    box = torch.where((enter < leave) & (enter > 0), enter, torch.inf).amin(-1)  # (P,)
    ground = torch.where(dirs[:, 2] < 0, -origin[2] / safe[:, 0, 2], torch.inf)
    return torch.minimum(box, ground)


def synthetic_street(seed: int, frames: int = SYNTHETIC_FRAMES, sensor: dict | None = None,
                     max_range: float = MAX_RANGE):  # fmt: skip
    """(ranges (n, H, W), clean (n, H, W), poses (n, 4, 4), dirs (H, W, 3)) of a street:
    buildings on both sides of a road along x, parked cars, the sensor driving along x.
    `sensor`: rays.sensor_directions' arguments (default 16 beams x 128 columns)."""
    g = torch.Generator().manual_seed(seed)
    uniform = lambda lo, hi, n: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    count = 6
    side = torch.where(torch.rand(count, generator=g) < 0.5, -1.0, 1.0)
    x = uniform(-25.0, 25.0, count)
    y = side * uniform(7.0, 12.0, count)
    size = torch.stack([uniform(4, 10, count), uniform(3, 6, count), uniform(3, 8, count)], -1)
    cars = torch.stack([uniform(-20, 20, 3), uniform(-3, 3, 3), torch.zeros(3)], -1)
    centre = torch.cat([torch.stack([x, y, size[:, 2] / 2], -1), cars + torch.tensor([0, 0, 0.8])])
    size = torch.cat([size, torch.tensor([[4.5, 1.9, 1.6]]).expand(3, 3)])
    low, high = centre - size / 2, centre + size / 2  # (M, 3)
    dirs = sensor_directions(**(sensor or SYNTHETIC_SENSOR))  # (H, W, 3)
    flat = dirs.reshape(-1, 3)
    speed = float(uniform(2.0, 5.0, 1))  # metres per frame
    ranges, poses = [], []
    for t in range(frames):
        origin = torch.tensor([speed * t, 0.0, SENSOR_HEIGHT])
        depth = cast_boxes(flat, origin, low, high)  # (H*W,)
        ranges.append(torch.where(depth < max_range, depth, 0.0).reshape(dirs.shape[:2]))
        pose = torch.eye(4, dtype=torch.float64)
        pose[0, 3] = speed * t
        poses.append(pose)
    clean = torch.stack(ranges)  # (n, H, W)
    noise = 0.02 * torch.randn(clean.shape, generator=g)
    return torch.where(clean > 0, clean + noise, 0.0), clean, torch.stack(poses), dirs
