"""Make a driving dataset, or time the engine.

uv run python -m worldmodels.data.driving --preset debug
uv run python -m worldmodels.data.driving --preset paper --benchmark 4
"""

from __future__ import annotations

import argparse
import json
import time

from worldmodels.data.driving.config import PRESETS
from worldmodels.data.driving.generate import benchmark
from worldmodels.data.driving.store import dataset_plan, ensure_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.data.driving")
    parser.add_argument("--preset", default="debug", choices=sorted(PRESETS))
    parser.add_argument("--root", default=None, help="folder (default data/driving/<preset>)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default 2)")
    parser.add_argument(
        "--benchmark",
        type=int,
        default=0,
        metavar="N",
        help="instead of making the dataset, time N sequences in this process",
    )
    parser.add_argument("--frames", type=int, default=None, help="frames per benchmark sequence")
    args = parser.parse_args(argv)
    if args.benchmark:
        print(json.dumps(benchmark(args.preset, args.benchmark, args.frames), indent=1))
        return
    start = time.perf_counter()
    folder = ensure_dataset(args.preset, args.root, args.workers)
    seconds = time.perf_counter() - start
    frames = sum(PRESETS[args.preset].data.frames for _ in dataset_plan(PRESETS[args.preset]))
    print(f"{folder}: {frames} frames; this run took {seconds:.0f} s")


if __name__ == "__main__":
    main()
