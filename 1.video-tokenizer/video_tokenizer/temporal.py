"""Causal temporal compression, as in NVIDIA's Cosmos tokenizer.

Neighbouring video frames are nearly identical, so a tokenizer can store fewer latent frames
than there are frames. With factor t, a clip of 1 + t*k frames becomes 1 + k latent frames:

    frames:   f0 | f1 .. ft | ft+1 .. f2t | ...         1 + t*k frames
    latents:  z0 |    z1    |     z2      | ...         1 + k latent frames

The first frame is encoded alone, so a still image is a one-frame video and a video's first
latent is an image latent. Each later latent covers a group of t frames, and depends only on
its own group (here) and on earlier latents (through the causal transformer after it), so
encoding never looks into the future.

The merge: pad the clip at the front with t - 1 copies of f0 (Cosmos pads the same way),
giving k + 1 groups of t frames; concatenate each group's tokens along D and project
t*D -> D. On the first group this applies the sum of the t weight blocks to f0 alone, a
projection of its own learned with the same matrix. The split reverses it: project D -> t*D,
unstack t frames per latent, and drop the t - 1 padding frames of the first group.

Shapes: B batch, T frames (1 + t*k), T' = 1 + k latent frames, N tokens per frame, D width.
"""

import torch
from einops import rearrange, repeat
from torch import nn


def check_num_frames(T: int, factor: int) -> int:
    """Return k for a clip of T = 1 + factor * k frames; raise ValueError otherwise."""
    if T < 1 or (T - 1) % factor != 0:
        raise ValueError(
            f"a clip of {T} frames cannot be compressed by {factor} in time: the number of "
            f"frames must be 1 + {factor}*k (1, {1 + factor}, {1 + 2 * factor}, ...)"
        )
    return (T - 1) // factor


class TemporalMerge(nn.Module):
    """Tokens (B, 1 + t*k, N, D) -> (B, 1 + k, N, D): each latent frame sees only its frames."""

    def __init__(self, dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.proj = nn.Linear(factor * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, N, D = x.shape
        check_num_frames(T, self.factor)
        first = repeat(x[:, :1], "b 1 n d -> b r n d", r=self.factor - 1)  # (B, t-1, N, D)
        x = torch.cat([first, x], dim=1)  # (B, t*(k+1), N, D): k+1 whole groups of t
        x = rearrange(x, "b (k t) n d -> b k n (t d)", t=self.factor)  # (B, k+1, N, t*D)
        return self.proj(x)  # (B, k+1, N, D)


class TemporalSplit(nn.Module):
    """Tokens (B, 1 + k, N, D) -> (B, 1 + t*k, N, D): the inverse of TemporalMerge's layout.

    Latent frame j only produces its own group of frames, so decoding stays causal too.
    """

    def __init__(self, dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.proj = nn.Linear(dim, factor * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, K, N, D = x.shape  # K = k + 1 latent frames
        x = self.proj(x)  # (B, k+1, N, t*D)
        x = rearrange(x, "b k n (t d) -> b (k t) n d", t=self.factor)  # (B, t*(k+1), N, D)
        return x[:, self.factor - 1 :]  # (B, 1 + t*k, N, D): drop the first group's padding
