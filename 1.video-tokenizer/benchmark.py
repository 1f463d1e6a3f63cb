"""Training throughput of the video tokenizer per preset: clips/s, tokens/s and MFU.

    uv run 1.video-tokenizer/benchmark.py                        # debug (+ prototype on a GPU)
    uv run 1.video-tokenizer/benchmark.py --presets debug,prototype --steps 5

A step is the real training step (forward, MSE + aux loss, backward, AdamW) on a batch of
the preset's shape, with the preset's autocast dtype and torch.compile setting; data loading
is left out (random frames), so this measures the model, not the disk. Results are printed
as a markdown table and appended to `1.video-tokenizer/benchmarks.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from video_tokenizer.experiment import PRESETS, loss_fn
from video_tokenizer.model import VideoTokenizer

from worldmodels.benchmark import count_flops, matmul_peak, seconds_per_step
from worldmodels.config import override
from worldmodels.runlog import git_commit, machine_description
from worldmodels.runtime import pick_autocast_dtype, pick_device, seed_everything
from worldmodels.trainer import LossModule, build_optimizer

HERE = Path(__file__).resolve().parent


def benchmark_preset(
    name: str, device: torch.device, steps: int, warmup: int, overrides: dict
) -> dict:
    config = override(PRESETS[name](), overrides)
    seed_everything(0)
    dtype = pick_autocast_dtype(device, config.run.dtype)
    model = VideoTokenizer(config.model).to(device)
    optimizer = build_optimizer(model, config.run, device)
    step_module = LossModule(model, loss_fn)
    B, T, size = config.run.batch_size, config.data.clip_len, config.model.image_size
    batch = {"frames": torch.rand(B, T, 3, size, size, device=device)}
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        with autocast:
            loss, _ = step_module(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

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


def markdown(rows: list[dict]) -> str:
    keys = [
        "preset",
        "params_M",
        "batch",
        "dtype",
        "compile",
        "steps_per_s",
        "clips_per_s",
        "tokens_per_s",
        "step_GFLOP",
        "achieved_GFLOPs",
        "peak_GFLOPs",
        "MFU",
    ]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets",
        default=None,
        help="comma-separated (default: debug on CPU; debug,prototype on GPU)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per preset")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every preset, e.g. --set compile=false",
    )
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    names = (
        args.presets.split(",")
        if args.presets
        else (["debug", "prototype"] if device.type == "cuda" else ["debug"])
    )
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; choose from {sorted(PRESETS)}")
    overrides = dict(item.split("=", 1) for item in args.set)
    rows = []
    for name in names:
        rows.append(benchmark_preset(name, device, args.steps, args.warmup, overrides))
        print(json.dumps(rows[-1]))
    machine = machine_description(device)
    print(f"\n{machine}, torch {torch.__version__}\n")
    print(markdown(rows))
    with (HERE / "benchmarks.jsonl").open("a") as f:
        for row in rows:
            record = {
                "machine": machine,
                "host": platform.node(),
                "commit": git_commit(),
                "date": time.strftime("%Y-%m-%d"),
                **row,
            }
            f.write(json.dumps(record) + "\n")
    return rows


if __name__ == "__main__":
    main()
