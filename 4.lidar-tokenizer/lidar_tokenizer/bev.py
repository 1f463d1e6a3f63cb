"""BEV pooling: the non-empty voxels of each (x, y) column -> one pixel of a 2D image.

Driving scenes are mostly flat: what matters is where things are on the ground plane and
how tall they are. CoPilot4D therefore folds height into channels and runs its transformer
on a bird's-eye-view (BEV) image, 2D attention instead of 3D:

    a_v = MLP(g_v + e[z_v])                  g_v the voxel's PointNet feature (C),
                                             e[z] a learned embedding of height level z
    b_xy = LN( sum_{v in column (x, y)} a_v )      (C') per pixel; empty columns: LN(0)

The height embedding is what keeps "a car at 1 m" apart from "a car at 3 m" after the sum
(without it the sum over z forgets where in the column each voxel was). CoPilot4D
concatenates the embedding, [g_v, e[z]]; adding it is the same model, since the MLP's first
Linear maps a concatenation to W1 g + W2 e[z] = W1 (g + e'[z]) for a learned e' whenever W1
has full rank, and it keeps the width at C. The sum counts: a column with a wall of 20
voxels and one with a single kerb voxel give different sums (the contributions differ by
height, so LayerNorm cannot fold one into the other), which is how occupancy density reaches
the BEV image (the PointNet's LN removes the per-voxel point count, pointnet.py).

The sum is a scatter over the V non-empty voxels into a (B X Y, C') table: 2D dense, never
3D. `dense_bev_reference` computes the same thing the obvious way, over a full (B, X, Y, Z, C)
volume, for the tests on small grids only.

Shapes: B batch (sweeps), V non-empty voxels, X, Y, Z voxel-grid sizes, C channels of a voxel
feature, C' channels of the BEV image.
"""

import torch
from einops import rearrange
from torch import nn

from lidar_tokenizer.pointnet import scatter_sum
from lidar_tokenizer.region import Voxels


class BEVPooling(nn.Module):
    """Voxel features (V, C) -> BEV image (B, C', X, Y), channels first like an image.

    CoPilot4D: C = 16 -> C' = 64. The MLP's layers are not given; it mirrors the PointNet's
    Linear -> LN -> ReLU -> Linear.
    """

    def __init__(self, in_dim: int = 16, out_dim: int = 64, levels: int = 64):
        super().__init__()
        self.levels = levels
        self.height = nn.Embedding(levels, in_dim)  # e[z], one per height level
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, out_dim),
            nn.LayerNorm(out_dim),
            nn.ReLU(),
            nn.Linear(out_dim, out_dim),
        )
        self.norm = nn.LayerNorm(out_dim)

    def voxel_contributions(self, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """a_v = MLP(g_v + e[z_v]): features (..., C), z (...) int64 levels -> (..., C')."""
        return self.mlp(features + self.height(z))

    def forward(self, features: torch.Tensor, voxels: Voxels) -> torch.Tensor:
        """features (V, C) in `voxels.coords` order -> (B, C', X, Y)."""
        X, Y, Z = voxels.grid.shape
        if Z != self.levels:
            raise ValueError(
                f"BEVPooling was built for {self.levels} height levels, the grid has {Z}"
            )
        x, y, z = voxels.coords.unbind(-1)  # (V,) each
        column = (voxels.batch * X + x) * Y + y  # (V,): one index per column of a sweep
        contributions = self.voxel_contributions(features, z)  # (V, C'): a_v
        columns = scatter_sum(contributions, column, voxels.batch_size * X * Y)  # (B*X*Y, C')
        image = self.norm(columns)  # (B*X*Y, C'): b_xy = LN(sum_z a_v), LN(0) where empty
        return rearrange(image, "(b x y) c -> b c x y", b=voxels.batch_size, x=X)


def dense_bev_reference(bev: BEVPooling, features: torch.Tensor, voxels: Voxels) -> torch.Tensor:
    """The same BEV image through a dense (B, X, Y, Z, C) volume: for tests on small grids.

    Every cell of the volume is put through the MLP, the empty ones are zeroed, and the
    height axis is summed: sum over z of occupied(x, y, z) * MLP(g(x, y, z) + e[z]).
    """
    X, Y, Z = voxels.grid.shape
    B, C = voxels.batch_size, features.shape[-1]
    volume = features.new_zeros(B, X, Y, Z, C)  # (B, X, Y, Z, C)
    occupied = features.new_zeros(B, X, Y, Z, 1)  # (B, X, Y, Z, 1)
    x, y, z = voxels.coords.unbind(-1)
    volume[voxels.batch, x, y, z] = features
    occupied[voxels.batch, x, y, z] = 1.0
    levels = torch.arange(Z, device=features.device)  # (Z,)
    per_cell = bev.voxel_contributions(volume, levels[None, None, None, :])  # (B, X, Y, Z, C')
    columns = (per_cell * occupied).sum(dim=3)  # (B, X, Y, C')
    return rearrange(bev.norm(columns), "b x y c -> b c x y")
