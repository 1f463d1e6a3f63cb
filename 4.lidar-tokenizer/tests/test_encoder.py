"""The encoder end to end on a tiny grid: shapes, sweeps kept apart, gradients, bad input."""

import pytest
import torch
from lidar_tokenizer.encoder import LidarEncoder
from lidar_tokenizer.region import VoxelGrid
from lidar_tokenizer.restarts import RestartingVectorQuantizer

GRID = VoxelGrid((-8.0, 8.0), (-8.0, 8.0), (-2.0, 2.0), (32, 32, 4))  # 0.5 m x 0.5 m x 1 m
TINY = dict(point_dim=8, bev_dim=8, dims=(16, 32), depths=(2, 2), heads=(2, 2), window=4)


def sweep(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, generator=generator) - 0.5) * torch.tensor([20.0, 20.0, 5.0])


def test_shapes_and_token_grid():
    encoder = LidarEncoder(GRID, code_dim=6, **TINY)
    out = encoder([sweep(400, 0), sweep(250, 1)])
    assert encoder.token_grid == (4, 4)  # 32 / (patch 4 * one merge 2)
    assert out.latents.shape == (2, 4, 4, 6)
    assert out.voxels.batch_size == 2 and (out.voxels.dropped > 0).all()  # +-10 m > +-8 m
    assert encoder.bev_image(out.voxels).shape == (2, 8, 32, 32)


def test_each_sweep_is_encoded_alone():
    torch.manual_seed(0)
    encoder = LidarEncoder(GRID, code_dim=6, **TINY).eval()
    a, b = sweep(400, 0), sweep(250, 1)
    together = encoder([a, b]).latents
    torch.testing.assert_close(together[0], encoder([a]).latents[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together[1], encoder([b]).latents[0], atol=1e-5, rtol=1e-4)


def test_gradient_reaches_the_pointnet_through_the_quantizer():
    encoder = LidarEncoder(GRID, code_dim=6, **TINY)
    vq = RestartingVectorQuantizer(codebook_size=8, dim=6)
    quantized = vq(encoder([sweep(400, 0)]).latents)
    (quantized.codes.pow(2).sum() + quantized.aux_loss).backward()
    assert encoder.pointnet.point_mlp[0].weight.grad.abs().sum() > 0
    assert encoder.bev.height.weight.grad.abs().sum() > 0


def test_grid_that_the_encoder_cannot_reduce_is_named():
    with pytest.raises(ValueError, match="must divide by patch \\* 2\\^\\(stages - 1\\) = 8"):
        LidarEncoder(VoxelGrid(shape=(36, 36, 4)), **TINY)
