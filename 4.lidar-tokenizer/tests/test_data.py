"""Held out means held out: no sequence of val or heldout is a training sequence; the sweeps
come back in the sensor frame they were cast in; the real scans load."""

import hashlib

import pytest
import torch
from lidar_tokenizer.data import SyntheticSweeps, cast_boxes, real_scans
from lidar_tokenizer.evaluate import driving_frames

from worldmodels.data.driving.config import PRESETS as DRIVING
from worldmodels.data.driving.store import DATA_ROOT, dataset_plan, load_manifest


def test_driving_splits_share_no_sequence():
    """The plan every driving preset is generated from: train, val and heldout are disjoint
    seeds, and the held-out scenario appears in heldout only."""
    for name, preset in DRIVING.items():
        plan = dataset_plan(preset)
        seeds = {s: {p.seed for p in plan if p.split == s} for s in ("train", "val", "heldout")}
        assert all(seeds.values()), name
        assert not seeds["train"] & (seeds["val"] | seeds["heldout"]), name
        assert not seeds["val"] & seeds["heldout"], name
        assert all(p.scenario == preset.data.heldout_scenario for p in plan if p.split == "heldout")
        assert all(p.scenario != preset.data.heldout_scenario for p in plan if p.split != "heldout")


def generated(preset: str) -> bool:
    """The preset's driving data is on disk, made by this engine (same fingerprint)."""
    manifest = DATA_ROOT / preset / "manifest.json"
    return (
        manifest.exists()
        and load_manifest(manifest.parent)["fingerprint"] == DRIVING[preset].fingerprint()
    )


@pytest.mark.skipif(not generated("debug"), reason="no driving debug data of this engine here")
def test_generated_sweeps_share_no_sequence_or_frame():
    from lidar_tokenizer.data import LidarSweeps

    splits = {s: LidarSweeps(s) for s in ("train", "val", "heldout")}
    keys = {s: set(d.sequence_keys) for s, d in splits.items()}
    assert not keys["train"] & (keys["val"] | keys["heldout"]) and not keys["val"] & keys["heldout"]
    train = {hashlib.sha1(r.tobytes()).hexdigest() for seq in splits["train"].ranges for r in seq}
    for name in ("val", "heldout"):
        held = {hashlib.sha1(r.tobytes()).hexdigest() for seq in splits[name].ranges for r in seq}
        assert not train & held, name
    item = splits["val"][0]
    assert item["range"].shape == item["range_clean"].shape == item["dirs"].shape[:2]


def _hashes(dataset) -> set[str]:
    return {hashlib.sha1(dataset[i]["range"].numpy().tobytes()).hexdigest()
            for i in range(len(dataset))}  # fmt: skip


def test_synthetic_splits_share_no_frame():
    splits = {s: SyntheticSweeps(s) for s in ("train", "val", "heldout")}
    assert not _hashes(splits["train"]) & (_hashes(splits["val"]) | _hashes(splits["heldout"]))
    assert not _hashes(splits["val"]) & _hashes(splits["heldout"])
    item = splits["val"][5]
    assert item["sequence"] == 1 and item["frame"] == 1  # 4 frames a sequence
    noise = (item["range"] - item["range_clean"])[item["range_clean"] > 0]
    assert 0.01 < noise.std() < 0.03  # 2 cm of range noise, as the driving world's


def test_ranges_are_distances_along_the_directions():
    """Points r d from a synthetic sweep lie on what was cast: the ground z = -1.84 m or a
    box; a ray straight down from 1.84 m returns at 1.84 m."""
    down = torch.tensor([[0.0, 0.0, -1.0], [0.6, 0.0, -0.8]])
    box = torch.tensor([[100.0, 100.0, 0.0]]), torch.tensor([[101.0, 101.0, 1.0]])
    depth = cast_boxes(down, torch.tensor([0.0, 0.0, 1.84]), *box)
    assert torch.allclose(depth, torch.tensor([1.84, 1.84 / 0.8]))
    item = SyntheticSweeps("train")[1]
    frames = driving_frames(SyntheticSweeps("train"), sequences=1, frames=2, max_rays=10**6)
    assert len(frames) == 2 and frames[0].frame == 1  # two from the middle of four
    assert len(frames[0].rays.depths) == int((item["range"] > 0).sum())


def test_real_scans_load_in_the_sensor_frame():
    scans = real_scans(max_points=500)
    assert [s["name"] for s in scans][:4] == ["os1-128#0", "os1-128#1", "os1-128#2", "os1-32#0"]
    assert len(scans) == 14 and all(len(s["points"]) <= 500 for s in scans)
    ground = torch.cat([s["points"][:, 2] for s in scans]).quantile(0.05)
    assert -2.5 < ground < -1.0  # the road, a metre or two under the sensor
