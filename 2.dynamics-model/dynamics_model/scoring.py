"""Per-clip scores of a token dynamics model, its trivial baselines, and their intervals.

Everything here returns one value per held-out clip, so that a difference (model minus
baseline, true minus random actions) is paired clip by clip and its 95% interval comes from
a bootstrap over the episodes the clips are cut from (`worldmodels.metrics.bootstrap`).

Two teacher-forced scenarios, as the 1X world-model compression challenge names them:

    temporally teacher-forced   the true past frames; the current frame's tokens predicted
                                without any of its own true tokens. The challenge ranks by this.
                                MaskGIT: the frame fully masked (one pass). AR: token n given
                                the model's own greedy tokens < n (N cached passes).
    fully teacher-forced        the true past frames and true tokens of the current frame:
                                AR: token n given the true tokens < n (one pass, the training
                                loss). MaskGIT: token n given every other true token (N passes).
Each model exposes both as `temporally_teacher_forced_logits` / `fully_teacher_forced_logits`
(tokens (B, T, h, w), actions (B, T) or None) -> (B, h, w, K) for the last frame.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from worldmodels.metrics.bootstrap import mean_interval, statistic_interval
from worldmodels.metrics.tokens import (
    clip_cross_entropy,
    normalized_mutual_information,
    previous_frame_cross_entropy,
    previous_frame_log_probs,
)

SCENARIOS = {"temporal": "temporally_teacher_forced_logits", "full": "fully_teacher_forced_logits"}


@torch.no_grad()
def clip_teacher_forced(
    model: nn.Module, scenario: str, tokens: torch.Tensor, actions, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip CE (nats) and accuracy of the last frame's tokens, (B,) each, on the CPU."""
    logits_fn = getattr(model, SCENARIOS[scenario])
    device = next(model.parameters()).device
    chunks = tokens.split(batch)
    action_chunks = [None] * len(chunks) if actions is None else actions.split(batch)
    nats, accuracy = [], []
    for t, a in zip(chunks, action_chunks):
        logits = logits_fn(t.to(device), None if a is None else a.to(device)).float().cpu()
        nats.append(clip_cross_entropy(logits, t[:, -1]))
        accuracy.append((logits.argmax(-1) == t[:, -1]).double().flatten(1).mean(1))
    return torch.cat(nats), torch.cat(accuracy)


def token_baselines(train_episodes: list[torch.Tensor], clips: torch.Tensor, K: int) -> dict:
    """Per-clip CE (nats) of the last frame of `clips` (B, T, h, w) under the two trivial
    token models, both fit on `train_episodes` (the training tokens of the run's games):
    {"unigram": (B,), "previous_frame": (B,), "previous_frame_eps": float}."""
    targets, previous = clips[:, -1], clips[:, -2]  # (B, h, w)
    eps, log_q = previous_frame_log_probs(train_episodes, K)  # log_q: the training unigram
    return {
        "unigram": (-log_q[targets]).flatten(1).mean(1),  # (B,)
        "previous_frame": previous_frame_cross_entropy(previous, targets, eps, log_q),
        "previous_frame_eps": eps,
    }


def add_interval(metrics: dict, name: str, values, episodes) -> None:
    """metrics[name] = mean of the per-clip `values`, plus name_ci_low / name_ci_high: the
    95% bootstrap interval over `episodes` (one id per clip)."""
    metrics.update(mean_interval(values, episodes).as_dict(name))


def nmi_gain_interval(latent, true, shuffled, episodes, samples: int = 500) -> dict:
    """NMI(latent, true) - NMI(latent, shuffled) with a bootstrap over episodes.

    latent, true, shuffled: (B, T-1) labels per clip; episodes (B,). A resample draws whole
    episodes, flattens their clips' transitions and recomputes both NMIs.
    """

    def gain(rows: np.ndarray) -> float:  # rows: clip indices of one resample
        rows = torch.from_numpy(rows)
        lat = latent[rows].flatten()
        return normalized_mutual_information(lat, true[rows].flatten()) - (
            normalized_mutual_information(lat, shuffled[rows].flatten())
        )

    interval = statistic_interval(gain, episodes, samples=samples)
    return interval.as_dict("nmi_minus_chance")


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)
