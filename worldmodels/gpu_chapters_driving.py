"""`gpu_check.py`'s plans for the driving chapters: 3 (occupancy tokenizer), 4 (LiDAR
tokenizer) and 5 (the TENSFormer world model). Each chapter package is imported inside its
plan, so `worldmodels` imports no chapter at import time.

The data is each chapter's synthetic source (tiny streets made from seeds in milliseconds:
`--data.preset=synthetic` of chapters 3 and 5, `--data.source=synthetic` of chapter 4), so
no driving data is generated. The benchmarks time the preset's own grid (chapters 3 and 4
through their benchmark.py; chapter 5 at its committed multi-scale tokenizer's L = 1365
tokens a frame); the training phase trains the preset's model on the synthetic grid.

Shapes: B batch (clips), T frames, L flattened sequence length of one frame.
"""

from __future__ import annotations

from pathlib import Path

import torch

from worldmodels.config import override
from worldmodels.gpu_phases import Context, Plan, bench_row, chapter_script

TINY_3 = {"scene.channels": 8, "run.batch_size": 4, "data.eval_frames": 8}
TINY_4 = {
    "data.source": "synthetic",
    "region_xy": 16.0,
    "model.grid": (32, 32, 8),
    "dims": (8, 16),
    "depths": (1, 1),
    "decoder_depths": (1, 1),
    "heads": (1, 2),
    "window": 4,
    "patch": 2,
    "point_dim": 4,
    "bev_dim": 8,
    "code_dim": 8,
    "codebook_size": 32,
    "dead_after": 4,
    "restart_every": 4,
    "grid_levels": 4,
    "grid_channels": 4,
    "occupancy_factor": 1,
    "train_rays": 128,
    "train_samples": 8,
    "train_skip_samples": 4,
    "eval_samples": 16,
    "skip_samples": 8,
    "pool": 4,
    "batch_size": 4,
    "eval_sequences": 2,
}  # fmt: skip  (chapter 4's tests/test_scripts.py sizes)
TINY_5 = {"model.dim": 32, "model.depth": 2, "model.heads": 4, "bins": (3, 3, 3),
          "batch_size": 4, "eval_clips": 4}  # fmt: skip
BENCH_TOKENIZER_5 = "multiscale-debug-znorm"  # chapter 3's committed multi-scale tokenizer


def chapter3(ctx: Context, work: Path) -> Plan:
    """The scene tokenizer (kind=scene) on synthetic streets; chapter 3's benchmark.py times
    the preset's grid (prototype: 200 x 200 x 16)."""
    from occupancy_tokenizer import build as chapter
    from occupancy_tokenizer.build import build_datasets, build_model, make_evaluator
    from occupancy_tokenizer.config import PRESETS, complete_config, on_data

    sizes = TINY_3 if ctx.tiny else {}
    config = complete_config(override(on_data(PRESETS[ctx.preset](), "synthetic"), sizes))
    bench_sizes = {**sizes, "data.preset": "synthetic"} if ctx.tiny else sizes
    script = chapter_script("3.occupancy-tokenizer", "benchmark")

    def bench(run: dict) -> dict:
        return script.benchmark_preset(ctx.preset, config.kind, ctx.device, ctx.bench_steps,
                                       ctx.bench_warmup, {**bench_sizes, **run})  # fmt: skip

    def evaluate(model, datasets, out_dir: Path) -> dict:
        return make_evaluator(config, datasets, out_dir=out_dir)(model, 0)

    return Plan(config, lambda: build_model(config), chapter.make_loss(config),
                lambda: build_datasets(config), bench, evaluate)  # fmt: skip


def chapter4(ctx: Context, work: Path) -> Plan:
    """The LiDAR tokenizer on synthetic streets; chapter 4's benchmark.py times the preset
    (prototype: 512 x 512 x 64 voxels, the driving paper preset's LiDAR)."""
    from lidar_tokenizer.build import LOSS, build_datasets, build_model, make_evaluator
    from lidar_tokenizer.config import PRESETS

    sizes = TINY_4 if ctx.tiny else {}
    config = override(PRESETS[ctx.preset](), {**sizes, "data.source": "synthetic"})
    script = chapter_script("4.lidar-tokenizer", "benchmark")

    def bench(run: dict) -> dict:
        return script.benchmark_preset(ctx.preset, ctx.device, ctx.bench_steps,
                                       ctx.bench_warmup, {**sizes, **run})  # fmt: skip

    def evaluate(model, datasets, out_dir: Path) -> dict:
        return make_evaluator(config, datasets, out_dir=out_dir)(model, 0)

    return Plan(config, lambda: build_model(config), LOSS, lambda: build_datasets(config),
                bench, evaluate)  # fmt: skip


def tiny_multiscale_tokenizer(folder: Path) -> Path:
    """An untrained multi-scale scene tokenizer (chapter 3's builder) on the 8 x 8 x 4
    synthetic grid, scales (1, 2, 4), 16 codes, exported as chapter 3 exports one
    (model.safetensors + config.json): the frozen tokenizer chapter 5 trains on here."""
    from occupancy_tokenizer.build import build_model
    from occupancy_tokenizer.config import Config, MultiScaleSection
    from safetensors.torch import save_file

    from worldmodels.checkpoint import write_json_atomic
    from worldmodels.config import to_dict

    config = Config(kind="multiscale", multiscale=MultiScaleSection(
        grid=(8, 8, 4), channels=8, channel_mults=(1, 2), latent_dim=4, codebook_size=16,
        scales=(1, 2, 4)))  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(config)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              folder / "model.safetensors")  # fmt: skip
    write_json_atomic(folder / "config.json", to_dict(config))
    return folder


def chapter5(ctx: Context, work: Path) -> Plan:
    """The TENSFormer (--kind=tensformer) on synthetic streets through a tiny frozen
    tokenizer; timed (no benchmark.py) with the trainer's step on random tokens at the
    committed multi-scale tokenizer's L = 1365 tokens a frame (--tiny: the tiny one's 21)."""
    from world_model.config import PRESETS, complete_config
    from world_model.token_data import fit_motion_tokenizer
    from world_model.training import (
        TeacherForcedEvaluator,
        build_clips,
        build_model,
        load_frozen_tokenizer,
        load_split_windows,
        make_loss,
    )

    tokenizer_dir = tiny_multiscale_tokenizer(work / "tiny-tokenizer")
    config = override(PRESETS[ctx.preset](), {
        **(TINY_5 if ctx.tiny else {}), "data.preset": "synthetic",
        "data.tokenizer": str(tokenizer_dir), "data.cache": str(work / "token-cache"),
    })  # fmt: skip
    tokenizer = load_frozen_tokenizer(config.data.tokenizer, ctx.device)
    windows = load_split_windows(config.data, ("train", "val"))
    motion = fit_motion_tokenizer(windows["train"], config.motion.bins, config.motion.coverage)
    config = complete_config(config, tokenizer.quantizer, motion)
    bench_tokenizer = tokenizer if ctx.tiny else load_frozen_tokenizer(BENCH_TOKENIZER_5,
                                                                       ctx.device)  # fmt: skip
    quantizer = bench_tokenizer.quantizer
    bench_config = complete_config(config, quantizer, motion)

    def make_batch(cfg) -> dict:
        B, T = cfg.run.batch_size, cfg.model.max_frames
        L = sum(side * side for side in cfg.model.scales)  # tokens of one frame, every scale
        ids = torch.randint(cfg.model.codebook_size, (B, T, L), device=ctx.device)
        motions = torch.randint(cfg.model.motion_vocab, (B, T - 1), device=ctx.device)
        return {"ids": ids, "motions": motions}

    def bench(run: dict) -> dict:
        cfg = override(bench_config, run)
        T, L = cfg.model.max_frames, sum(side * side for side in cfg.model.scales)
        rates = lambda c, s: {"clips_per_s": round(c.run.batch_size / s, 2),
                              "tokens_per_s": round(c.run.batch_size * T * L / s)}  # fmt: skip
        row = bench_row(cfg, lambda: build_model(cfg), make_loss(quantizer),
                        lambda: make_batch(cfg), ctx.device, ctx.bench_steps, ctx.bench_warmup,
                        rates)  # fmt: skip
        return {"tokens_per_frame": L, **row}

    def datasets() -> dict:
        return build_clips(config, windows, tokenizer, motion, progress=False)

    def evaluate(model, clips, out_dir: Path) -> dict:
        data = config.data
        return TeacherForcedEvaluator(tokenizer.quantizer, clips["val"], data.eval_clips,
                                      data.eval_batch)(model, 0)  # fmt: skip

    plan = Plan(config, lambda: build_model(config), make_loss(tokenizer.quantizer), datasets,
                bench, evaluate)  # fmt: skip
    plan.notes.append("train: synthetic streets through an untrained tiny multi-scale "
                      "tokenizer (L = 21); benchmark: random tokens at L = "
                      f"{sum(s * s for s in quantizer.scales)}")  # fmt: skip
    return plan
