"""PointNet pooling and BEV pooling: order invariance, sums by hand, scatter equals dense."""

import pytest
import torch
from lidar_tokenizer.bev import BEVPooling, dense_bev_reference
from lidar_tokenizer.pointnet import VoxelPointNet
from lidar_tokenizer.region import VoxelGrid, voxelize, voxelize_batch

GRID = VoxelGrid((-3.0, 3.0), (-2.0, 2.0), (-1.0, 1.0), (6, 4, 4))  # X != Y: a swap shows


def random_sweep(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scale, low = torch.tensor([6.0, 4.0, 2.0]), torch.tensor([-3.0, -2.0, -1.0])
    return torch.rand(n, 3, generator=generator) * scale + low  # (P, 3) inside GRID


def test_pointnet_is_invariant_to_point_order():
    torch.manual_seed(0)
    net = VoxelPointNet(dim=8)
    points = random_sweep(300, seed=1)  # ~3 points a voxel
    shuffled = points[torch.randperm(len(points))]
    a, b = net(voxelize(points, GRID)), net(voxelize(shuffled, GRID))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # rows follow the sorted voxels


def test_pointnet_pools_by_sum_then_layernorm():
    torch.manual_seed(0)
    net = VoxelPointNet(dim=8)
    voxels = voxelize(random_sweep(300, seed=2), GRID)
    got = net(voxels)  # (V, 8)
    point_features = net.point_mlp(voxels.offsets)  # (P, 8)
    for v in range(voxels.num_voxels):  # by hand, one voxel at a time
        want = net.norm(point_features[voxels.point_voxel == v].sum(0))
        torch.testing.assert_close(got[v], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_scatter_bev_equals_dense(batch):
    torch.manual_seed(0)
    pointnet, bev = VoxelPointNet(dim=8), BEVPooling(in_dim=8, out_dim=12, levels=4)
    with torch.no_grad():  # a height embedding the size of the features, so z matters
        bev.height.weight.normal_()
    voxels = voxelize_batch([random_sweep(60 + 40 * b, seed=3 + b) for b in range(batch)], GRID)
    features = pointnet(voxels)  # (V, 8)
    image = bev(features, voxels)  # (B, 12, 6, 4)
    assert image.shape == (batch, 12, 6, 4)
    torch.testing.assert_close(image, dense_bev_reference(bev, features, voxels))


def test_bev_height_embedding_tells_levels_apart():
    bev = BEVPooling(in_dim=8, out_dim=12, levels=4)
    low = voxelize(torch.tensor([[0.5, 0.5, -0.9]]), GRID)  # level 0
    high = voxelize(torch.tensor([[0.5, 0.5, 0.9]]), GRID)  # level 3
    features = torch.ones(1, 8)  # the same voxel feature at both heights
    assert not torch.allclose(bev(features, low), bev(features, high))


def test_bev_empty_columns_hold_the_norm_bias_and_gradient_reaches_pointnet():
    pointnet, bev = VoxelPointNet(dim=8), BEVPooling(in_dim=8, out_dim=12, levels=4)
    voxels = voxelize(torch.tensor([[0.5, 0.5, 0.5]]), GRID)  # one voxel: column (3, 2)
    image = bev(pointnet(voxels), voxels)  # (1, 12, 6, 4)
    torch.testing.assert_close(image[0, :, 0, 0], bev.norm.bias)  # LN(0) = its bias
    image[0, :, 3, 2].pow(2).sum().backward()
    assert pointnet.point_mlp[0].weight.grad.abs().sum() > 0


def test_bev_refuses_a_grid_of_other_height():
    bev = BEVPooling(in_dim=8, out_dim=12, levels=8)
    voxels = voxelize(torch.tensor([[0.5, 0.5, 0.5]]), GRID)
    with pytest.raises(ValueError, match="built for 8 height levels, the grid has 4"):
        bev(torch.zeros(1, 8), voxels)
