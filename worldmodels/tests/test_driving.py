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
    lidar,
    load_manifest,
    read_shard,
    scene,
    traffic,
    world,
)
from worldmodels.data.driving.config import HEIGHT_STEP, ROAD_Z_EGO, DatasetConfig
from worldmodels.data.driving.generate import RANGE_UNIT, write_shard
from worldmodels.occ3d import CLASS_ID, FREE, PAPER_GRID

DEBUG = PRESETS["debug"]
TINY = replace(
    DEBUG,
    name="tiny",
    lidar=replace(DEBUG.lidar, azimuths=120),
    data=DatasetConfig(
        scenarios=("highway", "racetrack"),
        heldout_scenario="roundabout",
        train_per_scenario=1,
        val_per_scenario=1,
        heldout_sequences=1,
        frames=3,
    ),
)
GROUND = {CLASS_ID[c] for c in ("driveable_surface", "sidewalk", "terrain", "other_flat")}


# ----------------------------------------------------------------------------- helpers


def voxel_index(points: np.ndarray, preset) -> tuple[np.ndarray, np.ndarray]:
    """Voxel (x, y, z) indices (N, 3) of ego-frame points (N, 3), and whether in the grid."""
    grid = preset.grid
    low = np.array([-grid.half_extent[0], -grid.half_extent[1], grid.z_range[0]])
    size = np.array([grid.voxel_xy, grid.voxel_xy, grid.voxel_z])
    index = np.floor((points - low) / size).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array(grid.size)), axis=1)
    return np.clip(index, 0, np.array(grid.size) - 1), inside


def empty_raster(preset) -> scene.EgoRaster:
    """Flat road everywhere, nothing on it."""
    half, cell = preset.raster_half_extent, preset.fine_cell
    count = round(2 * half / cell)
    return scene.EgoRaster(
        cell=cell,
        half=half,
        ground=np.full((count, count), CLASS_ID["driveable_surface"], np.uint8),
        obj_class=np.full((count, count), FREE, np.uint8),
        bottom=np.full((count, count), np.inf, np.float32),
        top=np.full((count, count), -np.inf, np.float32),
    )


def put_solid(raster, x0, x1, y0, y1, cls, top) -> None:
    """A solid from the road up to `top` (ego z) over ego-frame x in [x0, x1), y in [y0, y1)
    (metres, multiples of the raster cell)."""
    to_index = lambda v: round((v + raster.half) / raster.cell)
    rows, cols = slice(to_index(x0), to_index(x1)), slice(to_index(y0), to_index(y1))
    raster.obj_class[rows, cols] = cls
    raster.bottom[rows, cols] = ROAD_Z_EGO
    raster.top[rows, cols] = top


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


SENSOR = np.array([0.0, 0.0, DEBUG.lidar.sensor_height])


@pytest.fixture(scope="module")
def frame():
    """One urban frame of the debug preset: raster, voxels, and the noise-free cast of every
    ray of the debug LiDAR."""
    spec = traffic.get_scenario("intersection")
    record = traffic.simulate(spec, 5, 2, 2.0, 10.0)
    margin = DEBUG.raster_half_extent * np.sqrt(2) + 2
    low, high = record.ego_xy.min(0) - margin, record.ego_xy.max(0) + margin
    lanes = traffic.lane_samples_in(record.lanes, low, high, DEBUG.fine_cell / 2)
    static = world.build_world(
        lanes, record.obstacles, spec.style, low, high, DEBUG.fine_cell, np.random.default_rng(0)
    )
    raster = scene.ego_raster(static, record.ego_xy[1], record.ego_yaw[1], record.agents[1], DEBUG)
    voxels = scene.voxelize(raster, DEBUG)
    dirs = rearrange(DEBUG.lidar.ray_directions(), "H W xyz -> (H W) xyz")
    cast = lidar.cast_rays(raster, voxels, DEBUG, SENSOR, dirs)
    return raster, voxels, dirs, cast


@pytest.fixture(scope="module")
def sequence():
    return generate_sequence("intersection", 3, replace(DEBUG, data=replace(TINY.data)))


# ----------------------------------------------------------------------------- settings


def test_presets_follow_occ3d_and_keep_surfaces_on_voxel_faces():
    paper = get_preset("paper")
    assert paper.grid.size == PAPER_GRID
    assert paper.grid.half_extent == (40.0, 40.0) and paper.grid.voxel_z == pytest.approx(0.4)
    for preset in PRESETS.values():
        grid = preset.grid
        levels = (ROAD_Z_EGO - grid.z_range[0]) / grid.voxel_z
        assert levels == pytest.approx(round(levels))  # the road is a voxel face
        assert HEIGHT_STEP / grid.voxel_z == pytest.approx(round(HEIGHT_STEP / grid.voxel_z))
        assert grid.voxel_xy / preset.fine_cell == pytest.approx(preset.subdivision)
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
    np.testing.assert_allclose(azimuth, (np.arange(360) + 0.5))  # half a step off the axes


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
    steps = sizes[:, 2] / HEIGHT_STEP
    np.testing.assert_allclose(steps, np.round(steps))  # heights end on voxel faces
    with pytest.raises(ValueError, match="multiple of frame_rate"):
        traffic.simulate(spec, 1, 2, 3.0, 10.0)


# ----------------------------------------------------------------------------- voxels


def test_voxelize_hand_made_scene():
    raster = empty_raster(DEBUG)
    put_solid(raster, 5.0, 9.0, 2.0, 4.0, CLASS_ID["car"], ROAD_Z_EGO + 1.6)  # 4 m x 2 m car
    put_solid(raster, 10.25, 10.5, -3.0, -2.75, CLASS_ID["manmade"], 7.0)  # a 0.25 m pole
    # A 0.8 m barrier: its top 0.6 m is stored as float32 0.6000000238, which must not spill
    # into the level above.
    put_solid(raster, 12.0, 14.0, -1.0, 1.0, CLASS_ID["barrier"], ROAD_Z_EGO + 0.8)
    semantics = scene.voxelize(raster, DEBUG).semantics
    X, Y, Z = DEBUG.grid.size
    assert semantics.shape == (X, Y, Z)
    # Debug voxels: 1 m x 1 m x 0.8 m, x index = floor(x + 32), z index = floor((z + 1) / 0.8).
    assert np.all(semantics[:, :, 0] == CLASS_ID["driveable_surface"])  # the ground layer
    car = semantics == CLASS_ID["car"]
    assert set(map(tuple, np.argwhere(car))) == {
        (x, y, z) for x in range(37, 41) for y in range(34, 36) for z in (1, 2)
    }
    pole = np.argwhere(semantics == CLASS_ID["manmade"])
    assert set(map(tuple, pole)) == {(42, 29, z) for z in range(1, 8)}  # whole column, any rule
    barrier = np.argwhere(semantics == CLASS_ID["barrier"])
    assert set(map(tuple, barrier)) == {(x, y, 1) for x in (44, 45) for y in (31, 32)}
    assert np.sum(semantics != FREE) == X * Y + 16 + 7 + 4


# ----------------------------------------------------------------------------- LiDAR


def test_ray_hits_wall_face_and_ground_where_hand_computed():
    raster = empty_raster(DEBUG)
    put_solid(raster, 10.0, 11.0, -5.0, 5.0, CLASS_ID["manmade"], 5.0)  # wall, x in [10, 11)
    voxels = scene.voxelize(raster, DEBUG)
    dirs = np.stack(
        [
            unit([1.0, 0.01, 0.0]),  # level, forward: hits the wall face x = 10
            unit([-1.0, 0.02, -1.0]),  # 45 deg down, backwards: road 1.8 m below the sensor
            unit([0.2, 1.0, 0.6]),  # up to the left: nothing, no return
        ]
    )
    cast = lidar.cast_rays(raster, voxels, DEBUG, SENSOR, dirs)
    wall_t = 10.0 / dirs[0, 0]
    assert cast.t[0] == pytest.approx(wall_t + lidar.INSIDE, abs=1e-9)
    assert cast.label[0] == CLASS_ID["manmade"]
    ground_t = (SENSOR[2] - ROAD_Z_EGO) * np.sqrt(2 + 0.02**2)  # 1.8 m drop at 45 deg
    assert cast.t[1] == pytest.approx(ground_t + lidar.INSIDE, abs=1e-6)
    assert cast.label[1] == CLASS_ID["driveable_surface"]
    assert np.isinf(cast.t[2]) and cast.label[2] == lidar.NO_RETURN


def test_point_stays_in_the_first_occupied_voxel():
    raster = empty_raster(DEBUG)
    put_solid(raster, 1.0, 2.0, -5.0, 5.0, CLASS_ID["manmade"], 5.0)  # wall, x in [1, 2)
    voxels = scene.voxelize(raster, DEBUG)
    # Climbing 0.598 m per metre, the ray meets the wall at x = 1, z = 2.198: 2 mm below the
    # face z = 2.2 between levels 3 and 4 (both occupied by the wall). 5 mm inside the wall
    # would be above that face, so the point must stop halfway to it instead.
    direction = unit([1.0, 0.01, 0.598])
    cast = lidar.cast_rays(raster, voxels, DEBUG, SENSOR, direction[None])
    enter, face = 1.0 / direction[0], (2.2 - SENSOR[2]) / direction[2]
    assert cast.t[0] == pytest.approx(enter + (face - enter) / 2)
    index, _ = voxel_index(SENSOR + cast.t[0] * direction[None], DEBUG)
    assert index.tolist() == [[33, 32, 3]]


def test_ray_grazing_a_partly_filled_voxel_stops_in_its_middle():
    raster = empty_raster(DEBUG)
    # A 0.25 m pole in a corner of voxel column x in [6, 7), y in [3, 4): x in [6.75, 7),
    # y in [3, 3.25). The voxels of that column are occupied (levels 1-7).
    put_solid(raster, 6.75, 7.0, 3.0, 3.25, CLASS_ID["manmade"], 7.0)
    voxels = scene.voxelize(raster, DEBUG)
    # A level ray along y = (3.7 / 6.3) x enters the voxel at x = 6 (y = 3.52) and leaves it at
    # y = 4 (x = 6.81): it never comes near the pole, but it crossed an occupied voxel.
    direction = unit([6.3, 3.7, 0.0])
    cast = lidar.cast_rays(raster, voxels, DEBUG, SENSOR, direction[None])
    t_in, t_out = 6.0 / direction[0], 4.0 / direction[1]
    assert cast.t[0] == pytest.approx((t_in + t_out) / 2)
    assert cast.label[0] == CLASS_ID["manmade"]


def test_lidar_points_lie_in_occupied_voxels(frame):
    raster, voxels, dirs, cast = frame
    hit = np.isfinite(cast.t)
    assert hit.mean() > 0.8
    points = SENSOR + cast.t[hit, None] * dirs[hit]  # ego frame
    index, inside = voxel_index(points, DEBUG)
    assert inside.sum() > 5000
    assert np.all(voxels.semantics[tuple(index[inside].T)] != FREE)
    labels = cast.label[hit][inside]
    assert set(np.unique(labels)) >= {CLASS_ID["driveable_surface"], CLASS_ID["sidewalk"]}


def test_rays_cross_only_free_voxels_before_their_hit(frame):
    raster, voxels, dirs, cast = frame
    rays = np.flatnonzero(np.isfinite(cast.t))[::3]
    step = 0.02  # m between samples along each ray
    for chunk in np.array_split(rays, 8):
        t = np.arange(step / 2, cast.t[chunk].max(), step)  # (S,)
        before = t[None, :] < cast.t[chunk, None]  # (R, S) samples before the hit
        points = SENSOR + t[None, :, None] * dirs[chunk, None, :]  # (R, S, 3)
        index, inside = voxel_index(rearrange(points, "R S xyz -> (R S) xyz"), DEBUG)
        occupied = (voxels.semantics[tuple(index.T)] != FREE) & inside
        hit_index, _ = voxel_index(SENSOR + cast.t[chunk, None] * dirs[chunk], DEBUG)
        index = rearrange(index, "(R S) xyz -> R S xyz", R=len(chunk))
        same = np.all(index == hit_index[:, None, :], axis=-1)  # (R, S) in the hit's voxel
        crossed = rearrange(occupied, "(R S) -> R S", R=len(chunk)) & before & ~same
        assert not crossed.any(), f"{crossed.any(axis=1).sum()} rays cross occupied voxels"


def test_visibility_marks_exactly_the_voxels_on_the_ray():
    raster = empty_raster(DEBUG)
    voxels = scene.voxelize(raster, DEBUG)
    direction = unit([1.0, 0.001, -0.2])
    cast = lidar.cast_rays(raster, voxels, DEBUG, SENSOR, direction[None])
    seen = lidar.visibility(voxels, DEBUG, SENSOR, direction[None], cast.t)
    # Hand count: the ray stays in y column 32 and descends 0.2 m per metre of x, from z = 1.6
    # to the road (-0.2) at x = 9 (its point lies 5 mm further, in the ground voxel). In x
    # column k (x in [k - 32, k - 31)) it spans heights z = 1.6 - 0.2 x, i.e. the levels from
    # floor((z_low + 1) / 0.8) to ceil((z_high + 1) / 0.8) - 1 (only touching a face of a level
    # does not count: the 1e-6 margins).
    expected = set()
    for k in range(32, 42):
        x0, x1 = k - 32, min(k - 31, 9.0 + 0.005)
        z_high, z_low = 1.6 - 0.2 * x0, 1.6 - 0.2 * x1
        low = int(np.floor((z_low + 1) / 0.8 + 1e-6))
        high = int(np.ceil((z_high + 1) / 0.8 - 1e-6)) - 1
        expected |= {(k, 32, z) for z in range(max(low, 0), high + 1)}
    assert set(map(tuple, np.argwhere(seen))) == expected


# ----------------------------------------------------------------------------- sequences


def test_generated_sequence_arrays(sequence):
    T, (X, Y, Z), H, W = 3, DEBUG.grid.size, DEBUG.lidar.beams, DEBUG.lidar.azimuths
    assert sequence["occupancy"].shape == (T, X, Y, Z) and sequence["occupancy"].dtype == np.uint8
    assert sequence["visibility"].shape == (T, X, Y, Z) and sequence["visibility"].dtype == bool
    assert sequence["lidar_range"].shape == (T, H, W) and sequence["lidar_range"].dtype == np.uint16
    assert sequence["occupancy"].max() <= FREE
    assert set(np.unique(sequence["occupancy"][:, :, :, 0])) <= GROUND
    poses = sequence["ego_pose"]
    rotation = poses[:, :3, :3]
    np.testing.assert_allclose(
        rotation @ rotation.transpose(0, 2, 1), np.tile(np.eye(3), (3, 1, 1)), atol=1e-9
    )
    np.testing.assert_allclose(poses[:, 2, 3], -ROAD_Z_EGO)  # ego origin 0.2 m above road
    # Urban scene: roads, sidewalks, buildings, vegetation, cars and pedestrians.
    present = set(np.unique(sequence["occupancy"]))
    assert {CLASS_ID[c] for c in ("driveable_surface", "sidewalk", "manmade", "vegetation")} <= (
        present
    )
    assert CLASS_ID["car"] in set(sequence["box_class"])
    assert CLASS_ID["pedestrian"] in set(sequence["box_class"])
    assert sequence["box_count"].sum() == len(sequence["boxes"]) == len(sequence["box_id"])
    # Visible voxels: crossed by returned rays; about a fifth of the grid for one sweep.
    assert 0.05 < sequence["visibility"].mean() < 0.6
    ranges = sequence["lidar_range"] * RANGE_UNIT
    assert 0.8 < (ranges > 0).mean() < 1.0 and ranges.max() <= DEBUG.lidar.max_range + 0.1


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path, sequence):
    again = generate_sequence("intersection", 3, replace(DEBUG, data=replace(TINY.data)))
    write_shard(tmp_path / "a.npz", sequence)
    write_shard(tmp_path / "b.npz", again)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(tmp_path / "a.npz") == digest(tmp_path / "b.npz")
    other = generate_sequence("intersection", 4, replace(DEBUG, data=replace(TINY.data)))
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
    assert torch.equal(item["sensor_to_ego"][:3, 3], torch.tensor([0.0, 0.0, 1.6]))

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
