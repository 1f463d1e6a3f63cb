"""Training throughput of the LiDAR tokenizer per preset: sweeps/s, rays/s and MFU.

    uv run 4.lidar-tokenizer/benchmark.py                       # debug (+ prototype on a GPU)
    uv run 4.lidar-tokenizer/benchmark.py --presets=debug,prototype --steps=5
    uv run 4.lidar-tokenizer/benchmark.py --run.compile=false --render.train_rays=2048

A step is the trainer's own step, `worldmodels.steps.optimizer_step` (forward under autocast,
CoPilot4D's loss over `train_rays` rays per sweep rendered twice (uniform samples and
samples inside the true voxels' cells), backward, gradient clipping, AdamW), on a batch of
the preset's shape: synthetic streets ray-cast with the preset's driving LiDAR (its beams,
columns and range), so a sweep has the driving world's number of rays. Data loading is left
out, so this measures the model, not the disk. MFU counts the FLOPs of one step
(`count_flops`: matmuls, convolutions, attention; not grid_sample's trilinear reads nor the
DDA) against the measured matmul peak of the device at that dtype. Results are printed as a
markdown table and appended to `4.lidar-tokenizer/benchmarks.jsonl`.

Options are `--key=value` (`--help` lists them). A key with a dot names a key of the preset's
config (`--run.compile=false`, `--model.dims=64,128`, as train.py spells it) and changes
every preset benchmarked; a key without a dot is one of this command's own options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from lidar_tokenizer.build import LOSS, build_model
from lidar_tokenizer.config import PRESETS
from lidar_tokenizer.data import synthetic_street

from worldmodels.benchmark import run_benchmark, time_training_step
from worldmodels.config import override
from worldmodels.data.driving.config import PRESETS as DRIVING
from worldmodels.runtime import move_to

HERE = Path(__file__).resolve().parent


@dataclass
class Options:
    """Training throughput of the LiDAR tokenizer per preset: sweeps/s, rays/s and MFU.

    uv run 4.lidar-tokenizer/benchmark.py [--key=value ...] [--section.key=value ...]"""

    presets: str = ""  # comma-separated; "" = debug on a CPU, debug,prototype on a GPU
    device: str = "auto"  # auto | cpu | cuda | mps
    steps: int = 5  # timed steps per preset
    warmup: int = 2  # untimed steps before the timed ones


def street_batch(config, device: torch.device) -> dict:
    """B synthetic streets seen by the preset's driving LiDAR: {"range", "dirs"}."""
    lidar = DRIVING[config.data.preset].lidar
    sensor = dict(beams=lidar.beams, azimuths=lidar.azimuths, elevation_up=lidar.elevation_up,
                  elevation_down=lidar.elevation_down)  # fmt: skip
    streets = [synthetic_street(seed, 1, sensor, lidar.max_range) for seed in
               range(config.run.batch_size)]  # fmt: skip
    batch = {"range": torch.cat([s[0] for s in streets]),
             "dirs": torch.stack([s[3] for s in streets])}  # fmt: skip
    return move_to(batch, device)


def benchmark_preset(name: str, device, steps: int, warmup: int, overrides) -> dict:
    config = override(PRESETS[name](), overrides)
    timing = time_training_step(
        config.run, lambda: build_model(config), LOSS,
        lambda: street_batch(config, device), device, warmup, steps,
    )  # fmt: skip
    B, rays = config.run.batch_size, config.render.train_rays
    samples = config.render.train_samples + config.render.train_skip_samples
    h, w = timing.model.token_grid
    return {
        "preset": name, "params_M": timing.params_M(),
        "batch": B, "grid": "x".join(map(str, config.model.grid)), "tokens": f"{h}x{w}",
        "rays_per_sweep": rays, "samples_per_ray": samples,
        **timing.columns(sweeps_per_s=round(B / timing.seconds, 2),
                         rays_per_s=round(B * rays / timing.seconds)),
    }  # fmt: skip


KEYS = ("preset", "params_M", "batch", "grid", "tokens", "rays_per_sweep", "samples_per_ray",
        "dtype", "compile", "steps_per_s", "sweeps_per_s", "rays_per_s", "step_GFLOP",
        "achieved_GFLOPs", "peak_GFLOPs", "MFU")  # fmt: skip


def main(argv=None) -> list[dict]:
    def measure(name, args, device, overrides):
        return benchmark_preset(name, device, args.steps, args.warmup, overrides)

    return run_benchmark(argv, Options, PRESETS, measure, KEYS, HERE / "benchmarks.jsonl")


if __name__ == "__main__":
    main()
