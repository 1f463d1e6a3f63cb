"""The copy and warp baselines score what a hand count gives on a 4 x 4 x 2 street; the
horizons are the frames 2, 4 and 6 steps ahead; the tokenizer ceiling is a codec of the
true future (perfect for the identity; chapter 3's tokenizer plugs in)."""

import math

import pytest
import torch
from occupancy_tokenizer.pretrained import load_tokenizer
from world_model.baselines import copy_last, standard_baselines, tokenizer_codec, warp_last
from world_model.benchmark import run_benchmark
from world_model.windows import ForecastWindows

from worldmodels.data.driving import GridConfig
from worldmodels.occ3d import CLASS_ID, FREE

TINY = GridConfig(size=(4, 4, 2), voxel_xy=1.0, z_range=(-1.0, 1.0))
ROAD, WALL = CLASS_ID["driveable_surface"], CLASS_ID["manmade"]


def hand_case() -> ForecastWindows:
    """One window of 11 frames. The ego drives 0.5 m a frame along +x; the road (z = 0) is
    everywhere; at z = 1 a wall stands on world cells 2 and 5. On even frames t, row i of
    the grid is world cell i + t/2 (exact voxel shifts). Rows 0, 1 (behind) are visible."""
    frames = []
    for t in range(11):
        frame = torch.full((4, 4, 2), FREE, dtype=torch.uint8)
        frame[:, :, 0] = ROAD
        for i in range(4):
            if i + t // 2 in (2, 5):
                frame[i, :, 1] = WALL
        frames.append(frame)
    poses = torch.eye(4, dtype=torch.float64).repeat(11, 1, 1)
    poses[:, 0, 3] = 0.5 * torch.arange(11)
    visible = torch.zeros(11, 4, 4, 2, dtype=torch.bool)
    visible[:, :2] = True
    return ForecastWindows([torch.stack(frames)], [visible], [poses], TINY, ["hand"], "val")


def test_copy_and_warp_score_as_counted_by_hand():
    windows = hand_case()
    window = windows.batch([0])
    # Last seen frame (t = 4): wall rows [1, 0, 0, 1]; at 1 s (t = 6) it is [0, 0, 1, 0].
    assert window.past[0, -1, :, 0, 1].eq(WALL).tolist() == [True, False, False, True]
    assert window.future[0, 1, :, 0, 1].eq(WALL).tolist() == [False, False, True, False]
    # The warp moves everything back one row (1 m); the front row is unseen, free.
    moved = warp_last(TINY)(window.past, window.past_poses, window.future_poses)
    assert moved[0, 1, :, 0, 1].eq(WALL).tolist() == [False, False, True, False]
    assert moved[0, 1, :, 0, 0].tolist() == [ROAD, ROAD, ROAD, FREE]
    m = run_benchmark(windows, standard_baselines(TINY), samples=20)
    # Per y column (all four alike). copy at 1 s: road TP 4; wall TP 0, FP 2, FN 1.
    # mIoU_occ3d = (1 + 0) / 2; occworld: the 15 classes absent from the truth score 1.
    # Geometry: truth occupied 5, predicted 6, both 4 -> 4 / 7.
    assert m["val_copy_last_1s_mIoU_occ3d"] == pytest.approx(50.0)
    assert m["val_copy_last_1s_mIoU_occworld"] == pytest.approx(100 * 16 / 17)
    assert m["val_copy_last_1s_IoU_occ3d"] == pytest.approx(100 * 4 / 7)
    # warp at 1 s: wall right (IoU 1); road TP 3, FN 1 (the unseen front row) -> 3/4.
    # Geometry: truth 5, predicted 4, both 4 -> 4/5.
    assert m["val_warp_last_1s_mIoU_occ3d"] == pytest.approx(100 * (1 + 0.75) / 2)
    assert m["val_warp_last_1s_mIoU_occworld"] == pytest.approx(100 * (16 + 0.75) / 17)
    assert m["val_warp_last_1s_IoU_occ3d"] == pytest.approx(80.0)
    assert m["val_warp_last_1s_IoU/driveable_surface"] == pytest.approx(75.0)
    assert math.isnan(m["val_warp_last_1s_IoU/car"])  # absent: Occ3D's NaN
    # Visible rows 0, 1 only. copy: road TP 2; a wall predicted where there is none (FP 1):
    # Occ3D scores it 0 -> mIoU 50; OccWorld scores a class absent from the truth 1 -> 100.
    assert m["val_copy_last_1s_visible_mIoU_occ3d"] == pytest.approx(50.0)
    assert m["val_copy_last_1s_visible_mIoU_occworld"] == pytest.approx(100.0)
    assert m["val_copy_last_1s_visible_IoU_occ3d"] == pytest.approx(100 * 2 / 3)
    assert m["val_warp_last_1s_visible_mIoU_occ3d"] == pytest.approx(100.0)
    assert math.isnan(m["val_warp_last_1s_dynamic_IoU_occ3d"])  # no vehicle, no pedestrian
    # The mean is OccWorld's: the average of the scores at 1, 2 and 3 s.
    horizons = [m[f"val_warp_last_{h}_mIoU_occ3d"] for h in ("1s", "2s", "3s")]
    assert m["val_warp_last_mean_mIoU_occ3d"] == pytest.approx(sum(horizons) / 3)
    assert m["val_warp_last_minus_copy_last_1s_mIoU_occ3d"] == pytest.approx(37.5)
    assert m["val_windows"] == 1 and m["val_sequences"] == 1


def test_horizons_are_the_frames_2_4_and_6_steps_ahead(streets):
    """A forecaster that knows the truth of frames +2, +4, +6 only (and says "free" for
    the others) is perfect at 1, 2 and 3 s; scored at any other step it would not be."""
    occupancy, visible, poses = streets.sequence(seed=0, frames=11)  # one window
    frame_at = {round(float(pose[0, 3])): frame for frame, pose in zip(occupancy, poses)}

    def knows_even_steps(past, past_poses, future_poses):
        out = torch.full((len(past), 6, *streets.grid.size), FREE, dtype=torch.uint8)
        for t in (1, 3, 5):  # future frames +2, +4, +6: looked up by their pose
            out[0, t] = frame_at[round(float(future_poses[0, t, 0, 3]))]
        return out

    windows = ForecastWindows([occupancy], [visible], [poses], streets.grid, ["one"], "val")
    m = run_benchmark(windows, {"knows": knows_even_steps, "copy_last": copy_last},
                      references=("copy_last",), samples=10)  # fmt: skip
    for h in ("1s", "2s", "3s", "mean"):
        assert m[f"val_knows_{h}_mIoU_occ3d"] == pytest.approx(100.0), h
        assert m[f"val_knows_{h}_IoU_occ3d"] == pytest.approx(100.0), h


def test_the_ceiling_encodes_the_true_future(streets):
    windows = streets.windows(sequences=2)
    m = run_benchmark(windows, standard_baselines(windows.grid),
                      ceilings={"identity": lambda frames: frames.clone()}, samples=10)  # fmt: skip
    assert (
        m["val_identity_mean_mIoU_occ3d"] == 100.0
        and m["val_identity_2s_visible_IoU_occ3d"] == 100.0
    )
    assert m["val_identity_minus_warp_last_mean_mIoU_occ3d"] > 0
    assert m["val_warp_last_minus_copy_last_1s_IoU_occ3d"] > 0  # the ego moves: warping helps


def test_chapter_3s_tokenizer_is_a_codec():
    tokenizer, config = load_tokenizer("scene-debug")
    codec = tokenizer_codec(tokenizer, batch_size=2)
    frames = torch.randint(
        0, 18, (3, *config.scene.grid), generator=torch.Generator().manual_seed(0)
    )
    decoded = codec(frames.to(torch.uint8))
    assert decoded.shape == frames.shape and decoded.dtype == torch.uint8
    assert int(decoded.max()) < 18
