"""Bad forecasts, codecs and settings are refused with what was expected; speed is measured
in milliseconds per forecast frame, at batch 1 and at a full batch."""

import time

import pytest
import torch
from world_model.baselines import copy_last, standard_baselines, warp_last
from world_model.benchmark import forecast_speed, run_benchmark

from worldmodels.data.driving import GridConfig


def run(windows, forecaster, **kwargs):
    return run_benchmark(windows, {**standard_baselines(windows.grid), "model": forecaster},
                         samples=5, **kwargs)  # fmt: skip


def test_bad_forecasts_say_what_was_expected(streets):
    windows = streets.windows(sequences=1)
    five = lambda past, past_poses, future_poses: copy_last(past, past_poses, future_poses)[:, :5]
    with pytest.raises(
        ValueError, match=r"model returned .* \(B, 6, X, Y, Z\) = \(3, 6, 16, 8, 4\)"
    ):
        run(windows, five)
    logits = lambda past, *poses: torch.zeros(len(past), 6, 16, 8, 4)
    with pytest.raises(ValueError, match="integer class ids"):
        run(windows, logits)
    too_high = lambda past, *poses: copy_last(past, *poses).long() + 17
    with pytest.raises(ValueError, match=r"class ids in \[21, 34\]; expected \[0, 17\]"):
        run(windows, too_high)
    with pytest.raises(ValueError, match=r"codec must return frames of shape \(18, 16, 8, 4\)"):
        run_benchmark(windows, standard_baselines(windows.grid),
                      ceilings={"half": lambda frames: frames[:, :8]}, samples=5)  # fmt: skip


def test_bad_settings_are_refused(streets):
    windows = streets.windows(sequences=1)
    with pytest.raises(ValueError, match=r"references \['warp_last'\] are not among"):
        run_benchmark(windows, {"copy_last": copy_last}, samples=5)
    with pytest.raises(ValueError, match="names used twice"):
        run_benchmark(windows, standard_baselines(windows.grid),
                      ceilings={"copy_last": lambda f: f}, samples=5)  # fmt: skip
    wrong_grid = GridConfig(size=(8, 8, 4), voxel_xy=1.0)
    with pytest.raises(ValueError, match=r"grids must be \(n, X, Y, Z\) = \(n, \(8, 8, 4\)\)"):
        run(windows, warp_last(wrong_grid))
    with pytest.raises(ValueError, match="batch 8 needs 8 windows"):
        forecast_speed(copy_last, windows, batch_size=8)


def test_speed_is_milliseconds_per_forecast_frame(streets):
    windows = streets.windows(sequences=2)  # 6 windows

    def slow(past, past_poses, future_poses):  # 12 ms a call, whatever the batch
        time.sleep(0.012)
        return copy_last(past, past_poses, future_poses)

    speed = forecast_speed(slow, windows, batch_size=4, warmup=1, repeats=3)
    assert set(speed) == {"ms_per_frame_batch1", "ms_per_frame_batch4"}
    assert 12 / 6 <= speed["ms_per_frame_batch1"] < 12 / 6 + 3  # one window: 6 frames
    assert 12 / 24 <= speed["ms_per_frame_batch4"] < 12 / 24 + 1  # 4 windows: 24 frames
