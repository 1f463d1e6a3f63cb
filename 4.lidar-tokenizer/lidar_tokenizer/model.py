"""CoPilot4D's LiDAR tokenizer, assembled: sweeps -> tokens -> a neural field rendered as depth.

    sweeps (B lists of (P_b, 3) points, metres, sensor frame)
      -> LidarEncoder              (B, h, w, E) latents      voxels, PointNet, BEV, Swin
      -> RestartingVectorQuantizer (B, h, w) token ids, codes (B, h, w, E)
      -> SwinDecoder               (B, h', w', D) BEV features, h' = X / patch
      -> FeatureGridHead           grid (B, C, Z', f h', f w')     the neural feature grid
      -> OccupancyHead             logits (B, X / s, Y / s, Z): s = patch / occupancy_factor
                                   voxel columns a cell (s = 1: the voxel grid, CoPilot4D)

and `render` turns the grid into depths along any rays: at S samples h_i the MLP reads the
trilinearly interpolated feature into an opacity (sampling.py: per `alpha_length` of ray,
so that any spacing of samples renders the same field), w_i = alpha_i prod_{j<i} (1 - alpha_j),
D = sum_i w_i h_i (+ the leftover weight at far), with the samples spread uniformly over
[near, far] or, with spatial skipping, only inside the cells the binary head marks.

The loss (`tokenizer_loss`, CoPilot4D's four terms) on rays drawn from each frame's returns:

    L = sum over renders (|D - D_gt| + sum_i 1(|h_i - D_gt| > eps) w_i^2)
        + BCE(logits, voxels) + L_VQ

Each training ray is rendered twice: with stratified samples over [near, far] (they teach
the field that empty space is empty, so that uniform rendering works) and with samples
inside the true voxels' pooled cells (CoPilot4D's training-time skipping, what rendering
with the binary head's cells does at inference).

Shapes: B batch (sweeps), P points, h, w token-grid height, width, E code dims of a
quantizer, D model width, C feature channels, X, Y, Z voxel-grid sizes, R rays, S samples
per ray, K codebook size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lidar_tokenizer.config import RenderConfig, TokenizerConfig
from lidar_tokenizer.decoder import SwinDecoder
from lidar_tokenizer.encoder import LidarEncoder
from lidar_tokenizer.feature_grid import (
    FeatureGridHead,
    OccupancyField,
    OccupancyHead,
    inside,
    read_features,
)
from lidar_tokenizer.rays import points_at
from lidar_tokenizer.references import occupancy_grid
from lidar_tokenizer.region import VoxelGrid, Voxels
from lidar_tokenizer.render import (
    Rendered,
    depth_loss,
    expected_depth,
    occupancy_loss,
    render_weights,
    surface_loss,
)
from lidar_tokenizer.restarts import RestartingVectorQuantizer, distributed, kmeans
from lidar_tokenizer.sampling import Samples, inside_cells, slab_alpha, uniform, widen_levels
from lidar_tokenizer.skipping import coarse_mask, mask_from_logits
from lidar_tokenizer.sweeps import FrameRays, batch_returns, pick_rays


class Decoded(NamedTuple):
    """What the decoder makes of tokens: the feature grid (B, C, Z', X', Y') and the binary
    occupancy logits (B, X / s, Y / s, Z), s = config.head_cell."""

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
        self.register_buffer("codebook_ready", torch.zeros((), dtype=torch.bool))
        self.start_from_prior()

    @torch.no_grad()
    def start_from_prior(self, alpha: float = 0.01, occupied: float = 0.02) -> None:
        """Start both heads near the answer for an almost empty world: each metre of a ray
        stops it with probability `alpha`, each voxel is occupied with probability
        `occupied` (a few percent of a sweep's voxel columns hold a return). With biases at 0
        the field would start half opaque per metre (sigmoid(0) = 1/2) and the binary head
        at 1/2, and Adam, which moves a bias by about the learning rate a step, would take
        hundreds of steps to walk them to logit(0.02) = -3.9 (the prior initialisation of
        RetinaNet, Lin et al. 2017)."""
        # opacity of a slab of alpha_length m: 1 - exp(-softplus(b)) = 1 - (1 - alpha)^length
        slab = -self.render_config.alpha_length * math.log1p(-alpha)  # softplus(b)
        nn.init.constant_(self.field.mlp[-1].bias, math.log(math.expm1(slab)))
        nn.init.constant_(self.occupancy_head.proj.bias, math.log(occupied / (1 - occupied)))

    @property
    def codebook_size(self) -> int:
        """K."""
        return self.quantizer.codebook_size

    @property
    def token_grid(self) -> tuple[int, int]:
        """(h, w) tokens per frame."""
        return self.config.token_grid

    # ---------------------------------------------------------------- tokens and back

    def latents(self, encoded) -> torch.Tensor:
        """The quantizer's input (B, h, w, E): the encoder's latents, on the unit sphere when
        config.unit_latents (codes are then compared by direction: cosine VQ)."""
        z = encoded.latents  # (B, h, w, E)
        return F.normalize(z, dim=-1) if self.config.unit_latents else z

    def quantize(self, z: torch.Tensor):
        """Latents (B, h, w, E) -> Quantized; the first training call first sets the codebook
        by k-means on its own latents (`start_codebook`)."""
        if self.training and not bool(self.codebook_ready):
            self.start_codebook(z)
        return self.quantizer(z)

    @torch.no_grad()
    def start_codebook(self, z: torch.Tensor) -> None:
        """The codebook <- k-means on the first batch's latents (K of its B h w; all of them
        when fewer), as a restart would. Chapter 1's VQ starts its codes in [-1/K, 1/K]:
        measured here, the commitment term then pulled the latents (norm ~3) towards those
        near-zero codes faster than Adam could move the codes out (a code moves by about the
        learning rate a step), the encoder shrank every latent to ~0 within 20 steps, all
        of them picked one code, and k-means restarts on those collapsed latents could not
        spread them again (0.5% of the codes in use at step 100)."""
        flat = z.detach().float().reshape(-1, z.shape[-1])  # (L, E)
        if len(flat) < self.codebook_size:  # a tiny batch: repeat it (duplicate centres)
            flat = flat.repeat(-(-self.codebook_size // len(flat)), 1)
        centres = kmeans(flat, self.codebook_size, self.quantizer.kmeans_iters)  # (K, E)
        if distributed():
            dist.broadcast(centres, src=0)  # one codebook on every rank
        self.quantizer.codebook.weight.copy_(centres)
        self.codebook_ready.fill_(True)

    def encode(self, sweeps: Sequence) -> torch.Tensor:
        """B sweeps (P_b, 3) -> token ids (B, h, w) int64."""
        return self.quantize(self.latents(self.encoder(sweeps))).indices

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
        quantized = self.quantize(self.latents(encoded))  # codes (B, h, w, E), ids (B, h, w)
        decoded = self.decode_codes(quantized.codes)
        return Tokenized(decoded, quantized.indices, quantized.aux_loss, encoded.voxels)

    # ---------------------------------------------------------------- rendering

    def alphas(self, decoded: Decoded, points: torch.Tensor, spacing: torch.Tensor):
        """alpha (B, n, S) at points (B, n, S, 3) metres, each standing for spacing (B, n, S)
        metres of its ray (sampling.slab_alpha); 0 outside the region."""
        features = read_features(decoded.grid, points, self.grid.bounds)  # (B, n, S, C)
        logit = self.field.mlp(features)[..., 0]  # (B, n, S)
        alpha = slab_alpha(logit, spacing, self.render_config.alpha_length)
        return alpha * inside(points, self.grid.bounds)

    def render_at(self, decoded: Decoded, rays: FrameRays, samples: Samples) -> Rendered:
        """Render rays (B, R, 3) at given samples (B, R, S), `chunk` rays at a time:
        w_i = alpha_i prod_{j<i} (1 - alpha_j), D = sum_i w_i h_i + (1 - sum_i w_i) far."""
        alphas = []
        for start in range(0, rays.far.shape[-1], self.render_config.chunk):
            part = slice(start, start + self.render_config.chunk)
            points = points_at(rays.origins[:, part], rays.dirs[:, part],
                               samples.depths[:, part])  # (B, n, S, 3)  # fmt: skip
            alphas.append(self.alphas(decoded, points, samples.spacing[:, part]))
        alpha = torch.cat(alphas, dim=1)  # (B, R, S)
        if samples.valid is not None:
            alpha = alpha * samples.valid  # a skipped sample stops nothing
        weights = render_weights(alpha)  # (B, R, S)
        return Rendered(expected_depth(weights, samples.depths, rays.far), weights,
                        samples.depths)  # fmt: skip

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
        mask = mask_from_logits(decoded.occupancy, r.threshold, r.pool // self.config.head_cell)
        return widen_levels(mask, r.widen_levels)

    def render(self, decoded: Decoded, rays: FrameRays, skipping: bool = False,
               samples: int | None = None) -> Rendered:  # fmt: skip
        """Depths along rays (B, R, 3): S uniform samples over [near, far], or with `skipping`
        S samples only inside the binary head's marked cells (S defaults to the config's
        eval_samples or skip_samples)."""
        r = self.render_config
        if not skipping:
            return self.render_at(decoded, rays, uniform(rays, r.near, samples or r.eval_samples))
        placed = inside_cells(self.skip_mask(decoded), self.grid.bounds, rays, r.near,
                              samples or r.skip_samples, step=r.skip_step)  # fmt: skip
        return self.render_at(decoded, rays, placed)

    def training_renders(self, decoded: Decoded, rays: FrameRays, target: torch.Tensor):
        """The renders a training step supervises: {"uniform": stratified samples over
        [near, far], "cells": (CoPilot4D's training-time skipping) stratified samples inside
        the true voxels' pooled cells (target: `occupancy_target`)} -> Rendered each."""
        r = self.render_config
        samples = uniform(rays, r.near, r.train_samples, stratified=True)
        renders = {"uniform": self.render_at(decoded, rays, samples)}
        if r.train_skip_samples:
            mask = coarse_mask(target, r.pool // self.config.head_cell)  # (B, X', Y', Z)
            mask = widen_levels(mask, r.widen_levels)
            placed = inside_cells(mask, self.grid.bounds, rays, r.near, r.train_skip_samples,
                                  stratified=True)  # fmt: skip
            renders["cells"] = self.render_at(decoded, rays, placed)
        return renders


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
    occupied = model.occupancy_target(out.voxels)  # (B, X / cell, Y / cell, Z): head_cell
    metrics, loss = {}, 0.0
    for name, one in model.training_renders(out.decoded, rays, occupied).items():
        depth = depth_loss(one.depth, rays.depths)  # L1, metres
        surface = surface_loss(one.weights, one.samples, rays.depths, r.surface_eps)
        loss = loss + depth + r.surface_weight * surface
        metrics |= {f"depth_l1_{name}": depth.detach(), f"surface_{name}": surface.detach()}
    occupancy = occupancy_loss(out.decoded.occupancy, occupied, r.occupancy_pos_weight)
    loss = loss + r.occupancy_weight * occupancy + r.vq_weight * out.aux_loss
    metrics |= {"occupancy_bce": occupancy.detach(), "vq_loss": out.aux_loss.detach(),
                **code_usage_metrics(model.quantizer, out.indices)}  # fmt: skip
    return loss, metrics
