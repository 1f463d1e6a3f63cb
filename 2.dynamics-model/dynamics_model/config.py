"""Chapter 2's run config: one config serves the chapter's three models, `kind` picks one.

    maskgit   Genie's dynamics model: all tokens of the next frame at once, refined in S steps
    ar        the autoregressive baseline: the next frame token by token (N steps, KV cache)
    lam       Genie's latent action model: the controls, learned from pixels without labels

A preset is a short diff from `debug`; the sizes that the tokenizer and the data decide
(codebook, token grid, frame size, actions, clip length) are `derived` fields, filled in by
`complete_config` and refused as overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from video_tokenizer.model import VideoTokenizer

from dynamics_model.ar import ARConfig
from dynamics_model.lam import LatentActionConfig
from dynamics_model.maskgit import MaskGITConfig
from dynamics_model.sampling import SampleConfig
from worldmodels.config import ConfigError, RunConfig, at_least, derived, gpu_run, override, require
from worldmodels.data.atari import NUM_ACTIONS

KINDS = ("maskgit", "ar", "lam")
MAX_HORIZON = 8  # frames rolled out by validate.py


@dataclass
class DataConfig:
    """Where the tokens come from and which held-out clips score a model."""

    tokenizer: str = ""  # chapter-1 tokenizer folder; "" = 1.video-tokenizer/pretrained
    atari_preset: str = "debug"  # a preset of worldmodels.data.atari
    games: tuple[str, ...] = ()  # train and score on these games only; () = every game
    root: str = ""  # folder for Atari recordings and the token cache; "" = <repo>/data
    clip_len: int = 4  # T, frames per training clip; also the models' max_frames
    eval_clips: int = 128  # held-out clips for teacher-forced CE / NMI at each evaluation
    rollout_clips: int = 24  # held-out clips rolled out at each evaluation
    context_frames: int = 3  # true frames a rollout starts from (<= clip_len - 1)
    horizon: int = 4  # frames rolled out at each evaluation (validate.py: 8)
    temporal_compression: int = derived(1, "the tokenizer")  # t: 1 + t*k frames -> 1 + k

    def __post_init__(self):  # ranges that need no tokenizer; complete_config checks the rest
        at_least(self, 1, "eval_clips", "rollout_clips", "temporal_compression")
        at_least(self, 2, "clip_len", note="context + next frame")
        ok = 1 <= self.context_frames <= self.clip_len - 1
        require(self, "context_frames", ok, f"in [1, clip_len - 1 = {self.clip_len - 1}]")
        require(self, "horizon", 1 <= self.horizon <= MAX_HORIZON, f"in [1, {MAX_HORIZON}]")


@dataclass
class Config:
    kind: str = "maskgit"  # "maskgit" | "ar" | "lam": the model this run trains
    maskgit: MaskGITConfig = field(default_factory=MaskGITConfig)
    ar: ARConfig = field(default_factory=ARConfig)
    lam: LatentActionConfig = field(default_factory=LatentActionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        require(self, "kind", self.kind in KINDS, f"one of {KINDS}")


def debug() -> Config:
    """A 2-core CPU in minutes: ~1-1.3 M parameters, width 128, 4-frame clips of 8x8 tokens.

    600 steps of 16 clips. MaskGIT ran 0.5-0.8 steps/s on 1 thread of a 2-core CPU that
    5 other processes were loading (load average ~7), about 2 steps/s idle: ~5 minutes.
    """
    return Config(
        maskgit=MaskGITConfig(dim=128, depth=4, heads=4),
        ar=ARConfig(dim=128, depth=4, heads=4),
        lam=LatentActionConfig(dim=128, encoder_depth=2, decoder_depth=2, heads=4),
        data=DataConfig(clip_len=4, context_frames=3),
        run=RunConfig(
            steps=600, batch_size=16, lr=2e-3, warmup_steps=60, log_every=25, eval_every=200,
            checkpoint_every=200,
        ),
    )  # fmt: skip


def prototype() -> Config:
    """One GPU in about an hour: width 512, 12 blocks (~40-50 M), 16-frame clips, full Atari."""
    config = override(debug(), {
        "maskgit.dim": 512, "maskgit.depth": 12, "maskgit.heads": 8,
        "ar.dim": 512, "ar.depth": 12, "ar.heads": 8,
        "lam.dim": 256, "lam.encoder_depth": 8, "lam.decoder_depth": 8, "lam.heads": 8,
        "data.atari_preset": "full", "data.clip_len": 16, "data.context_frames": 8,
        "data.eval_clips": 512, "data.rollout_clips": 128,
        "sample.maskgit_steps": 12,
    })  # fmt: skip
    run = gpu_run(steps=50_000, batch_size=64, lr=6e-4, warmup_steps=1000, eval_every=5000)
    return dataclasses.replace(config, run=run)


def paper() -> Config:
    """Genie's design at a scale one node can train: ~200 M parameters, 16-frame clips.

    Genie (Bruce et al. 2024) is a 10.7 B-parameter system: a 10.1 B MaskGIT dynamics
    model, a ~200 M tokenizer and a ~300 M latent action model, on 16-frame clips, trained
    on 30 k hours of platformer video: far beyond 64x64 Atari. Width 1024 with 12
    spatio-temporal blocks (~200 M) is a faithful architecture at a size these data can feed.
    """
    config = override(prototype(), {
        "maskgit.dim": 1024, "maskgit.heads": 16,
        "ar.dim": 1024, "ar.depth": 16, "ar.heads": 16,
        "lam.dim": 512, "lam.encoder_depth": 12, "lam.decoder_depth": 12, "lam.heads": 16,
        "data.rollout_clips": 256, "sample.maskgit_steps": 25,
    })  # fmt: skip
    run = gpu_run(steps=200_000, batch_size=32, lr=3e-4, warmup_steps=5000, eval_every=10_000,
                  num_workers=8)  # fmt: skip
    return dataclasses.replace(config, run=run)


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


def is_compressed(tokenizer: VideoTokenizer) -> bool:
    """Does the tokenizer compress time (Cosmos: 1 + t*k frames -> 1 + k latent frames)?"""
    return tokenizer.config.temporal_compression > 1


def derived_sizes(config: Config, tokenizer: VideoTokenizer) -> dict[str, dict]:
    """The fields that the tokenizer and the data decide: section -> {field: value}.

    A model trained on T-frame clips has learned only T time positions, so max_frames is
    data.clip_len and rollouts slide a (T-1)-frame window.
    """
    grid = tuple(tokenizer.tokens_shape(1)[1:])  # (h, w)
    size, frames = tokenizer.config.image_size, config.data.clip_len
    tokens = {"vocab_size": tokenizer.codebook_size, "token_grid": grid}
    data = {"temporal_compression": tokenizer.config.temporal_compression}
    if is_compressed(tokenizer):  # 1 + t*k frames -> 1 + k latent frames, no actions
        latent_frames = tokenizer.tokens_shape(frames)[0]
        return {"data": data, "ar": {**tokens, "max_frames": latent_frames, "use_actions": False}}
    with_actions = {**tokens, "num_actions": NUM_ACTIONS, "max_frames": frames}
    pixels = {"image_size": (size, size), "channels": tokenizer.config.channels}
    return {
        "data": data,
        "maskgit": with_actions,
        "ar": with_actions,
        "lam": {**pixels, "max_frames": frames},
    }


def complete_config(config: Config, tokenizer: VideoTokenizer) -> Config:
    """The config with its derived fields filled in from the tokenizer and the data, after
    the checks that need the tokenizer (compressed tokens: AR only, 1 + t*k frame clips)."""
    if is_compressed(tokenizer):
        t, clip_len = tokenizer.config.temporal_compression, config.data.clip_len
        if config.kind != "ar":
            raise ConfigError(
                f"tokenizer {config.data.tokenizer!r} compresses time (t = {t}): only kind=ar "
                "runs on its tokens (the 1X compression-challenge setting, no per-frame actions)"
            )
        if (clip_len - 1) % t or clip_len < 1 + t:
            raise ConfigError(
                f"with temporal compression t = {t}, data.clip_len must be 1 + t*k frames, "
                f"k >= 1 (context latents + the predicted one), e.g. {1 + 2 * t}, "
                f"got {clip_len}"
            )
    for section, values in derived_sizes(config, tokenizer).items():
        filled = dataclasses.replace(getattr(config, section), **values)
        config = dataclasses.replace(config, **{section: filled})
    return config
