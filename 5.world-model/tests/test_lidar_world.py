"""LiDAR forecasting (CoPilot4D's task): the protocols cut the right frames, the baselines move
the right way, the splits share nothing, and train.py / validate.py run end to end on
chapter 4's synthetic streets with the committed tokenizer."""

import json
import math
from pathlib import Path

import pytest
import torch
from lidar_tokenizer.sweeps import frame_rays
from occupancy_tokenizer.ego import EgoMotionTokenizer
from world_model.lidar_data import (
    LIDAR_CLIP,
    PROTOCOLS,
    load_lidar_tokenizer,
    measured_points,
    protocol_frames,
    synthetic_streets,
)
from world_model.lidar_forecast import cast_sweep, move_points, true_frame
from world_model.lidar_world import lidar_config_matching, make_lidar_loss, protocol_clip

from worldmodels import testing
from worldmodels.metrics.lidar import chamfer_distance

CHAPTER = Path(__file__).resolve().parent.parent


def test_protocols_cut_the_last_past_and_first_future_frames():
    # frame f of the clip holds the value f; motion m holds the index of the frame it leads into
    ids = torch.arange(LIDAR_CLIP).reshape(1, LIDAR_CLIP, 1).expand(1, LIDAR_CLIP, 3)
    motions = torch.arange(1, LIDAR_CLIP).reshape(1, LIDAR_CLIP - 1)  # m_1 .. m_11
    cut, into, past = protocol_clip({"ids": ids, "motions": motions}, "1s")
    assert past == 2 and cut[0, :, 0].tolist() == [4, 5, 6, 7]  # 2 past, then 2 future
    assert into[0].tolist() == [5, 6, 7]  # the motions into the cut clip's frames 1..3
    cut, into, past = protocol_clip({"ids": ids, "motions": motions}, "3s")
    assert (
        past == 6
        and cut[0, :, 0].tolist() == list(range(12))
        and into[0].tolist() == list(range(1, 12))
    )
    assert PROTOCOLS == {"1s": (2, 2), "3s": (6, 6)}  # 4D-Occ at 2 Hz
    with pytest.raises(ValueError, match="protocol"):
        protocol_frames(7, 1)


def test_the_loss_trains_each_protocol_with_its_own_context(monkeypatch):
    seen = []

    def fake_loss(model, ids, motions, generator=None, probs=None, context=None):
        seen.append((ids.shape[1], motions.shape[1], context))
        return torch.zeros(()), {}

    monkeypatch.setattr("world_model.lidar_world.maskgit_loss", fake_loss)
    batch = {"ids": torch.zeros(2, 12, 4, dtype=torch.long),
             "motions": torch.zeros(2, 11, dtype=torch.long)}  # fmt: skip
    loss = make_lidar_loss()
    torch.manual_seed(0)
    for _ in range(20):
        loss(None, batch)
    assert set(seen) == {(4, 3, 2), (12, 11, 6)}  # both protocols drawn, context = past frames


def test_move_points_takes_a_world_point_into_the_later_frame():
    yaw = math.pi / 2
    later = torch.eye(4, dtype=torch.float64)  # the ego moved 10 m along x and turned left
    later[:2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    later[0, 3] = 10.0
    point = torch.tensor([[12.0, 3.0, 1.0]])  # in the earlier frame (= world here)
    moved = move_points(point, torch.eye(4, dtype=torch.float64), later)
    # relative to the new ego: 2 m ahead in world x is its -y (it faces +y), 3 m in y is ahead
    assert torch.allclose(moved, torch.tensor([[3.0, -2.0, 1.0]]), atol=1e-6)


@pytest.fixture(scope="module")
def tokenizer():
    return load_lidar_tokenizer("debug")


def test_warp_beats_copy_one_frame_ahead_on_a_static_street():
    """The synthetic street is static and the sensor drives ~4 m a frame along it: one frame
    later, the sweep moved by the true ego motion is closer (Chamfer of the raw points) to
    the new sweep than the sweep left where it was, and far closer than the sweep moved the
    wrong way (the check fails with the transform inverted). Further ahead the copy wins on
    these 30 m sweeps: the README's "warp_last loses to copy_last" explains why."""
    sweeps = synthetic_streets("val")
    totals = {"copy": 0.0, "warp": 0.0, "wrong": 0.0}
    for k in range(len(sweeps.ranges)):
        last, t = 3, 4
        points, later, poses = (measured_points(sweeps, k, last),
                                measured_points(sweeps, k, t), sweeps.poses[k])  # fmt: skip
        moved = {"copy": points, "warp": move_points(points, poses[last], poses[t]),
                 "wrong": move_points(points, poses[t], poses[last])}  # fmt: skip
        for name, cloud in moved.items():
            totals[name] += chamfer_distance(cloud, later)
    assert totals["warp"] < 0.9 * totals["copy"] and totals["warp"] < 0.5 * totals["wrong"]


def test_the_baselines_cast_the_sweep_in_the_tokenizer_grid(tokenizer):
    """A sweep cast along its own rays gives its own depths back to within a voxel."""
    sweeps = synthetic_streets("val")
    frame = true_frame(sweeps, 0, 5, 2048)
    rays, _ = frame_rays(tokenizer, frame)
    depth = cast_sweep(measured_points(sweeps, 0, 5), tokenizer, rays)
    assert float((depth - frame.rays.depths).abs().median()) < 0.4  # voxels of 0.625 m


def test_synthetic_splits_share_no_street():
    keys = {split: set(synthetic_streets(split).sequence_keys) for split in ("train", "val")}
    assert not keys["train"] & keys["val"]


def test_train_and_validate_a_lidar_run_end_to_end(tmp_path):
    out, results = tmp_path / "run", tmp_path / "results"
    train = testing.load_script(CHAPTER, "train")
    train.main(["--kind=lidar-maskgit", "--data.preset=synthetic", f"--data.cache={tmp_path}",
                "--lidar.dim=32", "--lidar.depth=1", "--lidar.heads=2", "--steps=2",
                "--eval_every=0", "--checkpoint_every=2", "--device=cpu", "--progress=false",
                f"--out_dir={out}"])  # fmt: skip
    assert json.loads((out / "motion_tokenizer.json").read_text())["bins"]
    validate = testing.load_script(CHAPTER, "validate")
    record = validate.main([str(out), "--splits=val", "--stride=2", "--samples=10",
                            "--maskgit_steps=2", "--lidar_rays=512", "--device=cpu",
                            f"--results={results}"])[str(out)]  # fmt: skip
    saved = json.loads((results / "run.json").read_text())
    for key in (
        "val_1s_model_chamfer",
        "val_3s_warp_last_chamfer_ci_high",
        "val_1s_model_minus_copy_last_chamfer_ci_low",
        "val_3s_model_minus_warp_last_depth_l1",
        "val_3s_ceiling_at_horizon_chamfer",
        "val_1s_copy_last_depth_l1_ground",
        "val_3s_model_depth_l1_above_ground",
    ):
        assert key in record and key in saved, key
    assert saved["val_1s_frames"] == 2 * saved["val_windows"]  # 2 future frames a window
    assert saved["val_3s_frames"] == 6 * saved["val_windows"]
    assert [Path(p).name for p in record["val_pictures"]] == ["lidar-maskgit_forecast_val.png"]
    assert Path(record["val_pictures"][0]).stat().st_size > 0


def test_the_lidar_context_is_the_smallest_protocols(tokenizer):
    motion = EgoMotionTokenizer((0.0, -1.0, -1.0), (1.0, 1.0, 1.0), (4, 2, 2))
    config = lidar_config_matching(tokenizer, motion, dim=32, depth=1, heads=2, context=2)
    assert (config.context, config.max_frames, config.token_grid) == (2, 12, (16, 16))
    with pytest.raises(ValueError, match="lidar.context must be 2"):
        lidar_config_matching(tokenizer, motion, dim=32, depth=1, heads=2, context=5)
