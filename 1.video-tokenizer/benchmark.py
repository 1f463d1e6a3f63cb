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

from dataclasses import dataclass
from pathlib import Path

import torch
from video_tokenizer.config import PRESETS
from video_tokenizer.model import VideoTokenizer, loss_fn

from worldmodels.benchmark import (
    run_benchmark,
    split_overrides,  # noqa: F401  (the tests reach it here)
    time_training_step,
)
from worldmodels.config import override

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
    B, T, size = config.run.batch_size, config.data.clip_len, config.model.image_size
    timing = time_training_step(
        config.run, lambda: VideoTokenizer(config.model), loss_fn,
        lambda: {"frames": torch.rand(B, T, 3, size, size, device=device)},
        device, warmup, steps,
    )  # fmt: skip
    T_latent, h, w = timing.model.tokens_shape(T)
    return {
        "preset": name,
        "params_M": timing.params_M(),
        "batch": B,
        "frames": T,
        "image": size,
        "tokens_per_clip": T_latent * h * w,
        **timing.columns(
            clips_per_s=round(B / timing.seconds, 1),
            tokens_per_s=round(B * T_latent * h * w / timing.seconds),
        ),
    }


KEYS = ("preset", "params_M", "batch", "dtype", "compile", "steps_per_s", "clips_per_s",
        "tokens_per_s", "step_GFLOP", "achieved_GFLOPs", "peak_GFLOPs", "MFU")  # fmt: skip


def main(argv=None) -> list[dict]:
    def measure(name, args, device, overrides):
        return benchmark_preset(name, device, args.steps, args.warmup, overrides)

    return run_benchmark(argv, Options, PRESETS, measure, KEYS, HERE / "benchmarks.jsonl")


if __name__ == "__main__":
    main()
