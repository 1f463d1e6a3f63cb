"""What a run is made of, so that train.py, validate.py, benchmark.py and the notebook build
runs alike.

    model = build_model(config)                      # LidarTokenizer(config.model, config.render)
    datasets = build_datasets(config)                # {"train", "val", "heldout"}: LidarSweeps
    evaluate = make_evaluator(config, datasets)      # LidarEvaluator
    model, config, step_dir = load_run("runs/4.lidar-tokenizer/debug")
"""

from __future__ import annotations

from pathlib import Path

from lidar_tokenizer.config import Config
from lidar_tokenizer.data import SPLITS, LidarSweeps, SyntheticSweeps
from lidar_tokenizer.evaluate import LidarEvaluator
from lidar_tokenizer.model import LidarTokenizer, tokenizer_loss
from worldmodels.checkpoint import load_model

LOSS = tokenizer_loss  # (model, batch) -> (loss, metrics), the trainer's contract


def build_model(config: Config) -> LidarTokenizer:
    """The tokenizer at the size of config.model, rendering as config.render says."""
    return LidarTokenizer(config.model, config.render)


def load_run(path: Path | str, device: str = "cpu") -> tuple[LidarTokenizer, Config, Path]:
    """A trained run's model, rebuilt from its checkpoint's config: (model, config, step dir)."""
    return load_model(path, Config, build_model, device=device)


def build_datasets(config: Config, splits=SPLITS) -> dict[str, LidarSweeps]:
    """{split: LidarSweeps} of the driving preset (made on first use), or synthetic streets."""
    data = config.data
    if data.source == "synthetic":
        return {split: SyntheticSweeps(split) for split in splits}
    return {split: LidarSweeps(split, data.preset, data.root or None) for split in splits}


def make_evaluator(config: Config, datasets: dict, **kwargs) -> LidarEvaluator:
    """The held-out evaluator (evaluate.py) on these datasets."""
    return LidarEvaluator(config, datasets, **kwargs)
