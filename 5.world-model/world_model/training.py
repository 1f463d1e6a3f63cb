"""What train.py puts together: the frozen tokenizer, the windows, the clips, the model, the
loss the shared trainer calls and the cheap teacher-forced evaluation.

    tokenizer = load_frozen_tokenizer(config.data.tokenizer, device)   # chapter 3, frozen
    windows = load_split_windows(config.data, ("train", "val"))
    motion_tokenizer = fit_motion_tokenizer(windows["train"], bins)      # train only
    config = complete_config(config, tokenizer.quantizer, motion_tokenizer)
    clips = build_clips(config, windows, tokenizer, motion_tokenizer)  # {"train", "val"}
    model = build_model(config)
    loss_fn = make_loss(tokenizer.quantizer)        # (model, batch) -> (loss, metrics)
    evaluate = TeacherForcedEvaluator(tokenizer.quantizer, clips["val"], ...)

The evaluation is teacher-forced (the true coarser scales and past frames as inputs): the
future frames' scene cross-entropy and token accuracy, and the motion head's, on a fixed set
of val clips. Forecasts by generation and the benchmark's scores belong to validate.py.

Shapes: B batch, T frames, L flattened sequence length of one frame (its tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer
from occupancy_tokenizer.pretrained import load_tokenizer
from torch import nn

from world_model.config import Config
from world_model.synthetic import synthetic_windows
from world_model.tens_loss import tensformer_loss
from world_model.tensformer import TENSFormer
from world_model.token_data import TokenClips
from world_model.windows import ForecastWindows, load_windows

EVAL_KEYS = ("scene_ce", "scene_accuracy", "motion_ce", "motion_accuracy")


def load_frozen_tokenizer(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Chapter 3's multi-scale scene tokenizer (a pretrained name or a run/export folder), in
    eval mode with no gradients, built without touching the global RNG (so a run's model
    initialisation does not depend on whether the tokenizer was loaded first)."""
    with torch.random.fork_rng(devices=[]):
        tokenizer, tok_config = load_tokenizer(name, device)
    if tok_config.kind != "multiscale":
        raise ValueError(
            f"tokenizer {name!r} is a {tok_config.kind!r} tokenizer; the TENSFormer needs "
            "chapter 3's multi-scale one (e.g. multiscale-debug-znorm)"
        )
    return tokenizer.requires_grad_(False)


def load_split_windows(data, splits: Sequence[str]) -> dict[str, ForecastWindows]:
    """{split: ForecastWindows} of the driving preset (generated on first use), or of the
    synthetic streets (`data.preset == "synthetic"`)."""
    if data.preset == "synthetic":
        return {split: synthetic_windows(split) for split in splits}
    return {split: load_windows(split, data.preset, root=data.root or None) for split in splits}


def build_clips(config: Config, windows: dict[str, ForecastWindows], tokenizer: nn.Module,
                motion_tokenizer: EgoMotionTokenizer, progress: bool = True
                ) -> dict[str, TokenClips]:  # fmt: skip
    """{split: TokenClips}: the (cached) scene tokens and the train-fit motion tokens."""
    return {
        split: TokenClips.from_windows(
            w, tokenizer, motion_tokenizer, config.data.cache, config.data.encode_batch, progress
        )  # fmt: skip
        for split, w in windows.items()
    }


def build_model(config: Config) -> TENSFormer:
    """The TENSFormer of a completed config (derived fields filled by `complete_config`)."""
    return TENSFormer(config.model)


def make_loss(quantizer: nn.Module):
    """The trainer's `loss_fn(model, batch) -> (loss, metrics)`: teacher-forced CE on the
    future frames (`tens_loss.tensformer_loss`); the frozen quantizer is closed over, not a
    submodule, so the optimizer never sees it."""

    def loss_fn(model: TENSFormer, batch: dict):
        return tensformer_loss(model, quantizer, batch["ids"], batch["motions"])  # (B, T, L)

    return loss_fn


class TeacherForcedEvaluator:
    """`evaluate(model, step) -> {"val_scene_ce", "val_scene_accuracy", "val_motion_ce",
    "val_motion_accuracy"}` on `count` fixed, evenly spaced clips of a split, each clip
    weighing the same."""

    def __init__(self, quantizer: nn.Module, clips: TokenClips, count: int = 8,
                 batch_size: int = 2, prefix: str = "val"):  # fmt: skip
        if len(clips) == 0:
            raise ValueError(f"no {prefix} clips to evaluate on")
        picks = torch.linspace(0, len(clips) - 1, min(count, len(clips))).round().long()
        self.indices = picks.unique().tolist()  # fixed: the same clips at every evaluation
        self.quantizer, self.clips, self.batch_size, self.prefix = (
            quantizer,
            clips,
            batch_size,
            prefix,
        )

    @torch.no_grad()
    def __call__(self, model: TENSFormer, step: int = 0) -> dict[str, float]:
        device = model.scene_head.weight.device
        sums = dict.fromkeys(EVAL_KEYS, 0.0)
        for first in range(0, len(self.indices), self.batch_size):
            chunk = self.indices[first : first + self.batch_size]
            batch = {k: v.to(device) for k, v in self.clips.batch(chunk).items()}
            _, metrics = tensformer_loss(model, self.quantizer, batch["ids"], batch["motions"])
            for key in EVAL_KEYS:  # per-batch means, weighted by the batch's clip count
                sums[key] += float(metrics[key]) * len(chunk)
        return {f"{self.prefix}_{k}": v / len(self.indices) for k, v in sums.items()}
