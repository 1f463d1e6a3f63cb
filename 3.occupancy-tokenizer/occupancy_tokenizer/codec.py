"""The non-learned reference codec at a tokenizer's token grid.

A tokenizer turns a frame into an h x w grid of tokens, each covering an f x f block of
columns (f = X / h) and all Z height levels. The codec keeps, for each token cell and each
height level z, the most frequent class among the cell's f x f voxels at that level
(the majority vote), and writes it back into every one of those voxels:

    codec(grid) at a voxel of level z = argmax over q of the number of voxels of class q
    at level z in that voxel's cell

So the codec spends Z class ids per cell (Z log2 Q bits: 8 x 4.17 = 33 bits on the debug
grid) where a VQ token spends log2 K = 9: it keeps more bits than a token, and a learned
tokenizer has to beat it by using them better. A 4D tokenizer's cell also spans t frames
(t = temporal compression): the vote runs over the t x f x f voxels of each level. Ties go
to the lowest class id (argmax's first maximum), so occupied classes win ties with free (17).

Shapes: B batch, T time steps, X, Y, Z voxel-grid sizes, Q semantic classes, h, w token-grid
height and width; p the patch size of a cell in columns (f above), t the temporal
compression (frames per cell).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from worldmodels.occ3d import NUM_CLASSES


def majority_codec(
    grid: torch.Tensor, factor: int, time_factor: int = 1, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Class ids (B, X, Y, Z), or clips (B, T, X, Y, Z) -> the same shape, int64: each
    cell of `factor` x `factor` columns (x `time_factor` frames for clips) replaced, level by
    level, by its majority class."""
    if grid.is_floating_point():
        raise ValueError(f"the codec needs integer class ids, got {grid.dtype}")
    clips = grid.dim() == 5
    if not clips:
        if grid.dim() != 4 or time_factor != 1:
            raise ValueError(f"expected (B, X, Y, Z) with time_factor 1, got {tuple(grid.shape)}")
        grid = grid[:, None]  # (B, 1, X, Y, Z)
    B, T, X, Y, Z = grid.shape
    if X % factor or Y % factor or T % time_factor:
        raise ValueError(
            f"grid {tuple(grid.shape)} does not split into cells of {factor} x {factor} "
            f"columns and {time_factor} frames"
        )
    blocks = rearrange(
        grid.long(), "b (T t) (h p) (w p2) z -> b T h w z (t p p2)", t=time_factor, p=factor,
        p2=factor,
    )  # (B, T', h, w, Z, t*p*p)  # fmt: skip
    counts = F.one_hot(blocks, num_classes).sum(dim=-2)  # (B, T', h, w, Z, Q)
    majority = counts.argmax(dim=-1)  # (B, T', h, w, Z), the first maximum on ties
    out = repeat(
        majority, "b T h w z -> b (T t) (h p) (w p2) z", t=time_factor, p=factor, p2=factor
    )  # (B, T, X, Y, Z)
    return out if clips else out[:, 0]


def codec_bits_per_frame(
    token_grid: tuple[int, int], Z: int, time_factor: int = 1, num_classes: int = NUM_CLASSES
) -> float:
    """Bits the codec keeps per frame: h*w cells x Z levels x log2(Q), shared by t frames."""
    h, w = token_grid
    return h * w * Z * math.log2(num_classes) / time_factor
