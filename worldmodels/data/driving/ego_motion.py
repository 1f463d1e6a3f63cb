"""Moving an ego-frame occupancy grid by the ego's own motion: the "static world" warp.

Every frame of the driving world is stored in its own ego frame (x forward, y left, z up).
To see frame s from where the ego stands at frame t, each voxel centre c of frame t's grid
is carried into frame s's ego frame and looked up there (nearest voxel):

    T_{s <- t} = inv(world_from_ego_s) @ world_from_ego_t        (4, 4), target ego -> source
    c_s        = R c + tr,  with [R | tr] the top rows of T_{s <- t}
    k          = floor((c_s - low) / voxel)                       the source voxel's index
    warped[c]  = grid_s[k]  if k lies inside the grid, else free (nothing seen there)

where `low` is the grid's corner (-X/2 voxel_xy, -Y/2 voxel_xy, z_bottom). Moved agents are
not moved: this is what the world would look like if everything but the ego stood still,
the "warp" baseline of `stats.py` and of chapter 5's forecasting benchmark.

    warped = warp_grids(grids, pose_from, pose_to, preset.grid)   # torch, a batch at once
    warped = warp(grid, pose_from, pose_to, preset)                # numpy, one grid

Shapes: n grids warped at once (said beside), X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodels.data.driving.config import GridConfig
from worldmodels.occ3d import FREE


def grid_corner_and_voxel(grid: GridConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(low corner (3,), voxel edges (3,)) of the ego-frame grid, float64 metres."""
    low = [-grid.half_extent[0], -grid.half_extent[1], grid.z_range[0]]
    size = [grid.voxel_xy, grid.voxel_xy, grid.voxel_z]
    return torch.tensor(low, dtype=torch.float64), torch.tensor(size, dtype=torch.float64)


def voxel_centres(grid: GridConfig) -> torch.Tensor:
    """(X, Y, Z, 3) float64: the ego-frame centre of every voxel, in metres."""
    low, size = grid_corner_and_voxel(grid)
    axes = [torch.arange(n, dtype=torch.float64) for n in grid.size]
    index = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (X, Y, Z, 3)
    return low + (index + 0.5) * size


def warp_grids(
    grids: torch.Tensor, pose_from: torch.Tensor, pose_to: torch.Tensor, grid: GridConfig
) -> torch.Tensor:
    """Grids (n, X, Y, Z) seen at poses `pose_from` (n, 4, 4), resampled into the ego frames
    of `pose_to` (n, 4, 4) (world-from-ego transforms, metres); free where a voxel's centre
    falls outside the source grid. Same dtype and device as `grids`."""
    if grids.ndim != 4 or tuple(grids.shape[1:]) != tuple(grid.size):
        raise ValueError(f"grids must be (n, X, Y, Z) = (n, {grid.size}), got {tuple(grids.shape)}")
    n = len(grids)
    for name, pose in (("pose_from", pose_from), ("pose_to", pose_to)):
        if tuple(pose.shape) != (n, 4, 4):
            raise ValueError(f"{name} must be (n, 4, 4) = ({n}, 4, 4), got {tuple(pose.shape)}")
    device = grids.device
    X, Y, Z = grid.size
    low, size = (v.to(device) for v in grid_corner_and_voxel(grid))
    centres = voxel_centres(grid).to(device)  # (X, Y, Z, 3) in the target ego frame
    # T_{s <- t} = inv(pose_from) @ pose_to: target ego -> source ego, one per grid.
    transform = torch.linalg.inv(pose_from.to(device).double()) @ pose_to.to(device).double()
    rotation, shift = transform[:, :3, :3], transform[:, :3, 3]  # (n, 3, 3), (n, 3)
    source = torch.einsum("xyzj,nij->nxyzi", centres, rotation)  # R c, then + tr in place
    source += shift[:, None, None, None]
    source -= low
    k = source.div_(size).floor_().long()  # (n, X, Y, Z, 3) source voxel index
    inside = ((k >= 0) & (k < torch.tensor(grid.size, device=device))).all(dim=-1)
    # One flat index into the whole batch: ((grid * X + i) * Y + j) * Z + l.
    flat = (k * torch.tensor([Y * Z, Z, 1], device=device)).sum(dim=-1)  # (n, X, Y, Z)
    flat += torch.arange(len(grids), device=device)[:, None, None, None] * (X * Y * Z)
    looked_up = grids.reshape(-1)[flat.where(inside, 0)]  # (n, X, Y, Z)
    return looked_up.where(inside, FREE)


def warp(occupancy: np.ndarray, pose_from: np.ndarray, pose_to: np.ndarray, preset) -> np.ndarray:
    """The grid of one frame (X, Y, Z) resampled (nearest voxel) into another frame's ego
    frame, using the world-from-ego poses (4, 4) of both; free outside the source grid.
    numpy in, uint8 numpy out: `warp_grids` for one grid of a preset."""
    grids = torch.from_numpy(np.ascontiguousarray(occupancy))[None]
    poses = (torch.from_numpy(np.asarray(p, dtype=np.float64))[None] for p in (pose_from, pose_to))
    return warp_grids(grids, *poses, preset.grid)[0].numpy().astype(np.uint8)
