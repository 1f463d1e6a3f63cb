"""CoPilot4D's LiDAR tokenizer, assembled: sweeps -> tokens -> a neural field rendered as depth.

    sweeps (B lists of (P_b, 3) points, metres, sensor frame)
      -> LidarEncoder              (B, h, w, E) latents      voxels, PointNet, BEV, Swin
      -> RestartingVectorQuantizer (B, h, w) token ids, codes (B, h, w, E)
      -> SwinDecoder               (B, h', w', D) BEV features, h' = X / patch
      -> FeatureGridHead           grid (B, C, Z', f h', f w')     read by OccupancyField
      -> OccupancyHead             logits (B, X, Y, Z) of the voxel grid (spatial skipping)

and `render` turns the grid into depths along any rays: alpha(r) = sigmoid(MLP(trilinear(
grid, r))) at S samples, w_i = alpha_i prod_{j<i} (1 - alpha_j), D = sum_i w_i h_i (+ the
leftover weight at far), with samples spread uniformly over [near, far] or, with spatial
skipping, only inside the cells the binary head marks (skipping.py).

The loss (`tokenizer_loss`, CoPilot4D's four terms) on rays drawn from each frame's returns:

    L = |D - D_gt| + sum_i 1(|h_i - D_gt| > eps) w_i^2 + BCE(logits, voxels) + L_VQ

Training samples are the union of stratified samples over [near, far] (they teach the field
that empty space is empty, so that uniform rendering works) and samples inside the true
voxels' pooled cells (CoPilot4D's training-time skipping: dense where the surface is).

Shapes: B batch (sweeps), P points, h, w token-grid height, width, E code dims of a
quantizer, D model width, C feature channels, X, Y, Z voxel-grid sizes, R rays, S samples
per ray, K codebook size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from lidar_tokenizer.config import RenderConfig, TokenizerConfig
from lidar_tokenizer.decoder import SwinDecoder
from lidar_tokenizer.encoder import LidarEncoder
from lidar_tokenizer.feature_grid import FeatureGridHead, OccupancyField, OccupancyHead
from lidar_tokenizer.rays import sample_depths
from lidar_tokenizer.references import occupancy_grid
from lidar_tokenizer.region import VoxelGrid, Voxels
from lidar_tokenizer.render import (
    Rendered,
    depth_loss,
    occupancy_loss,
    render_samples,
    surface_loss,
)
from lidar_tokenizer.restarts import RestartingVectorQuantizer
from lidar_tokenizer.skipping import coarse_mask, mask_from_logits, skip_samples
from lidar_tokenizer.sweeps import FrameRays, batch_returns, pick_rays


class Decoded(NamedTuple):
    """What the decoder makes of tokens: the feature grid (B, C, Z', X', Y') and the binary
    occupancy logits (B, X, Y, Z) of the voxel grid."""

    grid: torch.Tensor
    occupancy: torch.Tensor

    def frame(self, b: int) -> Decoded:
        """Frame b alone, batch axis kept: (1, ...)."""
        return Decoded(self.grid[b : b + 1], self.occupancy[b : b + 1])


class Tokenized(NamedTuple):
    """`LidarTokenizer(sweeps)`: decoded (Decoded), indices (B, h, w) int64, aux_loss (), and
    the sweeps' voxels (the binary head's target)."""

    decoded: Decoded
    indices: torch.Tensor
    aux_loss: torch.Tensor
    voxels: Voxels


class LidarTokenizer(nn.Module):
    """Sweeps -> tokens -> Decoded, and Decoded -> depths along rays (see the module doc)."""

    def __init__(self, config: TokenizerConfig, render: RenderConfig | None = None):
        super().__init__()
        c = self.config = config
        self.render_config = render or RenderConfig()
        half = c.region_xy
        self.grid = VoxelGrid((-half, half), (-half, half), tuple(c.region_z), tuple(c.grid))
        self.encoder = LidarEncoder(
            self.grid, c.point_dim, c.bev_dim, c.dims, c.depths, c.heads, c.window, c.patch,
            c.code_dim, c.mlp_ratio,
        )  # fmt: skip
        # restarts=False: the same quantizer whose restart is never due (more than 100% of
        # the codes would have to be dead): chapter 1's VQ with the same loss and counters
        fraction = c.restart_fraction if c.restarts else 1.0
        self.quantizer = RestartingVectorQuantizer(
            c.codebook_size, c.code_dim, c.dead_after, fraction, c.restart_every,
            codebook_weight=c.codebook_weight, commitment_weight=c.commitment_weight,
        )  # fmt: skip
        self.decoder = SwinDecoder(
            c.code_dim, c.token_grid, c.dims, c.decoder_depths, c.heads, c.window, c.mlp_ratio
        )
        self.feature_head = FeatureGridHead(c.dims[0], c.grid_levels, c.grid_channels,
                                            c.grid_factor)  # fmt: skip
        # the decoder ends at X / patch cells a side; each emits f x f x Z logits
        self.occupancy_head = OccupancyHead(c.dims[0], c.grid[2], c.occupancy_factor)
        pool = self.render_config.pool
        if pool % c.head_cell:
            raise ValueError(f"render.pool={pool} must be a multiple of the binary head's "
                             f"cell, {c.head_cell} voxels")  # fmt: skip
        self.field = OccupancyField(c.grid_channels, self.grid.bounds, c.field_hidden)

    @property
    def codebook_size(self) -> int:
        """K."""
        return self.quantizer.codebook_size

    @property
    def token_grid(self) -> tuple[int, int]:
        """(h, w) tokens per frame."""
        return self.config.token_grid

    # ---------------------------------------------------------------- tokens and back

    def encode(self, sweeps: Sequence) -> torch.Tensor:
        """B sweeps (P_b, 3) -> token ids (B, h, w) int64."""
        return self.quantizer(self.encoder(sweeps).latents).indices

    def decode(self, indices: torch.Tensor) -> Decoded:
        """Token ids (B, h, w) -> Decoded."""
        return self.decode_codes(self.quantizer.indices_to_codes(indices))

    def decode_codes(self, codes: torch.Tensor) -> Decoded:
        """Codes (B, h, w, E) -> Decoded."""
        features = self.decoder(codes)  # (B, h', w', D)
        return Decoded(self.feature_head(features), self.occupancy_head(features))

    def forward(self, sweeps: Sequence) -> Tokenized:
        """B sweeps, each (P_b, 3) float (metres, sensor frame) -> Tokenized."""
        encoded = self.encoder(sweeps)
        quantized = self.quantizer(encoded.latents)  # codes (B, h, w, E), ids (B, h, w)
        decoded = self.decode_codes(quantized.codes)
        return Tokenized(decoded, quantized.indices, quantized.aux_loss, encoded.voxels)

    # ---------------------------------------------------------------- rendering

    def alpha_fn(self, decoded: Decoded):
        """points (B, n, S, 3) metres -> alpha (B, n, S), for render.render_samples."""
        return lambda points: self.field(decoded.grid, points)

    def render_at(self, decoded: Decoded, rays: FrameRays, samples, valid=None) -> Rendered:
        """Render rays (B, R, 3) at given sorted sample depths (B, R, S)."""
        return render_samples(self.alpha_fn(decoded), rays.origins, rays.dirs, samples,
                              rays.far, self.render_config.chunk, valid)  # fmt: skip

    def uniform_samples(self, rays: FrameRays, count: int, stratified: bool = False):
        """(B, R, S) depths spread over each ray's [near, far]."""
        return sample_depths(self.render_config.near, rays.far, count, rays.far.shape,
                             stratified, device=rays.far.device)  # fmt: skip

    def occupancy_target(self, voxels: Voxels) -> torch.Tensor:
        """The binary head's target: the sweeps' voxels, max-pooled in BEV to its cells:
        (B, X / s, Y / s, Z) bool, s = config.head_cell."""
        occupied = occupancy_grid(voxels.coords, self.grid.shape, voxels.batch,
                                  voxels.batch_size)  # (B, X, Y, Z)  # fmt: skip
        cell = self.config.head_cell
        return coarse_mask(occupied, cell) if cell > 1 else occupied

    def skip_mask(self, decoded: Decoded) -> torch.Tensor:
        """The binary head thresholded and BEV max-pooled: (B, X / pool, Y / pool, Z) bool,
        pool in voxels (CoPilot4D: 8)."""
        r = self.render_config
        return mask_from_logits(decoded.occupancy, r.threshold, r.pool // self.config.head_cell)

    def render(self, decoded: Decoded, rays: FrameRays, skipping: bool = False,
               samples: int | None = None) -> Rendered:  # fmt: skip
        """Depths along rays (B, R, 3): S uniform samples over [near, far], or with `skipping`
        S samples only inside the binary head's marked cells (S defaults to the config's
        eval_samples or skip_samples)."""
        r = self.render_config
        if not skipping:
            depths = self.uniform_samples(rays, samples or r.eval_samples)
            return self.render_at(decoded, rays, depths)
        placed = skip_samples(self.skip_mask(decoded), self.grid.bounds, rays.origins,
                              rays.dirs, r.near, rays.far, samples or r.skip_samples)  # fmt: skip
        return self.render_at(decoded, rays, placed.samples, placed.valid)

    def training_samples(self, rays: FrameRays, target: torch.Tensor):
        """(samples (B, R, S), valid (B, R, S)): stratified over [near, far], plus stratified
        inside the true voxels' pooled cells (target: `occupancy_target`), in depth order."""
        r = self.render_config
        uniform = self.uniform_samples(rays, r.train_samples, stratified=True)  # (B, R, S1)
        if r.train_skip_samples == 0:
            return uniform, None
        mask = coarse_mask(target, r.pool // self.config.head_cell)  # (B, X/pool, Y/pool, Z)
        near = skip_samples(mask, self.grid.bounds, rays.origins, rays.dirs, r.near, rays.far,
                            r.train_skip_samples, stratified=True)  # fmt: skip
        samples = torch.cat([uniform, near.samples], dim=-1)  # (B, R, S1 + S2)
        valid = torch.cat([torch.ones_like(uniform, dtype=torch.bool), near.valid], dim=-1)
        samples, order = samples.sort(dim=-1)
        return samples, valid.gather(-1, order)


def code_usage_metrics(quantizer: RestartingVectorQuantizer, indices: torch.Tensor) -> dict:
    """The quantizer's counters as tensors (no device sync), for the training log:
    codes_alive (picked in the last dead_after steps), codes_dead, restarts so far, and the
    share of codes this batch used."""
    alive = (quantizer.idle_steps < quantizer.dead_after).float().mean()
    used = torch.bincount(indices.flatten(), minlength=quantizer.codebook_size) > 0  # (K,)
    return {
        "codes_alive": alive,
        "codes_dead": 1 - alive,
        "restarts": quantizer.restarts.float(),
        "batch_code_usage": used.float().mean(),
    }


def tokenizer_loss(model: LidarTokenizer, batch: dict):
    """CoPilot4D's loss on one batch {"range": (B, H, W) m, "dirs": (B, H, W, 3)}: returns
    (loss, metrics). Rays: `train_rays` per frame among its returns inside the region."""
    r = model.render_config
    frames = batch_returns(batch)  # B x Rays of the measured returns
    sweeps = [f.dirs * f.depths[:, None] for f in frames]  # B x (P_b, 3): p = r d
    rays = pick_rays(frames, model.grid, r.train_rays, r.near)  # (B, R, ...)
    out = model(sweeps)
    occupied = model.occupancy_target(out.voxels)  # (B, X / s, Y / s, Z)
    samples, valid = model.training_samples(rays, occupied)
    rendered = model.render_at(out.decoded, rays, samples, valid)
    depth = depth_loss(rendered.depth, rays.depths)  # L1, metres
    surface = surface_loss(rendered.weights, rendered.samples, rays.depths, r.surface_eps)
    occupancy = occupancy_loss(out.decoded.occupancy, occupied, r.occupancy_pos_weight)
    loss = (depth + r.surface_weight * surface + r.occupancy_weight * occupancy
            + r.vq_weight * out.aux_loss)  # fmt: skip
    metrics = {"depth_l1": depth.detach(), "surface": surface.detach(),
               "occupancy_bce": occupancy.detach(), "vq_loss": out.aux_loss.detach(),
               **code_usage_metrics(model.quantizer, out.indices)}  # fmt: skip
    return loss, metrics
