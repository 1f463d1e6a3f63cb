"""Chapter 1's run config and its presets.

A run is one `Config` of three sections, `model` (the tokenizer's sizes, in model.py),
`data` (where clips come from) and `run` (how to train, shared by every chapter). A preset
is `debug` plus the few settings that differ:

    debug       a 2-core CPU in minutes (notebooks, CI)
    prototype   one GPU in about an hour
    paper       Genie's tokenizer scale at 128 x 128
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from video_tokenizer.model import TokenizerConfig
from worldmodels.config import RunConfig, at_least, gpu_run, require

CHAPTER_DIR = Path(__file__).resolve().parent.parent  # 1.video-tokenizer/
SOURCES = ("atari", "folder", "sprites")


@dataclass
class DataConfig:
    """Where clips come from. Frames are recorded/decoded at the model's image_size."""

    source: str = "atari"  # "atari" (recorded on first use) | "folder" (your videos) | "sprites"
    atari_preset: str = "debug"  # a preset of worldmodels.data.atari
    folder: str = ""  # for source="folder": a folder of video files
    clip_len: int = 4  # T, frames per training clip (1 + t*k with temporal compression)
    eval_clips: int = 128  # held-out clips scored at each evaluation, evenly spread

    def __post_init__(self):  # bad values stop the run at start-up, naming the key
        at_least(self, 1, "clip_len", "eval_clips")
        require(self, "source", self.source in SOURCES, f"one of {SOURCES}")


@dataclass
class Config:
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)


def debug() -> Config:
    """A 2-core CPU in minutes: 0.3 M parameters, 8x8 patches, FSQ (8,5,5,5)."""
    return Config(
        model=TokenizerConfig(),
        run=RunConfig(steps=3000, batch_size=16, lr=2e-3, warmup_steps=100, eval_every=1000,
                      checkpoint_every=500),
    )  # fmt: skip


def prototype() -> Config:
    """One GPU in about an hour: 4x4 patches (256 tokens per frame), 8+8 blocks of width 256."""
    base = debug()
    return replace(
        base,
        model=replace(base.model, patch=4, dim=256, heads=8, encoder_depth=8, decoder_depth=8,
                      fsq_levels=(8, 8, 8, 5, 5, 5)),
        data=replace(base.data, atari_preset="full", clip_len=8, eval_clips=512),
        run=gpu_run(steps=50_000, batch_size=64, lr=1e-3, warmup_steps=1000, eval_every=5000),
    )  # fmt: skip


def paper() -> Config:
    """Genie's tokenizer scale at 128x128 (patch 8, width 512, 12+12 blocks; Genie: ~200 M)."""
    base = debug()
    return replace(
        base,
        model=replace(base.model, image_size=128, dim=512, heads=16, encoder_depth=12,
                      decoder_depth=12, fsq_levels=(8, 8, 8, 5, 5, 5)),
        data=replace(base.data, atari_preset="full", clip_len=16, eval_clips=512),
        run=gpu_run(steps=300_000, batch_size=32, lr=3e-4, warmup_steps=5000,
                    eval_every=10_000, num_workers=8),
    )  # fmt: skip


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}
