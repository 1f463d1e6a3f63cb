"""Voxel-wise PointNet: each non-empty voxel's points -> one feature vector (CoPilot4D).

Each point is described by its offset from its voxel's centre (region.py), mapped by a small
MLP, and the points of a voxel are pooled into one vector:

    f_i = W2 ReLU(LN(W1 u_i + c1)) + c2              u_i: the offset of point i (voxel units)
    g_v = LN( sum_{i in v} f_i )                     one C-vector per non-empty voxel v

Why SUM then LayerNorm, not PointNet's usual max:
- Every point counts. The sum is invariant to the order of the points (a voxel's points have
  no order), like max, but it is a summary of all of them (their centroid and spread inside
  the voxel), where max keeps, per channel, the one most extreme point: one stray return
  decides the feature, and the gradient of each channel reaches one point only.
- LayerNorm puts every voxel on one scale. A voxel near the sensor holds dozens of points,
  one far away holds one; raw sums would differ by that factor and near voxels would drown
  the far ones in the BEV sum that follows. LN is scale-invariant, LN(n f) = LN(f) up to
  its eps, so after it the sum is in effect the mean: the number of points in a voxel is NOT
  kept (measured: one point and 30 copies of it differ by 1e-4 in a 16-channel feature, the
  LN's eps). How much of the scene is solid is kept one level up, where BEV pooling sums the
  voxels of a column, each tagged with its height (bev.py).

The pooling is a scatter: `index_add` adds each point's f_i into row point_voxel[i] of a
(V, C) table, so only non-empty voxels exist.

Shapes: P points, V non-empty voxels, C channels of a voxel feature.
"""

import torch
from torch import nn

from lidar_tokenizer.region import Voxels


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[j] = sum_{i : index[i] = j} values[i]: (P, C) rows summed into (size, C)."""
    out = values.new_zeros(size, values.shape[-1])  # (size, C)
    return out.index_add(0, index, values)  # autograd-friendly (not in place on a leaf)


class VoxelPointNet(nn.Module):
    """Points of each voxel -> one feature: Voxels -> (V, C), rows in `voxels.coords` order.

    CoPilot4D: Linear -> LN -> ReLU -> Linear to C = 16, sum per voxel, LN. The hidden width
    is not given; `hidden` defaults to C.
    """

    def __init__(self, dim: int = 16, hidden: int | None = None, in_dim: int = 3):
        super().__init__()
        hidden = hidden or dim
        self.point_mlp = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, voxels: Voxels) -> torch.Tensor:
        """voxels -> (V, C) features of the non-empty voxels."""
        return self.pool(voxels.offsets, voxels.point_voxel, voxels.num_voxels)

    def pool(self, offsets: torch.Tensor, point_voxel: torch.Tensor, num_voxels: int):
        """offsets (P, 3), point_voxel (P,) in [0, V) -> (V, C)."""
        point_features = self.point_mlp(offsets)  # (P, C): f_i
        summed = scatter_sum(point_features, point_voxel, num_voxels)  # (V, C): sum_i f_i
        return self.norm(summed)  # (V, C): g_v
