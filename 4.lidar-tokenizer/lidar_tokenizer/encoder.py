"""The tokenizer's encoder: LiDAR sweeps -> a grid of latents, ready for the quantizer.

    sweeps (B lists of (P_b, 3) points, metres, sensor frame)
      -> voxelize               non-empty voxels, points outside the region cropped
      -> VoxelPointNet          (V, C)        C = 16: each voxel's points, summed, LN
      -> BEVPooling             (B, C', X, Y) C' = 64: columns summed over height, LN
      -> SwinEncoder            (B, h, w, D)  patch 4, stages of Swin blocks, patch merging
      -> GELU -> Linear         (B, h, w, E)  to the code width
    CoPilot4D: (1024, 1024, 64) voxels -> (128, 128) latents of E = 1024 (patch 4, one merge).

Sweeps come as a list of (P_b, 3) tensors, one per sweep, not padded: sweeps have different
numbers of points, voxelization concatenates them anyway, and padding would need a length
mask at every step for nothing.

Shapes: B batch (sweeps), P points, V non-empty voxels, X, Y, Z voxel-grid sizes, C channels
of a voxel feature, C' channels of the BEV image, h, w token-grid height, width, D model
width, E code dims of a quantizer.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from lidar_tokenizer.bev import BEVPooling
from lidar_tokenizer.pointnet import VoxelPointNet
from lidar_tokenizer.region import VoxelGrid, Voxels, voxelize_batch
from lidar_tokenizer.swin import SwinEncoder


class Encoded(NamedTuple):
    """What `LidarEncoder(sweeps)` returns."""

    latents: torch.Tensor  # (B, h, w, E): the quantizer's input
    voxels: Voxels  # the sweeps' non-empty voxels (targets of the occupancy head, figures)


class LidarEncoder(nn.Module):
    """Sweeps -> latents (B, h, w, E), h = X / (patch * 2^(stages - 1)).

    Defaults are CoPilot4D's; `dims`, `depths`, `heads` give one entry per Swin stage.
    """

    def __init__(
        self,
        grid: VoxelGrid,
        point_dim: int = 16,
        bev_dim: int = 64,
        dims: tuple[int, ...] = (128, 256),
        depths: tuple[int, ...] = (2, 6),
        heads: tuple[int, ...] = (8, 8),
        window: int = 8,
        patch: int = 4,
        code_dim: int = 1024,
        mlp_ratio: float = 4,
    ):
        super().__init__()
        X, Y, Z = grid.shape
        reduction = patch * 2 ** (len(dims) - 1)
        if X % reduction or Y % reduction:
            raise ValueError(
                f"the grid's {X} x {Y} columns must divide by patch * 2^(stages - "
                f"1) = {reduction}, the encoder's reduction"
            )
        self.grid = grid
        self.reduction = reduction
        self.pointnet = VoxelPointNet(point_dim)
        self.bev = BEVPooling(point_dim, bev_dim, levels=Z)
        self.swin = SwinEncoder(bev_dim, (X, Y), dims, depths, heads, window, patch, mlp_ratio)
        # CoPilot4D: "LN -> GELU + Linear -> VQ"; the LN is the SwinEncoder's last layer
        self.to_code = nn.Sequential(nn.GELU(), nn.Linear(dims[-1], code_dim))

    @property
    def token_grid(self) -> tuple[int, int]:
        """(h, w): the latents' grid."""
        return self.grid.shape[0] // self.reduction, self.grid.shape[1] // self.reduction

    def voxelize(self, sweeps: Sequence) -> Voxels:
        """B sweeps (P_b, 3) -> their non-empty voxels in this encoder's grid."""
        return voxelize_batch(sweeps, self.grid)

    def bev_image(self, voxels: Voxels) -> torch.Tensor:
        """Voxels -> (B, C', X, Y): the image the Swin encoder sees."""
        return self.bev(self.pointnet(voxels), voxels)  # (V, C) -> (B, C', X, Y)

    def encode_voxels(self, voxels: Voxels) -> torch.Tensor:
        """Voxels -> latents (B, h, w, E)."""
        features = self.swin(self.bev_image(voxels))  # (B, h, w, D)
        return self.to_code(features)  # (B, h, w, E)

    def forward(self, sweeps: Sequence) -> Encoded:
        """B sweeps, each (P_b, 3) float (metres, sensor frame) -> Encoded(latents, voxels)."""
        voxels = self.voxelize(sweeps)
        return Encoded(self.encode_voxels(voxels), voxels)
