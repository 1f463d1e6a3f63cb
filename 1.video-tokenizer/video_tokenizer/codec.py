"""A non-learned codec at the tokenizer's token grid: each patch becomes its mean colour.

A tokenizer's PSNR means little alone: Atari frames are mostly flat colour, and a codec
that learns nothing already gets much of a frame right. The patch-mean codec is that floor:
it keeps one number per channel for each token of the tokenizer's grid and paints the
token's whole patch in it:

    x_hat[b, t, c, i, j] = 1/(p^2 |G|) sum_{t' in G} sum_{(i', j') in P(i, j)} x[b, t', c, i', j']

P(i, j) being the p x p patch holding pixel (i, j) and G the frames its token covers.

`patch_mean(frames, p)` is that codec per frame (G = {t}): of all decoders that paint each
patch in one colour, the one of least MSE. `validate.py` reports its PSNR beside the
tokenizer's on the same clips, with the paired difference; a tokenizer below it
reconstructs worse than painting each patch its average colour.

**The same token grid.** The codec's patch is the model's `patch` (`patch_mean_at(frames,
config)`), so it keeps h x w = (H/p) x (W/p) colours per frame where the tokenizer keeps h x w
tokens. With temporal compression t (`temporal_compression`, clips of 1 + t*k frames) a
tokenizer keeps 1 + k latent frames of h x w tokens: the first frame alone, then one latent
per group of t frames (`temporal.py`). The codec then averages over the same groups, each
p x p patch of the first frame, and each p x p x t tube of a later group (G = the group's
frames), so it too keeps (1 + k) h w colours per clip.

**What it costs, against the tokenizer (not equal bits).** The codec stores C numbers per
token, the tokenizer one id out of K, log2 K bits. For the debug preset (64 x 64, p = 8,
FSQ (8,5,5,5), K = 1000): the tokenizer keeps 64 tokens x log2(1000) = 9.97 bits = 638 bits
per frame; the codec keeps 64 x 3 = 192 colour values per frame, 6,144 bits as float32 and
1,536 bits rounded to 8 bits (what an Atari pixel has). Rounding costs little: the codec's
residual in a patch has mean zero, so rounding adds the squared rounding error, at most
(1/510)^2 = 3.8e-6, to a frame's MSE and lowers its PSNR by at most
10 log10(1 + 3.8e-6 / MSE), 0.002 dB for a frame at MSE 0.01 (20 dB). So the codec spends
about 2.4 times the tokenizer's bits per frame (with temporal compression both keep 1 + k
latent frames of h x w, and the ratio is the same): it is a floor a tokenizer should clear,
not a rival at equal rate.

Shapes: B batch, T frames, C channels, H, W pixels, p patch, h, w token grid,
t frames per latent frame, k latent frames after the first.
"""

from __future__ import annotations

import torch
from einops import reduce, repeat

from video_tokenizer.model import TokenizerConfig
from video_tokenizer.patches import check_frame_size
from video_tokenizer.temporal import check_num_frames


def patch_mean(frames: torch.Tensor, patch: int, time: int = 1) -> torch.Tensor:
    """Frames (B, T, C, H, W) -> (B, T, C, H, W): each non-overlapping p x p patch replaced by
    its mean colour; with time = t > 1, each p x p x t tube of the tokenizer's latent frames
    (the first frame alone, then groups of t) by its mean colour. Raises ValueError when p
    does not tile H and W, or when T is not 1 + t*k."""
    if frames.ndim != 5:
        raise ValueError(f"patch_mean expects frames (B, T, C, H, W), got {tuple(frames.shape)}")
    if patch < 1 or time < 1:
        raise ValueError(f"patch and time must be >= 1, got patch={patch}, time={time}")
    T, H, W = frames.shape[1], frames.shape[-2], frames.shape[-1]
    check_frame_size(H, W, patch)
    check_num_frames(T, time)
    means = reduce(frames, "b t c (h p1) (w p2) -> b t c h w", "mean", p1=patch, p2=patch)
    if time > 1 and T > 1:  # groups of t frames after the first, as temporal.py merges them
        groups = reduce(means[:, 1:], "b (k t) c h w -> b k c h w", "mean", t=time)
        later = repeat(groups, "b k c h w -> b (k t) c h w", t=time)  # (B, T - 1, C, h, w)
        means = torch.cat([means[:, :1], later], dim=1)  # (B, T, C, h, w)
    return repeat(means, "b t c h w -> b t c (h p1) (w p2)", p1=patch, p2=patch)


def patch_mean_at(frames: torch.Tensor, config: TokenizerConfig) -> torch.Tensor:
    """The patch-mean codec at the token grid of a tokenizer of this config: its patch, and
    its temporal compression."""
    return patch_mean(frames, config.patch, config.temporal_compression)
