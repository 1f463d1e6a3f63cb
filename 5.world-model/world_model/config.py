"""Chapter 5's run config: the world model's sizes, its motion bins, its data, its training.

    kind     tensformer | ar (the autoregressive baseline, ar_baseline.py) | maskgit
             (CoPilot4D's discrete diffusion, maskgit_world.py) | dit (OccSora's
             trajectory-conditioned diffusion transformer, dit_world.py) | lidar-maskgit
             (CoPilot4D's task: MaskGIT on chapter 4's LiDAR tokens, lidar_world.py): which
             of the five model sections the run trains (the others are unused)
    model    the TENSFormer (tensformer.py); scales, codebook and motion vocabulary are
             `derived` from the frozen tokenizers by `complete_config`, never set by hand
    ar       chapter 2's GPT (dynamics_model.ar.ARConfig, imported); codebook, token grid,
             motion vocabulary (its actions) and clip length are `derived` the same way.
    maskgit  the MaskGIT world model (maskgit_world.MaskGITWorldConfig); codebook, token grid
             and motion vocabulary `derived` from the same single-scale tokenizer as `ar`.
    dit      the DiT world model (dit_world.DiTWorldConfig: dit.py's DiTConfig and the world
             model's own fields); code dims, clip length, latent shape and codebook `derived`
             from the 4D tokenizer, the latent scale from the TRAINING split's code vectors.
    lidar    the LiDAR MaskGIT world model (a MaskGITWorldConfig: codebook and token grid
             `derived` from chapter 4's tokenizer, 12 frames, context 2).
             Five model sections share dim/depth/heads: write --model.dim, --ar.dim,
             --maskgit.dim, --dit.dim or --lidar.dim
    motion   the ego-motion tokenizer's bins; low/high are fit on the TRAINING split's poses
             (token_data.fit_motion_tokenizer) and stored here, so every checkpoint's
             config.json and run.json carry the bins validation must use
    data     the driving preset (or "synthetic" for tests), the scene tokenizers (multi-scale
             for the TENSFormer, single-scale for the AR baseline and MaskGIT, 4D for the
             DiT), chapter 4's LiDAR tokenizer (lidar-maskgit), the cache
    run      the shared training settings (worldmodels.config.RunConfig)

A preset is a short diff from `debug`:

    debug       a 2-core CPU: chapter 3's 16 x 16 tokenizers (multiscale-debug-16: L = 341
                tokens a frame; scene-debug-16 for the AR baseline and MaskGIT; 4d-debug-t2 for
                the DiT, patch 2), width 128, depth 4, 800 steps. Trains and scores the
                pipeline; at 4 m a token the tokenizers' ceiling is below the warp (README,
                "Training")
    prototype   one GPU: the 32 x 32 tokenizers (multiscale-debug-znorm, L = 1365;
                scene-debug), width 512, depth 12, batch 16, bf16, torch.compile; the DiT at
                patch 1 (OccSora's) on the same 4D tokenizer (the only one exported)
    paper       OccTENS does not publish the TENSFormer's sizes:
                VAR's d16 (width 1024, depth 16, 16 heads), 100k steps

The AR baseline's, MaskGIT's and the DiT's sizes (dim, depth, heads) equal the TENSFormer's in
every preset, so the four are compared at the same width and depth over the same windows and
the same context (OccSora's own DiT is 256 wide and 28 deep: DiTConfig's defaults).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from dynamics_model.ar import ARConfig

from world_model.ar_baseline import ar_config_matching
from world_model.dit_world import DiTWorldConfig, dit_config_matching
from world_model.lidar_world import lidar_config_matching
from world_model.maskgit_world import MaskGITWorldConfig, maskgit_config_matching
from world_model.tensformer import TENSFormerConfig
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

CHAPTER_DIR = Path(__file__).resolve().parent.parent  # 5.world-model/
OCCUPANCY_KINDS = ("tensformer", "ar", "maskgit", "dit")  # the occupancy benchmark's models
KINDS = (*OCCUPANCY_KINDS, "lidar-maskgit")  # and CoPilot4D's LiDAR forecasting
# the tokenizer kind each reads (chapter 3's, or chapter 4's "lidar"), the model's name
TOKENIZER_KINDS = {"tensformer": "multiscale", "ar": "scene", "maskgit": "scene", "dit": "4d",
                   "lidar-maskgit": "lidar"}  # fmt: skip
MODEL_NAMES = {"tensformer": "the TENSFormer", "ar": "the AR baseline",
               "maskgit": "the MaskGIT world model", "dit": "the DiT world model",
               "lidar-maskgit": "the LiDAR MaskGIT world model"}  # fmt: skip
TRAIN_POSES = "the training split's poses (token_data.fit_motion_tokenizer)"


@dataclass
class MotionConfig:
    """The ego-motion tokenizer (chapter 3's `EgoMotionTokenizer`): uniform bins per component
    (dx, dy, dyaw); the range is fit on the training split and written here by the run."""

    bins: tuple[int, int, int] = (32, 16, 32)  # (n_dx, n_dy, n_dyaw): OccTENS-like
    coverage: float = 1.0  # central fraction of the training motions the range spans
    low: tuple[float, float, float] = derived((0.0, -1.0, -1.0), TRAIN_POSES)
    high: tuple[float, float, float] = derived((1.0, 1.0, 1.0), TRAIN_POSES)

    def __post_init__(self):
        self.bins, self.low, self.high = tuple(self.bins), tuple(self.low), tuple(self.high)
        ok = len(self.bins) == 3 and all(isinstance(b, int) and b >= 1 for b in self.bins)
        require(self, "bins", ok, "three integers >= 1 (n_dx, n_dy, n_dyaw)")
        require(self, "coverage", 0 < self.coverage <= 1, "in (0, 1]")


@dataclass
class DataConfig:
    """Which windows train and score the model, through which frozen tokenizer."""

    preset: str = "debug"  # the driving preset (worldmodels.data.driving), or synthetic (tests)
    root: str = ""  # folder of the generated driving data; "" = <repo>/data/driving
    tokenizer: str = "multiscale-debug-znorm"  # chapter 3's pretrained name, or a run folder
    single_scale_tokenizer: str = "scene-debug"  # AR's and MaskGIT's (chapter 3's kind scene)
    fourd_tokenizer: str = "4d-debug-t2"  # the DiT's (chapter 3's kind 4d: clips of 8 frames)
    lidar_tokenizer: str = "debug"  # lidar-maskgit's: chapter 4's pretrained name, or a run
    cache: str = ""  # token cache folder; "" = <repo>/data/tokens/world_model
    encode_batch: int = 16  # frames a tokenizer pass encodes (the one-time encoding)
    eval_clips: int = 8  # val clips (evenly spaced, fixed) of the teacher-forced evaluation
    eval_batch: int = 2

    def __post_init__(self):
        at_least(self, 1, "encode_batch", "eval_clips", "eval_batch")
        ok = self.preset in (*DRIVING_PRESETS, "synthetic")
        require(self, "preset", ok, f"one of {sorted(DRIVING_PRESETS)} or 'synthetic' (tests)")


@dataclass
class Config:
    kind: str = "tensformer"  # tensformer | ar | maskgit | dit | lidar-maskgit: what it trains
    model: TENSFormerConfig = field(default_factory=TENSFormerConfig)
    ar: ARConfig = field(default_factory=ARConfig)
    maskgit: MaskGITWorldConfig = field(default_factory=MaskGITWorldConfig)
    dit: DiTWorldConfig = field(default_factory=DiTWorldConfig)
    lidar: MaskGITWorldConfig = field(default_factory=MaskGITWorldConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        require(self, "kind", self.kind in KINDS, f"one of {KINDS}")


def debug() -> Config:
    """A 2-core CPU in about 15 minutes: chapter 3's 16 x 16 tokenizers (multiscale-debug-16,
    scales 1..16: L = 341 tokens a frame, 3751 a clip of 11; scene-debug-16 for the AR
    baseline: N = 256), width 128, depth 4, 800 steps of one clip. At 4 m a token their
    ceiling is below the warp (README, "Training"): this preset trains and scores the whole
    pipeline on a CPU, the 32 x 32 tokens of `prototype` are the ones that can beat the warp.
    MaskGIT reads scene-debug-16 too, at the same sizes; the DiT the 4D tokenizer 4d-debug-t2
    (4 x 16 x 16 latent a clip of 8 frames), patch 2: 2 x 4 x 8 x 8 = 512 tokens (past and
    target clips).
    Motion bins (16, 4, 8): 512 tokens, so that the ~2300 training motions fill them."""
    return Config(
        model=TENSFormerConfig(dim=128, depth=4, heads=4),
        ar=ARConfig(dim=128, depth=4, heads=4),  # the TENSFormer's sizes: a fair comparison
        maskgit=MaskGITWorldConfig(dim=128, depth=4, heads=4),  # the same
        dit=DiTWorldConfig(dim=128, depth=4, heads=4, patch=2),  # the same; 2 x 2 cells a token
        lidar=MaskGITWorldConfig(dim=128, depth=4, heads=4, context=2),  # 2 -> 2 and 6 -> 6
        motion=MotionConfig(bins=(16, 4, 8)),
        data=DataConfig(tokenizer="multiscale-debug-16", single_scale_tokenizer="scene-debug-16"),
        run=RunConfig(steps=800, batch_size=1, lr=1e-3, warmup_steps=30, log_every=10,
                      eval_every=200, checkpoint_every=100, grad_clip=1.0),
    )  # fmt: skip


def prototype() -> Config:
    """One GPU: a 512-wide, 12-deep TENSFormer (and AR baseline, MaskGIT and DiT, the DiT at
    OccSora's patch 1) over the same tokens, bf16 and compiled."""
    config = override(debug(), {
        "model.dim": 512, "model.depth": 12, "model.heads": 8, "motion.bins": (32, 16, 32),
        "data.tokenizer": "multiscale-debug-znorm", "data.single_scale_tokenizer": "scene-debug",
        "ar.dim": 512, "ar.depth": 12, "ar.heads": 8,
        "maskgit.dim": 512, "maskgit.depth": 12, "maskgit.heads": 8,
        "dit.dim": 512, "dit.depth": 12, "dit.heads": 8, "dit.patch": 1,
        "lidar.dim": 512, "lidar.depth": 12, "lidar.heads": 8,
        "data.eval_clips": 64, "data.eval_batch": 8,
    })  # fmt: skip
    run = gpu_run(steps=20_000, batch_size=16, lr=3e-4, warmup_steps=500, eval_every=2000,
                  grad_clip=1.0, beta2=0.95, weight_decay=0.05)  # fmt: skip
    return dataclasses.replace(config, run=run)


def paper() -> Config:
    """VAR's d16 (width 1024, depth 16, 16 heads): OccTENS does not publish its sizes; 100k
    steps."""
    config = override(prototype(), {"model.dim": 1024, "model.depth": 16, "model.heads": 16,
                                    "ar.dim": 1024, "ar.depth": 16, "ar.heads": 16,
                                    "maskgit.dim": 1024, "maskgit.depth": 16,
                                    "maskgit.heads": 16, "dit.dim": 1024, "dit.depth": 16,
                                    "dit.heads": 16, "lidar.dim": 1024, "lidar.depth": 16,
                                    "lidar.heads": 16})  # fmt: skip
    run = gpu_run(steps=100_000, batch_size=8, lr=3e-4, warmup_steps=2000, eval_every=5000,
                  grad_clip=1.0, beta2=0.95, weight_decay=0.05, num_workers=8)  # fmt: skip
    return dataclasses.replace(config, run=run)


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


def parse_run(argv=None) -> tuple[Config, str]:
    """(config, preset name) from `--preset NAME` and typed `--key=value` overrides."""
    return parse_config(PRESETS, argv)


def tokenizer_name(config: Config) -> str:
    """The frozen tokenizer the run's kind reads: multi-scale (`data.tokenizer`) for the
    TENSFormer, single-scale (`data.single_scale_tokenizer`) for the AR baseline and MaskGIT,
    4D (`data.fourd_tokenizer`) for the DiT, chapter 4's (`data.lidar_tokenizer`) for
    lidar-maskgit."""
    data = config.data
    return {"multiscale": data.tokenizer, "scene": data.single_scale_tokenizer,
            "4d": data.fourd_tokenizer, "lidar": data.lidar_tokenizer,
            }[TOKENIZER_KINDS[config.kind]]  # fmt: skip


def _sizes(section) -> dict:
    """The fields of a model section that the user sets (not `derived`)."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if "derived" not in f.metadata}  # fmt: skip


def complete_config(config: Config, tokenizer, motion_tokenizer,
                    latent_scale: float | None = None) -> Config:  # fmt: skip
    """The config with its derived fields filled from the frozen tokenizers: the motion bins
    from the train-fit motion tokenizer; for the TENSFormer its scales, codebook and code size
    from the multi-scale quantizer (`tokenizer` may be the tokenizer or its quantizer); for
    the AR baseline its codebook and token grid from the single-scale scene tokenizer and its
    actions from the motion vocabulary; for MaskGIT the same codebook, grid and motion
    vocabulary; for the DiT the 4D tokenizer's shapes and `latent_scale`, fit on the training
    split (`latent_clips.fit_latent_scale`). The other kinds' sections are left as they are."""
    if config.kind == "dit":
        if latent_scale is None:
            raise ValueError("the DiT's latent_scale is fit on the training split's latents "
                             "(latent_clips.fit_latent_scale): pass it")  # fmt: skip
        model = dit_config_matching(tokenizer, latent_scale, **_sizes(config.dit))
        config = dataclasses.replace(config, dit=model)
    elif config.kind == "ar":
        config = dataclasses.replace(
            config, ar=ar_config_matching(tokenizer, motion_tokenizer, **_sizes(config.ar))
        )
    elif config.kind == "lidar-maskgit":
        model = lidar_config_matching(tokenizer, motion_tokenizer, **_sizes(config.lidar))
        config = dataclasses.replace(config, lidar=model)
    elif config.kind == "maskgit":
        sizes = _sizes(config.maskgit)
        model = maskgit_config_matching(tokenizer, motion_tokenizer, **sizes)
        config = dataclasses.replace(config, maskgit=model)
    else:
        quantizer = getattr(tokenizer, "quantizer", tokenizer)
        model = TENSFormerConfig.matching(quantizer, motion_tokenizer, **_sizes(config.model))
        config = dataclasses.replace(config, model=model)
    ego = motion_tokenizer
    motion = dataclasses.replace(config.motion, bins=tuple(ego.bins), low=tuple(ego.low),
                                 high=tuple(ego.high))  # fmt: skip
    return dataclasses.replace(config, motion=motion)
