"""Pixel-space metrics."""

from __future__ import annotations

import torch
from einops import reduce


def psnr(pred: torch.Tensor, target: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image: PSNR = 10 log10(max^2 / MSE).

    pred, target: (..., C, H, W) with values in [0, max_value]; the MSE is taken over each
    image's C, H, W, so a video batch (B, T, C, H, W) gives one PSNR per frame, (B, T).
    Averaging per-frame PSNRs (not PSNR of the mean MSE) is how Genie and most video papers
    report it. `pred` is clamped to the valid range first, as a saved image would be.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"psnr needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim < 3:
        raise ValueError(f"psnr expects (..., C, H, W) images, got shape {tuple(pred.shape)}")
    pred = pred.float().clamp(0, max_value)
    mse = reduce((pred - target.float()) ** 2, "... c h w -> ...", "mean")
    # A perfect reconstruction has MSE 0; the floor caps PSNR at 10 log10(1e10) = 100 dB.
    return 10 * torch.log10(max_value**2 / mse.clamp_min(1e-10))
