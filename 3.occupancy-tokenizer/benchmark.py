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
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from occupancy_tokenizer.build import build_model, make_loss
from occupancy_tokenizer.config import KINDS, PRESETS, clip_frames, complete_config, data_grid
from occupancy_tokenizer.data import synthetic_sequence
from occupancy_tokenizer.evaluate import tokens_per_frame

from worldmodels.benchmark import run_benchmark, time_training_step
from worldmodels.config import override, require

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
    timing = time_training_step(
        config.run, lambda: build_model(config), make_loss(config),
        lambda: street_batch(config, device), device, warmup, steps,
    )  # fmt: skip
    model, frames = timing.model, config.run.batch_size * clip_frames(config)
    return {
        "preset": name, "kind": kind, "params_M": timing.params_M(),
        "batch": config.run.batch_size, "grid": "x".join(map(str, data_grid(config))),
        "tokens_per_frame": tokens_per_frame(model),
        **timing.columns(frames_per_s=round(frames / timing.seconds, 1),
                         tokens_per_s=round(frames * tokens_per_frame(model) / timing.seconds)),
    }  # fmt: skip


KEYS = ("preset", "kind", "params_M", "batch", "grid", "dtype", "compile", "steps_per_s",
        "frames_per_s", "tokens_per_s", "step_GFLOP", "achieved_GFLOPs", "peak_GFLOPs",
        "MFU")  # fmt: skip


def main(argv=None) -> list[dict]:
    def measure(name, args, device, overrides):
        return benchmark_preset(name, args.kind, device, args.steps, args.warmup, overrides)

    return run_benchmark(argv, Options, PRESETS, measure, KEYS, HERE / "benchmarks.jsonl")


if __name__ == "__main__":
    main()
