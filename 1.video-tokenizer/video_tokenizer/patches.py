"""From pixels to tokens and back: patch embedding and the pixel-shuffle head.

A frame of H x W pixels is cut into a grid of h x w = (H/p) x (W/p) non-overlapping patches
of p x p pixels; each patch becomes one token of width D. The decoder does the reverse: each
token predicts its own C*p*p pixel values, which are put back in place.

Shapes: B batch, T frames, C channels, H, W pixels, p patch, h, w token grid, N = h*w tokens,
D width. A patch vector is ordered (c, row in patch, column in patch), as nn.PixelShuffle is.
"""

import torch
from einops import rearrange
from torch import nn


def check_frame_size(height: int, width: int, patch: int) -> None:
    """Raise ValueError unless the patch tiles the frame exactly."""
    if height % patch or width % patch:
        raise ValueError(
            f"frame size {height}x{width} is not divisible by patch {patch}; "
            "use a frame size that is a multiple of the patch"
        )


def patchify(frames: torch.Tensor, p: int) -> torch.Tensor:
    """Cut frames (B, T, C, H, W) into patch vectors (B, T, N, C*p*p), row-major over h, w."""
    check_frame_size(frames.shape[-2], frames.shape[-1], p)
    return rearrange(frames, "b t c (h p1) (w p2) -> b t (h w) (c p1 p2)", p1=p, p2=p)


def unpatchify(patches: torch.Tensor, p: int, h: int, w: int) -> torch.Tensor:
    """Put patch vectors (B, T, N, C*p*p) back as frames (B, T, C, h*p, w*p); h, w in tokens."""
    return rearrange(patches, "b t (h w) (c p1 p2) -> b t c (h p1) (w p2)", h=h, w=w, p1=p, p2=p)


class PatchEmbed(nn.Module):
    """Frames (B, T, C, H, W) -> tokens (B, T, N, D) by a Conv2d with kernel = stride = p.

    A convolution whose kernel equals its stride sees each patch exactly once, so it is the
    same as `Linear(C*p*p, D)` applied to `patchify(frames, p)`, in one fast op.
    """

    def __init__(self, channels: int, patch: int, dim: int):
        super().__init__()
        self.channels = channels
        self.patch = patch
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = frames.shape
        if C != self.channels:
            raise ValueError(f"frames have {C} channels but PatchEmbed expects {self.channels}")
        check_frame_size(H, W, self.patch)
        x = rearrange(frames, "b t c h w -> (b t) c h w")  # (B*T, C, H, W): conv is per frame
        x = self.proj(x)  # (B*T, D, h, w): one D-vector per patch
        return rearrange(x, "(b t) d h w -> b t (h w) d", b=B)  # (B, T, N, D)


class PixelShuffleHead(nn.Module):
    """Tokens (B, T, N, D) -> frames (B, T, C, h*p, w*p): each token paints its own patch.

    Linear(D, C*p*p) gives every token its patch's pixel values; `unpatchify` puts them in
    place. This is the "pixel shuffle" (depth-to-space) of ESPCN/nn.PixelShuffle: channels of a
    low-resolution grid become pixels of a high-resolution one, with no transposed
    convolution and so no checkerboard artefacts.
    """

    def __init__(self, dim: int, channels: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(dim, channels * patch * patch)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """x: (B, T, N, D) with N = h*w -> (B, T, C, h*p, w*p)."""
        pixels = self.proj(x)  # (B, T, N, C*p*p)
        return unpatchify(pixels, self.patch, h, w)  # (B, T, C, H, W)
