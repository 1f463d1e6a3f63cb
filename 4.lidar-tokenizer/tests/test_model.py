"""The assembled tokenizer: shapes, the loss falls on a tiny overfit, the gradient reaches
the encoder through the quantizer, rays leave the region where they should, restarts only
when asked for, and coherence with and without ego motion."""

import dataclasses

import torch
from lidar_tokenizer.config import RenderConfig, TokenizerConfig
from lidar_tokenizer.data import SyntheticSweeps
from lidar_tokenizer.model import LidarTokenizer, tokenizer_loss
from lidar_tokenizer.rays import Rays
from lidar_tokenizer.region import VoxelGrid
from lidar_tokenizer.scoring import ego_coherence, token_coherence
from lidar_tokenizer.sweeps import exit_depth, pick_rays, points_of, returns
from torch.utils.data import default_collate

TINY = TokenizerConfig(
    region_xy=16.0, grid=(32, 32, 8), point_dim=4, bev_dim=8, dims=(8, 16), depths=(1, 1),
    decoder_depths=(1, 1), heads=(1, 2), window=4, patch=2, code_dim=8, codebook_size=32,
    dead_after=4, restart_every=4, grid_levels=4, grid_channels=4, occupancy_factor=1,
)  # fmt: skip
RENDER = RenderConfig(train_rays=128, train_samples=8, train_skip_samples=4, eval_samples=16,
                      skip_samples=8, pool=4)  # fmt: skip


def batch(count: int = 2) -> dict:
    data = SyntheticSweeps("train")
    return default_collate([data[i] for i in range(count)])


def test_shapes_of_tokens_grids_and_renders():
    torch.manual_seed(0)
    model = LidarTokenizer(TINY, RENDER).eval()
    frames = [returns(r, d) for r, d in zip(batch()["range"], batch()["dirs"])]
    indices = model.encode([points_of(f) for f in frames])
    assert indices.shape == (2, 8, 8) and model.token_grid == (8, 8)
    decoded = model.decode(indices)
    assert decoded.grid.shape == (2, 4, 4, 32, 32)  # (B, C, Z', 2 * 16, 2 * 16)
    assert decoded.occupancy.shape == (2, 16, 16, 8)  # the binary head: 2 x 2 voxel columns
    rays = pick_rays(frames, model.grid, 50, model.render_config.near)
    for skipping in (False, True):
        depth = model.render(decoded, rays, skipping=skipping).depth
        assert depth.shape == (2, 50) and (depth <= rays.far + 1e-4).all()


def test_loss_falls_on_a_tiny_overfit():
    torch.manual_seed(0)
    model = LidarTokenizer(TINY, RENDER)
    data = batch(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, metrics = tokenizer_loss(model, data)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(metrics["depth_l1_uniform"] + metrics["depth_l1_cells"]))
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses


def test_the_rendering_loss_reaches_the_encoder_through_the_quantizer():
    """With the VQ loss off (its commitment term alone would reach the encoder), only the
    straight-through estimator carries the depth error back to the PointNet."""
    torch.manual_seed(0)
    model = LidarTokenizer(TINY, dataclasses.replace(RENDER, vq_weight=0.0, occupancy_weight=0.0))
    loss, _ = tokenizer_loss(model, batch(2))
    loss.backward()
    assert model.encoder.pointnet.point_mlp[0].weight.grad.abs().sum() > 0
    assert model.encoder.swin.patch_embed.proj.weight.grad.abs().sum() > 0


def test_rays_leave_the_region_at_its_faces():
    grid = VoxelGrid((-16.0, 16.0), (-8.0, 8.0), (-2.0, 4.0), (32, 16, 8))
    dirs = torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0], [0.6, 0.8, 0]])
    far = exit_depth(torch.zeros(4, 3), dirs, grid)
    assert torch.allclose(far, torch.tensor([16.0, 8.0, 4.0, 10.0]))  # 8 / 0.8 through y


def test_training_rays_come_from_returns_inside_the_region():
    grid = VoxelGrid((-4.0, 4.0), (-4.0, 4.0), (-2.0, 2.0), (8, 8, 4))
    dirs = torch.tensor([[1.0, 0, 0]] * 3)
    frame = Rays(torch.zeros(3, 3), dirs, torch.tensor([2.0, 6.0, 3.0]))  # 6 m: outside
    rays = pick_rays([frame], grid, count=20, near=1.0)
    assert set(rays.depths.flatten().tolist()) == {2.0, 3.0}
    assert torch.allclose(rays.far, torch.full((1, 20), 4.0))


def collapsed_run(restarts: bool) -> int:
    """Restarts after a few steps of a codebook whose every code but one is far away."""
    torch.manual_seed(0)
    config = TokenizerConfig(**{**TINY.__dict__, "restarts": restarts})
    model = LidarTokenizer(config, RENDER)
    with torch.no_grad():  # (and no k-means start, which would undo it)
        model.quantizer.codebook.weight.fill_(50.0)
        model.quantizer.codebook.weight[0] = 0.0
        model.codebook_ready.fill_(True)
    data = batch(4)
    for _ in range(20):  # the bank (10 K latents, K / 16 a step) is full after 16 steps
        tokenizer_loss(model, data)  # training mode: the counters move
    return int(model.quantizer.restarts)


def test_restarts_only_when_asked_for():
    assert collapsed_run(restarts=True) >= 1
    assert collapsed_run(restarts=False) == 0


def test_the_codebook_starts_at_the_first_batchs_latents():
    """k-means on the first training batch: every code near some latent, many in use."""
    torch.manual_seed(0)
    model = LidarTokenizer(TINY, RENDER)
    assert model.quantizer.codebook.weight.abs().max() <= 1 / 32  # chapter 1's start
    tokenizer_loss(model, batch(4))
    assert bool(model.codebook_ready)
    assert model.quantizer.codebook.weight.abs().max() > 0.1  # moved out to the latents
    indices = model.encode([points_of(returns(r, d)) for r, d in
                            zip(batch(4)["range"], batch(4)["dirs"])])  # fmt: skip
    assert len(indices.unique()) > 8  # of 32 codes, over 4 x 64 tokens


def test_coherence_follows_the_ego_motion():
    torch.manual_seed(0)
    earlier = torch.randint(10, (8, 8))
    later = torch.roll(earlier, shifts=-1, dims=0)  # the scene moved one cell towards -x
    later[-1] = -1  # new ground ahead: matches nothing
    still = torch.eye(4, dtype=torch.float64)
    moved = still.clone()
    moved[0, 3] = 4.0  # the ego drove one cell (8 cells over +-16 m: 4 m) forward
    assert ego_coherence(earlier, earlier, still, still, 16.0) == 1.0
    assert ego_coherence(earlier, later, still, moved, 16.0) == 1.0
    assert token_coherence(earlier, later) < 0.3
