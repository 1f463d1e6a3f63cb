"""Training throughput of the occupancy tokenizers per preset: frames/s, tokens/s and MFU.

    uv run 3.occupancy-tokenizer/benchmark.py                      # debug (+ prototype on a GPU)
    uv run 3.occupancy-tokenizer/benchmark.py --kind=4d --presets=debug,prototype --steps=5
    uv run 3.occupancy-tokenizer/benchmark.py --run.compile=false --scene.channels=64

A step is the trainer's own step, `worldmodels.steps.optimizer_step` (forward under autocast,
OccWorld's loss: 10 CE + Lovasz-softmax + the quantizer's, scaled backward, gradient
clipping, AdamW), on a batch of the preset's shape, with the preset's autocast dtype and
torch.compile setting. The batch is synthetic streets at the preset's grid (as sparse as a
street, so Lovasz sorts what it sorts on real frames); data loading is left out, so this
measures the model, not the disk. MFU counts the FLOPs of one step (`count_flops`) against
the measured matmul peak of the device at that dtype. Results are printed as a markdown table
and appended to `3.occupancy-tokenizer/benchmarks.jsonl`.

Options are `--key=value` (`--help` lists them). A key with a dot names a key of the preset's
config (`--run.compile=false`, `--scene.channels=64`, as train.py spells it) and changes every
preset benchmarked; a key without a dot is one of this command's own options.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from occupancy_tokenizer.build import LOSSES, build_model
from occupancy_tokenizer.config import KINDS, PRESETS, clip_frames, complete_config, data_grid
from occupancy_tokenizer.data import synthetic_sequence
from occupancy_tokenizer.evaluate import tokens_per_frame

from worldmodels.benchmark import (
    count_flops,
    matmul_peak,
    preset_names,
    report,
    seconds_per_step,
    split_overrides,
)
from worldmodels.config import override, parse_command, require
from worldmodels.runtime import Runtime, pick_autocast_dtype, pick_device, seed_everything
from worldmodels.steps import LossModule, build_optimizer, optimizer_step

HERE = Path(__file__).resolve().parent


@dataclass
class Options:
    """Training throughput of an occupancy tokenizer per preset: frames/s, tokens/s and MFU.

    uv run 3.occupancy-tokenizer/benchmark.py [--key=value ...] [--section.key=value ...]"""

    kind: str = "scene"  # scene | 4d | multiscale
    presets: str = ""  # comma-separated; "" = debug on a CPU, debug,prototype on a GPU
    device: str = "auto"  # auto | cpu | cuda | mps
    steps: int = 10  # timed steps per preset
    warmup: int = 2  # untimed steps before the timed ones

    def __post_init__(self):
        require(self, "kind", self.kind in KINDS, f"one of {KINDS}")


def street_batch(config, device: torch.device) -> dict:
    """A batch of synthetic streets at the config's grid: frames (B, X, Y, Z) or clips."""
    B, frames = config.run.batch_size, clip_frames(config)
    grids = [synthetic_sequence(seed, frames, data_grid(config))[0] for seed in range(B)]
    grid = torch.stack(grids)  # (B, T, X, Y, Z)
    if frames == 1:
        grid = rearrange(grid, "b 1 x y z -> b x y z")
    return {"occupancy": grid.to(device)}


def benchmark_preset(name: str, kind: str, device, steps: int, warmup: int, overrides) -> dict:
    config = complete_config(override(dataclasses.replace(PRESETS[name](), kind=kind), overrides))
    seed_everything(0)
    runtime = Runtime(device, pick_autocast_dtype(device, config.run.dtype))
    model = build_model(config).to(device)
    optimizer = build_optimizer(model, config.run, device)
    step_module = LossModule(model, LOSSES[kind])
    scaler = torch.amp.GradScaler(enabled=runtime.dtype == torch.float16)
    batch = street_batch(config, device)

    def step():
        optimizer_step(step_module, optimizer, scaler, batch, config.run.grad_clip,
                       runtime.autocast())  # fmt: skip

    flops = count_flops(step)  # counted eagerly, before compiling: the same math either way
    if config.run.compile:
        model.compile()
    start = time.perf_counter()
    step()  # the first call pays for compilation, reported separately
    first_step = time.perf_counter() - start
    seconds = seconds_per_step(step, device, warmup, steps)
    peak = matmul_peak(device, runtime.dtype)
    frames = config.run.batch_size * clip_frames(config)
    return {
        "preset": name, "kind": kind,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch": config.run.batch_size, "grid": "x".join(map(str, data_grid(config))),
        "tokens_per_frame": tokens_per_frame(model),
        "dtype": str(runtime.dtype).replace("torch.", ""), "compile": config.run.compile,
        "steps_per_s": round(1 / seconds, 3), "frames_per_s": round(frames / seconds, 1),
        "tokens_per_s": round(frames * tokens_per_frame(model) / seconds),
        "step_GFLOP": round(flops / 1e9, 2), "achieved_GFLOPs": round(flops / seconds / 1e9, 1),
        "peak_GFLOPs": round(peak / 1e9, 1), "MFU": round(flops / seconds / peak, 3),
        "first_step_s": round(first_step, 1),
    }  # fmt: skip


KEYS = ("preset", "kind", "params_M", "batch", "grid", "dtype", "compile", "steps_per_s",
        "frames_per_s", "tokens_per_s", "step_GFLOP", "achieved_GFLOPs", "peak_GFLOPs",
        "MFU")  # fmt: skip


def main(argv=None) -> list[dict]:
    own, overrides = split_overrides(sys.argv[1:] if argv is None else argv)
    args = parse_command(Options, own)
    device = pick_device(args.device)
    rows = []
    for name in preset_names(args.presets, PRESETS, device, overrides):
        rows.append(benchmark_preset(name, args.kind, device, args.steps, args.warmup, overrides))
        print(json.dumps(rows[-1]))
    report(rows, KEYS, device, HERE / "benchmarks.jsonl")
    return rows


if __name__ == "__main__":
    main()
