"""Make one driving sequence: `generate_sequence(scenario, seed, preset)` runs the whole
engine (traffic, the static world, then per frame the ego raster, its voxels, the LiDAR sweep
and the boxes) and returns its arrays (SHARD_KEYS); `benchmark` times it. store.py writes
sequences to a dataset folder.
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from worldmodels.data.driving import (
    build,
    lanes,
    lidar,
    observed,
    pedestrians,
    scene,
    traffic,
    voxels,
)
from worldmodels.data.driving.config import Preset, get_preset
from worldmodels.data.driving.shards import RANGE_UNIT, SHARD_KEYS, SPLIT_SEED_BASE  # noqa: F401

MAX_ATTEMPTS = 8  # re-simulate a sequence (new highway-env seed) if the ego crashes


def _rng(seed: int, scenario: str, stream: int, *more: int) -> np.random.Generator:
    """An independent random stream per (sequence, purpose)."""
    return np.random.default_rng([seed, zlib.crc32(scenario.encode()), stream, *more])


@contextmanager
def _timed(timings: dict | None, key: str):
    """Add the CPU seconds of the block to timings[key] (CPU time: the machine is shared)."""
    start = time.process_time()
    yield
    if timings is not None:
        timings[key] += time.process_time() - start


def simulate_safely(scenario: traffic.Scenario, seed: int, preset: Preset):
    """Simulate; if the ego crashes or leaves the road, retry with the next highway-env seed."""
    data = preset.data
    for attempt in range(MAX_ATTEMPTS):
        record = traffic.simulate(
            scenario, seed * 16 + attempt, data.frames, data.frame_rate, data.simulation_rate
        )
        if not (record.crashed or record.off_road):
            break
    return record, attempt


def generate_sequence(scenario: str, seed: int, preset: str | Preset, timings=None) -> dict:
    """All arrays of one sequence (see SHARD_KEYS). Same arguments, same arrays.

    timings: an optional defaultdict(float) that receives CPU seconds per stage.
    """
    preset = get_preset(preset)
    spec = traffic.get_scenario(scenario)
    with _timed(timings, "traffic"):
        record, attempt = simulate_safely(spec, seed, preset)
    with _timed(timings, "world"):
        static, walkers = build_surroundings(spec, record, seed, preset)
    frames = [
        _render_frame(static, record, walkers, t, preset, _rng(seed, scenario, 3, t), timings)
        for t in range(preset.data.frames)
    ]
    out = {key: np.stack([f[key] for f in frames]) for key in frames[0] if key != "boxes"}
    out.update(_pack_boxes([f["boxes"] for f in frames]))
    out["ego_speed"] = record.ego_speed.astype(np.float32)
    out["actions"] = record.actions
    out["scenario"] = np.array(scenario)
    out["seed"] = np.array(seed, dtype=np.int64)
    out["attempt"] = np.array(attempt, dtype=np.int64)
    out["crashed"] = np.array(record.crashed or record.off_road)
    return out


def build_surroundings(spec: traffic.Scenario, record, seed: int, preset: Preset):
    """The static world over the area the ego's LiDAR reaches during the sequence, and the
    parked cars and pedestrians (on the sidewalks and at the crossings) of urban scenes: a
    list of static and walking agents per frame."""
    margin = preset.raster_half_extent * np.sqrt(2) + 2.0  # the raster's corners, any heading
    box_min, box_max = record.ego_xy.min(0) - margin, record.ego_xy.max(0) + margin
    samples = lanes.lane_samples_in(record.lanes, box_min, box_max, preset.fine_cell / 2)
    rng = _rng(seed, spec.name, 1)
    static = build.build_world(
        samples,
        record.obstacles,
        spec.style,
        box_min,
        box_max,
        preset.fine_cell,
        rng,
        record.crossings,
    )
    static.seen = observed.seen_from_path(
        static, record.ego_xy, preset.lidar.max_range, preset.lidar.sensor_height
    )
    frames, dt = preset.data.frames, 1 / preset.data.frame_rate
    if spec.style != "urban":
        return static, [list(static.parked) for _ in range(frames)]
    rng = _rng(seed, spec.name, 2)
    walkers = pedestrians.walk(static, samples, record.ego_xy, frames, dt, rng)
    crossers = pedestrians.crossing_walkers(static, record.crossings, frames, dt, rng)
    return static, [list(static.parked) + w + c for w, c in zip(walkers, crossers, strict=True)]


def _pack_boxes(per_frame: list[tuple]) -> dict:
    """Boxes of all frames back to back, with a count per frame."""
    return {
        "box_count": np.array([len(f[0]) for f in per_frame], dtype=np.int32),
        "boxes": np.concatenate([f[0] for f in per_frame]).astype(np.float32),  # (n, 7)
        "box_class": np.concatenate([f[1] for f in per_frame]).astype(np.uint8),
        "box_id": np.concatenate([f[2] for f in per_frame]).astype(np.int32),
        "box_speed": np.concatenate([f[3] for f in per_frame]).astype(np.float32),
    }


def ego_place(static, record, t: int) -> scene.EgoPlace:
    """Where the ego stands at frame t, its body pitched and rolled by its acceleration."""
    return scene.EgoPlace.on(static, record.ego_xy[t], record.ego_yaw[t], record.ego_accel[t])


def _render_frame(static, record, walkers, t, preset: Preset, rng, timings) -> dict:
    """Raster, voxels, LiDAR and boxes of frame t."""
    place = ego_place(static, record, t)
    agents = record.agents[t] + walkers[t]
    with _timed(timings, "raster+voxels"):
        raster, boxes = scene.ego_raster(static, place, agents, preset)
        grid = voxels.voxelize(raster, preset)
    with _timed(timings, "lidar"):
        sweep = lidar.lidar_sweep(raster, grid, preset, rng)
    reach = preset.raster_half_extent
    seen = np.all(np.abs(boxes[:, :2]) < reach, axis=1)
    classes = np.array([a.class_id for a in agents], dtype=np.uint8)
    ids = np.array([a.agent_id for a in agents], dtype=np.int32)
    speeds = np.array([a.speed for a in agents], dtype=np.float32)
    to_units = lambda r: np.round(r / RANGE_UNIT).astype(np.uint16)  # noqa: E731
    return {
        "occupancy": grid.semantics,
        "visibility": sweep.visibility,
        "ego_pose": scene.ego_pose(place),
        "lidar_range": to_units(sweep.range),
        "lidar_range_clean": to_units(sweep.clean_range),
        "lidar_label": sweep.label,
        "boxes": (boxes[seen], classes[seen], ids[seen], speeds[seen]),
    }


def benchmark(preset: str | Preset, sequences: int, frames: int | None = None) -> dict:
    """Time generate_sequence on `sequences` sequences (cycling through the scenarios, seeds
    from 90_000) in this process: wall and CPU seconds, frames per second of each, and CPU
    seconds per stage. On a shared machine the CPU figures are the stable ones."""
    preset = get_preset(preset)
    if frames is not None:
        from dataclasses import replace

        preset = replace(preset, data=replace(preset.data, frames=frames))
    names = (*preset.data.scenarios, preset.data.heldout_scenario)
    timings: dict = defaultdict(float)
    start, cpu_start = time.perf_counter(), time.process_time()
    for k in range(sequences):
        generate_sequence(names[k % len(names)], 90_000 + k, preset, timings)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    total = sequences * preset.data.frames
    return {
        "preset": preset.name,
        "sequences": sequences,
        "frames": total,
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": total / wall,
        "frames_per_cpu_s": total / cpu,
        "stages_cpu_s": dict(timings),
    }
