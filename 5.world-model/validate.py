"""Score trained world models on chapter 5's benchmark: forecasts, control and planning.

    uv run 5.world-model/validate.py                         # runs/5.world-model/tensformer-debug
    uv run 5.world-model/validate.py RUN [RUN ...] --splits=val --stride=2
    uv run 5.world-model/validate.py runs/5.world-model/tensformer-debug runs/5.world-model/ar-debug
    uv run 5.world-model/validate.py RUN --guidance=2 --maskgit_steps=10
    uv run 5.world-model/validate.py runs/5.world-model/dit-debug --dit_steps=50 --guidance=1
    uv run 5.world-model/validate.py runs/5.world-model/lidar-maskgit-debug --temperature=0
    uv run 5.world-model/validate.py --help                  # every option, typed

For each run (a run folder, a checkpoint or an export), on every window of each split (or
every `stride`-th), with the run's own frozen tokenizer and train-fit motion bins, and its
averaged weights if it kept them (`--ema_decay`; `world_model/loading.py`):

- **Forecast** conditioned on the true future ego motion, scored beside copy_last, warp_last
  and the run tokenizer's ceiling (`run_benchmark`): mIoU and IoU at 1, 2, 3 s and their mean,
  both conventions, visible region, per class, with 95% intervals over sequences, and the
  paired differences `<model>_minus_copy_last`, `<model>_minus_warp_last`.
- **Control** (`--control`): the same model told another trajectory (`stop`: the ego stands
  at its last pose), scored against what happened: `<model>_minus_<model>_stop` is delta-mIoU.
- **Planning** (`--plan`): the model draws its own motion tokens; L2 of the integrated path at
  1, 2, 3 s against the true one, beside a constant-velocity plan (`planning.py`).
- **Speed** (`--speed`): milliseconds per forecast frame at batch 1 and at `batch_size`.

Several runs (of the same data) are scored in one pass: the same windows and baselines, each
run's ceiling (`ceiling_<name>`) and the paired differences of each later run minus the first
(`ar_minus_tensformer`), so the AR baseline's row and its speed ratio sit beside the TENSFormer's.
`--guidance=w` is classifier-free guidance for MaskGIT and the DiT alike, cond + w (cond -
uncond) (logits for MaskGIT, whose uncond has no past; the noise for the DiT, whose uncond has
no trajectory); 0 = none.

A `lidar-maskgit` run is scored on CoPilot4D's task instead (`world_model/lidar_validate.py`):
LiDAR forecasts under the 4D-Occ protocols (2 -> 2 sweeps for 1 s, 6 -> 6 for 3 s) rendered
along the true future rays, Chamfer, depth L1 and AbsRel beside copy_last and warp_last sweeps
and the tokenizer's ceiling, with intervals.

Prints the tables; writes `<results>/<run name>.json` (every metric, the command, the
commit, the machine) unless `--results=`; for several runs one file,
`<name>_<name>....json`, with what they share written once (`results_file`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm
from world_model import run_benchmark, standard_baselines
from world_model.benchmark import REFERENCES, benchmark_table, forecast_speed
from world_model.config import CHAPTER_DIR
from world_model.dit_forecast import DEFAULT_STEPS as DIT_STEPS
from world_model.figures import draw_examples
from world_model.forecaster import tensformer_rollout
from world_model.lidar_validate import validate_lidar
from world_model.loading import ceiling_codec, load_world_model, run_header, split_windows
from world_model.maskgit_forecast import DEFAULT_STEPS
from world_model.planning import (
    ALTERNATIVES,
    PlanningScores,
    constant_velocity_path,
    motion_path,
    planning_table,
    true_path,
    with_trajectory,
)

from worldmodels.checkpoint import write_json_atomic
from worldmodels.config import at_least, parse_command, require
from worldmodels.runlog import git_commit, machine_description
from worldmodels.runtime import pick_device, seed_everything

RUNS_DIR = CHAPTER_DIR.parent / "runs" / CHAPTER_DIR.name


@dataclass
class Options:
    """validate.py's options (`--key=value`; run folders as plain words)."""

    runs: tuple[str, ...] = ()  # run or checkpoint folders; () = runs/.../tensformer-debug
    splits: tuple[str, ...] = ("val", "heldout")
    stride: int = 1  # score every stride-th window of each sequence (1: every window)
    batch_size: int = 8
    samples: int = 1000  # bootstrap resamples of the sequences
    temperature: float = 1.0  # sampling of the forecast's tokens
    top_k: int = 0
    top_p: float = 1.0
    maskgit_steps: int = DEFAULT_STEPS  # MaskGIT: Algorithm 2's steps for all future frames
    dit_steps: int = DIT_STEPS  # the DiT: DDIM steps (eta 0) for its clip of future frames
    guidance: float = 0.0  # MaskGIT, DiT: classifier-free guidance w (0 = none; CoPilot4D's: 2?)
    lidar_rays: int = 4096  # lidar-maskgit: rays scored per future sweep (evenly spaced returns)
    seed: int = 0
    control: tuple[str, ...] = ("stop",)  # alternative trajectories (planning.ALTERNATIVES)
    plan: bool = True  # score the model's own motion tokens as a plan
    speed: bool = True
    device: str = "auto"
    results: str = str(CHAPTER_DIR / "results")  # where <run>.json goes; "" = nowhere
    figures: str = ""  # also write the pictures here (the README's: 5.world-model/figures)

    def __post_init__(self):
        at_least(self, 1, "stride", "batch_size", "maskgit_steps", "dit_steps", "lidar_rays")
        require(self, "guidance", self.guidance >= 0, "a weight >= 0 (0 = no guidance)")
        at_least(self, 10, "samples")
        unknown = [c for c in self.control if c not in ALTERNATIVES]
        require(self, "control", not unknown, f"names among {sorted(ALTERNATIVES)}")


def planned_path(model, tokenizer, motion_tokenizer, window, args, seed: int) -> torch.Tensor:
    """(B, T_f, 3): the path of the motion tokens the model draws itself (plan=True)."""
    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    with torch.no_grad():
        rollout = tensformer_rollout(model, tokenizer, motion_tokenizer, window.past,
                                     window.past_poses, window.future_poses, seed=seed,
                                     plan=True, **sampling)  # fmt: skip
    return motion_path(motion_tokenizer, rollout.motions)


def plan_scores(model, tokenizer, motion_tokenizer, windows, args, name: str) -> dict:
    """L2 of the model's own plan and of constant velocity, per horizon, with intervals."""
    scores = PlanningScores()
    batches = windows.batches(args.batch_size)
    total = -(-len(windows) // args.batch_size)
    for i, w in enumerate(tqdm(batches, total=total, desc=f"{windows.split} plan", leave=False)):
        T_f = w.future_poses.shape[1]
        paths = {name: planned_path(model, tokenizer, motion_tokenizer, w, args, args.seed + i),
                 "constant_velocity": constant_velocity_path(w.past_poses, T_f)}  # fmt: skip
        scores.add(paths, true_path(w.past_poses, w.future_poses), w.sequence)
    return scores.metrics(f"{windows.split}_plan_", samples=args.samples)


def model_names(paths, kinds) -> list[str]:
    """Each run's name in the tables: its kind, or its folder's name when two runs share one."""
    if len(set(kinds)) == len(kinds):
        return list(kinds)
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"runs {list(paths)} share their kind and their folder's name")
    return names


def validate_runs(paths, args: Options) -> dict[str, dict]:
    """Every run scored in ONE benchmark pass per split: the same windows, the same baselines,
    and with several runs the paired differences between them (each run minus the first:
    `ar_minus_tensformer`). Returns {run: its record}; the benchmark's metrics are in each."""
    seed_everything(args.seed)
    device = pick_device(args.device)
    runs = {p: load_world_model(p, device, args) for p in paths}
    lidar = {p: r for p, r in runs.items() if r.config.kind == "lidar-maskgit"}
    if lidar:  # CoPilot4D's task: other data, other scores (world_model/lidar_validate.py)
        if len(lidar) < len(runs):
            raise ValueError("score lidar-maskgit runs apart from the occupancy runs: they "
                             "forecast other data")  # fmt: skip
        return {p: run_header(p, Path(p).name, r, args) | validate_lidar(r, args)
                for p, r in lidar.items()}  # fmt: skip
    names = dict(zip(paths, model_names(paths, [r.config.kind for r in runs.values()])))
    sources = {(r.config.data.preset, r.config.data.root) for r in runs.values()}
    if len(sources) > 1:
        raise ValueError(f"the runs read different data {sorted(sources)}: score them apart")
    first = runs[paths[0]].config
    records = {p: run_header(p, names[p], r, args) for p, r in runs.items()}
    planners = {names[p]: partial(planned_path, r.model, r.tokenizer, r.motion_tokenizer,
                                  args=args, seed=args.seed)
                for p, r in runs.items() if r.config.kind == "tensformer"}  # fmt: skip
    for split in args.splits:
        windows = split_windows(first, split, args.stride)
        forecasters, ceilings, alternatives = {**standard_baselines(windows.grid)}, {}, []
        for p, run in runs.items():
            name = names[p]
            forecasters[name] = run.forecaster
            for alt in args.control:
                forecasters[f"{name}_{alt}"] = with_trajectory(run.forecaster, ALTERNATIVES[alt])
                alternatives.append(f"{name}_{alt}")
            ceiling = "ceiling" if len(runs) == 1 else f"ceiling_{name}"
            ceilings[ceiling] = ceiling_codec(run)
        # later runs minus the first: it is a reference, after the alternatives (whose
        # differences are "<model>_minus_<model>_<alt>")
        others = [names[paths[0]]] if len(runs) > 1 else []
        references = (*REFERENCES, *alternatives, *others)
        start = time.perf_counter()
        metrics = run_benchmark(windows, forecasters, ceilings, references, args.batch_size,
                                args.samples)  # fmt: skip
        shared = {f"{split}_windows": len(windows), f"{split}_sequences": windows.sequences,
                  f"{split}_benchmark_seconds": round(time.perf_counter() - start, 1),
                  **metrics}  # fmt: skip
        print(f"\n{split}: {len(windows)} windows of {windows.sequences} sequences\n")
        print(benchmark_table(metrics, split, [*forecasters, *ceilings]))
        for name in names.values():
            alts = [f"{name}_{alt}" for alt in args.control]
            for other in ["copy_last", "warp_last", *alts, *(o for o in others if o != name)]:
                print(difference_line(metrics, split, name, other))
        folders = [r.step_dir.parent.parent / "validation" for r in runs.values()]
        folders += [Path(args.figures)] if args.figures else []
        shown = {k: v for k, v in forecasters.items() if k != "copy_last"}
        with torch.no_grad():
            pictures = draw_examples(shown, windows, folders, "_".join(names.values()), planners)
        for p, run in runs.items():
            records[p] |= shared | {f"{split}_pictures": [str(f) for f in pictures]}
            if args.plan and names[p] in planners:
                plan = plan_scores(run.model, run.tokenizer, run.motion_tokenizer, windows, args,
                                   names[p])  # fmt: skip
                records[p] |= plan
                print(planning_table(plan, split, names[p]))
    if args.speed:
        windows = split_windows(first, args.splits[0])
        for p, run in runs.items():
            speed = forecast_speed(run.forecaster, windows, args.batch_size)
            records[p] |= {f"{names[p]}_{k}": round(v, 2) for k, v in speed.items()}
            print(f"\n{names[p]} speed:", ", ".join(f"{k} {v:.1f}" for k, v in speed.items()))
    return records


def difference_line(metrics: dict, split: str, name: str, other: str) -> str:
    key = f"{split}_{name}_minus_{other}_mean_mIoU_occ3d"
    low, high = metrics[key + "_ci_low"], metrics[key + "_ci_high"]
    return f"{name} - {other}, mean mIoU: {metrics[key]:+.1f} [{low:+.1f}, {high:+.1f}]"


def main(argv=None) -> dict[str, dict]:
    args = parse_command(Options, argv, positional="runs")
    words = sys.argv[1:] if argv is None else list(argv)
    results = {}
    runs = list(args.runs or [str(RUNS_DIR / "tensformer-debug")])
    print("\n## " + ", ".join(runs))
    for run, record in validate_runs(runs, args).items():
        record |= {"command": " ".join(["validate.py", *words]), "git_commit": git_commit(),
                   "machine": machine_description(pick_device(args.device)),
                   "intervals": "95%, seeded bootstrap over sequences"}  # fmt: skip
        results[run] = record
    speed_ratio(results, args.batch_size)
    if args.results:
        name = "_".join(Path(run).name for run in results)
        write_json_atomic(Path(args.results) / f"{name}.json", results_file(results))
    return results


def results_file(results: dict[str, dict]) -> dict:
    """What `<results>/<run names>.json` holds: one run's record as it is; for several runs
    scored together, every entry they share (the benchmark's metrics, the command) once, and
    under "runs" what is each run's own (its checkpoint, plan, speed)."""
    records = list(results.values())
    if len(records) == 1:
        return records[0]
    first = records[0]
    common = set(first).intersection(*records[1:])
    shared = {k: first[k] for k in first if k in common and all(r[k] == first[k] for r in records)}
    own = {run: {k: v for k, v in r.items() if k not in shared} for run, r in results.items()}
    return {**shared, "runs": own}


def speed_ratio(results: dict, batch_size: int) -> None:
    """With a TENSFormer run and an AR run validated in one command (same machine, same
    process): how many times longer the AR baseline takes to forecast a frame."""
    by_kind = {r["kind"]: r for r in results.values()}
    if not {"tensformer", "ar"} <= set(by_kind):
        return
    for size in dict.fromkeys((1, batch_size)):
        key = f"ms_per_frame_batch{size}"
        ar, tens = by_kind["ar"].get(f"ar_{key}"), by_kind["tensformer"].get(f"tensformer_{key}")
        if ar and tens:
            by_kind["ar"][f"ar_over_tensformer_{key}"] = round(ar / tens, 2)
            print(f"AR / TENSFormer, {key}: {ar / tens:.1f}x")


if __name__ == "__main__":
    main()
