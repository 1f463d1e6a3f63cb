"""Swin Transformer (Liu et al. 2021), the backbone of CoPilot4D's tokenizer, written here.

A BEV image is large (CoPilot4D: 1024 x 1024) and local: a car is a few metres, a road a few
tens. Swin fits that: a 4 x 4 patch embedding makes a (256, 256) token grid, attention runs
inside windows of 8 x 8 tokens (cost linear in the grid, see windows.py), every second block
shifts the windows by 4 so neighbouring windows exchange information, and patch merging
halves the grid and doubles the width between stages, a pyramid like a CNN's.

    x = x + WindowAttention(LN(x))      windows of s x s tokens, shifted by s/2 every 2nd block
    x = x + MLP(LN(x))                  per token: Linear -> GELU -> Linear

Attention inside a window adds a learned relative-position bias b[q - k] (one per offset
within the window and per head) to the logits: softmax(q k^T / sqrt(F) + b + mask) v.

Shapes: B batch, C channels of the BEV image, X, Y voxel-grid sizes (the BEV image's), p
patch size, h, w token-grid height, width (X/p, Y/p), D model width, G attention heads, F
per-head width, L flattened sequence length (tokens of a window), n windows per image (a
count local to the function, said beside it).
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.transformer import Attention

from lidar_tokenizer.windows import (
    check_windows,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


class WindowAttention(Attention):
    """Multi-head attention inside windows, with a relative-position bias:
    x (B, n, L, D), allowed (n, L, L) bool or None -> (B, n, L, D).

    It keeps the repository's `Attention` projections (to_qkv, to_out) but needs its own
    forward: `Attention` folds every leading axis into one batch axis before attending, so a
    mask must be given per (batch x window) element. Here the bias differs per head and the
    shift mask per window but both are the same for every image, so q, k, v keep the window
    axis beside the heads, (B, n*G, L, F), and one (n*G, L, L) float mask broadcasts over B
    instead of being copied B times (in CoPilot4D's first stage, batch 16, that copy would be
    2 GB a layer in float32).
    """

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__(dim, heads)
        self.window = window
        # b[offset, head] for the (2s - 1)^2 offsets two tokens of a window can have
        self.relative_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_bias, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> torch.Tensor:
        """(G, L, L): the learned bias of every query-key pair of a window."""
        return rearrange(self.relative_bias[self.bias_index], "l m g -> g l m")

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, n, L, D), n windows; allowed: (n, L, L) bool, True = may attend."""
        n = x.shape[1]  # windows per image
        q, k, v = rearrange(
            self.to_qkv(x), "b n l (qkv g f) -> qkv b (n g) l f", qkv=3, g=self.heads
        )
        logit_bias = self.position_bias()[None].expand(n, -1, -1, -1)  # (n, G, L, L)
        if allowed is not None:  # -inf where the shift brought strangers together
            logit_bias = logit_bias.masked_fill(~allowed[:, None], float("-inf"))
        logit_bias = rearrange(logit_bias, "n g l m -> (n g) l m").to(q.dtype)  # (n*G, L, L)
        # softmax(q k^T / sqrt(F) + b + mask) v, per window and head
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=logit_bias)  # (B, n*G, L, F)
        return self.to_out(rearrange(out, "b (n g) l f -> b n l (g f)", n=n))  # (B, n, L, D)


class SwinBlock(nn.Module):
    """One Swin block on a token grid (B, h, w, D), pre-norm residual; `shift` = 0 for plain
    windows, window // 2 for shifted ones."""

    def __init__(self, dim: int, heads: int, window: int, shift: int = 0, mlp_ratio: float = 4):
        super().__init__()
        if not 0 <= shift < window:
            raise ValueError(f"shift must lie in [0, window={window}), got {shift}")
        self.window, self.shift = window, shift
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.mlp_norm = nn.LayerNorm(dim)
        hidden = int(mlp_ratio * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, h, w, D) -> (B, h, w, D)."""
        _, h, w, _ = x.shape
        check_windows(h, w, self.window)
        x = x + self.windowed_attention(self.attn_norm(x))  # (B, h, w, D)
        return x + self.mlp(self.mlp_norm(x))  # (B, h, w, D)

    def windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Roll by -shift, attend in windows with the shift mask, roll back: (B, h, w, D)."""
        _, h, w, _ = x.shape
        allowed = None
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))  # (B, h, w, D)
            allowed = shifted_window_mask(h, w, self.window, self.shift, x.device)  # (n, L, L)
        windows = window_partition(x, self.window)  # (B, n, L, D)
        x = window_reverse(self.attn(windows, allowed), self.window, h, w)  # (B, h, w, D)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))  # (B, h, w, D)
        return x


class SwinStage(nn.Module):
    """`depth` Swin blocks at one resolution, alternating plain and shifted windows."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float = 4):
        super().__init__()
        shift = window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, shift if i % 2 else 0, mlp_ratio) for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, h, w, D) -> (B, h, w, D)."""
        for block in self.blocks:
            x = block(x)  # (B, h, w, D)
        return x


class PatchEmbed(nn.Module):
    """Cut the BEV image into p x p patches, each linearly mapped to D, then LayerNorm:
    (B, C, X, Y) -> (B, X/p, Y/p, D). A stride-p convolution with a p x p kernel is exactly
    that Linear applied to every flattened patch."""

    def __init__(self, in_channels: int, dim: int, patch: int = 4):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, C, X, Y) -> (B, h, w, D)."""
        _, _, X, Y = image.shape
        if X % self.patch or Y % self.patch:
            raise ValueError(f"a {X} x {Y} BEV image does not split into {self.patch}^2 patches")
        x = rearrange(self.proj(image), "b d h w -> b h w d")  # (B, h, w, D)
        return self.norm(x)


class PatchMerging(nn.Module):
    """Halve the grid, widen the channels: each 2 x 2 block of tokens is concatenated
    (4D), normalised and mapped by a Linear to `out_dim` (default 2D): (B, h, w, D) ->
    (B, h/2, w/2, out_dim)."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, out_dim or 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, h, w, D) -> (B, h/2, w/2, out_dim)."""
        x = rearrange(x, "b (h ph) (w pw) d -> b h w (ph pw d)", ph=2, pw=2)  # (B, h/2, w/2, 4D)
        return self.reduce(self.norm(x))


class PatchExpand(nn.Module):
    """The decoder's inverse of PatchMerging (CoPilot4D's "patch upsample: deconv, LN,
    Linear"): a stride-2 transposed convolution doubles the grid and maps D to `out_dim`
    (default D/2), then LN and a Linear: (B, h, w, D) -> (B, 2h, 2w, out_dim)."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        out_dim = out_dim or dim // 2
        self.up = nn.ConvTranspose2d(dim, out_dim, kernel_size=2, stride=2)
        self.norm = nn.LayerNorm(out_dim)
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, h, w, D) -> (B, 2h, 2w, out_dim)."""
        x = self.up(rearrange(x, "b h w d -> b d h w"))  # (B, out_dim, 2h, 2w)
        return self.proj(self.norm(rearrange(x, "b d h w -> b h w d")))


class SwinEncoder(nn.Module):
    """BEV image -> token grid: patch embed + absolute position embedding, then stages of
    Swin blocks with a PatchMerging between consecutive stages, then LayerNorm.

    CoPilot4D: patch 4, dims (128, 256), depths (2, 6), heads (8, 8) (the second stage
    possibly 16), window 8: (B, 64, 1024, 1024) -> (B, 128, 128, 256).
    (B, C, X, Y) -> (B, X / (p * 2^(stages-1)), Y / (...), dims[-1]).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        dims: tuple[int, ...] = (128, 256),
        depths: tuple[int, ...] = (2, 6),
        heads: tuple[int, ...] = (8, 8),
        window: int = 8,
        patch: int = 4,
        mlp_ratio: float = 4,
    ):
        super().__init__()
        if not len(dims) == len(depths) == len(heads) >= 1:
            raise ValueError(f"need one dim, depth, heads per stage: {dims}, {depths}, {heads}")
        X, Y = image_size
        self.patch_embed = PatchEmbed(in_channels, dims[0], patch)
        # Windows see only relative offsets; the absolute embedding tells a token where in
        # the region it is (the ego sits at the centre, far cells are sparse).
        self.position = nn.Parameter(torch.zeros(1, X // patch, Y // patch, dims[0]))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.stages = nn.ModuleList(
            SwinStage(dim, depth, head, window, mlp_ratio)
            for dim, depth, head in zip(dims, depths, heads)
        )
        self.merges = nn.ModuleList(PatchMerging(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm = nn.LayerNorm(dims[-1])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, C, X, Y) -> (B, h', w', dims[-1]), h' = X / (p 2^(stages - 1))."""
        x = self.patch_embed(image)  # (B, h, w, D)
        if x.shape[1:3] != self.position.shape[1:3]:
            raise ValueError(
                f"built for a {tuple(self.position.shape[1:3])} token grid, got "
                f"{tuple(x.shape[1:3])} (image {tuple(image.shape[2:])})"
            )
        x = x + self.position  # (B, h, w, D)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.merges[i - 1](x)  # (B, h/2, w/2, next D)
            x = stage(x)  # (B, h, w, D)
        return self.norm(x)
