"""Rolling a dynamics model forward: generated frames fed back as context, a sliding window.

The algorithm is the same for every model that can predict one frame; it is written against
this protocol, which chapter 2's MaskGIT and AR models both implement (and chapter 5's
forecasters can):

    model.predict_next_frame(context (B, T, h, w), actions (B, T) | None, sample, generator)
        -> (B, h, w): the frame after the context; actions[:, -1] leads to it
    model.context_window: the most context frames the model reads at once

Action convention: actions[:, t] is taken at frame t and leads to frame t + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from dynamics_model.sampling import SampleConfig

PredictNext = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class NextFramePredictor(Protocol):
    """What a model implements to be rolled out (MaskGITDynamics and ARDynamics do, with this
    very signature: their `predict_next_frame` repeats it on purpose)."""

    context_window: int

    def predict_next_frame(
        self,
        context: torch.Tensor,
        actions: torch.Tensor | None,
        sample: SampleConfig,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...


@torch.no_grad()
def rollout(
    predict_next: PredictNext,
    context: torch.Tensor,
    actions: torch.Tensor | None,
    horizon: int,
    window: int,
) -> torch.Tensor:
    """Generate `horizon` frames one after another, each fed back as context.

    predict_next(context (B, T', h, w), actions (B, T') | None) -> (B, h, w).
    context (B, T, h, w); actions (B, >= T + horizon - 1) or None: frame T + i is generated
    with actions[:, T + i - 1]. At most `window` frames of context are read: the oldest drop
    out as the rollout grows. Returns (B, horizon, h, w).
    """
    T = context.shape[1]
    if horizon < 1 or window < 1:
        raise ValueError(f"rollout needs horizon >= 1 and window >= 1, got {horizon}, {window}")
    if actions is not None and actions.shape[1] < T + horizon - 1:
        raise ValueError(
            f"rollout of {horizon} frames after {T} needs actions (B, >= {T + horizon - 1})"
            f", got {tuple(actions.shape)}"
        )
    frames = context  # (B, T', h, w), grows by one per step
    for _ in range(horizon):
        start, end = max(0, frames.shape[1] - window), frames.shape[1]
        step_actions = None if actions is None else actions[:, start:end]
        next_frame = predict_next(frames[:, start:], step_actions)  # (B, h, w)
        frames = torch.cat([frames, next_frame[:, None]], dim=1)
    return frames[:, T:]  # (B, horizon, h, w)


@torch.no_grad()
def rollout_model(
    model: NextFramePredictor,
    context: torch.Tensor,
    actions: torch.Tensor | None,
    horizon: int,
    sample: SampleConfig,
    batch: int = 32,
) -> torch.Tensor:
    """`rollout` of a model over many clips, `batch` at a time, on the model's device.

    context (B, T, h, w), actions (B, >= T + horizon - 1) or None. Returns (B, horizon, h, w)
    int64 on the CPU. Sampling is seeded by `sample.seed`, so two rollouts that differ only
    in their actions draw from the same random stream.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(sample.seed)
    T = context.shape[1]

    def predict_next(frames, step_actions):
        return model.predict_next_frame(frames, step_actions, sample, generator)

    contexts = context.split(batch)
    if actions is None:  # compressed tokens: no actions
        action_chunks = [None] * len(contexts)
    else:
        action_chunks = actions[:, : T + horizon - 1].split(batch)
    out = []
    for ctx, act in zip(contexts, action_chunks):
        act = None if act is None else act.to(device)
        frames = rollout(predict_next, ctx.to(device), act, horizon, model.context_window)
        out.append(frames.cpu())
    return torch.cat(out)  # (B, horizon, h, w)
