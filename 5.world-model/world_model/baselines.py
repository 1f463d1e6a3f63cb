"""What a forecaster is, and the three references every world model is scored beside.

A forecaster is any callable

    forecaster(past, past_poses, future_poses) -> future
        past          (B, T, X, Y, Z) integer class ids, T = 5 frames (the past 2 s)
        past_poses    (B, T, 4, 4)    float64 world-from-ego of those frames
        future_poses  (B, T, 4, 4)    float64 world-from-ego of the 6 future frames: the
                                      trajectory the forecast is conditioned on
        future        (B, T, X, Y, Z) integer class ids, T = 6 frames (+0.5 ... +3 s)

on CPU tensors (a model moves them to its device; the output may come back on any device).
It never sees the future grids. The references:

- `copy_last`: every future frame is the last observed frame (OccWorld's "copy & paste").
  Wrong wherever the ego or anything else moves.
- `warp_last(grid)`: the last observed frame moved by the TRUE ego motion into each future
  ego frame (`worldmodels.data.driving.ego_motion`): a static world seen from the right
  place. What a world model must beat is what moves and what comes into view.
- `tokenizer ceiling`: not a forecaster but a bound: the true future frames encoded and
  decoded by the tokenizer a world model forecasts in (`tokenizer_codec`). A model that
  forecasts tokens perfectly scores this; it cannot score better through that tokenizer.
  A codec is a callable frames (n, X, Y, Z) -> frames (n, X, Y, Z) of class ids.

Shapes: B batch (windows), T time steps (frames), X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange, repeat
from torch import nn

from world_model.windows import FUTURE_FRAMES
from worldmodels.data.driving import GridConfig
from worldmodels.data.driving.ego_motion import warp_grids

Forecaster = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Codec = Callable[[torch.Tensor], torch.Tensor]


def copy_last(past: torch.Tensor, past_poses: torch.Tensor, future_poses: torch.Tensor
              ) -> torch.Tensor:  # fmt: skip
    """Every future frame = the last past frame: (B, T, X, Y, Z) -> (B, T_future, X, Y, Z)."""
    return repeat(past[:, -1], "b x y z -> b t x y z", t=future_poses.shape[1]).clone()


def warp_last(grid: GridConfig) -> Forecaster:
    """A forecaster that moves the last past frame by the true ego motion into each future
    frame's ego frame (free where it was not seen): future[t] = warp(past[-1], pose_-1 ->
    pose_t). `grid` gives the voxels' size in metres (the windows' `grid`)."""

    def forecast(past, past_poses, future_poses):
        B, T = future_poses.shape[:2]
        last = repeat(past[:, -1], "b x y z -> (b t) x y z", t=T)
        pose_from = repeat(past_poses[:, -1], "b ... -> (b t) ...", t=T)  # (B * T, 4, 4)
        pose_to = rearrange(future_poses, "b t ... -> (b t) ...")
        moved = warp_grids(last, pose_from, pose_to, grid)  # (B * T, X, Y, Z)
        return rearrange(moved, "(b t) x y z -> b t x y z", b=B)

    return forecast


def standard_baselines(grid: GridConfig) -> dict[str, Forecaster]:
    """{"copy_last": ..., "warp_last": ...}: the two forecasting baselines, by their names in
    the benchmark's metrics."""
    return {"copy_last": copy_last, "warp_last": warp_last(grid)}


def tokenizer_codec(tokenizer: nn.Module, batch_size: int = 16) -> Codec:
    """A frame tokenizer (chapter 3's `load_tokenizer(...)[0]`: `encode` class ids -> token
    ids, `decode` token ids -> class ids) as a codec frames (n, X, Y, Z) -> (n, X, Y, Z)
    uint8 on the CPU, run `batch_size` frames at a time on the tokenizer's device."""
    device = next(tokenizer.parameters()).device

    @torch.no_grad()
    def roundtrip(frames: torch.Tensor) -> torch.Tensor:
        out = [tokenizer.decode(tokenizer.encode(chunk.to(device))).to(torch.uint8).cpu()
               for chunk in frames.split(batch_size)]  # fmt: skip
        return torch.cat(out)

    return roundtrip


def ceiling_forecast(codec: Codec, future: torch.Tensor) -> torch.Tensor:
    """The tokenizer ceiling of a batch: the true future (B, T, X, Y, Z) through the codec,
    frame by frame; checks that the codec gives back frames of the same shape."""
    B, T = future.shape[:2]
    if T != FUTURE_FRAMES:
        raise ValueError(f"future must hold {FUTURE_FRAMES} frames, got {T}")
    frames = rearrange(future, "b t x y z -> (b t) x y z")
    decoded = torch.as_tensor(codec(frames))
    if decoded.shape != frames.shape:
        raise ValueError(f"the codec must return frames of shape {tuple(frames.shape)} "
                         f"(n, X, Y, Z), got {tuple(decoded.shape)}")  # fmt: skip
    return rearrange(decoded, "(b t) x y z -> b t x y z", b=B)
