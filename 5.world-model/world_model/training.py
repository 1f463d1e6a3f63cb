"""What train.py puts together: the frozen tokenizer, the windows, the clips, the model, the
loss the shared trainer calls and the cheap teacher-forced evaluation.

    tokenizer = load_frozen_tokenizer(tokenizer_name(config), device,
                                      TOKENIZER_KINDS[config.kind])     # chapter 3, frozen
    windows = load_split_windows(config.data, ("train", "val"))
    motion_tokenizer = fit_motion_tokenizer(windows["train"], bins)      # train only
    clips = build_clips(config, windows, tokenizer, motion_tokenizer)  # {"train", "val"}
    config = complete_config(config, tokenizer, motion_tokenizer,
                             **train_fit(config, clips, tokenizer))  # DiT: the latent scale
    model = build_model(config)     # TENSFormer | chapter 2's ARDynamics | MaskGITWorld | DiT
    loss_fn = loss_for(config, tokenizer)           # (model, batch) -> (loss, metrics)
    evaluate = evaluator_for(config, tokenizer, clips["val"])

The evaluation is teacher-forced (the true coarser scales and past frames as inputs): the
future frames' scene cross-entropy and token accuracy, and the motion head's (TENSFormer
only: the AR baseline is given its motions), on a fixed set of val clips; for MaskGIT, the
cross-entropy and accuracy on the masked future tokens of a fixed, seeded corruption
(`maskgit_world.MaskGITEvaluator`); for the DiT, the epsilon MSE at a fixed, seeded t and
noise (`dit_world.DiTEvaluator`). Forecasts by generation and the benchmark's scores belong
to validate.py.

Shapes: B batch, T frames, L flattened sequence length of one frame (its tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from dynamics_model.ar import ARDynamics
from occupancy_tokenizer.ego import EgoMotionTokenizer
from occupancy_tokenizer.pretrained import load_tokenizer
from torch import nn

from world_model.ar_baseline import ARTeacherForcedEvaluator, make_ar_loss
from world_model.config import Config
from world_model.dit import DiT
from world_model.dit_world import DiTEvaluator, make_dit_loss
from world_model.latent_clips import LatentClips, evenly_spaced, fit_latent_scale
from world_model.lidar_data import (
    LidarClips,
    SplitPoses,
    cached_lidar_ids,
    lidar_sweeps,
    load_lidar_tokenizer,
)
from world_model.lidar_world import LidarMaskGITEvaluator, make_lidar_loss
from world_model.maskgit_world import MaskGITEvaluator, MaskGITWorld, make_maskgit_loss
from world_model.synthetic import synthetic_windows
from world_model.tens_loss import tensformer_loss
from world_model.tensformer import TENSFormer
from world_model.token_data import ClipEvaluator, TokenClips, fit_motion_tokenizer
from world_model.windows import ForecastWindows, load_windows

EVAL_KEYS = ("scene_ce", "scene_accuracy", "motion_ce", "motion_accuracy")


NEEDS = {  # chapter 3's tokenizer kind -> (who reads it, what it is, an example)
    "multiscale": ("the TENSFormer", "multi-scale", "multiscale-debug-znorm"),
    "scene": ("the AR baseline", "single-scale scene (VQ or FSQ)", "scene-debug"),
    "4d": ("the DiT world model", "4D (spatio-temporal)", "4d-debug-t2"),
}


def load_frozen_tokenizer(name: str, device: str | torch.device = "cpu",
                          kind: str = "multiscale", reader: str | None = None
                          ) -> nn.Module:  # fmt: skip
    """Chapter 3's tokenizer of `kind` (multiscale: the TENSFormer's; scene: the AR baseline's
    and MaskGIT's, one h x w grid of tokens a frame; 4d: the DiT's) from a pretrained name or a
    run/export folder, in eval mode with no gradients, built without touching the global RNG
    (so a run's model initialisation does not depend on whether the tokenizer was loaded
    first). `reader` names the model in the error (default: NEEDS' reader of `kind`). Kind
    "lidar": chapter 4's LiDAR tokenizer (`lidar_data.load_lidar_tokenizer`)."""
    if kind == "lidar":
        return load_lidar_tokenizer(name, device)
    if kind not in NEEDS:
        raise ValueError(f"kind must be one of {sorted(NEEDS)}, got {kind!r}")
    with torch.random.fork_rng(devices=[]):
        tokenizer, tok_config = load_tokenizer(name, device)
    got = tok_config.kind
    if got == "scene" and tok_config.scene.quantizer == "multiscale":
        got = "scene with a multi-scale quantizer"
    if got != kind:
        default_reader, wanted, example = NEEDS[kind]
        reader = reader or default_reader
        raise ValueError(
            f"tokenizer {name!r} is a {got!r} tokenizer; {reader} needs chapter 3's {wanted} "
            f"one (kind {kind!r}, e.g. {example})"
        )
    return tokenizer.requires_grad_(False)


def load_split_windows(data, splits: Sequence[str]) -> dict[str, ForecastWindows]:
    """{split: ForecastWindows} of the driving preset (generated on first use), or of the
    synthetic streets (`data.preset == "synthetic"`)."""
    if data.preset == "synthetic":
        return {split: synthetic_windows(split) for split in splits}
    return {split: load_windows(split, data.preset, root=data.root or None) for split in splits}


def load_split_data(config: Config, splits: Sequence[str]) -> dict:
    """What the run's kind reads of each split: the occupancy windows (`load_split_windows`),
    or for lidar-maskgit chapter 4's sweeps of the same driving sequences."""
    if config.kind == "lidar-maskgit":
        data = config.data
        return {split: lidar_sweeps(split, data.preset, data.root) for split in splits}
    return load_split_windows(config.data, splits)


def fit_motion(config: Config, data: dict) -> EgoMotionTokenizer:
    """The ego-motion bins, fit on the training split's poses only."""
    train, m = data["train"], config.motion
    if config.kind == "lidar-maskgit":  # the sweeps' poses are the same sequences' poses
        train = SplitPoses("train", train.poses)
    return fit_motion_tokenizer(train, m.bins, m.coverage)


def build_clips(config: Config, windows: dict[str, ForecastWindows], tokenizer: nn.Module,
                motion_tokenizer: EgoMotionTokenizer, progress: bool = True
                ) -> dict[str, TokenClips | LatentClips]:  # fmt: skip
    """{split: TokenClips}: the (cached) scene tokens and the train-fit motion tokens; for the
    DiT {split: LatentClips}: the (cached) 4D code ids of every training window and of the
    `eval_clips` evenly spaced windows of another split (all its evaluation reads)."""
    if config.kind == "dit":
        return {split: latent_clips(config, w, tokenizer, motion_tokenizer, progress)
                for split, w in windows.items()}  # fmt: skip
    if config.kind == "lidar-maskgit":  # `windows` holds chapter 4's sweeps
        data = config.data
        return {split: LidarClips(split, sweeps, cached_lidar_ids(
                    tokenizer, sweeps, split, data.cache, data.encode_batch, progress),
                    motion_tokenizer) for split, sweeps in windows.items()}  # fmt: skip
    return {
        split: TokenClips.from_windows(
            w, tokenizer, motion_tokenizer, config.data.cache, config.data.encode_batch, progress
        )  # fmt: skip
        for split, w in windows.items()
    }


def latent_clips(config: Config, windows: ForecastWindows, tokenizer: nn.Module,
                 motion_tokenizer: EgoMotionTokenizer, progress: bool = True
                 ) -> LatentClips:  # fmt: skip
    """The DiT's clips of one split: every window of the training split, the `eval_clips`
    evenly spaced windows (the evaluation's) of any other."""
    data = config.data
    picks = None if windows.split == "train" else evenly_spaced(len(windows), data.eval_clips)
    return LatentClips.from_windows(windows, tokenizer, motion_tokenizer, picks, data.cache,
                                    data.encode_batch, progress)  # fmt: skip


def train_fit(config: Config, clips: dict, tokenizer: nn.Module) -> dict:
    """What `complete_config` takes from the training clips beyond the motion bins: the DiT's
    latent scale (1 / std of the training code vectors); nothing for the other kinds."""
    if config.kind != "dit":
        return {}
    return {"latent_scale": fit_latent_scale(clips["train"], tokenizer.quantizer.codebook.weight)}


def build_model(config: Config) -> TENSFormer | ARDynamics | MaskGITWorld | DiT:
    """The model of a completed config (derived fields filled by `complete_config`): the
    TENSFormer, chapter 2's ARDynamics for kind ar, the MaskGIT world model for maskgit, dit.py's
    DiT (its config a DiTWorldConfig) for dit."""
    if config.kind == "dit":
        return DiT(config.dit)
    if config.kind == "maskgit":
        return MaskGITWorld(config.maskgit)
    if config.kind == "lidar-maskgit":
        return MaskGITWorld(config.lidar)
    return ARDynamics(config.ar) if config.kind == "ar" else TENSFormer(config.model)


def loss_for(config: Config, tokenizer: nn.Module):
    """The trainer's `loss_fn` of the run's kind (TENSFormer and AR: the past frames are
    context, not scored; MaskGIT: Algorithm 1's objective mix; DiT: the epsilon MSE)."""
    if config.kind == "dit":
        return make_dit_loss(tokenizer.quantizer.codebook.weight, config.dit.schedule.build())
    if config.kind == "maskgit":
        return make_maskgit_loss()
    if config.kind == "lidar-maskgit":  # one 4D-Occ protocol per batch
        return make_lidar_loss()
    return make_ar_loss() if config.kind == "ar" else make_loss(tokenizer.quantizer)


def evaluator_for(config: Config, tokenizer: nn.Module, clips: TokenClips):
    """The teacher-forced evaluation of the run's kind on the fixed clips of `clips`."""
    data = config.data
    if config.kind == "dit":
        return DiTEvaluator(clips, tokenizer.quantizer.codebook.weight,
                            config.dit.schedule.build(), data.eval_clips, data.eval_batch,
                            seed=config.run.seed)  # fmt: skip
    if config.kind == "ar":
        return ARTeacherForcedEvaluator(clips, data.eval_clips, data.eval_batch)
    if config.kind == "maskgit":
        return MaskGITEvaluator(clips, data.eval_clips, data.eval_batch, seed=config.run.seed)
    if config.kind == "lidar-maskgit":
        return LidarMaskGITEvaluator(clips, data.eval_clips, data.eval_batch, seed=config.run.seed)
    return TeacherForcedEvaluator(tokenizer.quantizer, clips, data.eval_clips, data.eval_batch)


def make_loss(quantizer: nn.Module):
    """The trainer's `loss_fn(model, batch) -> (loss, metrics)`: teacher-forced CE on the
    future frames (`tens_loss.tensformer_loss`); the frozen quantizer is closed over, not a
    submodule, so the optimizer never sees it."""

    def loss_fn(model: TENSFormer, batch: dict):
        return tensformer_loss(model, quantizer, batch["ids"], batch["motions"])  # (B, T, L)

    return loss_fn


class TeacherForcedEvaluator(ClipEvaluator):
    """`evaluate(model, step) -> {"val_scene_ce", "val_scene_accuracy", "val_motion_ce",
    "val_motion_accuracy"}` of a TENSFormer on `count` fixed, evenly spaced clips of a split,
    each clip weighing the same."""

    def __init__(self, quantizer: nn.Module, clips: TokenClips, count: int = 8,
                 batch_size: int = 2, prefix: str = "val"):  # fmt: skip
        def loss(model, ids_BTL, motions_Bt):
            return tensformer_loss(model, quantizer, ids_BTL, motions_Bt)

        super().__init__(loss, EVAL_KEYS, clips, count, batch_size, prefix)
        self.quantizer = quantizer
