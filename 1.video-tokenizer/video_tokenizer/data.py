"""Chapter 1's clips: Atari games (recorded on first use), your own videos, or sprites.

`build_datasets(config)` returns {"train": ..., plus the held-out sets}: "val" (held-out
episodes, or the last tenth of your videos) and, for Atari, "heldout_game" (a game never
seen in training). Each item is {"frames": (T, C, H, W) float32 in [0, 1], ...}.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import Dataset

from video_tokenizer.config import Config
from worldmodels.data.atari import PRESETS as ATARI_PRESETS
from worldmodels.data.atari import AtariClips
from worldmodels.data.synthetic import MovingSprites
from worldmodels.data.video_folder import VideoFolder


def atari_config(config: Config):
    """The Atari recording settings of a run: the preset, at the model's frame size."""
    if config.data.atari_preset not in ATARI_PRESETS:
        raise ValueError(
            f"unknown atari_preset {config.data.atari_preset!r}; choose one of "
            f"{sorted(ATARI_PRESETS)}"
        )
    preset = ATARI_PRESETS[config.data.atari_preset]
    return dataclasses.replace(preset, frame_size=config.model.image_size)


def build_datasets(config: Config, progress: bool = True) -> dict[str, Dataset]:
    """{"train": ..., plus held-out sets: "val" and "heldout_game" for Atari}."""
    data, size = config.data, config.model.image_size
    if data.source == "atari":
        atari = atari_config(config)
        splits = ("train", "val", "heldout_game") if atari.heldout_game else ("train", "val")
        return {
            split: AtariClips(split, data.clip_len, atari, progress=progress) for split in splits
        }
    if data.source == "folder":
        return _video_folder_splits(data.folder, data.clip_len, size)
    if data.source == "sprites":  # synthetic moving squares: for tests and quick experiments
        return {
            "train": MovingSprites(2048, data.clip_len, size=size, seed=0),
            "val": MovingSprites(64, data.clip_len, size=size, seed=1),
        }
    raise ValueError(f"unknown data.source {data.source!r}; choose 'atari', 'folder' or 'sprites'")


def _video_folder_splits(folder: str, clip_len: int, size: int) -> dict[str, Dataset]:
    """Your own videos: the last tenth of the clips (by index, at least one) is held out."""
    if not folder:
        raise ValueError("data.source='folder' needs --folder=/path/to/videos")
    videos = VideoFolder(folder, clip_len, size=size)
    if len(videos) < 2:  # validation must not be the training clip itself
        raise ValueError(
            f"video folder {folder} gives {len(videos)} clip of {clip_len} frames: at least 2 "
            "are needed (one to train, one held out); add videos or lower --clip_len"
        )
    cut = min(len(videos) - 1, max(1, int(len(videos) * 0.9)))
    indices = list(range(len(videos)))
    return {
        "train": torch.utils.data.Subset(videos, indices[:cut]),
        "val": torch.utils.data.Subset(videos, indices[cut:]),
    }
