"""Spatial skipping against uniform sampling: rendering time and depth L1 on the same rays.

    uv run 4.lidar-tokenizer/render_benchmark.py                 # pretrained/debug, every val sweep
    uv run 4.lidar-tokenizer/render_benchmark.py runs/4.lidar-tokenizer/debug --uniform=32,64
    uv run 4.lidar-tokenizer/render_benchmark.py --help          # every option, typed

Each validation sweep is encoded and decoded once; then every mode renders the sweep's
returned rays from that same decoded grid: uniform sampling at each count of `uniform`, and
spatial skipping at each count of `skip` with each way of finding the marked stretches in
`steps` (0: the exact cut at the coarse cells' faces, > 0: marching in pieces that long;
skipping.py). A render's time includes everything after the decoder: for skipping the
threshold, the pooling and the placement. The modes of one sweep run one after the other,
`repeats` times in a rotating order, and each keeps its fastest time (the least disturbed by
anything else on the machine); a mode's time is the sum over sweeps.

Each mode is compared with the baseline, the uniform render at the run's own `eval_samples`
(what validate.py calls "uniform"): speedup = baseline time / mode time, and the depth L1
difference (rays whose return lies in the region, as validate.py scores them) with a 95%
seeded bootstrap interval over sequences. The table is printed and appended to
`4.lidar-tokenizer/render_benchmarks.jsonl` with the machine and commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from lidar_tokenizer.build import build_datasets, load_run
from lidar_tokenizer.config import CHAPTER_DIR
from lidar_tokenizer.evaluate import driving_frames, frame_rays
from lidar_tokenizer.scoring import difference_intervals, frame_scores, stack, summary

from worldmodels.benchmark import report
from worldmodels.config import at_least, parse_command
from worldmodels.runtime import pick_device, seed_everything

KEYS = ("mode", "samples", "ms_per_sweep", "rays_per_s", "speedup", "depth_l1",
        "l1_minus_baseline", "l1_change_pct")  # fmt: skip


@dataclass
class Options:
    """render_benchmark.py's options (`--key=value`; the run folder as a plain word)."""

    run: str = ""  # a run or checkpoint folder; "" = 4.lidar-tokenizer/pretrained/debug
    uniform: tuple[int, ...] = (16, 32, 64)  # samples per ray of the uniform renders
    skip: tuple[int, ...] = (16,)  # samples per ray of the skipping renders
    steps: tuple[float, ...] = (0.0, 0.5)  # skipping's placement: 0 exact, > 0 marching (m)
    sequences: int = 0  # val sequences, evenly spread; 0 = every one
    frames: int = 2  # consecutive frames from the middle of each sequence
    repeats: int = 3  # renders of each sweep per mode; the fastest counts
    bootstrap: int = 1000  # bootstrap resamples of the sequences per interval
    device: str = "auto"
    jsonl: str = ""  # append the rows here; "" = 4.lidar-tokenizer/render_benchmarks.jsonl

    def __post_init__(self):
        at_least(self, 0, "sequences")
        at_least(self, 1, "frames", "repeats")
        at_least(self, 10, "bootstrap")
        if not self.uniform and not self.skip:
            raise ValueError("nothing to render: give --uniform or --skip sample counts")
        if any(step < 0 for step in self.steps) or (self.skip and not self.steps):
            raise ValueError(f"steps must be 0 (exact) or lengths > 0 (m), got {self.steps}")


def modes(args: Options, baseline: int) -> dict[str, dict]:
    """{name: model.render keyword arguments (+ "step" for skipping)}, the baseline first."""
    out = {f"uniform {baseline}": {"samples": baseline}}
    out |= {f"uniform {n}": {"samples": n} for n in args.uniform}
    for n in args.skip:
        for step in args.steps:
            how = "exact" if step == 0 else f"marching {step:g} m"
            out[f"skipping {n}, {how}"] = {"samples": n, "skipping": True, "step": step}
    return out


@torch.no_grad()
def measure(model, frames, wanted: dict, repeats: int) -> tuple[dict, dict]:
    """({mode: seconds}, {mode: per-frame score table}) over the frames."""
    seconds = dict.fromkeys(wanted, 0.0)
    rows = {name: [] for name in wanted}
    names = list(wanted)
    for k, frame in enumerate(frames):
        decoded = model.decode(model.encode([frame.points.to(next(model.parameters()).device)]))
        rays, inside = frame_rays(model, frame)
        fastest = dict.fromkeys(names, float("inf"))
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotating order
                kwargs = dict(wanted[name])
                model.render_config.skip_step = kwargs.pop("step", model.render_config.skip_step)
                start = time.perf_counter()
                depth = model.render(decoded, rays, **kwargs).depth[0].float().cpu()
                fastest[name] = min(fastest[name], time.perf_counter() - start)
                if r == 0:
                    rows[name].append(frame_scores(depth, frame.rays.depths, frame.rays.dirs,
                                                   inside, model.grid.bounds))  # fmt: skip
        for name in names:
            seconds[name] += fastest[name]
        print(f"\rsweep {k + 1}/{len(frames)}", end="", flush=True)
    print()
    return seconds, {name: stack(v) for name, v in rows.items()}


def main(argv=None) -> list[dict]:
    args = parse_command(Options, argv, positional="run")
    seed_everything(0)
    device = pick_device(args.device)
    model, config, _ = load_run(args.run or CHAPTER_DIR / "pretrained" / "debug", device)
    frames = driving_frames(build_datasets(config, ("val",))["val"], args.sequences,
                            args.frames, config.data.max_rays)  # fmt: skip
    wanted = modes(args, config.render.eval_samples)
    seconds, tables = measure(model, frames, wanted, args.repeats)
    base = next(iter(wanted))
    groups = [f.sequence for f in frames]
    rays = float(tables[base]["rays_all"].sum())
    rows = []
    for name, kwargs in wanted.items():
        l1 = summary(tables[name], "")["depth_l1"]
        diff = difference_intervals(tables[name], tables[base], groups, args.bootstrap)
        d = diff["depth_l1"]
        rows.append({
            "mode": name, "samples": kwargs["samples"],
            "ms_per_sweep": round(1000 * seconds[name] / len(frames), 1),
            "rays_per_s": round(rays / seconds[name]),
            "speedup": round(seconds[base] / seconds[name], 2), "depth_l1": round(l1, 3),
            "l1_minus_baseline": f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]",
            "l1_change_pct": round(100 * d.estimate / summary(tables[base], "")["depth_l1"], 1),
            "sweeps": len(frames), "run": str(args.run or "pretrained/debug"),
        })  # fmt: skip
    report(rows, KEYS, device, Path(args.jsonl or CHAPTER_DIR / "render_benchmarks.jsonl"))
    return rows


if __name__ == "__main__":
    main()
