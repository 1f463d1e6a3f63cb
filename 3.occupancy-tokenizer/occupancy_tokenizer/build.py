"""What a run of each kind is made of: its model, loss and evaluator, in registries keyed by
`config.kind`, so that train.py, validate.py and the notebook build runs alike.

    config = complete_config(config)                 # grids from the driving preset
    model = build_model(config)                      # MODELS[config.kind]
    datasets = build_datasets(config)                # {"train", "val", "heldout"}
    loss_fn = make_loss(config)                      # (model, batch) -> (loss, metrics)
    evaluate = make_evaluator(config, datasets)      # EVALUATORS[config.kind]
    model, config, step_dir = load_run("runs/3.occupancy-tokenizer/debug")
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch import nn

from occupancy_tokenizer.config import SECTIONS, Config, clip_frames
from occupancy_tokenizer.data import SPLITS, OccupancyClips, SyntheticOccupancy
from occupancy_tokenizer.evaluate import OccupancyEvaluator
from occupancy_tokenizer.fourd import FourDTokenizer
from occupancy_tokenizer.losses import reconstruction_loss
from occupancy_tokenizer.scene import SceneTokenizer
from worldmodels.checkpoint import load_model

# kind -> model class; the config section that sizes it is SECTIONS[kind]
MODELS = {"scene": SceneTokenizer, "4d": FourDTokenizer, "multiscale": SceneTokenizer}


def tokenizer_loss(model: nn.Module, batch: dict, ce_weight: float = 10.0,
                   lovasz_weight: float = 1.0):  # fmt: skip
    """OccWorld's loss on one batch: 10 CE + Lovasz-softmax + the quantizer's loss (weights
    as given), over frames (B, X, Y, Z) or clips (B, T, X, Y, Z) alike."""
    grid = batch["occupancy"]
    out = model(grid)
    return reconstruction_loss(out.logits, grid, out.aux_loss, ce_weight, lovasz_weight)


def make_loss(config: Config):
    """The trainer's `loss_fn(model, batch)` with the run's weights (config.loss), every kind."""
    return partial(tokenizer_loss, ce_weight=config.loss.ce_weight,
                   lovasz_weight=config.loss.lovasz_weight)  # fmt: skip


EVALUATORS = {"scene": OccupancyEvaluator, "4d": OccupancyEvaluator,
              "multiscale": OccupancyEvaluator}  # fmt: skip


def build_model(config: Config) -> nn.Module:
    """The tokenizer of `config.kind`, at the size of its section."""
    return MODELS[config.kind](getattr(config, SECTIONS[config.kind]))


def load_run(path: Path | str, device: str = "cpu") -> tuple[nn.Module, Config, Path]:
    """A trained run's model, rebuilt from its checkpoint's config: (model, config, step dir)."""
    return load_model(path, Config, build_model, device=device)


def build_datasets(config: Config, splits=SPLITS) -> dict[str, OccupancyClips]:
    """{"train", "val", "heldout"}: frames (4d: clips of fourd.frames) of the driving preset.
    Training clips start every data.stride frames; held-out ones every clip length."""
    data, frames = config.data, clip_frames(config)
    if data.preset == "synthetic":  # tiny streets made from a seed: tests only
        return {split: SyntheticOccupancy(split, frames, data.stride if split == "train"
                                          else frames) for split in splits}  # fmt: skip
    return {
        split: OccupancyClips(
            split,
            frames,
            data.preset,
            root=data.root or None,
            stride=data.stride if split == "train" else frames,
            preload=data.preload,
        )  # fmt: skip
        for split in splits
    }


def make_evaluator(config: Config, datasets: dict, **kwargs) -> OccupancyEvaluator:
    """The evaluator of the run's kind (`EVALUATORS`)."""
    return EVALUATORS[config.kind](config, datasets, **kwargs)
