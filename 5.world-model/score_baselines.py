"""Score the forecasting benchmark's references: what every world model of chapter 5 must beat.

    uv run 5.world-model/score_baselines.py                        # val and heldout, + ceilings
    uv run 5.world-model/score_baselines.py --splits=val --ceilings=
    uv run 5.world-model/score_baselines.py --help                 # every option, typed

On every window of each split (5 past frames in, 6 future frames out, at 2 Hz; windows.py):
copy the last observed frame, warp it by the true future ego motion, and (`--ceilings`)
each of chapter 3's pretrained tokenizers applied to the true future: the most a model
forecasting its tokens could score (scene-debug: the single-scale FSQ tokens an
autoregressive model predicts; multiscale-debug-znorm: the multi-scale tokens of
next-scale prediction). Prints mIoU and IoU at 1, 2, 3 s and their mean (Occ3D's rule, every
voxel) and writes every metric, with its 95% interval over sequences, to
`<results>/baselines.json` with the command, the commit and the machine.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from world_model import load_windows, run_benchmark, standard_baselines, tokenizer_codec
from world_model.benchmark import benchmark_table

from worldmodels.checkpoint import write_json_atomic
from worldmodels.config import at_least, parse_command
from worldmodels.runlog import git_commit, machine_description

HERE = Path(__file__).resolve().parent


@dataclass
class Options:
    """score_baselines.py's options (`--key=value`)."""

    splits: tuple[str, ...] = ("val", "heldout")  # of the driving data
    preset: str = "debug"  # the driving world's preset
    ceilings: tuple[str, ...] = ("scene-debug", "multiscale-debug-znorm")  # chapter 3's
    batch_size: int = 8
    samples: int = 1000  # bootstrap resamples of the sequences
    results: str = str(HERE / "results")  # where baselines.json goes; "" = nowhere

    def __post_init__(self):
        at_least(self, 1, "batch_size")
        at_least(self, 10, "samples")


def main(argv=None) -> dict:
    args = parse_command(Options, argv)
    ceilings = {}
    if args.ceilings:
        from occupancy_tokenizer.pretrained import load_tokenizer  # chapter 3, only if asked

        for name in args.ceilings:  # "scene-debug" -> "ceiling_scene_debug"
            codec = tokenizer_codec(load_tokenizer(name)[0])
            ceilings["ceiling_" + name.replace("-", "_")] = codec
    words = sys.argv[1:] if argv is None else argv
    record = {"command": " ".join(["score_baselines.py", *words]), "git_commit": git_commit(),
              "machine": machine_description(torch.device("cpu")), "ceilings": args.ceilings,
              "intervals": "95%, seeded bootstrap over sequences"}  # fmt: skip
    for split in args.splits:
        windows = load_windows(split, preset=args.preset)
        start = time.perf_counter()
        forecasters = standard_baselines(windows.grid)
        metrics = run_benchmark(windows, forecasters, ceilings, batch_size=args.batch_size,
                                samples=args.samples)  # fmt: skip
        seconds = round(time.perf_counter() - start, 1)
        record |= {f"{split}_windows": len(windows), f"{split}_sequences": windows.sequences,
                   f"{split}_seconds": seconds, **metrics}  # fmt: skip
        print(f"\n{split}: {len(windows)} windows of {windows.sequences} sequences\n")
        print(benchmark_table(metrics, split, [*forecasters, *ceilings]))
        d = f"{split}_warp_last_minus_copy_last_mean_mIoU_occ3d"
        print(f"\nwarp_last - copy_last, mean mIoU: {metrics[d]:+.1f} "
              f"[{metrics[d + '_ci_low']:+.1f}, {metrics[d + '_ci_high']:+.1f}]")  # fmt: skip
    if args.results:
        write_json_atomic(Path(args.results) / "baselines.json", record)
    return record


if __name__ == "__main__":
    main()
