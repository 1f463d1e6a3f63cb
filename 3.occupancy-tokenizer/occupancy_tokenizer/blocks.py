"""The convolutional pieces of the occupancy VAEs (taming-transformers / OccWorld style).

    ResBlock:    x + Conv(swish(GN(Conv(swish(GN(x))))))     (a 1x1 conv on the skip when the
                                                               width changes)
    SelfAttention2d:  x + Attn(GN(x)) over the h*w positions  (the lowest resolution only:
                                                               attention costs (h w)^2)
    AxialAttention3d: x + Attn_T(GN(x)), then along h, then along w  (OccSora's T, H, W
                                                               attention: T^2 + h^2 + w^2 per
                                                               position, not (T h w)^2)

GroupNorm (not BatchNorm) because batches here are a handful of scenes; swish(x) = x sigmoid(x).
Every attention is chapter 1's `Attention`, called on (..., L, D) with the other axes as batch.
`dims` picks 2D (B, D, h, w) or 3D (B, D, T, h, w) convolutions.

Shapes: B batch, D width, T latent frames, h, w token-grid height and width.
"""

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.transformer import Attention


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups (taming's choice), the most that divide `channels`."""
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


def conv(dims: int, c_in: int, c_out: int, kernel: int = 3) -> nn.Module:
    """A 'same'-padded 2D or 3D convolution."""
    cls = nn.Conv2d if dims == 2 else nn.Conv3d
    return cls(c_in, c_out, kernel, padding=kernel // 2)


class ResBlock(nn.Module):
    """Pre-norm residual block of two 3x3 convs: (B, D, ...) -> (B, D_out, ...)."""

    def __init__(self, c_in: int, c_out: int, dims: int = 2):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), conv(dims, c_in, c_out)
        self.norm2, self.conv2 = group_norm(c_out), conv(dims, c_out, c_out)
        self.skip = conv(dims, c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # swish(x) = x * sigmoid(x) = silu
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """x + Attention(GN(x)) over all h*w positions of (B, D, h, w)."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = Attention(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, D, h, w = x.shape
        tokens = rearrange(self.norm(x), "b d h w -> b (h w) d")  # (B, N, D)
        out = self.attn(tokens)  # (B, N, D)
        return x + rearrange(out, "b (h w) d -> b d h w", h=h)  # (B, D, h, w)


class AxialAttention3d(nn.Module):
    """Attention along T, then h, then w of (B, D, T, h, w), each pre-norm and residual."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.norms = nn.ModuleList(group_norm(channels) for _ in range(3))
        self.attns = nn.ModuleList(Attention(channels, heads) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, D, T, h, w = x.shape
        # Each pattern puts one axis last but one, the sequence axis Attention mixes.
        axes = (
            ("b d t h w -> b h w t d", "b h w t d -> b d t h w"),  # along T
            ("b d t h w -> b t w h d", "b t w h d -> b d t h w"),  # along h
            ("b d t h w -> b t h w d", "b t h w d -> b d t h w"),  # along w
        )
        for norm, attn, (to_seq, back) in zip(self.norms, self.attns, axes):
            seq = rearrange(norm(x), to_seq)  # (..., L, D)
            x = x + rearrange(attn(seq), back)  # (B, D, T, h, w)
        return x
