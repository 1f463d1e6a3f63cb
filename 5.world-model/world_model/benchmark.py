"""The forecasting benchmark: several forecasters on the same windows, one flat metrics dict;
and their speed in milliseconds per forecast frame.

    windows = load_windows("val")                                 # or "heldout"
    tokenizer, _ = load_tokenizer("scene-debug")                  # chapter 3
    metrics = run_benchmark(
        windows,
        {**standard_baselines(windows.grid), "tensformer": my_forecaster},
        ceilings={"tokenizer_ceiling": tokenizer_codec(tokenizer)},
    )
    metrics["val_tensformer_mean_mIoU_occ3d"]                      # %, OccWorld's average
    metrics["val_tensformer_minus_warp_last_1s_mIoU_occ3d_ci_low"]  # paired, 95%
    forecast_speed(my_forecaster, windows)  # {"ms_per_frame_batch1": .., "..._batch8": ..}

Differences: every entry minus each reference listed before it in `references` (default
copy_last, then warp_last): "warp_last_minus_copy_last", "<model>_minus_copy_last",
"<model>_minus_warp_last", and the tokenizer ceiling minus both.

Shapes: B batch (windows), T time steps (frames), X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

import torch
from tqdm.auto import tqdm

from world_model.baselines import Codec, Forecaster, ceiling_forecast
from world_model.forecast_scores import HORIZONS, HorizonCounts, benchmark_metrics, check_forecast
from world_model.windows import FUTURE_FRAMES, ForecastWindows, Window

REFERENCES = ("copy_last", "warp_last")


def difference_pairs(names: Sequence[str], references: Sequence[str]) -> list[tuple[str, str]]:
    """(a, b) for "a minus b": every entry minus each reference listed before it."""
    missing = [r for r in references if r not in names]
    if missing:
        raise ValueError(f"references {missing} are not among the entries {list(names)}; "
                         "pass standard_baselines(windows.grid) among the forecasters")  # fmt: skip
    order = {name: i for i, name in enumerate(references)}
    return [(a, b) for b in references for a in names
            if a != b and order.get(a, len(references)) > order[b]]  # fmt: skip


def forecast(forecaster: Forecaster, window: Window, name: str = "forecaster") -> torch.Tensor:
    """A checked forecast (B, T, X, Y, Z) uint8 of a window: the forecaster sees the past
    grids and poses and the future poses, never the future grids."""
    with torch.no_grad():
        pred = forecaster(window.past, window.past_poses, window.future_poses)
    return check_forecast(pred, window, name)


def run_benchmark(
    windows: ForecastWindows,
    forecasters: Mapping[str, Forecaster],
    ceilings: Mapping[str, Codec] | None = None,
    references: Sequence[str] = REFERENCES,
    batch_size: int = 8,
    samples: int = 1000,
    seed: int = 0,
    prefix: str | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Score every forecaster (and every ceiling: a codec applied to the TRUE future) on
    every window of `windows`; `forecast_scores.benchmark_metrics` names the keys, prefixed
    by `prefix` (default "<split>_"). `samples` bootstrap resamples of the sequences."""
    ceilings = dict(ceilings or {})
    clash = set(forecasters) & set(ceilings)
    if clash:
        raise ValueError(f"names used twice (forecaster and ceiling): {sorted(clash)}")
    names = [*forecasters, *ceilings]
    pairs = difference_pairs(names, references)
    counts = {name: HorizonCounts(windows.sequences, HORIZONS) for name in names}
    total, desc = -(-len(windows) // batch_size), f"{windows.split or 'windows'} benchmark"
    batches = tqdm(windows.batches(batch_size), total=total, desc=desc, disable=not progress)
    for window in batches:
        for name, forecaster in forecasters.items():
            counts[name].add(forecast(forecaster, window, name), window)
        for name, codec in ceilings.items():
            decoded = check_forecast(ceiling_forecast(codec, window.future), window, name)
            counts[name].add(decoded, window)
    prefix = f"{windows.split}_" if prefix is None and windows.split else (prefix or "")
    return benchmark_metrics(counts, pairs, samples, seed, prefix)


def _timed_call(forecaster: Forecaster, window: Window) -> float:
    """Seconds one forecaster call takes, the GPU's queue drained on both sides."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        forecaster(window.past, window.past_poses, window.future_poses)
    sync()
    return time.perf_counter() - start


def forecast_speed(
    forecaster: Forecaster,
    windows: ForecastWindows,
    batch_size: int = 8,
    warmup: int = 2,
    repeats: int = 5,
) -> dict[str, float]:
    """Milliseconds per forecast frame (the median of `repeats` timed calls after `warmup`
    untimed ones, divided by B * 6 frames) at batch 1 and at `batch_size`:
    {"ms_per_frame_batch1": .., f"ms_per_frame_batch{batch_size}": ..}."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    out = {}
    for size in dict.fromkeys((1, batch_size)):  # batch 1, then the full batch (once if 1)
        if size > len(windows):
            raise ValueError(f"batch {size} needs {size} windows, the set has {len(windows)}")
        window = windows.batch(range(size))
        for _ in range(warmup):
            _timed_call(forecaster, window)
        seconds = statistics.median(_timed_call(forecaster, window) for _ in range(repeats))
        out[f"ms_per_frame_batch{size}"] = 1000 * seconds / (size * FUTURE_FRAMES)
    return out


def benchmark_table(metrics: dict, split: str, names) -> str:
    """Markdown: one row per forecaster, mIoU at each horizon, IoU and dynamic IoU (mean)."""
    lines = [
        "| split | forecaster | mIoU 1 s | 2 s | 3 s | mean [95%] | IoU mean | dynamic IoU mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        key = f"{split}_{name}_{{}}_mIoU_occ3d"
        miou = [metrics[key.format(h)] for h in (*HORIZONS, "mean")]
        low, high = (metrics[key.format("mean") + f"_ci_{end}"] for end in ("low", "high"))
        iou = metrics[f"{split}_{name}_mean_IoU_occ3d"]
        dynamic = metrics[f"{split}_{name}_mean_dynamic_IoU_occ3d"]
        lines.append(
            f"| {split} | {name} | {miou[0]:.1f} | {miou[1]:.1f} | {miou[2]:.1f} | "
            f"{miou[3]:.1f} [{low:.1f}, {high:.1f}] | {iou:.1f} | {dynamic:.1f} |"
        )
    return "\n".join(lines)
