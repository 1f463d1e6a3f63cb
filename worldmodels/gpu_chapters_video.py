"""`gpu_check.py`'s plans for the video chapters: 1 (the video tokenizer) and 2 (MaskGIT
dynamics). Each chapter package is imported inside its plan, so that `worldmodels` never
imports a chapter at import time, and a chapter that fails to import fails its phase only.

The data needs no extra package: chapter 1 trains on `MovingSprites` (its `sprites` source);
chapter 2 on the same sprites, tokenised by chapter 1's committed tokenizer, with the
sprite's moves as actions (Atari needs ale-py, so chapter 2's Atari evaluator is not run:
its own teacher-forced CE and rollout pieces score the sprites instead).

Shapes: B batch (clips), T frames, C, H, W pixels, h, w token-grid height and width.
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from torch.utils.data import Dataset

from worldmodels.config import override
from worldmodels.gpu_phases import Context, Plan, bench_row, chapter_script

# --tiny: a few steps of a small model (the chapter's debug preset, smaller batches)
TINY_1 = {"run.batch_size": 4, "data.eval_clips": 8}
TINY_2 = {"maskgit.dim": 32, "maskgit.depth": 1, "maskgit.heads": 2, "run.batch_size": 4,
          "data.eval_clips": 8, "data.rollout_clips": 4, "sample.maskgit_steps": 2}  # fmt: skip


def chapter1(ctx: Context, work: Path) -> Plan:
    """The video tokenizer on moving sprites; its benchmark is chapter 1's benchmark.py."""
    from video_tokenizer.config import PRESETS
    from video_tokenizer.data import build_datasets
    from video_tokenizer.evaluate import Evaluator
    from video_tokenizer.model import VideoTokenizer, loss_fn

    sizes = TINY_1 if ctx.tiny else {}
    config = override(PRESETS[ctx.preset](), {**sizes, "data.source": "sprites"})
    script = chapter_script("1.video-tokenizer", "benchmark")

    def bench(run: dict) -> dict:
        return script.benchmark_preset(ctx.preset, ctx.device, ctx.bench_steps,
                                       ctx.bench_warmup, {**sizes, **run})  # fmt: skip

    def evaluate(model, datasets, out_dir: Path) -> dict:
        return Evaluator(datasets, config.data.eval_clips, out_dir)(model, 0)

    return Plan(config, lambda: VideoTokenizer(config.model), loss_fn,
                lambda: build_datasets(config, progress=False), bench, evaluate)  # fmt: skip


class StackedClips(Dataset):
    """Items {key: tensor[i]} of stacked tensors, all with the same first size."""

    def __init__(self, **tensors: torch.Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.tensors.items()}


def sprite_tokens(tokenizer, clips: int, clip_len: int, seed: int, frames: bool) -> StackedClips:
    """Moving-sprite clips as chapter 1's tokens, each frame encoded on its own (as chapter 2
    tokenises Atari), with the sprite's moves as the actions."""
    from dynamics_model.tokens import tokenize_frames

    from worldmodels.data.synthetic import MovingSprites

    sprites = MovingSprites(clips, clip_len, size=tokenizer.config.image_size, seed=seed)
    items = [sprites[i] for i in range(clips)]
    pixels = torch.stack([item["frames"] for item in items])  # (B, T, C, H, W)
    ids = tokenize_frames(tokenizer, rearrange(pixels, "b t c h w -> (b t) c h w"))
    tokens = rearrange(ids, "(b t) h w -> b t h w", b=clips)  # (B, T, h, w)
    actions = torch.stack([item["actions"] for item in items])  # (B, T)
    extra = {"frames": pixels} if frames else {}
    return StackedClips(tokens=tokens, actions=actions, **extra)


def chapter2(ctx: Context, work: Path) -> Plan:
    """MaskGIT dynamics on sprite tokens; no benchmark.py, so timed here with the trainer's
    step (`bench_row`) on random tokens of the preset's shape."""
    from dynamics_model.build import LOSSES, build_model
    from dynamics_model.config import PRESETS, complete_config
    from dynamics_model.tokens import load_tokenizer

    tokenizer, _ = load_tokenizer("", ctx.device)  # chapter 1's committed tokenizer
    config = complete_config(override(PRESETS[ctx.preset](), TINY_2 if ctx.tiny else {}),
                             tokenizer)  # fmt: skip
    loss_fn = LOSSES[config.kind]
    T, (h, w) = config.data.clip_len, config.maskgit.token_grid

    def make_batch(cfg) -> dict:
        B = cfg.run.batch_size
        tokens = torch.randint(cfg.maskgit.vocab_size, (B, T, h, w), device=ctx.device)
        actions = torch.randint(cfg.maskgit.num_actions, (B, T), device=ctx.device)
        return {"tokens": tokens, "actions": actions}

    def bench(run: dict) -> dict:
        cfg = override(config, run)
        rates = lambda c, s: {"clips_per_s": round(c.run.batch_size / s, 1),
                              "tokens_per_s": round(c.run.batch_size * T * h * w / s)}  # fmt: skip
        return bench_row(cfg, lambda: build_model(cfg), loss_fn, lambda: make_batch(cfg),
                         ctx.device, ctx.bench_steps, ctx.bench_warmup, rates)  # fmt: skip

    def datasets() -> dict:
        train, val = (8, 4) if ctx.tiny else (1024, 64)
        return {"train": sprite_tokens(tokenizer, train, T, 0, frames=False),
                "val": sprite_tokens(tokenizer, val, T, 1, frames=True)}  # fmt: skip

    def evaluate(model, data, out_dir: Path) -> dict:
        return score_dynamics(model, data["val"], tokenizer, config)

    plan = Plan(config, lambda: build_model(config), loss_fn, datasets, bench, evaluate)
    plan.notes.append(
        "data: moving sprites through chapter 1's tokenizer (Atari needs ale-py); "
        "evaluate: teacher-forced CE and rollout PSNR, not DynamicsEvaluator"
    )
    return plan


def score_dynamics(model, val: StackedClips, tokenizer, config) -> dict:
    """Chapter 2's own scoring pieces on held-out sprite clips: the last frame's temporally
    teacher-forced CE and accuracy (`scoring.clip_teacher_forced`), and a rollout from the
    context frames decoded by the tokenizer, its PSNR against the real frames."""
    from dynamics_model.rollout import rollout_model
    from dynamics_model.scoring import clip_teacher_forced
    from dynamics_model.tokens import decode_frames

    from worldmodels.metrics import psnr

    tokens, actions, frames = (val.tensors[k] for k in ("tokens", "actions", "frames"))
    nats, accuracy = clip_teacher_forced(model, "temporal", tokens, actions)
    past = config.data.context_frames
    generated = rollout_model(model, tokens[:, :past], actions, tokens.shape[1] - past,
                              config.sample)  # (B, horizon, h, w)  # fmt: skip
    decoded = decode_frames(tokenizer, generated)  # (B, horizon, C, H, W)
    return {"val_teacher_forced_ce_nats": nats.mean().item(),
            "val_token_accuracy": accuracy.mean().item(),
            "val_rollout_psnr": psnr(decoded, frames[:, past:]).mean().item()}  # fmt: skip
