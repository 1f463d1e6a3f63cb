"""Differentiable depth rendering: from occupancies along a ray to the depth a LiDAR would see.

Along a ray the decoder gives, at sorted depths h_1 < ... < h_S, an occupancy alpha_i in
[0, 1]: the probability that the ray stops at sample i if it gets there. The ray reaches
sample i only if it passed every earlier one, so the probability it stops exactly at i is

    T_i = prod_{j<i} (1 - alpha_j)          transmittance (T_1 = 1: an exclusive product)
    w_i = alpha_i T_i                       rendering weight

and the weights sum to 1 - T_{S+1} <= 1: what is left, T_{S+1} = prod_i (1 - alpha_i), is the
probability that the ray crosses every sample without stopping. CoPilot4D writes the depth
as D = sum_i w_i h_i, which silently puts that leftover weight at depth 0, on the sensor.
We put it at `far` instead, the edge of the rendered range, where a real ray that hits
nothing would have gone:

    D = sum_i w_i h_i + (1 - sum_i w_i) far

So an empty ray renders as "no return within range" (D = far), and a half-transparent
surface sits between itself and far. (Normalising by sum w would let a ray with one tiny
alpha report that sample's depth with full confidence.)

T is the cumulative product of (1 - alpha): factors in [0, 1] cannot overflow, and an opaque
sample (alpha = 1) makes every later T exactly 0, so nothing behind a wall gets weight. The
log-space form exp(cumsum(log(1 - alpha + eps))) would leak eps through walls; cumprod's
backward is exact with zeros in it.

The losses (CoPilot4D, weights 1 each by default, see the chapter README):

    L_depth   = mean_r |D_r - D_gt_r|
    L_surface = mean_r sum_i 1(|h_i - D_gt_r| > eps) w_i^2      eps = 0.4 m
    L_occ     = BCE(binary logits, voxelized occupancy)

L_surface pushes the weight onto the samples within eps of the true surface: a depth can be
right on average with its weight smeared along the ray (half in front, half behind); that
gives blurry point clouds, and this term is zero only when the weight is concentrated at the
surface. Squaring w charges concentrated stray weight more than the same mass spread thin
(m on one sample costs m^2, spread over n samples m^2 / n): it removes the big false peaks
(a phantom surface in front of the wall) first.

`render_rays` takes an `alpha_fn(points (..., n, S, 3)) -> alpha (..., n, S)`, not a network:
the rendering algorithm apart from the model (the feature grid, a hand-made density in the
tests, a voxel grid).

Shapes: R rays, S samples per ray, B batch, "..." any leading axes (e.g. B).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lidar_tokenizer.rays import points_at, sample_depths

AlphaFn = Callable[[torch.Tensor], torch.Tensor]  # points (..., n, S, 3) -> alpha (..., n, S)
SURFACE_EPS = 0.4  # m, CoPilot4D's eps of the surface-concentration term


class Rendered(NamedTuple):
    """depth (..., R) m; weights (..., R, S); samples (..., R, S): the depths h_i, m."""

    depth: torch.Tensor
    weights: torch.Tensor
    samples: torch.Tensor


def transmittance(alpha: torch.Tensor) -> torch.Tensor:
    """T_i = prod_{j<i} (1 - alpha_j), T_1 = 1: alpha (..., S) -> (..., S)."""
    survive = torch.cumprod(1 - alpha, dim=-1)  # (..., S): prod_{j<=i} (1 - alpha_j)
    return torch.cat([torch.ones_like(alpha[..., :1]), survive[..., :-1]], dim=-1)


def render_weights(alpha: torch.Tensor) -> torch.Tensor:
    """w_i = alpha_i prod_{j<i} (1 - alpha_j): alpha (..., S) in [0, 1] -> weights (..., S)."""
    return alpha * transmittance(alpha)


def expected_depth(weights: torch.Tensor, samples: torch.Tensor, far) -> torch.Tensor:
    """D = sum_i w_i h_i + (1 - sum_i w_i) far: weights, samples (..., S) -> (..., ).

    far: a float or a tensor broadcastable to (...,): where the leftover weight goes."""
    leftover = 1 - weights.sum(dim=-1)  # (...,): probability the ray passed every sample
    return (weights * samples).sum(dim=-1) + leftover * far


def depth_loss(depth: torch.Tensor, true_depth: torch.Tensor) -> torch.Tensor:
    """L_depth = mean_r |D_r - D_gt_r| over every ray given: (..., R) each -> ()."""
    return (depth - true_depth).abs().mean()


def surface_loss(
    weights: torch.Tensor, samples: torch.Tensor, true_depth: torch.Tensor, eps=SURFACE_EPS
) -> torch.Tensor:
    """L_surface = mean_r sum_i 1(|h_i - D_gt_r| > eps) w_i^2.

    weights, samples (..., R, S); true_depth (..., R) -> (). Zero iff no weight lies farther
    than eps from the true surface."""
    away = (samples - true_depth[..., None]).abs() > eps  # (..., R, S): 1(|h_i - D_gt| > eps)
    return (away * weights.square()).sum(dim=-1).mean()


def occupancy_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight=None) -> torch.Tensor:
    """L_occ = BCE(sigmoid(logits), target), averaged: logits and a bool/0-1 target of the same
    shape (e.g. (B, X, Y, Z)). `pos_weight` (a float) up-weights the rare occupied voxels."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(
        logits, target.to(logits.dtype), pos_weight=pos_weight
    )


def render_samples(
    alpha_fn: AlphaFn,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    samples: torch.Tensor,
    far,
    chunk: int = 1024,
    valid: torch.Tensor | None = None,
) -> Rendered:
    """Render rays at given sample depths, `chunk` rays at a time.

    origins, dirs (..., R, 3); samples (..., R, S) sorted depths (m); far: float or (..., R);
    valid (..., R, S) bool, optional: samples with valid = False get alpha 0 (the skipping
    sampler marks the unused ones so). alpha_fn is called on (..., n, S, 3) points, n <= chunk.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if origins.shape != dirs.shape or samples.shape[:-1] != origins.shape[:-1]:
        raise ValueError(
            f"origins {tuple(origins.shape)}, dirs {tuple(dirs.shape)} and samples "
            f"{tuple(samples.shape)} must be (..., R, 3), (..., R, 3), (..., R, S)"
        )
    alphas = []
    for start in range(0, origins.shape[-2], chunk):
        part = slice(start, start + chunk)
        points = points_at(origins[..., part, :], dirs[..., part, :], samples[..., part, :])
        alphas.append(alpha_fn(points))  # (..., n, S)
    alpha = torch.cat(alphas, dim=-2)  # (..., R, S)
    if alpha.shape != samples.shape:
        raise ValueError(f"alpha_fn gave {tuple(alpha.shape)}, expected {tuple(samples.shape)}")
    if valid is not None:
        alpha = alpha * valid  # a skipped sample stops nothing
    weights = render_weights(alpha)  # (..., R, S)
    return Rendered(expected_depth(weights, samples, far), weights, samples)


def render_rays(
    alpha_fn: AlphaFn,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near: float,
    far: float,
    samples: int,
    chunk: int = 1024,
    stratified: bool = False,
    generator: torch.Generator | None = None,
) -> Rendered:
    """Render rays (..., R, 3) with S = `samples` depths per ray between near and far
    (bin middles, or stratified: see rays.sample_depths), `chunk` rays at a time."""
    depths = sample_depths(
        near, far, samples, origins.shape[:-1], stratified, generator, origins.device, origins.dtype
    )  # (..., R, S)
    return render_samples(alpha_fn, origins, dirs, depths, far, chunk)
