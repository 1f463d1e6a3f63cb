"""Windows: 5 past + 6 future frames at 2 Hz, cut the same way every time; bad sequences are
refused with what was expected; on the driving world's data, held out means held out."""

import numpy as np
import pytest
import torch
from world_model.windows import (
    FUTURE_FRAMES,
    PAST_FRAMES,
    ForecastWindows,
    frame_step,
    load_windows,
    shared_with_training,
)

from worldmodels.data.driving.config import PRESETS as DRIVING
from worldmodels.data.driving.store import DATA_ROOT, load_manifest


def test_windows_cut_past_and_future_from_whole_sequences(streets):
    windows = streets.windows(sequences=2, frames=13)
    assert (PAST_FRAMES, FUTURE_FRAMES) == (5, 6)  # OccWorld: frames 0-4 in, 5-10 out
    assert len(windows) == 2 * (13 - 11 + 1) and windows.starts[3] == (1, 0)
    window = windows.batch([1, 3])
    X, Y, Z = streets.grid.size
    assert window.past.shape == (2, 5, X, Y, Z) and window.future.shape == (2, 6, X, Y, Z)
    assert window.past_poses.shape == (2, 5, 4, 4) and window.future_poses.shape == (2, 6, 4, 4)
    assert window.visible.shape == window.future.shape and window.visible.dtype == torch.bool
    assert window.sequence.tolist() == [0, 1] and window.start.tolist() == [1, 0]
    occupancy, _, poses = streets.sequence(0, 13)
    assert torch.equal(window.past[0], occupancy[1:6]) and torch.equal(
        window.future[0], occupancy[6:12]
    )
    assert torch.equal(window.future_poses[0], poses[6:12])
    batches = list(windows.batches(4))
    assert [len(b.sequence) for b in batches] == [4, 2]
    assert len(ForecastWindows(**vars_of(windows), stride=2)) == 2 * 2  # starts 0 and 2


def vars_of(windows: ForecastWindows) -> dict:
    return {k: getattr(windows, k) for k in ("occupancy", "visibility", "poses", "grid", "names",
                                             "split")}  # fmt: skip


def test_frame_rates_subsample_to_2hz_or_are_refused():
    assert frame_step(2.0) == 1 and frame_step(10.0) == 5
    with pytest.raises(ValueError, match="whole multiple of 2.0 Hz"):
        frame_step(3.0)


def test_bad_sequences_say_what_was_expected(streets):
    good = vars_of(streets.windows(sequences=1, frames=13))
    short = {**good, **{key: [good[key][0][:10]] for key in ("occupancy", "visibility", "poses")}}
    with pytest.raises(ValueError, match=r"has 10 frames .* 5 past \+ 6 future = 11"):
        ForecastWindows(**short)
    with pytest.raises(ValueError, match=r"occupancy must be \(T, X, Y, Z\) = \(T, \(16, 8, 4\)\)"):
        ForecastWindows(**{**good, "occupancy": [good["occupancy"][0][:, :8]]})
    with pytest.raises(ValueError, match=r"class ids in \[0, 17\]"):
        ForecastWindows(**{**good, "occupancy": [good["occupancy"][0] + 10]})
    with pytest.raises(ValueError, match="visibility .* must match"):
        ForecastWindows(**{**good, "visibility": [good["visibility"][0][1:]]})
    with pytest.raises(ValueError, match="split must be one of"):
        load_windows("test")


def generated(preset: str) -> bool:
    """The preset's driving data is on disk, made by this engine (same fingerprint)."""
    manifest = DATA_ROOT / preset / "manifest.json"
    return manifest.exists() and (
        load_manifest(manifest.parent)["fingerprint"] == DRIVING[preset].fingerprint()
    )


@pytest.mark.skipif(not generated("debug"), reason="no driving debug data of this engine here")
def test_debug_data_is_2hz_and_held_out_windows_share_no_frame_with_training():
    splits = {s: load_windows(s, "debug", generate=False) for s in ("train", "val", "heldout")}
    assert DRIVING["debug"].data.frame_rate == 2.0
    for name, count in (("train", 75), ("val", 47), ("heldout", 10)):
        facts = splits[name].describe()
        assert facts["sequences"] == count and facts["frames_per_sequence"] == [32], name
        assert facts["windows"] == count * (32 - 11 + 1), name
    # The stored rate, measured: the ego covers its speed x 0.5 s between frames.
    from worldmodels.data.driving import DrivingSequences

    item = DrivingSequences("val", 32, "debug", stride=32, lidar=False, generate=False)[0]
    step = np.linalg.norm(np.diff(item["ego_pose"][:, :2, 3].numpy(), axis=0), axis=1)
    speed = (item["ego_speed"][1:] + item["ego_speed"][:-1]).numpy() / 2
    assert np.median(step / np.maximum(speed, 1e-3)) == pytest.approx(0.5, abs=0.01)
    # Held out means held out: no frame (so no window) of val or heldout is a training frame.
    train = splits["train"]
    for name in ("val", "heldout"):
        assert shared_with_training(train, splits[name], length=1)["duplicates"] == 0, name
    assert shared_with_training(splits["val"], splits["heldout"], length=1)["duplicates"] == 0
    # ... and the check sees a leak where there is one: training against itself.
    assert shared_with_training(train, train, length=11)["duplicates"] == len(train)
