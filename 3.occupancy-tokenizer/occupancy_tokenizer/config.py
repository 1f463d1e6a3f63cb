"""Chapter 3's run config: one config serves the chapter's three tokenizers, `kind` picks one.

    scene        OccWorld's scene tokenizer: one frame -> h x w tokens (VQ, or FSQ)
    4d           OccSora's 4D tokenizer: a clip of T frames -> T' x h x w tokens
    multiscale   the scene tokenizer with VAR's multi-scale residual quantizer (OccTENS)

A preset is a short diff from `debug`. The voxel grid is the driving preset's (`data.preset`):
the `grid` of each model section is a `derived` field, filled in by `complete_config` and
refused as an override.

    debug       a 2-core CPU: the driving `debug` grid, 2 x 2 columns per token, FSQ, minutes
    prototype   one GPU: the paper grid 200 x 200 x 16 with OccWorld's 50 x 50 latent
    paper       OccWorld's and OccSora's published sizes (OccWorld ~14 M parameters)
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from occupancy_tokenizer.data import SYNTHETIC_GRID
from occupancy_tokenizer.fourd import FourDTokenizerConfig
from occupancy_tokenizer.scene import SceneTokenizerConfig
from worldmodels.config import (
    RunConfig,
    at_least,
    derived,
    gpu_run,
    override,
    parse_config,
    require,
)
from worldmodels.data.driving.config import PRESETS as DRIVING_PRESETS

CHAPTER_DIR = Path(__file__).resolve().parent.parent  # 3.occupancy-tokenizer/
KINDS = ("scene", "4d", "multiscale")
GRID_SOURCE = "the driving preset (data.preset)"
DEBUG_GRID = tuple(DRIVING_PRESETS["debug"].grid.size)  # (X, Y, Z) of the driving debug data
PAPER_SCALES = (1, 2, 3, 4, 6, 9, 13, 18, 25, 32, 40, 50)  # VAR-like sides up to 50 x 50


@dataclass
class SceneSection(SceneTokenizerConfig):
    """The scene tokenizer's sizes (scene.py), its grid taken from the data."""

    grid: tuple[int, int, int] = derived(DEBUG_GRID, GRID_SOURCE)


@dataclass
class MultiScaleSection(SceneTokenizerConfig):
    """The scene tokenizer with VAR's multi-scale residual quantizer."""

    grid: tuple[int, int, int] = derived(DEBUG_GRID, GRID_SOURCE)
    quantizer: str = "multiscale"


@dataclass
class FourDSection(FourDTokenizerConfig):
    """OccSora's 4D tokenizer's sizes (fourd.py); `frames` is the clip length it reads."""

    grid: tuple[int, int, int] = derived(DEBUG_GRID, GRID_SOURCE)


@dataclass
class DataConfig:
    """Which driving data trains and scores a tokenizer (worldmodels.data.driving)."""

    preset: str = "debug"  # of worldmodels.data.driving: debug | small | paper; or synthetic
    root: str = ""  # folder of the generated data; "" = <repo>/data/driving
    eval_frames: int = 64  # frames (4d: clips) scored at each evaluation during training
    preload: bool = True  # hold every frame in memory (debug: ~160 MB); off for paper grids
    stride: int = 1  # 4d: frames between the starts of two training clips

    def __post_init__(self):
        at_least(self, 1, "eval_frames", "stride")
        ok = self.preset in (*DRIVING_PRESETS, "synthetic")
        require(self, "preset", ok, f"one of {sorted(DRIVING_PRESETS)} or 'synthetic' (tests)")


@dataclass
class LossConfig:
    """The reconstruction loss's weights (losses.py): OccWorld's are 10 CE + 1 Lovasz."""

    ce_weight: float = 10.0
    lovasz_weight: float = 1.0

    def __post_init__(self):
        require(self, "ce_weight", self.ce_weight >= 0, ">= 0")
        require(self, "lovasz_weight", self.lovasz_weight >= 0, ">= 0")


@dataclass
class Config:
    kind: str = "scene"  # "scene" | "4d" | "multiscale": the tokenizer this run trains
    scene: SceneSection = field(default_factory=SceneSection)
    fourd: FourDSection = field(default_factory=FourDSection)
    multiscale: MultiScaleSection = field(default_factory=MultiScaleSection)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        require(self, "kind", self.kind in KINDS, f"one of {KINDS}")


SECTIONS = {"scene": "scene", "4d": "fourd", "multiscale": "multiscale"}  # kind -> section


def model_config(config: Config):
    """The section that sizes the run's model."""
    return getattr(config, SECTIONS[config.kind])


def clip_frames(config: Config) -> int:
    """Frames per training item: 1 for the per-frame tokenizers, fourd.frames for 4d."""
    return config.fourd.frames if config.kind == "4d" else 1


def debug() -> Config:
    """A 2-core CPU in about 15 minutes: the driving debug grid -> 32 x 32 FSQ tokens.

    A token covers 2 x 2 columns (2 m x 2 m at 1 m voxels), the nearest this grid comes to
    OccWorld's 4 x 4 columns of 0.4 m (1.6 m); 4 x 4 columns here (16 x 16 tokens, 4 m) lose
    the small classes (README: "How big is a token?"). FSQ, not VQ: VQ leaves most of its
    512 codes dead on occupancy (the notebook shows it; `--scene.quantizer=vq` reproduces it).
    Lovasz weighted 5, not OccWorld's 1: in 1000 steps the rare classes arrive much sooner
    (README: "Departures").
    """
    return Config(
        scene=SceneSection(quantizer="fsq", channel_mults=(1, 2)),
        fourd=FourDSection(frames=8, channels=64, temporal_compression=2, spatial_downsample=4),
        multiscale=MultiScaleSection(channel_mults=(1, 2), scales=(1, 2, 4, 8, 16, 32),
                                     using_znorm=True),  # cosine lookup: README, question 6
        loss=LossConfig(lovasz_weight=5.0),
        run=RunConfig(steps=1000, batch_size=8, lr=2e-3, warmup_steps=30, log_every=10,
                      eval_every=250, checkpoint_every=100, grad_clip=35.0),
    )  # fmt: skip


def prototype() -> Config:
    """One GPU: the paper grid 200 x 200 x 16 with OccWorld's 50 x 50 latent (channel mults
    (1, 2, 4)), width 64 and OccWorld's 128-dim latent, 512 codes; 4D: 16 frames -> 4."""
    base = on_data(debug(), "paper")
    config = override(base, {
        "data.preload": False, "data.eval_frames": 256,
        "scene.channels": 64, "scene.latent_dim": 128, "scene.channel_mults": (1, 2, 4),
        "scene.quantizer": "vq", "loss.lovasz_weight": 1.0,  # OccWorld's weights on a GPU
        "multiscale.channels": 64, "multiscale.latent_dim": 128,
        "multiscale.channel_mults": (1, 2, 4),
        "multiscale.scales": PAPER_SCALES,
        "fourd.frames": 16, "fourd.channels": 128, "fourd.temporal_compression": 4,
        "fourd.spatial_downsample": 8, "fourd.latent_dim": 128,
    })  # fmt: skip
    run = gpu_run(steps=20_000, batch_size=16, lr=1e-3, warmup_steps=200, eval_every=2000,
                  grad_clip=35.0)  # fmt: skip
    return dataclasses.replace(config, run=run)


def paper() -> Config:
    """OccWorld's tokenizer (2 ResBlocks per level, ~14 M parameters) and OccSora's (32
    frames -> 4 x 25 x 25 tokens, width 512): the published sizes, on the paper grid."""
    config = override(prototype(), {
        "scene.blocks_per_level": 2, "multiscale.blocks_per_level": 2,
        "fourd.frames": 32, "fourd.channels": 512, "fourd.temporal_compression": 8,
    })  # fmt: skip
    run = gpu_run(steps=100_000, batch_size=8, lr=1e-3, warmup_steps=200, eval_every=5000,
                  grad_clip=35.0, num_workers=8)  # fmt: skip
    return dataclasses.replace(config, run=run)


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


def data_grid(config: Config) -> tuple[int, int, int]:
    """(X, Y, Z) of the driving preset's occupancy grid."""
    if config.data.preset == "synthetic":
        return SYNTHETIC_GRID
    return tuple(DRIVING_PRESETS[config.data.preset].grid.size)


def on_data(config: Config, preset: str) -> Config:
    """The config on another data preset: data.preset and every section's grid set to it;
    multi-scale sides beyond the new latent side dropped and the side itself made the last."""
    grid = SYNTHETIC_GRID if preset == "synthetic" else tuple(DRIVING_PRESETS[preset].grid.size)
    side = grid[0] // config.multiscale.downsample
    scales = tuple(s for s in config.multiscale.scales if s < side) + (side,)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, preset=preset),
        scene=dataclasses.replace(config.scene, grid=grid),
        multiscale=dataclasses.replace(config.multiscale, grid=grid, scales=scales),
        fourd=dataclasses.replace(config.fourd, grid=grid),
    )


def parse_run(argv=None) -> tuple[Config, str]:
    """`parse_config` over PRESETS, with a `--data.preset=NAME` applied first (`on_data`), so
    that every other key is checked against that preset's grid (e.g. multi-scale sides)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    data = [w.split("=", 1)[1] for w in argv if w.startswith("--data.preset=")]
    presets = PRESETS
    if data and (data[-1] in DRIVING_PRESETS or data[-1] == "synthetic"):
        presets = {name: partial(_preset_on, make, data[-1]) for name, make in PRESETS.items()}
    return parse_config(presets, argv)


def _preset_on(make, preset: str) -> Config:
    return on_data(make(), preset)


def complete_config(config: Config) -> Config:
    """The config with the run's model section's grid set to the data's grid (the sections of
    the other kinds are left as they are: they build no model in this run)."""
    section = SECTIONS[config.kind]
    filled = dataclasses.replace(getattr(config, section), grid=data_grid(config))
    return dataclasses.replace(config, **{section: filled})
