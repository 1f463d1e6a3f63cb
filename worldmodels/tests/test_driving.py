"""Tests of the driving-world engine (worldmodels/data/driving): frames, voxels, LiDAR
consistency, determinism, shards and the dataset. Tiny sequences of the debug preset."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from einops import rearrange

from worldmodels.data.driving import (
    PRESETS,
    DrivingSequences,
    ensure_dataset,
    generate_sequence,
    get_preset,
    load_manifest,
    read_shard,
    traffic,
)
from worldmodels.data.driving.config import ROAD_Z_EGO, DatasetConfig
from worldmodels.data.driving.generate import RANGE_UNIT
from worldmodels.data.driving.store import write_shard
from worldmodels.occ3d import CLASS_ID, FREE, PAPER_GRID

DEBUG = PRESETS["debug"]
TINY = replace(
    DEBUG,
    name="tiny",
    lidar=replace(DEBUG.lidar, azimuths=120),
    data=DatasetConfig(
        scenarios=("highway", "racetrack"),
        weights=(1.0, 1.0),
        heldout_scenario="roundabout",
        train_per_scenario=1,
        val_per_scenario=1,
        heldout_sequences=1,
        frames=3,
    ),
)
GROUND = {CLASS_ID[c] for c in ("driveable_surface", "sidewalk", "terrain", "other_flat")}
SENSOR = np.array([0.0, 0.0, DEBUG.lidar.sensor_height])


@pytest.fixture(scope="module")
def sequence():
    return generate_sequence("street", 3, replace(DEBUG, data=replace(TINY.data)))


# ----------------------------------------------------------------------------- settings


def test_presets_follow_occ3d_and_put_the_road_inside_a_voxel_level():
    paper = get_preset("paper")
    assert paper.grid.size == PAPER_GRID
    assert paper.grid.half_extent == (40.0, 40.0) and paper.grid.voxel_z == pytest.approx(0.4)
    for preset in PRESETS.values():
        grid = preset.grid
        levels = (ROAD_Z_EGO - grid.z_range[0]) / grid.voxel_z
        assert 0.2 < levels % 1 < 0.8  # the road lies well inside a level, not on a face
        assert grid.voxel_xy / preset.fine_cell == pytest.approx(preset.subdivision)
    with pytest.raises(ValueError, match="caster"):
        replace(DEBUG.lidar, caster="grazing")
    with pytest.raises(ValueError, match="weights"):
        DatasetConfig(scenarios=("street",), weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown driving preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown driving scenario"):
        traffic.get_scenario("parking")


def test_beams_cover_the_configured_field_of_view():
    config = DEBUG.lidar
    dirs = config.ray_directions()  # (H, W, 3)
    assert dirs.shape == (32, 360, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0)
    elevation = np.degrees(np.arcsin(dirs[:, 0, 2]))
    assert elevation[0] == pytest.approx(10.67) and elevation[-1] == pytest.approx(-30.67)
    azimuth = np.degrees(np.arctan2(dirs[0, :, 1], dirs[0, :, 0])) % 360
    expected = (180 - (np.arange(360) + 0.5)) % 360  # behind, left, forward, right, behind
    np.testing.assert_allclose(azimuth, expected)  # half a step off the axes


def test_range_image_columns_follow_one_convention_everywhere():
    # viz.range_image puts a point seen along column w's ray back into column w.
    from worldmodels.viz import range_image

    config = DEBUG.lidar
    dirs = config.ray_directions()  # (H, W, 3)
    depth = 5.0 + np.arange(config.azimuths)[None, :] * 0.01 + np.zeros((config.beams, 1))
    points = rearrange(depth[..., None] * dirs, "H W xyz -> (H W) xyz")
    rows = np.repeat(np.arange(config.beams), config.azimuths)
    image = range_image(points, config.beams, config.azimuths, rings=rows)
    np.testing.assert_allclose(image, depth, rtol=1e-6)


# ----------------------------------------------------------------------------- traffic


def test_world_frame_is_highway_env_mirrored_so_lane_left_goes_to_plus_y():
    spec = traffic.get_scenario("highway")
    env = traffic.make_env(spec, 0, np.random.default_rng(0), 10.0)
    ego = env.vehicle
    _, _, lane = ego.lane_index
    action = "LANE_LEFT" if lane > 0 else "LANE_RIGHT"
    start = traffic.mirror_xy(ego.position)
    ego.act(action)
    for _ in range(20):
        env.road.act()
        env.road.step(0.1)
    moved = traffic.mirror_xy(ego.position) - start
    assert moved[0] > 10  # heading +x in both frames
    assert np.sign(moved[1]) == (1 if action == "LANE_LEFT" else -1)  # left is +y
    assert traffic.mirror_xy([3.0, 4.0]).tolist() == [3.0, -4.0]


def test_ego_policy_varies_and_traffic_has_boxes():
    spec = traffic.get_scenario("highway")
    record = traffic.simulate(spec, 1, 12, 2.0, 10.0)
    assert record.ego_xy.shape == (12, 2) and record.actions.shape == (12,)
    step = np.linalg.norm(np.diff(record.ego_xy, axis=0), axis=1)
    expected = (record.ego_speed[:-1] + record.ego_speed[1:]) / 2 * 0.5  # m per 0.5 s
    np.testing.assert_allclose(step, expected, rtol=0.15, atol=0.5)
    assert len(set(record.actions.tolist())) > 1  # not always IDLE
    sizes = np.array([(a.length, a.width, a.height) for a in record.agents[0]])
    assert len(sizes) > 5 and np.all(sizes > 0)
    with pytest.raises(ValueError, match="multiple of frame_rate"):
        traffic.simulate(spec, 1, 2, 3.0, 10.0)


# ----------------------------------------------------------------------------- sequences


def test_generated_sequence_arrays(sequence):
    T, (X, Y, Z), H, W = 3, DEBUG.grid.size, DEBUG.lidar.beams, DEBUG.lidar.azimuths
    assert sequence["occupancy"].shape == (T, X, Y, Z) and sequence["occupancy"].dtype == np.uint8
    assert sequence["visibility"].shape == (T, X, Y, Z) and sequence["visibility"].dtype == bool
    assert sequence["lidar_range"].shape == (T, H, W) and sequence["lidar_range"].dtype == np.uint16
    assert sequence["lidar_range_clean"].shape == (T, H, W)
    assert np.array_equal(sequence["lidar_range_clean"] > 0, sequence["lidar_range"] > 0)
    assert sequence["occupancy"].max() <= FREE
    # One ground layer: the road level holds ground almost everywhere it is seen.
    road_level = sequence["occupancy"][:, :, :, DEBUG.grid.road_level]
    assert np.isin(road_level, list(GROUND)).mean() > 0.3
    poses = sequence["ego_pose"]
    rotation = poses[:, :3, :3]
    np.testing.assert_allclose(
        rotation @ rotation.transpose(0, 2, 1), np.tile(np.eye(3), (3, 1, 1)), atol=1e-9
    )
    assert np.all(np.abs(poses[:, 2, 3]) < 5.0)  # the ego stands on the relief
    # Urban scene: roads, sidewalks, buildings, vegetation, cars and pedestrians.
    present = set(np.unique(sequence["occupancy"]))
    assert {CLASS_ID[c] for c in ("driveable_surface", "sidewalk", "manmade", "vegetation")} <= (
        present
    )
    assert CLASS_ID["car"] in set(sequence["box_class"])
    assert CLASS_ID["pedestrian"] in set(sequence["box_class"])
    parked = sequence["box_id"] >= 200_000
    assert parked.sum() > 0 and np.all(sequence["box_speed"][parked] == 0)
    assert sequence["box_count"].sum() == len(sequence["boxes"]) == len(sequence["box_id"])
    # Visible voxels: crossed by returned rays; about a fifth of the grid for one sweep.
    assert 0.05 < sequence["visibility"].mean() < 0.6
    ranges = sequence["lidar_range"] * RANGE_UNIT
    assert 0.8 < (ranges > 0).mean() < 1.0 and ranges.max() <= DEBUG.lidar.max_range + 0.1


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path, sequence):
    again = generate_sequence("street", 3, replace(DEBUG, data=replace(TINY.data)))
    write_shard(tmp_path / "a.npz", sequence)
    write_shard(tmp_path / "b.npz", again)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(tmp_path / "a.npz") == digest(tmp_path / "b.npz")
    other = generate_sequence("street", 4, replace(DEBUG, data=replace(TINY.data)))
    assert not np.array_equal(other["occupancy"], sequence["occupancy"])
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:  # no write time inside the shard
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    loaded = read_shard(tmp_path / "a.npz")
    assert all(np.array_equal(loaded[k], sequence[k]) for k in sequence)


def test_dataset_splits_items_and_errors(tmp_path):
    folder = ensure_dataset(TINY, tmp_path / "tiny", workers=1, progress=False)
    manifest = load_manifest(folder)
    by_split = {s: [e for e in manifest["sequences"] if e["split"] == s] for s in ("train", "val")}
    heldout = [e for e in manifest["sequences"] if e["split"] == "heldout"]
    assert [e["scenario"] for e in heldout] == ["roundabout"]
    assert {e["scenario"] for e in by_split["train"]} == {"highway", "racetrack"}
    train_seeds = {(e["scenario"], e["seed"]) for e in by_split["train"]}
    assert not train_seeds & {(e["scenario"], e["seed"]) for e in by_split["val"]}
    assert ensure_dataset(TINY, folder, workers=1, progress=False) == folder  # reused

    data = DrivingSequences("train", seq_len=2, preset=TINY, root=folder)
    assert len(data) == 2 * 2  # 2 sequences x 2 windows of 2 frames out of 3
    item = data[1]
    X, Y, Z = TINY.grid.size
    P = TINY.lidar.beams * TINY.lidar.azimuths
    assert item["occupancy"].shape == (2, X, Y, Z) and item["occupancy"].dtype == torch.uint8
    assert item["visibility"].dtype == torch.bool
    assert item["ego_pose"].shape == (2, 4, 4) and item["ego_pose"].dtype == torch.float64
    assert item["lidar_points"].shape == (2, P, 3) and item["lidar_labels"].shape == (2, P)
    assert item["boxes"].shape == (2, TINY.max_boxes, 7) and item["start"] == 1
    counts = item["lidar_counts"]
    assert torch.equal(counts, (item["lidar_range"] > 0).sum(dim=(1, 2)))
    valid = item["lidar_points"][0, : counts[0]]
    assert torch.all(item["lidar_points"][0, counts[0] :] == 0)
    norms = valid.norm(dim=1)
    flat_range = rearrange(item["lidar_range"][0], "H W -> (H W)")
    torch.testing.assert_close(norms, flat_range[flat_range > 0], rtol=1e-5, atol=1e-4)
    n_boxes = item["box_counts"][0]
    assert torch.all(item["box_ids"][0, n_boxes:] == -1) and torch.all(
        item["box_ids"][0, :n_boxes] >= 0
    )
    assert torch.equal(item["sensor_to_ego"][:3, 3], torch.tensor([0.0, 0.0, 1.84]))
    assert item["lidar_range_clean"].shape == item["lidar_range"].shape
    assert item["box_speeds"].shape == (2, TINY.max_boxes)

    with pytest.raises(ValueError, match="split must be one of"):
        DrivingSequences("test", seq_len=2, preset=TINY, root=folder)
    with pytest.raises(ValueError, match="no window of 9 frames"):
        DrivingSequences("val", seq_len=9, preset=TINY, root=folder)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        DrivingSequences("val", seq_len=2, preset=TINY, root=tmp_path / "nothing", generate=False)
    with pytest.raises(ValueError, match="other settings"):
        ensure_dataset(replace(TINY, fine_cell=0.5), folder, workers=1, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_shard(folder / "train" / "missing.npz")
    assert json.loads((folder / "manifest.json").read_text())["preset"]["name"] == "tiny"
