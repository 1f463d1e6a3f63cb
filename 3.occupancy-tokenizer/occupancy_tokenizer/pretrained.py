"""A trained occupancy tokenizer, loaded where the model lives: what chapter 5 imports.

    from occupancy_tokenizer.pretrained import load_tokenizer
    tokenizer, config = load_tokenizer()                 # the committed pretrained/scene-debug
    tokenizer, config = load_tokenizer("multiscale-debug-znorm")  # another committed one
    tokenizer, config = load_tokenizer("runs/3.occupancy-tokenizer/scene-debug", device="cuda")

A folder is a run folder, a checkpoint folder or an exported one (`validate.py RUN
--export=DIR` writes model.safetensors, config.json and metrics.json, as `pretrained/` was
made); the model is rebuilt from its own config, so a tokenizer of any kind and preset loads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from occupancy_tokenizer.build import load_run
from occupancy_tokenizer.config import Config

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"  # committed weights


def load_tokenizer(path: str | Path = "", device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, Config]:  # fmt: skip
    """(tokenizer in eval mode on `device`, its run Config). "" = pretrained/scene-debug; a
    bare name = that folder of pretrained/; anything else a run, checkpoint or export folder."""
    folder = Path(path).expanduser() if path else PRETRAINED_DIR / "scene-debug"
    if path and not folder.exists() and (PRETRAINED_DIR / str(path)).exists():
        folder = PRETRAINED_DIR / str(path)
    model, config, _ = load_run(folder, device)
    return model.eval(), config
