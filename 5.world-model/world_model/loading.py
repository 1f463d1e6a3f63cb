"""A trained run of any kind, loaded for scoring (validate.py, the notebook): its model, its
frozen tokenizer, its train-fit motion bins and its forecaster at given sampling settings.

    run = load_world_model("runs/5.world-model/dit-debug", "cpu", Options(dit_steps=50))
    future = run.forecaster(past, past_poses, future_poses)     # (B, 6, X, Y, Z) uint8

A run that kept an average of its weights (`--ema_decay`, ema.safetensors) is scored with it:
that is what its evaluation used, and what OccSora samples with.

Shapes: B batch, X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer

from world_model.ar_baseline import ar_forecaster
from world_model.baselines import Codec, tokenizer_codec
from world_model.config import MODEL_NAMES, TOKENIZER_KINDS, Config, tokenizer_name
from world_model.dit_forecast import dit_forecaster, fourd_codec
from world_model.forecaster import tensformer_forecaster
from world_model.maskgit_forecast import maskgit_forecaster
from world_model.synthetic import synthetic_windows
from world_model.training import build_model, load_frozen_tokenizer
from world_model.windows import load_windows
from worldmodels.checkpoint import find_checkpoint, load_model
from worldmodels.ema import FILE as EMA_FILE


class WorldModel(NamedTuple):
    """A trained run, loaded: what scoring it needs."""

    model: torch.nn.Module
    config: Config
    step_dir: Path  # the checkpoint read
    tokenizer: torch.nn.Module  # its frozen scene (or 4D) tokenizer
    motion_tokenizer: EgoMotionTokenizer  # its train-fit motion bins
    forecaster: Callable  # the benchmark's Forecaster contract
    averaged: bool = False  # the weights are the run's EMA (ema.safetensors)


def split_windows(config: Config, split: str, stride: int = 1):
    """The run's windows of a split: its driving preset (every `stride`-th window), or the
    synthetic streets of the tests."""
    if config.data.preset == "synthetic":
        return synthetic_windows(split)
    return load_windows(split, config.data.preset, stride=stride, root=config.data.root or None)


def forecaster_for(model, config: Config, tokenizer, motion_tokenizer, args) -> Callable:
    """The run's kind's forecaster at the sampling settings of `args` (validate's Options);
    None for lidar-maskgit (its forecasts are scored by lidar_forecast.py, not the benchmark)."""
    if config.kind == "lidar-maskgit":
        return None
    if config.kind == "ar":
        return ar_forecaster(model, tokenizer, motion_tokenizer, args.temperature, args.top_p,
                             args.seed)  # fmt: skip
    if config.kind == "maskgit":  # all future frames in one run of Algorithm 2
        return maskgit_forecaster(model, tokenizer, motion_tokenizer, steps=args.maskgit_steps,
                                  guidance=args.guidance, temperature=args.temperature,
                                  seed=args.seed)  # fmt: skip
    if config.kind == "dit":  # all future frames in one DDIM run over the target clip
        return dit_forecaster(model, tokenizer, motion_tokenizer, steps=args.dit_steps,
                              guidance=args.guidance, seed=args.seed)  # fmt: skip
    return tensformer_forecaster(model, tokenizer, motion_tokenizer, args.temperature,
                                 args.top_k, args.top_p, args.seed)  # fmt: skip


def load_world_model(path, device, args) -> WorldModel:
    """A trained run with its frozen tokenizer (multi-scale for the TENSFormer, single-scale
    for the AR baseline and MaskGIT, 4D for the DiT), its train-fit motion bins as saved with
    the run, its averaged weights if it kept them, and its forecaster at the sampling settings
    of `args`."""
    averaged = (find_checkpoint(Path(path)) / EMA_FILE).exists()
    model, config, step_dir = load_model(path, Config, build_model, device=device, ema=averaged)
    tokenizer = load_frozen_tokenizer(tokenizer_name(config), device, TOKENIZER_KINDS[config.kind],
                                      MODEL_NAMES[config.kind])  # fmt: skip
    m = config.motion
    motion_tokenizer = EgoMotionTokenizer(m.low, m.high, m.bins)
    forecaster = forecaster_for(model, config, tokenizer, motion_tokenizer, args)
    return WorldModel(model, config, Path(step_dir), tokenizer, motion_tokenizer, forecaster,
                      averaged)  # fmt: skip


def ceiling_codec(run: WorldModel) -> Codec:
    """The benchmark's ceiling of a run: its frame tokenizer's round trip, or for the DiT the 4D
    tokenizer's round trip of each window's 6 future frames as one clip (`fourd_codec`)."""
    if run.config.kind == "dit":
        return fourd_codec(run.tokenizer)
    return tokenizer_codec(run.tokenizer)


def run_header(path, name: str, run: WorldModel, args) -> dict:
    """What a run's record starts with: which run, checkpoint, weights, kind, tokenizer,
    sampling settings (each kind's own) and the model's parameter count."""
    kind = run.config.kind
    sampling = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
                "seed": args.seed}  # fmt: skip
    if kind in ("maskgit", "lidar-maskgit"):  # its own settings (top_k, top_p unused)
        sampling = {"temperature": args.temperature, "steps": args.maskgit_steps,
                    "guidance": args.guidance, "seed": args.seed}  # fmt: skip
    if kind == "dit":  # DDIM, eta 0: no temperature
        sampling = {"steps": args.dit_steps, "guidance": args.guidance, "seed": args.seed}
    return {"run": str(path), "checkpoint": str(run.step_dir),
            "weights": "ema" if run.averaged else "trained",
            "kind": kind, "name": name, "tokenizer": tokenizer_name(run.config),
            "sampling": sampling, "stride": args.stride,
            "parameters": sum(p.numel() for p in run.model.parameters())}  # fmt: skip
