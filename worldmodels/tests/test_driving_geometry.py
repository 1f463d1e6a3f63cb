"""The driving world's geometry: Occ3D-like surface labels and the exact LiDAR, on hand-made
scenes and on the rays of one urban frame (debug preset)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from einops import rearrange

from worldmodels.data.driving import PRESETS, build, lidar, scene, terrain, traffic, voxels, world
from worldmodels.data.driving.caster import INSIDE
from worldmodels.data.driving.stats import solid_at
from worldmodels.occ3d import CLASS_ID, FREE

DEBUG = PRESETS["debug"]
VOXEL_CASTER = replace(DEBUG, lidar=replace(DEBUG.lidar, caster="voxel"))
ROAD, MANMADE = CLASS_ID["driveable_surface"], CLASS_ID["manmade"]
SENSOR = np.array([0.0, 0.0, DEBUG.lidar.sensor_height])


def voxel_index(points: np.ndarray, preset=DEBUG) -> tuple[np.ndarray, np.ndarray]:
    """Voxel (x, y, z) indices (N, 3) of ego-frame points (N, 3), and whether in the grid."""
    grid = preset.grid
    low = np.array([-grid.half_extent[0], -grid.half_extent[1], grid.z_range[0]])
    size = np.array([grid.voxel_xy, grid.voxel_xy, grid.voxel_z])
    index = np.floor((points - low) / size).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array(grid.size)), axis=1)
    return np.clip(index, 0, np.array(grid.size) - 1), inside


def empty_raster(preset=DEBUG, ground_z: float = 0.0) -> scene.EgoRaster:
    """Flat road at height `ground_z` everywhere, nothing on it, all observed."""
    count = round(2 * preset.raster_half_extent / preset.fine_cell)
    full = lambda value, dtype: np.full((count, count), value, dtype)  # noqa: E731
    return scene.EgoRaster(
        cell=preset.fine_cell,
        half=preset.raster_half_extent,
        ground=full(ROAD, np.uint8),
        ground_z=full(ground_z, np.float32),
        obj_class=full(FREE, np.uint8),
        bottom=full(np.inf, np.float32),
        top=full(-np.inf, np.float32),
        observed=full(True, bool),
    )


def put_solid(raster, x0, x1, y0, y1, cls, top, bottom=0.0) -> None:
    """A solid from `bottom` up to `top` (ego z) over ego-frame x in [x0, x1), y in [y0, y1)
    (metres, multiples of the raster cell)."""
    to_index = lambda v: round((v + raster.half) / raster.cell)  # noqa: E731
    rows, cols = slice(to_index(x0), to_index(x1)), slice(to_index(y0), to_index(y1))
    raster.obj_class[rows, cols] = cls
    raster.bottom[rows, cols] = bottom
    raster.top[rows, cols] = top


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def cast(raster, dirs, preset=DEBUG):
    grid = voxels.voxelize(raster, preset)
    return lidar.cast_rays(raster, grid, preset, SENSOR, np.atleast_2d(dirs))


# ----------------------------------------------------------------------------- labels


def test_one_ground_layer_and_hollow_buildings():
    # Debug levels: z in [-1 + 0.4 k, -0.6 + 0.4 k); the road (z = 0) lies inside level 2.
    raster = empty_raster()
    # A building off the voxel faces: x in [2.25, 10.25), y in [-5.75, 4.25), 4 m tall (its
    # roof inside level 12, [3.8, 4.2)); voxel columns x 34..42, y 26..36.
    put_solid(raster, 2.25, 10.25, -5.75, 4.25, MANMADE, 4.0, bottom=-0.5)
    semantics = voxels.voxelize(raster, DEBUG).semantics
    assert DEBUG.grid.size == (64, 64, 16) and DEBUG.grid.road_level == 2
    assert np.all(semantics[:, :, :2] == FREE)  # the earth under the road is not a surface
    outside = np.ones((64, 64), dtype=bool)
    outside[34:43, 26:37] = False
    assert np.all(semantics[:, :, 2][outside] == ROAD)  # one layer of road
    assert np.all(semantics[:, :, 3:][outside] == FREE)
    interior = semantics[35:42, 27:36]
    assert np.all(interior[:, :, 2:12] == FREE)  # the inside of the building is not occupied
    assert np.all(interior[:, :, 12] == MANMADE) and np.all(interior[:, :, 13:] == FREE)  # roof
    ring = np.zeros((64, 64), dtype=bool)
    ring[34:43, 26:37] = True
    ring[35:42, 27:36] = False
    assert np.all(semantics[ring][:, 3:13] == MANMADE)  # walls, one voxel thick
    assert np.all(semantics[ring][:, 13:] == FREE)


def test_a_surface_on_a_voxel_face_occupies_both_sides():
    # A road 3 cm above the face z = -0.2 (within the 5 cm band): level 1 holds it too.
    raster = empty_raster(ground_z=-0.17)
    # A wall whose face x = 10 is a voxel face: the voxels just in front (x index 41) as well.
    put_solid(raster, 10.0, 11.0, -5.0, 5.0, MANMADE, 3.0, bottom=-0.5)
    semantics = voxels.voxelize(raster, DEBUG).semantics
    assert np.all(semantics[:40, :, 1] == ROAD) and np.all(semantics[:40, :, 2] == ROAD)
    assert np.all(semantics[41, 27:37, 3:9] == MANMADE)  # in front of the face
    assert np.all(semantics[40, 27:37, 3:] == FREE)  # one voxel further: free


def test_unobserved_columns_are_not_labelled():
    raster = empty_raster()
    raster.observed[: raster.observed.shape[0] // 2] = False  # nobody saw x < 0
    semantics = voxels.voxelize(raster, DEBUG).semantics
    assert np.all(semantics[:32] == FREE) and np.all(semantics[32:, :, 2] == ROAD)


def test_a_bush_grown_into_another_solid_on_uneven_ground_keeps_the_other_solid():
    relief = terrain.Waves.random(np.random.default_rng(0), 3, (50.0, 100.0), (0.5, 1.0))
    land = world.WorldMap.empty(np.zeros(2), np.full(2, 10.0), 0.25, relief)
    i, j = land.box_cells(np.array([5.0, 5.0]), 0.0, 2.0, 2.0)
    land.put(i, j, MANMADE, 0.0, 3.0)  # follows the relief cell by cell
    bush_i, bush_j = land.disc_cells(np.array([6.0, 5.0]), 1.5)
    land.put(bush_i, bush_j, CLASS_ID["vegetation"], 0.0, 1.0, union=True)
    assert np.all(land.obj_class[i, j] == MANMADE)
    tops = land.obj_top[i, j] - relief.height(land.cell_centres(i, j))
    np.testing.assert_allclose(tops, 3.0, atol=1e-5)


# ----------------------------------------------------------------------------- LiDAR


def test_ray_hits_wall_face_and_ground_where_hand_computed():
    raster = empty_raster()
    put_solid(raster, 10.0, 11.0, -5.0, 5.0, MANMADE, 5.0)  # wall, x in [10, 11)
    dirs = np.stack(
        [
            unit([1.0, 0.01, 0.0]),  # level, forward: hits the wall face x = 10
            unit([-1.0, 0.02, -1.0]),  # 45 deg down, backwards: road 1.84 m below the sensor
            unit([0.2, 1.0, 0.6]),  # up to the left: nothing, no return
        ]
    )
    hits = cast(raster, dirs)
    assert hits.t[0] == pytest.approx(10.0 / dirs[0, 0] + INSIDE, abs=1e-9)
    assert hits.label[0] == MANMADE and hits.normal_axis[0] == 0
    ground_t = SENSOR[2] * np.sqrt(2 + 0.02**2)  # 1.84 m drop at 45 deg
    assert hits.t[1] == pytest.approx(ground_t + INSIDE, abs=1e-6)
    assert hits.label[1] == ROAD and hits.normal_axis[1] == 2
    assert np.isinf(hits.t[2]) and hits.label[2] == lidar.NO_RETURN


def test_point_stays_in_the_voxel_that_holds_the_surface():
    raster = empty_raster()
    put_solid(raster, 1.0, 2.0, -5.0, 5.0, MANMADE, 5.0)  # wall, x in [1, 2)
    # The ray meets the wall at x = 1, z = 2.198: 2 mm below the level face z = 2.2 (between
    # levels 7 and 8). 5 mm inside the wall would be above that face, so the point stops
    # halfway to it instead.
    rise = 2.198 - SENSOR[2]
    direction = unit([1.0, 0.01, rise])
    hits = cast(raster, direction)
    enter, face = 1.0 / direction[0], (2.2 - SENSOR[2]) / direction[2]
    assert hits.t[0] == pytest.approx(enter + (face - enter) / 2)
    index, _ = voxel_index(SENSOR + hits.t[0] * direction[None])
    assert index.tolist() == [[33, 32, 7]]


def test_a_ray_past_a_partly_filled_voxel_goes_on_to_the_first_surface():
    raster = empty_raster()
    # A 0.25 m pole in a corner of voxel column x in [6, 7), y in [3, 4), and a wall behind.
    put_solid(raster, 6.75, 7.0, 3.0, 3.25, MANMADE, 7.0)
    put_solid(raster, 20.0, 21.0, 0.0, 20.0, MANMADE, 7.0)
    # A level ray along y = (3.7 / 6.3) x crosses the pole's voxel without touching the pole.
    direction = unit([6.3, 3.7, 0.0])
    exact = cast(raster, direction)
    wall = 20.0 / direction[0]  # the point lies at most 5 mm behind the wall's face
    assert wall < exact.t[0] <= wall + INSIDE
    # The older voxel-consistent caster stops in the pole's voxel: the "grazing" rule.
    grazing = cast(raster, direction, VOXEL_CASTER)
    t_in, t_out = 6.0 / direction[0], 4.0 / direction[1]
    assert grazing.t[0] == pytest.approx((t_in + t_out) / 2)


def test_visibility_marks_exactly_the_voxels_on_the_ray():
    raster = empty_raster()
    grid = voxels.voxelize(raster, DEBUG)
    direction = unit([1.0, 0.001, -0.2])
    hits = lidar.cast_rays(raster, grid, DEBUG, SENSOR, direction[None])
    seen = lidar.visibility(grid, DEBUG, SENSOR, direction[None], hits.t)
    # Hand count: the ray stays in y column 32 and descends 0.2 m per metre of x, from
    # z = 1.84 to the road (0) at x = 9.2 (its point lies 5 mm further). In x column k
    # (x in [k - 32, k - 31)) it spans z = 1.84 - 0.2 x, i.e. the levels from
    # floor((z_low + 1) / 0.4) to ceil((z_high + 1) / 0.4) - 1 (touching a face does not count).
    expected = set()
    for k in range(32, 42):
        x0, x1 = k - 32, min(k - 31, 9.2 + 0.005)
        z_high, z_low = 1.84 - 0.2 * x0, 1.84 - 0.2 * x1
        low = int(np.floor((z_low + 1) / 0.4 + 1e-6))
        high = int(np.ceil((z_high + 1) / 0.4 - 1e-6)) - 1
        expected |= {(k, 32, z) for z in range(max(low, 0), high + 1)}
    assert set(map(tuple, np.argwhere(seen))) == expected


@pytest.fixture(scope="module")
def frame():
    """One urban frame of the debug preset (relief, kerbs, parked cars, pedestrians): the
    raster, its voxels and the rays of the debug LiDAR."""
    spec = traffic.get_scenario("street")
    record = traffic.simulate(spec, 5, 2, 2.0, 10.0)
    margin = DEBUG.raster_half_extent * np.sqrt(2) + 2
    low, high = record.ego_xy.min(0) - margin, record.ego_xy.max(0) + margin
    lanes = traffic.lane_samples_in(record.lanes, low, high, DEBUG.fine_cell / 2)
    rng = np.random.default_rng(0)
    static = build.build_world(lanes, record.obstacles, spec.style, low, high, 0.25, rng)
    place = scene.EgoPlace.on(static, record.ego_xy[1], record.ego_yaw[1])
    raster, _ = scene.ego_raster(static, place, record.agents[1] + static.parked, DEBUG)
    dirs = rearrange(DEBUG.lidar.ray_directions(), "H W xyz -> (H W) xyz")
    return raster, voxels.voxelize(raster, DEBUG), dirs


def off_surface(raster, dirs, hits) -> np.ndarray:
    """(R,) bool for the rays with a return: the point is not in solid, or 1 cm back along
    the ray still is (so the surface is more than 1 cm away)."""
    ok = np.isfinite(hits.t)
    t = hits.t[ok]
    inside = solid_at(raster, SENSOR + t[:, None] * dirs[ok])
    return ~inside | solid_at(raster, SENSOR + (t - 0.01)[:, None] * dirs[ok])


def test_every_noise_free_point_lies_within_1cm_of_a_surface(frame):
    raster, grid, dirs = frame
    hits = lidar.cast_rays(raster, grid, DEBUG, SENSOR, dirs)
    assert np.isfinite(hits.t).mean() > 0.8
    assert not off_surface(raster, dirs, hits).any()
    # ... in a voxel the labels call occupied (the surfaces are the labels).
    points = SENSOR + hits.t[np.isfinite(hits.t), None] * dirs[np.isfinite(hits.t)]
    index, inside = voxel_index(points)
    assert np.all(grid.semantics[tuple(index[inside].T)] != FREE)
    # The check fails on the older grazing rule, whose points can lie metres off a surface.
    grazing = lidar.cast_rays(raster, grid, VOXEL_CASTER, SENSOR, dirs)
    assert off_surface(raster, dirs, grazing).sum() > 10


def test_no_ray_passes_through_solid_before_its_return(frame):
    raster, grid, dirs = frame
    hits = lidar.cast_rays(raster, grid, DEBUG, SENSOR, dirs)
    rays = np.flatnonzero(np.isfinite(hits.t))[::5]
    step = 0.02  # m between samples along each ray
    for chunk in np.array_split(rays, 8):
        t = np.arange(step / 2, hits.t[chunk].max(), step)  # (S,)
        before = t[None, :] < hits.t[chunk, None] - INSIDE  # (R, S) samples before the surface
        points = SENSOR + t[None, :, None] * dirs[chunk, None, :]  # (R, S, 3)
        solid = solid_at(raster, rearrange(points, "R S xyz -> (R S) xyz"))
        crossed = rearrange(solid, "(R S) -> R S", R=len(chunk)) & before
        assert not crossed.any(), f"{crossed.any(axis=1).sum()} rays pass through solid"


def test_the_voxel_caster_still_keeps_its_points_in_occupied_voxels(frame):
    raster, grid, dirs = frame
    hits = lidar.cast_rays(raster, grid, VOXEL_CASTER, SENSOR, dirs)
    ok = np.isfinite(hits.t)
    index, inside = voxel_index(SENSOR + hits.t[ok, None] * dirs[ok])
    assert np.all(grid.semantics[tuple(index[inside].T)] != FREE)


def test_frames_holding_counts_frames_not_voxels():
    from worldmodels.data.driving.stats import frames_holding
    from worldmodels.occ3d import CLASS_ID, FREE, NUM_CLASSES

    occ = np.full((3, 4, 4, 2), FREE, dtype=np.uint8)
    occ[0, :, :, 0] = CLASS_ID["car"]  # 16 car voxels in frame 0
    occ[2, 0, 0, 0] = CLASS_ID["car"]  # one in frame 2
    occ[1, 1, 1, 1] = CLASS_ID["trailer"]
    counts = frames_holding(occ)
    assert counts.shape == (NUM_CLASSES,)
    assert counts[CLASS_ID["car"]] == 2 and counts[CLASS_ID["trailer"]] == 1
    assert counts[FREE] == 3 and counts.sum() == 6
