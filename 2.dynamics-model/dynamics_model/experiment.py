"""Chapter 2's experiment: the run config and its presets, the data, the losses, the evaluation.

`train.py`, `validate.py` and the notebook build their runs from here, so a preset means the
same thing everywhere. One config serves the three models of the chapter; `kind` picks one:

    maskgit   Genie's dynamics model: all tokens of the next frame at once, refined in S steps
    ar        the autoregressive baseline: the next frame token by token (N steps, KV cache)
    lam       Genie's latent action model: the controls, learned from pixels without labels

The question: given the tokens of the past frames and an action, what are the tokens of the
next frame? Evaluation answers it three ways, each beside a baseline that needs no learning:

    teacher-forced CE   -ln p(true tokens of the last frame | true past)   vs the unigram
    rollout PSNR        decode(generated frames) vs the real frames, 1..8 frames ahead,
                        vs copying the last context frame (and the tokenizer's own ceiling)
    ΔtPSNR              PSNR with the true actions - PSNR with random ones (Genie's
                        controllability): > 0 when the model listens to the actions
    NMI                 latent actions (LAM) vs the true ALE actions, vs shuffled labels

Shapes: B clips, T frames per clip, P context frames, F frames ahead (the horizon),
C, H, W pixels, h, w tokens per frame.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from einops import rearrange
from torch import nn
from torch.utils.data import Dataset
from video_tokenizer.model import VideoTokenizer

from dynamics_model.ar import ARConfig, ARDynamics
from dynamics_model.lam import LatentActionConfig, LatentActionModel
from dynamics_model.maskgit import MaskGITConfig, MaskGITDynamics
from dynamics_model.scoring import (
    add_interval,
    clip_teacher_forced,
    nats_to_bits,
    nmi_gain_interval,
    token_baselines,
)
from dynamics_model.tokens import (  # noqa: F401  (CHAPTER_DIR, load_tokenizer: for the scripts)
    CHAPTER_DIR,
    CompressedTokenClips,
    TokenClips,
    decode_frames,
    load_tokenizer,
)
from worldmodels.config import ConfigError, RunConfig, at_least, require
from worldmodels.data.atari import NUM_ACTIONS
from worldmodels.metrics import psnr
from worldmodels.metrics.tokens import (
    confusion_matrix,
    copy_last_frame_accuracy,
    delta_psnr,
    normalized_mutual_information,
    unigram_log_probs,
)
from worldmodels.viz.frames import frame_grid

KINDS = ("maskgit", "ar", "lam")
MAX_HORIZON = 8  # frames rolled out by validate.py
FULL_TF_CLIPS = 128  # clips scored fully teacher-forced (MaskGIT: N passes per clip)


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
    context_frames: int = 3  # C, true frames a rollout starts from (<= clip_len - 1)
    horizon: int = 4  # frames rolled out at each evaluation (validate.py: 8)
    temporal_compression: int = 1  # the tokenizer's t, filled in by complete_config

    def __post_init__(self):  # ranges that need no tokenizer; complete_config checks the rest
        at_least(self, 1, "eval_clips", "rollout_clips", "context_frames", "temporal_compression")
        at_least(self, 2, "clip_len", note="context + next frame")
        require(self, "horizon", 1 <= self.horizon <= MAX_HORIZON, f"in [1, {MAX_HORIZON}]")


@dataclass
class SampleConfig:
    """How rollouts draw tokens (MaskGIT and AR alike; see dynamics_model.sampling)."""

    maskgit_steps: int = 8  # S, MaskGIT refinement steps per frame
    temperature: float = 0.0  # 0 = greedy (argmax), best for PSNR; 1 = the model's own p
    top_p: float = 1.0
    confidence_noise: float = 0.0  # MaskGIT's annealed Gumbel noise on confidences
    seed: int = 0

    def __post_init__(self):  # checked at start-up, not at the first evaluation
        at_least(self, 1, "maskgit_steps")
        require(self, "temperature", 0 <= self.temperature < math.inf, ">= 0 (0 = greedy)")
        require(self, "top_p", 0 < self.top_p <= 1, "in (0, 1]")
        require(self, "confidence_noise", 0 <= self.confidence_noise < math.inf, ">= 0")


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
        if self.kind not in KINDS:
            raise ConfigError(f"unknown kind {self.kind!r}; choose one of {KINDS}")


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
            steps=600,
            batch_size=16,
            lr=2e-3,
            warmup_steps=60,
            log_every=25,
            eval_every=200,
            checkpoint_every=200,
        ),
    )


def prototype() -> Config:
    """One GPU in about an hour: width 512, 12 blocks (~40-50 M), 16-frame clips, full Atari."""
    return Config(
        maskgit=MaskGITConfig(dim=512, depth=12, heads=8),
        ar=ARConfig(dim=512, depth=12, heads=8),
        lam=LatentActionConfig(dim=256, encoder_depth=8, decoder_depth=8, heads=8),
        data=DataConfig(
            atari_preset="full", clip_len=16, eval_clips=512, rollout_clips=128, context_frames=8
        ),
        sample=SampleConfig(maskgit_steps=12),
        run=RunConfig(
            steps=50_000,
            batch_size=64,
            lr=6e-4,
            warmup_steps=1000,
            eval_every=5000,
            checkpoint_every=5000,
            num_workers=4,
            compile=True,
        ),
    )


def paper() -> Config:
    """Genie's design at a scale one node can train: ~200 M parameters, 16-frame clips.

    Genie (Bruce et al. 2024) is a 10.7 B-parameter system: a 10.1 B MaskGIT dynamics
    model, a ~200 M tokenizer and a ~300 M latent action model, on 16-frame clips, trained
    on 30 k hours of platformer video: far beyond 64x64 Atari. Width 1024 with 12
    spatio-temporal blocks (~200 M) is a faithful architecture at a size these data can feed.
    """
    return Config(
        maskgit=MaskGITConfig(dim=1024, depth=12, heads=16),
        ar=ARConfig(dim=1024, depth=16, heads=16),
        lam=LatentActionConfig(dim=512, encoder_depth=12, decoder_depth=12, heads=16),
        data=DataConfig(
            atari_preset="full", clip_len=16, eval_clips=512, rollout_clips=256, context_frames=8
        ),
        sample=SampleConfig(maskgit_steps=25),
        run=RunConfig(
            steps=200_000,
            batch_size=32,
            lr=3e-4,
            warmup_steps=5000,
            eval_every=10_000,
            checkpoint_every=5000,
            num_workers=8,
            compile=True,
        ),
    )


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


# ----------------------------------------------------------------------------- config


def _derived(config: Config, tokenizer: VideoTokenizer) -> dict[str, dict]:
    """The model fields that the tokenizer and the data decide: section -> {field: value}."""
    grid = tokenizer.tokens_shape(1)[1:]  # (h, w)
    size = tokenizer.config.image_size
    frames = config.data.clip_len  # models see at most one training clip: rollouts slide
    tokens = {"vocab_size": tokenizer.codebook_size, "token_grid": tuple(grid)}
    t = {"temporal_compression": tokenizer.config.temporal_compression}
    if is_compressed(tokenizer):  # 1 + t*k frames -> 1 + k latent frames, no actions
        latent_frames = tokenizer.tokens_shape(frames)[0]
        return {
            "ar": {**tokens, "max_frames": latent_frames, "use_actions": False},
            "data": t,
        }
    return {
        "data": t,
        "maskgit": {**tokens, "num_actions": NUM_ACTIONS, "max_frames": frames},
        "ar": {**tokens, "num_actions": NUM_ACTIONS, "max_frames": frames},
        "lam": {
            "image_size": (size, size),
            "channels": tokenizer.config.channels,
            "max_frames": frames,
        },
    }


def is_compressed(tokenizer: VideoTokenizer) -> bool:
    """Does the tokenizer compress time (Cosmos: 1 + t*k frames -> 1 + k latent frames)?"""
    return tokenizer.config.temporal_compression > 1


def complete_config(config: Config, tokenizer: VideoTokenizer) -> Config:
    """Check the config and fill in what the tokenizer and data decide.

    Codebook size, token grid and frame size come from the tokenizer and max_frames from
    data.clip_len (a model trained on T-frame clips has learned only T time positions, so
    rollouts slide a (T-1)-frame window). A value given that differs both from the field's
    default and from the derived value is an error, not silently replaced.
    """
    if config.kind not in KINDS:
        raise ConfigError(f"unknown kind {config.kind!r}; choose one of {KINDS}")
    data = config.data
    if data.clip_len < 2:
        raise ConfigError(f"data.clip_len must be >= 2 (context + next frame), got {data.clip_len}")
    if not 1 <= data.context_frames <= data.clip_len - 1:
        raise ConfigError(
            f"data.context_frames must be in [1, clip_len - 1 = {data.clip_len - 1}], "
            f"got {data.context_frames}"
        )
    if not 1 <= data.horizon <= MAX_HORIZON:
        raise ConfigError(f"data.horizon must be in [1, {MAX_HORIZON}], got {data.horizon}")
    if is_compressed(tokenizer):
        t = tokenizer.config.temporal_compression
        if config.kind != "ar":
            raise ConfigError(
                f"tokenizer {data.tokenizer!r} compresses time (t = {t}): only kind=ar runs on "
                "its tokens (the 1X compression-challenge setting, no per-frame actions)"
            )
        if (data.clip_len - 1) % t or data.clip_len < 1 + t:
            raise ConfigError(
                f"with temporal compression t = {t}, data.clip_len must be 1 + t*k frames, "
                f"k >= 1 (context latents + the predicted one), e.g. {1 + 2 * t}, "
                f"got {data.clip_len}"
            )
    for section, values in _derived(config, tokenizer).items():
        current = getattr(config, section)
        defaults = type(current)()
        for name, value in values.items():
            given = getattr(current, name)
            given = tuple(given) if isinstance(given, list) else given
            if given not in (value, getattr(defaults, name)):
                raise ConfigError(
                    f"{section}.{name}={given!r} contradicts the tokenizer/data, which set it "
                    f"to {value!r}; leave it out"
                )
        config = dataclasses.replace(config, **{section: dataclasses.replace(current, **values)})
    return config


def build_model(config: Config) -> nn.Module:
    """The model of `config.kind`, at the size of its section."""
    if config.kind == "maskgit":
        return MaskGITDynamics(config.maskgit)
    if config.kind == "ar":
        return ARDynamics(config.ar)
    if config.kind == "lam":
        return LatentActionModel(config.lam)
    raise ConfigError(f"unknown kind {config.kind!r}; choose one of {KINDS}")


def build_datasets(config: Config, progress: bool = True) -> dict[str, TokenClips]:
    """{"train", "val"}: training episodes and held-out episodes of the same games, as tokens
    (plus frames for the LAM, which reads pixels)."""
    data = config.data
    if data.temporal_compression > 1:  # 1 + t*k frames -> 1 + k latents (complete_config)
        return {
            split: CompressedTokenClips(
                split,
                data.clip_len,
                data.tokenizer,
                data.atari_preset,
                root=data.root or None,
                progress=progress,
            )  # fmt: skip
            for split in ("train", "val")
        }
    return {
        split: TokenClips(
            split,
            data.clip_len,
            data.tokenizer,
            data.atari_preset,
            with_frames=config.kind == "lam",
            root=data.root or None,
            progress=progress,
            games=data.games or None,
        )
        for split in ("train", "val")
    }


# ----------------------------------------------------------------------------- training


def maskgit_loss(model: MaskGITDynamics, batch: dict) -> tuple[torch.Tensor, dict]:
    """MaskGIT cross-entropy on masked tokens of every frame after the first."""
    return model.masking_loss(batch["tokens"], batch["actions"])


def ar_loss(model: ARDynamics, batch: dict) -> tuple[torch.Tensor, dict]:
    """Next-token cross-entropy over every token of the clip (actions, if any, are inputs)."""
    return model.next_token_loss(batch["tokens"], batch.get("actions"))


def lam_loss(model: LatentActionModel, batch: dict) -> tuple[torch.Tensor, dict]:
    """Next-frame MSE through the 8-code latent action bottleneck, plus the VQ loss."""
    return model.loss(batch["frames"])


LOSSES = {"maskgit": maskgit_loss, "ar": ar_loss, "lam": lam_loss}


def loss_fn_for(kind: str):
    if kind not in LOSSES:
        raise ConfigError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return LOSSES[kind]


# ----------------------------------------------------------------------------- evaluation


def fixed_subset(dataset: Dataset, count: int) -> list[int]:
    """`count` clip indices spread evenly over the dataset, the same at every evaluation."""
    count = min(count, len(dataset))
    return torch.linspace(0, len(dataset) - 1, count).round().long().tolist()


def stack_items(dataset: Dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    """The items at `indices` batched: tokens (B, T, h, w), actions (B, T), game (B,), ..."""
    items = [dataset[i] for i in indices]
    return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in items[0]}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def rollout(
    model: nn.Module,
    context: torch.Tensor,
    actions: torch.Tensor,
    horizon: int,
    sample: SampleConfig,
    batch: int = 32,
) -> torch.Tensor:
    """Generate `horizon` frames after `context` (B, P, h, w) with actions (B, >= P+horizon-1)
    (None for a model without actions).

    Returns (B, horizon, h, w) int64 on the CPU. Sampling is seeded by `sample.seed`, so
    two rollouts that differ only in their actions draw from the same random stream.
    """
    device = _device(model)
    generator = torch.Generator(device=device).manual_seed(sample.seed)
    P = context.shape[1]
    frames = []
    contexts = context.split(batch)
    if actions is None:  # compressed tokens: no actions
        action_chunks = [None] * len(contexts)
    else:
        action_chunks = actions[:, : P + horizon - 1].split(batch)
    for ctx, act in zip(contexts, action_chunks):
        ctx, act = ctx.to(device), None if act is None else act.to(device)
        if isinstance(model, MaskGITDynamics):
            out = model.rollout(
                ctx, act, horizon, sample.maskgit_steps, sample.temperature, sample.top_p,
                sample.confidence_noise, generator,
            )  # fmt: skip
        else:
            out = model.rollout(ctx, act, horizon, sample.temperature, sample.top_p, generator)
        frames.append(out.cpu())
    return torch.cat(frames)  # (B, horizon, h, w)


def random_future_actions(
    actions: torch.Tensor, games: torch.Tensor, game_actions: dict, P: int, seed: int = 0
) -> torch.Tensor:
    """A copy of actions (B, T) whose actions from step P-1 on (those that lead to generated
    frames, after P context frames) are drawn uniformly from the actions played in each
    clip's game."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = actions.clone()
    for b, game in enumerate(games.tolist()):
        choices = game_actions[game]  # (n,)
        picks = torch.randint(len(choices), (actions.shape[1] - P + 1,), generator=generator)
        shuffled[b, P - 1 :] = choices[picks]
    return shuffled


def _per_horizon(name: str, values: torch.Tensor) -> dict[str, float]:
    """{name_h1: ..., name_hF: ...} from per-clip values (B, F), F frames ahead."""
    return {f"{name}_h{k + 1}": v for k, v in enumerate(values.mean(0).tolist())}


@torch.no_grad()
def time_sampling(model: nn.Module, context, actions, sample: SampleConfig, repeats=3) -> dict:
    """Milliseconds to generate one frame for one clip (batch 1), best of `repeats`.

    MaskGIT: S forward passes over the whole window. AR: one pass over the prompt, then N
    single-token passes that reuse the KV cache; without the cache, N full passes.
    """
    device = _device(model)
    ctx, act = context[:1].to(device), actions[:1, : context.shape[1]].to(device)

    def best_ms(generate) -> float:
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            generate()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return 1000 * min(times)

    tau = sample.temperature
    if isinstance(model, MaskGITDynamics):
        steps = sample.maskgit_steps
        return {"ms_per_frame": best_ms(lambda: model.generate_next(ctx, act, steps, tau))}
    return {
        "ms_per_frame": best_ms(lambda: model.generate_next(ctx, act, tau)),
        "ms_per_frame_no_cache": best_ms(lambda: model.generate_next_no_cache(ctx, act, tau)),
    }


class Evaluator:
    """Held-out scores of a MaskGIT, AR or LAM model; `evaluate(model, step)` for the trainer.

    Periodic evaluation (`full=False`) is cheap: teacher-forced CE and rollouts with the
    true actions up to data.horizon. `full=True` (validate.py) adds random-action rollouts
    (ΔtPSNR, overall and per game), per-game PSNR and sampling times. The last rollout's
    tensors stay in `self.last` for pictures.
    """

    def __init__(
        self,
        config: Config,
        datasets: dict[str, TokenClips],
        tokenizer: VideoTokenizer,
        out_dir: Path | None = None,
        full: bool = False,
        horizon: int | None = None,
        eval_clips: int | None = None,
        rollout_clips: int | None = None,
    ):
        self.config, self.tokenizer, self.out_dir, self.full = config, tokenizer, out_dir, full
        self.kind = config.kind
        data = config.data
        self.horizon = horizon or data.horizon
        self.game_names = datasets["val"].game_names
        val = datasets["val"]
        scored = fixed_subset(val, eval_clips or data.eval_clips)
        self.scored = stack_items(val, scored)
        self.scored_episodes = val.clip_episodes()[scored]  # (B,): the bootstrap's groups
        self.last: dict[str, torch.Tensor] = {}
        if self.kind == "lam":  # training clips to measure the action standardisation on
            train = datasets["train"]
            self.calibration_frames = stack_items(train, fixed_subset(train, 256))["frames"]
            return
        # Baselines fit on the training tokens of the games this run trains on (data.games).
        self.baseline_clips = token_baselines(
            datasets["train"].game_episode_tokens(), self.scored["tokens"], tokenizer.codebook_size
        )
        self.baselines = {
            "unigram_ce_nats": self.baseline_clips["unigram"].mean().item(),
            "previous_frame_ce_nats": self.baseline_clips["previous_frame"].mean().item(),
            "previous_frame_eps": self.baseline_clips["previous_frame_eps"],
            "copy_last_token_accuracy": copy_last_frame_accuracy(
                self.scored["tokens"], last_only=True
            ),
        }
        self.baselines["unigram_ce_bits"] = self.baselines["unigram_ce_nats"] / math.log(2)
        self.game_actions = datasets["train"].game_actions()
        # the same clips with the action into the last frame drawn at random from its game's
        T = self.scored["tokens"].shape[1]
        self.scored_random_actions = random_future_actions(
            self.scored["actions"],
            self.scored["game"],
            self.game_actions,
            T - 1,
            config.sample.seed,
        )
        long_clips = TokenClips(
            "val",
            data.context_frames + self.horizon,
            data.tokenizer,
            data.atari_preset,
            with_frames=True,
            root=data.root or None,
            progress=False,
            games=data.games or None,
        )
        rolled = fixed_subset(long_clips, rollout_clips or data.rollout_clips)
        self.rolled = stack_items(long_clips, rolled)
        self.rolled_episodes = long_clips.clip_episodes()[rolled]  # (B,)
        self._pixel_baselines()

    def _pixel_baselines(self) -> None:
        """Baselines per clip and horizon (B, F), against the real future frames x_{P-1+k}:

        copy_psnr          PSNR(x_{P-1}, x_{P-1+k}): the last context frame, in pixels
        copy_tokens_psnr   PSNR(decode(z_{P-1}), x_{P-1+k}): the same copy, but through
                           the tokenizer's decoder, like every frame a model generates
        ceiling_psnr       PSNR(decode(z_{P-1+k}), x_{P-1+k}): the true future tokens, the
                           best any token model can score
        copy_tokens_acc    fraction of z_{P-1+k} equal to z_{P-1}, per clip
        """
        P = self.config.data.context_frames
        frames, tokens = self.rolled["frames"], self.rolled["tokens"]  # (B, P + F, ...)
        future = frames[:, P:]  # (B, F, C, H, W)
        last = frames[:, P - 1 : P].expand_as(future)  # the last context frame, repeated
        self.copy_psnr = psnr(last, future)  # (B, F)
        last_decoded = decode_frames(self.tokenizer, tokens[:, P - 1 : P]).expand_as(future)
        self.copy_tokens_psnr = psnr(last_decoded, future)  # (B, F)
        self.ceiling_psnr = psnr(decode_frames(self.tokenizer, tokens[:, P:]), future)  # (B, F)
        same = tokens[:, P:] == tokens[:, P - 1 : P]  # (B, F, h, w)
        self.copy_tokens_acc = same.float().mean((2, 3))  # (B, F)

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        if self.kind == "lam":
            metrics = self.evaluate_lam(model)
        else:
            metrics = self.evaluate_dynamics(model)
        if self.out_dir is not None and self.last:
            save_rollout_strip(
                self.last,
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: real / generated (held-out episodes)",
            )
        return metrics

    # ----- MaskGIT and AR ------------------------------------------------------------------

    def evaluate_dynamics(self, model: nn.Module) -> dict[str, float]:
        sample, P, F = self.config.sample, self.config.data.context_frames, self.horizon
        metrics = self._teacher_forced(model)
        metrics.update(self.baselines)
        tokens, actions = self.rolled["tokens"], self.rolled["actions"]
        generated = rollout(model, tokens[:, :P], actions, F, sample)  # (B, F, h, w)
        frames = decode_frames(self.tokenizer, generated)  # (B, F, C, H, W)
        future = self.rolled["frames"][:, P:]
        model_psnr = psnr(frames, future)  # (B, F)
        metrics.update(_per_horizon("rollout_psnr", model_psnr))
        metrics.update(_per_horizon("copy_last_psnr", self.copy_psnr))
        metrics.update(_per_horizon("copy_last_tokens_psnr", self.copy_tokens_psnr))
        metrics.update(_per_horizon("tokenizer_psnr", self.ceiling_psnr))
        correct = (generated == tokens[:, P:]).float().mean((2, 3))  # (B, F)
        metrics.update(_per_horizon("rollout_token_accuracy", correct))
        metrics.update(_per_horizon("copy_last_rollout_token_accuracy", self.copy_tokens_acc))
        context = decode_frames(self.tokenizer, tokens[:, :P])
        self.last = {
            "real": self.rolled["frames"],
            "generated": torch.cat([context, frames], dim=1),
            "games": self.rolled["game"],
            "psnr": model_psnr,
        }
        self.per_clip["rollout_psnr"] = (model_psnr.mean(1), self.rolled_episodes)  # (B,)
        if self.full:
            episodes = self.rolled_episodes
            for k in range(F):  # paired per clip: the model minus each copy baseline
                add_interval(
                    metrics, f"rollout_minus_copy_tokens_psnr_h{k + 1}",
                    model_psnr[:, k] - self.copy_tokens_psnr[:, k], episodes,
                )  # fmt: skip
                add_interval(
                    metrics, f"rollout_minus_copy_psnr_h{k + 1}",
                    model_psnr[:, k] - self.copy_psnr[:, k], episodes,
                )  # fmt: skip
            add_interval(
                metrics, "rollout_minus_copy_tokens_psnr", model_psnr - self.copy_tokens_psnr,
                episodes,
            )  # fmt: skip
            metrics.update(self._controllability(model, model_psnr))
            metrics.update(time_sampling(model, tokens[:, :P], actions, sample))
        return metrics

    def _teacher_forced(self, model: nn.Module) -> dict[str, float]:
        """Teacher-forced CE of the last frame, in 1X's two scenarios (dynamics_model.scoring),
        with the true actions, and how much worse with random ones.

        tf_temporal_*: the frame's own true tokens hidden (what the 1X challenge ranks).
        tf_full_*: its true tokens given (AR: those before each token; MaskGIT: all others);
        validate.py only, on at most FULL_TF_CLIPS clips (MaskGIT needs N passes).
        tf_action_gain_nats = CE(random action into the last frame) - CE(true action), per
        token (temporal scenario): the information the model takes from the action. Far more
        sensitive than ΔtPSNR, where the few pixels an action moves drown in the frame's error.
        """
        tokens, games, actions = self.scored["tokens"], self.scored["game"], self.scored["actions"]
        nats, accuracy = clip_teacher_forced(model, "temporal", tokens, actions)
        # per-clip scores, kept for paired comparisons between runs (validate.py)
        self.per_clip = {"tf_temporal_ce_nats": (nats, self.scored_episodes)}
        random_nats, _ = clip_teacher_forced(model, "temporal", tokens, self.scored_random_actions)
        metrics = {
            "tf_temporal_ce_nats": nats.mean().item(),
            "tf_temporal_ce_bits": nats_to_bits(nats.mean().item()),
            "tf_temporal_accuracy": accuracy.mean().item(),
            "tf_temporal_ce_nats_random_actions": random_nats.mean().item(),
            "tf_action_gain_nats": (random_nats - nats).mean().item(),
        }
        if not self.full:
            return metrics
        episodes = self.scored_episodes
        add_interval(metrics, "tf_action_gain_nats", random_nats - nats, episodes)
        add_interval(metrics, "tf_temporal_minus_unigram_nats",
                     nats - self.baseline_clips["unigram"], episodes)  # fmt: skip
        add_interval(metrics, "tf_temporal_minus_previous_frame_nats",
                     nats - self.baseline_clips["previous_frame"], episodes)  # fmt: skip
        rows = fixed_subset(range(len(tokens)), FULL_TF_CLIPS)
        full, full_accuracy = clip_teacher_forced(model, "full", tokens[rows], actions[rows])
        metrics["tf_full_clips"] = float(len(rows))
        metrics["tf_full_ce_nats"] = full.mean().item()
        metrics["tf_full_ce_bits"] = nats_to_bits(full.mean().item())
        metrics["tf_full_accuracy"] = full_accuracy.mean().item()
        add_interval(metrics, "tf_temporal_minus_full_nats", nats[rows] - full, episodes[rows])
        for g in games.unique().tolist():
            rows, name = games == g, self.game_names[g]
            metrics[f"tf_temporal_ce_nats_{name}"] = nats[rows].mean().item()
            metrics[f"tf_action_gain_nats_{name}"] = (random_nats - nats)[rows].mean().item()
        return metrics

    def _controllability(self, model: nn.Module, model_psnr: torch.Tensor) -> dict[str, float]:
        """ΔtPSNR = PSNR(true actions) - PSNR(random actions), per horizon and per game."""
        P = self.config.data.context_frames
        tokens, games = self.rolled["tokens"], self.rolled["game"]
        random_actions = random_future_actions(
            self.rolled["actions"], games, self.game_actions, P, seed=self.config.sample.seed
        )
        generated = rollout(model, tokens[:, :P], random_actions, self.horizon, self.config.sample)
        random_psnr = psnr(decode_frames(self.tokenizer, generated), self.rolled["frames"][:, P:])
        delta = model_psnr - random_psnr  # (B, F)
        metrics = {
            **_per_horizon("random_actions_psnr", random_psnr),
            **_per_horizon("delta_psnr", delta),
            "delta_psnr": delta_psnr(model_psnr, random_psnr),
            "rollout_psnr": model_psnr.mean().item(),
            "copy_last_psnr": self.copy_psnr.mean().item(),
            "copy_last_tokens_psnr": self.copy_tokens_psnr.mean().item(),
        }
        for k in range(delta.shape[1]):
            add_interval(metrics, f"delta_psnr_h{k + 1}", delta[:, k], self.rolled_episodes)
        add_interval(metrics, "delta_psnr", delta, self.rolled_episodes)
        self.last["random_psnr"] = random_psnr
        for g in games.unique().tolist():
            name, rows = self.game_names[g], games == g
            metrics[f"rollout_psnr_{name}"] = model_psnr[rows].mean().item()
            metrics[f"copy_last_psnr_{name}"] = self.copy_psnr[rows].mean().item()
            metrics[f"copy_last_tokens_psnr_{name}"] = self.copy_tokens_psnr[rows].mean().item()
            metrics[f"random_actions_psnr_{name}"] = random_psnr[rows].mean().item()
            metrics[f"delta_psnr_{name}"] = delta[rows].mean().item()
        return metrics

    # ----- LAM -----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate_lam(self, model: LatentActionModel, batch: int = 64) -> dict[str, float]:
        """NMI of latent vs true actions (overall, per game, and for shuffled labels), the
        next-frame PSNR with inferred vs random latent actions, and copy-last-frame PSNR."""
        device = _device(model)
        model.calibrate_action_norm(self.calibration_frames.to(device))  # on training clips
        frames, games = self.scored["frames"], self.scored["game"]  # (B, T, C, H, W), (B,)
        true = self.scored["actions"][:, :-1]  # (B, T-1): a_t leads from frame t to t+1
        latent, recon, shuffled_recon = [], [], []
        generator = torch.Generator().manual_seed(self.config.sample.seed)
        num_codes = model.config.num_latent_actions
        for chunk in frames.split(batch):
            chunk = chunk.to(device)
            ids = model.infer_actions(chunk)  # (b, T-1)
            latent.append(ids.cpu())
            recon.append(model.decode_with_actions(chunk[:, :-1], ids).float().cpu())
            random_ids = torch.randint(num_codes, tuple(ids.shape), generator=generator)
            shuffled_recon.append(
                model.decode_with_actions(chunk[:, :-1], random_ids.to(device)).float().cpu()
            )
        latent = torch.cat(latent)  # (B, T-1)
        target = frames[:, 1:]
        lam_psnr = psnr(torch.cat(recon), target)  # (B, T-1)
        random_psnr = psnr(torch.cat(shuffled_recon), target)
        # Chance: the true actions shuffled among the transitions of the same game. Shuffling
        # across games would also destroy the game <-> action-set link, and a LAM whose codes
        # only tell the games apart would then look better than chance.
        shuffled = true.clone()  # (B, T-1)
        for g in games.unique().tolist():
            labels = true[games == g].flatten()
            order = torch.randperm(labels.numel(), generator=generator)
            shuffled[games == g] = labels[order].reshape(-1, true.shape[1])
        metrics = {
            "nmi": normalized_mutual_information(latent.flatten(), true.flatten()),
            "nmi_chance": normalized_mutual_information(latent.flatten(), shuffled.flatten()),
            "codes_used": float(latent.unique().numel()),
            "lam_psnr": lam_psnr.mean().item(),
            "lam_random_actions_psnr": random_psnr.mean().item(),
            "lam_delta_psnr": (lam_psnr - random_psnr).mean().item(),
            "copy_last_psnr": psnr(frames[:, :-1], target).mean().item(),
        }
        if self.full:
            episodes = self.scored_episodes
            metrics.update(nmi_gain_interval(latent, true, shuffled, episodes))
            add_interval(metrics, "lam_delta_psnr", lam_psnr - random_psnr, episodes)
        for g in games.unique().tolist():
            rows = games == g
            lat, act = latent[rows].flatten(), true[rows].flatten()
            name = self.game_names[g]
            metrics[f"nmi_{name}"] = normalized_mutual_information(lat, act)
            chance = normalized_mutual_information(lat, shuffled[rows].flatten())
            metrics[f"nmi_chance_{name}"] = chance
        self.last_lam = {"latent": latent, "true": true, "games": games, "num_codes": num_codes}
        return metrics


class CompressedEvaluator:
    """Held-out scores of an AR model on temporally compressed tokens (the 1X challenge).

    A clip of 1 + t*k frames is 1 + k latent token frames; the model sees the first k and
    predicts the last, which stands for the clip's last t frames. Scores:
        teacher-forced CE of the last latent frame (nats, bits per token) vs the unigram;
        rollout PSNR of the last t frames decoded from (true context + generated latent)
        vs copying the last context frame (pixels) and vs decoding the true latent (ceiling).
    """

    def __init__(
        self,
        config: Config,
        datasets: dict[str, CompressedTokenClips],
        tokenizer: VideoTokenizer,
        out_dir: Path | None = None,
        full: bool = False,
        eval_clips: int | None = None,
        rollout_clips: int | None = None,
        **_,
    ):
        self.config, self.tokenizer, self.out_dir, self.full = config, tokenizer, out_dir, full
        data, val = config.data, datasets["val"]
        self.game_names = val.game_names
        self.t = data.temporal_compression
        self.horizon = self.t  # frames generated: the last latent frame stands for t frames
        scored = fixed_subset(val, eval_clips or data.eval_clips)
        self.scored = stack_items(val, scored)
        self.scored_episodes = val.atari.clip_episodes()[scored]  # (B,)
        K = tokenizer.codebook_size
        train_ids = datasets["train"].tokens  # (clips, 1 + k, h, w): clips overlap, so
        # the unigram is fit on every training latent frame at every clip offset
        log_q = unigram_log_probs(train_ids, K)  # (K,)
        self.unigram_clips = (-log_q[self.scored["tokens"][:, -1]]).flatten(1).mean(1)  # (B,)
        unigram = self.unigram_clips.mean().item()
        self.baselines = {"unigram_ce_nats": unigram, "unigram_ce_bits": unigram / math.log(2)}
        self.tokenizer_device = next(tokenizer.parameters()).device
        rolled = CompressedTokenClips(
            "val", data.clip_len, data.tokenizer, data.atari_preset, with_frames=True,
            root=data.root or None, progress=False,
        )  # fmt: skip
        self.rolled = stack_items(rolled, fixed_subset(rolled, rollout_clips or data.rollout_clips))
        frames, tokens = self.rolled["frames"], self.rolled["tokens"]  # (B, F, C, H, W), (B, L, .)
        future = frames[:, -self.t :]  # (B, t, C, H, W): the frames the last latent stands for
        last_seen = frames[:, -self.t - 1 : -self.t].expand_as(future)
        self.copy_psnr = psnr(last_seen, future)  # (B, t)
        self.ceiling_psnr = psnr(self._decode(tokens)[:, -self.t :], future)
        self.last: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Latent token clips (B, 1 + k, h, w) -> frames on the CPU, decoded where the
        tokenizer lives (the model may sit on another device)."""
        return torch.cat(
            [self.tokenizer.decode(c.to(self.tokenizer_device)).float().cpu()
             for c in tokens.split(64)]
        )  # fmt: skip

    @torch.no_grad()
    def __call__(self, model: ARDynamics, step: int) -> dict[str, float]:
        tokens = self.scored["tokens"]
        metrics = {}
        for scenario in ("temporal", "full"):
            nats, accuracy = clip_teacher_forced(model, scenario, tokens, None)
            metrics[f"tf_{scenario}_ce_nats"] = nats.mean().item()
            metrics[f"tf_{scenario}_ce_bits"] = nats_to_bits(nats.mean().item())
            metrics[f"tf_{scenario}_accuracy"] = accuracy.mean().item()
            if self.full:
                add_interval(metrics, f"tf_{scenario}_minus_unigram_nats",
                             nats - self.unigram_clips, self.scored_episodes)  # fmt: skip
        metrics.update(self.baselines)
        tokens, frames = self.rolled["tokens"], self.rolled["frames"]
        generated = rollout(model, tokens[:, :-1], None, 1, self.config.sample)  # (B, 1, h, w)
        clip = torch.cat([tokens[:, :-1], generated], dim=1)  # (B, 1 + k, h, w)
        decoded = self._decode(clip)  # (B, 1 + t*k, C, H, W)
        model_psnr = psnr(decoded[:, -self.t :], frames[:, -self.t :])  # (B, t)
        metrics.update(_per_horizon("rollout_psnr", model_psnr))
        metrics.update(_per_horizon("copy_last_psnr", self.copy_psnr))
        metrics.update(_per_horizon("tokenizer_psnr", self.ceiling_psnr))
        correct = (generated[:, 0] == tokens[:, -1]).float().mean()
        metrics["rollout_token_accuracy"] = correct.item()
        self.last = {"real": frames, "generated": decoded, "games": self.rolled["game"],
                     "psnr": model_psnr}  # fmt: skip
        if self.out_dir is not None:
            save_rollout_strip(
                self.last,
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: real / decoded (context latents + generated last latent)",
            )
        return metrics


def make_evaluator(config: Config, datasets: dict, tokenizer: VideoTokenizer, **kwargs):
    """The evaluator that fits the run: CompressedEvaluator on compressed tokens, else Evaluator."""
    if config.data.temporal_compression > 1:
        return CompressedEvaluator(config, datasets, tokenizer, **kwargs)
    return Evaluator(config, datasets, tokenizer, **kwargs)


# ----------------------------------------------------------------------------- pictures


def save_rollout_strip(last: dict, path: Path, title: str, max_clips: int = 6) -> None:
    """A PNG of real / generated rows, one pair per clip (one clip per game when possible)."""
    games = last["games"].tolist()
    picks = [games.index(g) for g in sorted(set(games))][:max_clips]
    rows = [row for b in picks for row in (last["real"][b], last["generated"][b])]
    fig, ax = plt.subplots(figsize=(1.0 * rows[0].shape[0], 1.0 * len(rows)))
    ax.imshow(frame_grid(rows))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_psnr_vs_horizon(metrics_by_run: dict[str, dict], path: Path) -> None:
    """Rollout PSNR against frames ahead, per run, with copy-last-frame and the tokenizer."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    baseline = None
    for label, metrics in metrics_by_run.items():
        horizons = sorted(
            int(k.rsplit("_h", 1)[1]) for k in metrics if k.startswith("rollout_psnr_h")
        )
        if not horizons:
            continue
        baseline = baseline or metrics
        ax.plot(horizons, [metrics[f"rollout_psnr_h{k}"] for k in horizons], "o-", label=label)
        if f"random_actions_psnr_h{horizons[0]}" in metrics:
            ax.plot(
                horizons,
                [metrics[f"random_actions_psnr_h{k}"] for k in horizons],
                "x:",
                label=f"{label}, random actions",
            )
    if baseline is not None:
        horizons = sorted(
            int(k.rsplit("_h", 1)[1]) for k in baseline if k.startswith("copy_last_psnr_h")
        )
        curves = (
            ("copy_last_psnr", "s--", "grey", "copy last frame (pixels)"),
            ("copy_last_tokens_psnr", "s-.", "tab:brown", "copy last frame (tokens)"),
            ("tokenizer_psnr", "--", "black", "tokenizer ceiling (true tokens)"),
        )
        for key, style, colour, label in curves:
            if f"{key}_h{horizons[0]}" not in baseline:
                continue
            values = [baseline[f"{key}_h{k}"] for k in horizons]
            ax.plot(horizons, values, style, color=colour, label=label)
    ax.set_xlabel("frames ahead")
    ax.set_ylabel("PSNR (dB), held-out episodes")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(last_lam: dict, game_names, action_meanings, path: Path) -> None:
    """P(latent action | true action) per game: one panel per game, columns = its actions."""
    games = last_lam["games"]
    present = sorted(set(games.tolist()))
    cols = min(3, len(present))
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, g in zip(axes.flat, present):
        lat = last_lam["latent"][games == g].flatten()
        act = last_lam["true"][games == g].flatten()
        counts = confusion_matrix(lat, act, last_lam["num_codes"], NUM_ACTIONS).float()
        used = (counts.sum(0) > 0).nonzero()[:, 0]  # the game's actions
        share = counts[:, used] / counts[:, used].sum(0, keepdim=True)  # columns sum to 1
        ax.axis("on")
        ax.imshow(share, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(used)), [action_meanings[a] for a in used], rotation=90, fontsize=6)
        ax.set_yticks(range(last_lam["num_codes"]))
        ax.set_ylabel("latent action", fontsize=7)
        nmi = normalized_mutual_information(lat, act)
        ax.set_title(f"{game_names[g]} (NMI {nmi:.2f})", fontsize=8)
    fig.suptitle("P(latent action | true action), held-out episodes", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def generated_strip_frames(last: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, generated) (T, C, H', W) with one clip per game stacked top to bottom."""
    games = last["games"].tolist()
    picks = [games.index(g) for g in sorted(set(games))]
    real = rearrange(last["real"][picks], "g t c h w -> t c (g h) w")
    generated = rearrange(last["generated"][picks], "g t c h w -> t c (g h) w")
    return real, generated
