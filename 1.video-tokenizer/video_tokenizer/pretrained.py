"""A trained tokenizer, loaded where the model lives: what later chapters import.

    from video_tokenizer.pretrained import load_tokenizer
    tokenizer, config = load_tokenizer()          # the committed 1.video-tokenizer/pretrained/
    tokenizer, config = load_tokenizer("runs/1.video-tokenizer/debug", device="cuda")

A folder is a run folder, a checkpoint folder or an exported one (`validate.py --export=DIR`
writes model.safetensors and config.json, as `pretrained/` was made); the model is rebuilt
from the "model" section of its own config.json, so a tokenizer of any preset loads.
"""

from __future__ import annotations

from pathlib import Path

import torch

from video_tokenizer.model import TokenizerConfig, VideoTokenizer
from worldmodels.checkpoint import load_model

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"  # committed weights


def load_tokenizer(
    path: str | Path = "", device: str | torch.device = "cpu"
) -> tuple[VideoTokenizer, TokenizerConfig]:
    """(VideoTokenizer in eval mode on `device`, its TokenizerConfig); "" = `pretrained/`."""
    folder = Path(path).expanduser() if path else PRETRAINED_DIR
    model, config, _ = load_model(folder, TokenizerConfig, VideoTokenizer, "model", device)
    return model, config
