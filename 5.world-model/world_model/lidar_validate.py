"""validate.py's LiDAR branch: a `lidar-maskgit` run scored on CoPilot4D's task.

    record = validate_lidar(run, args)      # args: validate.py's Options

For each split (`args.splits`), every `args.stride`-th 12-frame window of each sequence is
forecast under both 4D-Occ protocols and scored beside copy_last, warp_last and the
tokenizer's ceiling (`lidar_forecast.score_lidar`); the tables are printed, the middle
window drawn (`lidar_figures.py`, into the run's validation folder and `--figures`) and the
record returned (validate.py adds the command, the commit and the machine, and writes it).
"""

from __future__ import annotations

import time
from pathlib import Path

from world_model.lidar_data import PROTOCOLS, LidarClips, cached_lidar_ids, lidar_sweeps
from world_model.lidar_figures import draw_lidar_forecast
from world_model.lidar_forecast import BASELINES, METHODS, score_lidar

LABELS = {"model": "MaskGIT (LiDAR)", "copy_last": "copy_last sweep",
          "warp_last": "warp_last sweep (true ego motion)",
          "ceiling": "ceiling (tokenizer)"}  # fmt: skip


def lidar_table(metrics: dict, split: str) -> str:
    """Markdown: per protocol and method, Chamfer (region [95%], all), depth L1, AbsRel, and
    the Chamfer at the horizon frame alone."""
    lines = ["| protocol | method | Chamfer, region [95%] | Chamfer, all | depth L1 | AbsRel | "
             "depth L1 ground / above | Chamfer at the horizon |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in PROTOCOLS:
        for method in METHODS:
            p = f"{split}_{name}_{method}_"
            if p + "chamfer" not in metrics:
                continue
            lines.append(
                f"| {name} | {LABELS[method]} | {metrics[p + 'chamfer']:.2f} "
                f"[{metrics[p + 'chamfer_ci_low']:.2f}, {metrics[p + 'chamfer_ci_high']:.2f}] | "
                f"{metrics[p + 'chamfer_all']:.2f} | {metrics[p + 'depth_l1']:.2f} | "
                f"{metrics[p + 'absrel']:.3f} | {metrics[p + 'depth_l1_ground']:.2f} / "
                f"{metrics[p + 'depth_l1_above_ground']:.2f} | "
                f"{metrics[p + 'at_horizon_chamfer']:.2f} |"
            )
    return "\n".join(lines)


def difference_lines(metrics: dict, split: str) -> list[str]:
    """Model minus each baseline, Chamfer (region) and depth L1, [95%], per protocol."""
    out = []
    for name in PROTOCOLS:
        for other in BASELINES:
            parts = []
            for key, unit in (("chamfer", "Chamfer"), ("depth_l1", "depth L1")):
                k = f"{split}_{name}_model_minus_{other}_{key}"
                if k in metrics:
                    parts.append(f"{unit} {metrics[k]:+.2f} [{metrics[k + '_ci_low']:+.2f}, "
                                 f"{metrics[k + '_ci_high']:+.2f}]")  # fmt: skip
            out.append(f"{name}: model - {other}: " + ", ".join(parts))
    return out


def validate_lidar(run, args) -> dict:
    """A loaded lidar-maskgit run (`loading.load_world_model`) scored on each split."""
    config, record = run.config, {}
    for split in args.splits:
        sweeps = lidar_sweeps(split, config.data.preset, config.data.root)
        ids = cached_lidar_ids(run.tokenizer, sweeps, split, config.data.cache,
                               config.data.encode_batch)  # fmt: skip
        clips = LidarClips(split, sweeps, ids, run.motion_tokenizer, stride=args.stride)
        start = time.perf_counter()
        metrics = score_lidar(run.model, run.tokenizer, sweeps, clips, split, args.maskgit_steps,
                              args.guidance, args.temperature, args.seed, args.batch_size,
                              args.lidar_rays, args.samples)  # fmt: skip
        record |= metrics | {f"{split}_windows": len(clips), f"{split}_sequences": clips.sequences,
                             f"{split}_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print(f"\n{split}: {len(clips)} windows of {clips.sequences} sequences (LiDAR)\n")
        print(lidar_table(metrics, split))
        print("\n".join(difference_lines(metrics, split)))
        folders = [run.step_dir.parent.parent / "validation"]
        folders += [Path(args.figures)] if args.figures else []
        pictures = draw_lidar_forecast(
            run.model, run.tokenizer, sweeps, clips, len(clips) // 2, folders, "lidar-maskgit",
            steps=args.maskgit_steps, guidance=args.guidance, temperature=args.temperature,
            seed=args.seed, max_rays=args.lidar_rays,
        )  # fmt: skip
        record[f"{split}_pictures"] = [str(p) for p in pictures]
    return record
