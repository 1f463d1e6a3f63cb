"""Training throughput of the video tokenizer per preset: clips/s, tokens/s and MFU.

    uv run 1.video-tokenizer/benchmark.py                        # debug (+ prototype on a GPU)
    uv run 1.video-tokenizer/benchmark.py --presets=debug,prototype --steps=5
    uv run 1.video-tokenizer/benchmark.py --run.compile=false --model.dim=128

A step is the trainer's own step, `worldmodels.steps.optimizer_step` (forward under autocast,
MSE + aux loss, scaled backward, gradient clipping, AdamW), on a batch of the preset's shape,
with the preset's autocast dtype and torch.compile setting; data loading is left out (random
frames), so this measures the model, not the disk. Results are printed as a markdown table
and appended to `1.video-tokenizer/benchmarks.jsonl`.

Options are `--key=value` (`--help` lists them). A key with a dot names a key of the preset's
config (`--run.compile=false`, `--model.patch=4`, as train.py spells it) and changes every
preset benchmarked, checked as train.py checks it; a key without a dot is one of this
command's own options.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from video_tokenizer.config import PRESETS
from video_tokenizer.model import VideoTokenizer, loss_fn

from worldmodels.benchmark import (
    count_flops,
    matmul_peak,
    preset_names,
    report,
    seconds_per_step,
    split_overrides,
)
from worldmodels.config import override, parse_command
from worldmodels.runtime import Runtime, pick_autocast_dtype, pick_device, seed_everything
from worldmodels.steps import LossModule, build_optimizer, optimizer_step

HERE = Path(__file__).resolve().parent


@dataclass
class Options:
    """Training throughput of the video tokenizer per preset: clips/s, tokens/s and MFU.

    uv run 1.video-tokenizer/benchmark.py [--key=value ...] [--section.key=value ...]
    A dotted key (--run.compile=false) changes that key of every preset benchmarked."""

    presets: str = ""  # comma-separated; "" = debug on a CPU, debug,prototype on a GPU
    device: str = "auto"  # auto | cpu | cuda | mps
    steps: int = 20  # timed steps per preset
    warmup: int = 3  # untimed steps before the timed ones


def benchmark_preset(
    name: str, device: torch.device, steps: int, warmup: int, overrides: dict
) -> dict:
    config = override(PRESETS[name](), overrides)
    seed_everything(0)
    runtime = Runtime(device, pick_autocast_dtype(device, config.run.dtype))
    dtype = runtime.dtype
    model = VideoTokenizer(config.model).to(device)
    optimizer = build_optimizer(model, config.run, device)
    step_module = LossModule(model, loss_fn)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)  # as the trainer makes it
    B, T, size = config.run.batch_size, config.data.clip_len, config.model.image_size
    batch = {"frames": torch.rand(B, T, 3, size, size, device=device)}

    def step():
        optimizer_step(step_module, optimizer, scaler, batch, config.run.grad_clip,
                       runtime.autocast())  # fmt: skip

    flops = count_flops(step)  # counted eagerly, before compiling: the same math either way
    if config.run.compile:
        model.compile()  # as the trainer does: the model's forward, compiled in place
    start = time.perf_counter()
    step()  # the first call pays for compilation, reported separately
    first_step = time.perf_counter() - start
    seconds = seconds_per_step(step, device, warmup, steps)
    peak = matmul_peak(device, dtype)
    T_latent, h, w = model.tokens_shape(T)
    return {
        "preset": name,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch": B,
        "frames": T,
        "image": size,
        "tokens_per_clip": T_latent * h * w,
        "dtype": str(dtype).replace("torch.", ""),
        "compile": config.run.compile,
        "steps_per_s": round(1 / seconds, 3),
        "clips_per_s": round(B / seconds, 1),
        "tokens_per_s": round(B * T_latent * h * w / seconds),
        "step_GFLOP": round(flops / 1e9, 2),
        "achieved_GFLOPs": round(flops / seconds / 1e9, 1),
        "peak_GFLOPs": round(peak / 1e9, 1),
        "MFU": round(flops / seconds / peak, 3),
        "first_step_s": round(first_step, 1),
    }


KEYS = ("preset", "params_M", "batch", "dtype", "compile", "steps_per_s", "clips_per_s",
        "tokens_per_s", "step_GFLOP", "achieved_GFLOPs", "peak_GFLOPs", "MFU")  # fmt: skip


def main(argv=None) -> list[dict]:
    own, overrides = split_overrides(sys.argv[1:] if argv is None else argv)
    args = parse_command(Options, own)
    device = pick_device(args.device)
    rows = []
    for name in preset_names(args.presets, PRESETS, device, overrides):
        rows.append(benchmark_preset(name, device, args.steps, args.warmup, overrides))
        print(json.dumps(rows[-1]))
    report(rows, KEYS, device, HERE / "benchmarks.jsonl")
    return rows


if __name__ == "__main__":
    main()
