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

`--field=voxels` renders, instead of the model's field, the sweep's own voxels as an opaque
field (alpha 1 inside an occupied voxel of the input grid, 0 elsewhere; skipping's mask is the
true voxels max-pooled, as in training): the sharpest field a tokenizer at this voxel size
could decode. There the depth error is the samplers' own, and it shows what the number of
samples per ray buys once the field is sharp (its times are the samplers' alone: a voxel
lookup costs far less than the model's trilinear read and MLP).

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
from lidar_tokenizer.rays import sample_depths
from lidar_tokenizer.references import occupancy_grid
from lidar_tokenizer.region import voxelize
from lidar_tokenizer.render import render_samples
from lidar_tokenizer.scoring import difference_intervals, frame_scores, stack, summary
from lidar_tokenizer.skipping import coarse_mask, skip_samples

from worldmodels.benchmark import report
from worldmodels.config import at_least, parse_command
from worldmodels.runtime import pick_device, seed_everything

KEYS = ("field", "mode", "samples", "ms_per_sweep", "rays_per_s", "speedup", "depth_l1",
        "l1_minus_baseline", "l1_change_pct")  # fmt: skip


@dataclass
class Options:
    """render_benchmark.py's options (`--key=value`; the run folder as a plain word)."""

    run: str = ""  # a run or checkpoint folder; "" = 4.lidar-tokenizer/pretrained/debug
    field: str = "model"  # model: the decoded field | voxels: the input's voxels, opaque
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
        if self.field not in ("model", "voxels"):
            raise ValueError(f"field must be model or voxels, got {self.field!r}")
        if not self.uniform and not self.skip:
            raise ValueError("nothing to render: give --uniform or --skip sample counts")
        if any(step < 0 for step in self.steps) or (self.skip and not self.steps):
            raise ValueError(f"steps must be 0 (exact) or lengths > 0 (m), got {self.steps}")


def modes(args: Options, baseline: int) -> dict[str, dict]:
    """{name: a renderer's keyword arguments (samples, skipping, step)}, the baseline first."""
    out = {f"uniform {baseline}": {"samples": baseline}}
    out |= {f"uniform {n}": {"samples": n} for n in args.uniform}
    for n in args.skip:
        for step in args.steps:
            how = "exact" if step == 0 else f"marching {step:g} m"
            out[f"skipping {n}, {how}"] = {"samples": n, "skipping": True, "step": step}
    return out


def model_renderer(model, frame, rays):
    """render(samples, skipping=False, step=0) -> depth (1, R): the decoded field."""
    decoded = model.decode(model.encode([frame.points.to(rays.far.device)]))

    def render(samples: int, skipping: bool = False, step: float = 0.0) -> torch.Tensor:
        model.render_config.skip_step = step
        return model.render(decoded, rays, skipping=skipping, samples=samples).depth

    return render


def voxel_renderer(model, frame, rays):
    """The same, for the sweep's own voxels as an opaque field (alpha 1 inside an occupied
    voxel) with the true voxels, max-pooled by `pool`, as skipping's mask."""
    grid, r = model.grid, model.render_config
    occupied = occupancy_grid(voxelize(frame.points, grid).coords, grid.shape).to(rays.far.device)
    lower, size = (rays.far.new_tensor(v) for v in (grid.lower, grid.voxel_size))
    cells = torch.tensor(grid.shape, device=rays.far.device)
    mask = coarse_mask(occupied, r.pool)  # (X / pool, Y / pool, Z)
    origins, dirs, far = rays.origins[0], rays.dirs[0], rays.far[0]  # (R, 3), (R, 3), (R,)

    def alpha(points: torch.Tensor) -> torch.Tensor:  # (n, S, 3) metres -> (n, S)
        index = ((points - lower) / size).floor().long()  # (n, S, 3) voxel indices
        inside = ((index >= 0) & (index < cells)).all(dim=-1)
        index = torch.minimum(index.clamp(min=0), cells - 1)
        return (occupied[index[..., 0], index[..., 1], index[..., 2]] & inside).float()

    def render(samples: int, skipping: bool = False, step: float = 0.0) -> torch.Tensor:
        if skipping:
            placed = skip_samples(mask, grid.bounds, origins, dirs, r.near, far, samples,
                                  step=step)  # fmt: skip
            return render_samples(alpha, origins, dirs, placed.samples, far,
                                  valid=placed.valid).depth[None]  # fmt: skip
        depths = sample_depths(r.near, far, samples, far.shape, device=far.device)  # (R, S)
        return render_samples(alpha, origins, dirs, depths, far).depth[None]

    return render


@torch.no_grad()
def measure(model, frames, wanted: dict, repeats: int, field: str) -> tuple[dict, dict]:
    """({mode: seconds}, {mode: per-frame score table}) over the frames."""
    seconds = dict.fromkeys(wanted, 0.0)
    rows = {name: [] for name in wanted}
    names = list(wanted)
    make = model_renderer if field == "model" else voxel_renderer
    for k, frame in enumerate(frames):
        rays, inside = frame_rays(model, frame)
        render = make(model, frame, rays)
        fastest = dict.fromkeys(names, float("inf"))
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotating order
                start = time.perf_counter()
                depth = render(**wanted[name])[0].float().cpu()
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
    seconds, tables = measure(model, frames, wanted, args.repeats, args.field)
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
            "field": args.field,
        })  # fmt: skip
    report(rows, KEYS, device, Path(args.jsonl or CHAPTER_DIR / "render_benchmarks.jsonl"))
    return rows


if __name__ == "__main__":
    main()
