"""Spatial skipping: spend a ray's samples only where something might be.

Most of a LiDAR sweep's volume is empty air. Uniform sampling puts most of a ray's S samples
there, where they cost a feature-grid read and an MLP each and teach nothing. CoPilot4D's
binary occupancy head (feature_grid.OccupancyHead) says where the sweep's voxels are likely
non-empty; at inference

    1. threshold:  occupied = sigmoid(logits) > threshold          (B, X, Y, Z)
    2. max-pool by `pool` in BEV (kernel = stride = pool, all Z levels kept): a coarse cell
       is non-empty if any of its pool x pool voxel columns' voxel at that level is
       (CoPilot4D: by 8, 1024 x 1024 x 64 -> 128 x 128 x 64). Pooling raises recall: a
       surface the head placed one voxel off still falls in a marked coarse cell.
    3. sample only inside marked cells: cut each ray at the coarse cells' faces
       (traversal.cell_segments), keep the segments in marked cells, and place the same S
       samples on their union as if it were one interval laid end to end:

           u_i = (i + 1/2) / S * L        (stratified: (i + u_i) / S * L, u_i ~ U(0, 1))

       where L is the total length of the kept segments; the i-th sample lands at arc
       length u_i along them. The samples stay sorted along the ray (rendering needs that)
       and are L/S apart instead of (far - near)/S: denser where it matters. The time saved
       comes from asking for fewer samples than uniform sampling needs for the same spacing
       (`length` reports L per ray, so a caller can see how much of the ray was kept).

Where the ray is inside marked cells can be found two ways (`step`):

    exact     (step = 0) cut the ray at every face of the coarse grid (traversal.cell_segments:
              one sort of the X' + Y' + Z' + 3 plane crossings per ray) and look each piece up.
    marching  (step > 0) cut [near, far] into pieces `step` metres long and keep a piece if
              the cell holding its middle is marked (the fixed-step marching of Instant-NGP's
              and nerfacc's occupancy grids): no sort, one multiply-add per axis and one
              gather per piece. A boundary of the kept stretch moves by at most `step`, so
              the total kept length differs from the exact one by at most `step` per boundary.

Marching is what makes skipping pay on the CPU: on the debug tokenizer the exact cut's
placement costs about half of what the 48 samples it saves cost, marching's about a tenth
(README, the skipping table).

A ray that crosses no marked cell gets no samples: all its `valid` flags are False and its
samples are set to `far`, so render.render_samples gives it zero weight and depth `far`
(render.py's "no return within range"). There is no fallback to uniform sampling: if the
head missed a surface the ray sees through it, which is what the pooling is there to make
rare. Training (CoPilot4D) uses the same sampler with the ground-truth voxels, max-pooled,
as the mask (`coarse_mask(occupied, pool)`), so alphas are learnt at the sample spacing
used at inference.

Shapes: B batch, X, Y, Z voxel-grid sizes, R rays, S samples per ray, n a count local to one
function (here: segments per ray), "..." either nothing or B.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange

from lidar_tokenizer.rays import uniform
from lidar_tokenizer.traversal import Bounds, cell_segments, grid_geometry, lookup


class SkipSamples(NamedTuple):
    """samples (..., R, S) sorted depths in metres; valid (..., R, S) bool (False: no sample,
    its depth set to far); hit (..., R) bool, the ray crossed at least one marked cell;
    length (..., R) metres of the ray inside marked cells (L; the samples are L / S apart)."""

    samples: torch.Tensor
    valid: torch.Tensor
    hit: torch.Tensor
    length: torch.Tensor


def coarse_mask(occupied: torch.Tensor, pool: int = 8) -> torch.Tensor:
    """Max-pool a voxel mask by `pool` in x and y (kernel = stride), keeping every z level.

    occupied (..., X, Y, Z) bool -> (..., X / pool, Y / pool, Z) bool; X and Y must divide."""
    *lead, size_x, size_y, levels = occupied.shape
    if size_x % pool or size_y % pool:
        raise ValueError(f"pool {pool} must divide the grid's X, Y = {size_x}, {size_y}")
    columns = rearrange(occupied.float(), "... x y z -> (...) z x y")  # (B, Z, X, Y)
    pooled = F.max_pool2d(columns, kernel_size=pool, stride=pool)  # (B, Z, X/pool, Y/pool)
    return (
        rearrange(pooled, "b z x y -> b x y z")
        .reshape(*lead, size_x // pool, size_y // pool, levels)
        .bool()
    )


def mask_from_logits(logits: torch.Tensor, threshold: float = 0.5, pool: int = 8) -> torch.Tensor:
    """Binary head logits (..., X, Y, Z) -> coarse mask (..., X / pool, Y / pool, Z) of the
    cells where sigmoid(logits) > threshold for some voxel (logit > logit(threshold))."""
    cut = torch.logit(torch.tensor(threshold, dtype=torch.float64)).item()
    return coarse_mask(logits > cut, pool)


def _place(lengths: torch.Tensor, start: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The depths at arc lengths u along the kept segments laid end to end.

    lengths, start (..., R, n); offset (..., R, S) in [0, 1) within each of S equal pieces of
    the total kept length L -> depths (..., R, S)."""
    samples = offset.shape[-1]
    total = lengths.sum(dim=-1, keepdim=True)  # (..., R, 1): L
    bins = torch.arange(samples, dtype=lengths.dtype, device=lengths.device)
    arc = (bins + offset) / samples * total  # (..., R, S): u_i
    cumulative = lengths.cumsum(dim=-1)  # (..., R, n): arc length at each segment's end
    # the segment holding u: the first one whose end lies beyond u (never a zero-length one)
    k = torch.searchsorted(cumulative.contiguous(), arc.contiguous(), right=True)
    k = k.clamp(max=lengths.shape[-1] - 1)  # u = L exactly only by rounding
    before = (cumulative - lengths).gather(-1, k)  # (..., R, S): arc length where it begins
    return start.gather(-1, k) + (arc - before).clamp(min=0)  # depth = start_k + (u - before)


def marched_pieces(mask, bounds: Bounds, origins, dirs, near, far, step: float):
    """Fixed-step marching: pieces [near + k step, near + (k + 1) step] of each ray, cut at
    far, kept where the cell holding the piece's middle is marked (outside the grid: not).

    mask (X', Y', Z) with rays (R, 3), or (B, X', Y', Z) with (B, R, 3); near, far floats or
    (..., R) -> (lengths (..., R, P) metres kept, 0 elsewhere; start (..., R, P) metres)."""
    if mask.ndim != origins.ndim + 1 or (mask.ndim == 4 and mask.shape[0] != origins.shape[0]):
        raise ValueError(
            f"mask {tuple(mask.shape)} must be (X, Y, Z) for rays (R, 3) or (B, X, Y, Z) for "
            f"rays (B, R, 3); rays are {tuple(origins.shape)}"
        )
    low, size, cells = grid_geometry(bounds, mask.shape[-3:], origins)
    like = dict(dtype=origins.dtype, device=origins.device)
    near = torch.as_tensor(near, **like)
    far = torch.as_tensor(far, **like).expand(origins.shape[:-1])  # (..., R)
    count = max(1, int(torch.ceil((far.max() - near.min()) / step)))
    start = (near[..., None] if near.ndim else near) + step * torch.arange(count, **like)
    middle = start + step / 2  # (P,) or (..., R, P)
    padded = F.pad(mask, (1, 1, 1, 1, 1, 1))  # a ring of unmarked cells: outside = empty
    size_y, size_z = padded.shape[-2:]
    # the flat index (((b X'' + x) Y'' + y) Z'' + z) is summed in floating point (one
    # conversion instead of three), exact while below 2^24 in float32
    exact = dict(dtype=torch.float32 if padded.numel() < 2**24 else torch.float64)
    flat = torch.zeros((), device=origins.device, **exact)
    for axis, stride in ((0, size_y * size_z), (1, size_z), (2, 1)):
        o = ((origins[..., axis] - low[axis]) / size[axis]).to(**exact)[..., None]  # (..., R, 1)
        d = (dirs[..., axis] / size[axis]).to(**exact)[..., None]  # cells per metre
        cell = torch.addcmul(o, middle.to(**exact), d).floor_()  # (..., R, P)
        flat = cell.clamp_(-1, int(cells[axis])).add_(1).mul_(stride).add_(flat)  # -1, X': ring
    if mask.ndim == 4:  # batch b's grid starts b X'' Y'' Z'' cells into memory
        first = torch.arange(mask.shape[0], device=flat.device, **exact) * padded[0].numel()
        flat = flat + first[:, None, None]
    kept = padded.reshape(-1).take(flat.long())  # (..., R, P)
    lengths = (far[..., None] - start).clamp(min=0, max=step) * kept  # cut at far
    return lengths, start.expand_as(lengths)


def skip_samples(
    mask: torch.Tensor,
    bounds: Bounds,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near,
    far,
    samples: int,
    stratified: bool = False,
    generator: torch.Generator | None = None,
    step: float = 0.0,
) -> SkipSamples:
    """S samples per ray placed only inside the marked cells of `mask` (see the module doc).

    mask (X', Y', Z) bool with rays (R, 3), or (B, X', Y', Z) with rays (B, R, 3): the coarse
    grid spanning `bounds` (metres); origins, dirs the rays; near, far floats or (..., R);
    step 0: the exact cut at the cells' faces, > 0: marching pieces of `step` metres.
    """
    if samples < 1:
        raise ValueError(f"need at least one sample per ray, got {samples}")
    if step < 0:
        raise ValueError(f"step must be 0 (exact) or a length in metres > 0, got {step}")
    if step > 0:
        lengths, start = marched_pieces(mask, bounds, origins, dirs, near, far, step)
    else:
        pieces = cell_segments(origins, dirs, near, far, bounds, mask.shape[-3:])
        kept = lookup(mask, pieces)  # (..., R, n): inside a marked cell
        lengths = (pieces.end - pieces.start) * kept  # (..., R, n): only kept segments count
        start = pieces.start
    shape = (*origins.shape[:-1], samples)
    if stratified:
        offset = uniform(shape, generator, origins.device, origins.dtype)
    else:
        offset = torch.full(shape, 0.5, dtype=origins.dtype, device=origins.device)
    depths = _place(lengths, start, offset)  # (..., R, S)
    total = lengths.sum(dim=-1)  # (..., R): L
    hit = total > 0  # (..., R): crossed a marked cell
    far = torch.as_tensor(far, dtype=origins.dtype, device=origins.device).expand(hit.shape)
    depths = torch.where(hit[..., None], depths, far[..., None])  # (..., R, S)
    return SkipSamples(depths, hit[..., None].expand(shape), hit, total)
