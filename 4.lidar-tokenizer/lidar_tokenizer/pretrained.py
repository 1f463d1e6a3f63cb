"""The committed tokenizer, for later chapters: `pretrained/<name>` (what `validate.py
--export` writes) or any run / checkpoint folder, loaded frozen.

    tokenizer = load_tokenizer("debug")          # 4.lidar-tokenizer/pretrained/debug
    ids = tokenizer.encode([points])             # (1, h, w)
"""

from __future__ import annotations

from pathlib import Path

import torch

from lidar_tokenizer.build import load_run
from lidar_tokenizer.model import LidarTokenizer

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def load_tokenizer(name: str, device: str | torch.device = "cpu") -> LidarTokenizer:
    """A pretrained name (`pretrained/<name>`) or a run / checkpoint folder -> the tokenizer in
    eval mode with no gradients, built without touching the global RNG."""
    path = Path(name) if Path(name).exists() else PRETRAINED / name
    if not path.exists():
        known = sorted(p.name for p in PRETRAINED.iterdir()) if PRETRAINED.exists() else []
        raise FileNotFoundError(
            f"no LiDAR tokenizer {name!r}: neither a folder nor one of the pretrained {known}"
        )
    with torch.random.fork_rng(devices=[]):
        tokenizer, _, _ = load_run(path, device)
    return tokenizer.eval().requires_grad_(False)
