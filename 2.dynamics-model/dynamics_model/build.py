"""What a run of each kind is made of: its model, data, loss and evaluator, in registries
keyed by `config.kind`, so that train.py, validate.py and the notebook build runs alike.

    tokenizer, _ = load_tokenizer(config.data.tokenizer)
    config = complete_config(config, tokenizer)      # sizes from the tokenizer and the data
    model = build_model(config)                      # MODELS[config.kind]
    datasets = build_datasets(config)                # {"train", "val"} token clips
    loss_fn = LOSSES[config.kind]                    # (model, batch) -> (loss, metrics)
    evaluate = make_evaluator(config, datasets, tokenizer)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from video_tokenizer.model import VideoTokenizer

from dynamics_model.ar import ARDynamics
from dynamics_model.compressed_tokens import CompressedTokenClips
from dynamics_model.config import Config
from dynamics_model.evaluate import DynamicsEvaluator
from dynamics_model.evaluate_compressed import CompressedEvaluator
from dynamics_model.evaluate_lam import LatentActionEvaluator
from dynamics_model.lam import LatentActionModel
from dynamics_model.maskgit import MaskGITDynamics
from dynamics_model.tokens import TokenClips
from worldmodels.checkpoint import load_model

# kind -> (model class, the config section that sizes it)
MODELS = {
    "maskgit": (MaskGITDynamics, "maskgit"),
    "ar": (ARDynamics, "ar"),
    "lam": (LatentActionModel, "lam"),
}


def maskgit_loss(model: MaskGITDynamics, batch: dict):
    """MaskGIT cross-entropy on masked tokens of every frame after the first."""
    return model.masking_loss(batch["tokens"], batch["actions"])


def ar_loss(model: ARDynamics, batch: dict):
    """Next-token cross-entropy over every token of the clip (actions, if any, are inputs)."""
    return model.next_token_loss(batch["tokens"], batch.get("actions"))


def lam_loss(model: LatentActionModel, batch: dict):
    """Next-frame error through the latent action bottleneck (relative to copying)."""
    return model.loss(batch["frames"])


LOSSES = {"maskgit": maskgit_loss, "ar": ar_loss, "lam": lam_loss}
EVALUATORS = {"maskgit": DynamicsEvaluator, "ar": DynamicsEvaluator, "lam": LatentActionEvaluator}


def build_model(config: Config) -> nn.Module:
    """The model of `config.kind`, at the size of its section."""
    model_class, section = MODELS[config.kind]
    return model_class(getattr(config, section))


def load_run(path: Path | str, device: str = "cpu") -> tuple[nn.Module, Config, Path]:
    """A trained run's model, rebuilt from its checkpoint's config: (model, config, step dir)."""
    return load_model(path, Config, build_model, device=device)


def build_datasets(config: Config, progress: bool = True) -> dict[str, TokenClips]:
    """{"train", "val"}: training episodes and held-out episodes of the same games, as tokens
    (plus frames for the LAM, which reads pixels); latent token clips on compressed tokens."""
    data = config.data
    common = {"root": data.root or None, "progress": progress}
    if data.temporal_compression > 1:  # 1 + t*k frames -> 1 + k latents (complete_config)
        return {
            split: CompressedTokenClips(
                split, data.clip_len, data.tokenizer, data.atari_preset, **common
            )
            for split in ("train", "val")
        }
    return {
        split: TokenClips(
            split,
            data.clip_len,
            data.tokenizer,
            data.atari_preset,
            with_frames=config.kind == "lam",
            games=data.games or None,
            **common,
        )  # fmt: skip
        for split in ("train", "val")
    }


def make_evaluator(config: Config, datasets: dict, tokenizer: VideoTokenizer, **kwargs):
    """The evaluator of the run's kind (`EVALUATORS`); on temporally compressed tokens, the
    1X-challenge evaluator of the last latent frame."""
    if config.data.temporal_compression > 1:
        return CompressedEvaluator(config, datasets, tokenizer, **kwargs)
    return EVALUATORS[config.kind](config, datasets, tokenizer, **kwargs)
