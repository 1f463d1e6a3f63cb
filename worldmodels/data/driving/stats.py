"""Measure a driving dataset beside Occ3D-nuScenes: class shares, traffic, ego speed, how fast
the labels change, copy baselines, and the LiDAR's geometry.

    uv run python -m worldmodels.data.driving.stats --preset debug        # the val split
    uv run python -m worldmodels.data.driving.stats --preset paper --per-scenario 1

By default it reads the preset's dataset (made on first use) and measures its `val` split;
`--per-scenario N` instead makes the first N val sequences of each scenario in memory (for
presets too large to store here). Every figure of the data README comes from this command;
report.py prints them beside Occ3D-nuScenes' and against the targets of issue 11.

- Shares: of occupied voxels per class, and of free voxels in the grid, over every frame;
  and how many frames hold each class at all (`--split train` against `val`: a class seen in
  a handful of training frames is one a model will not learn).
- Agents: boxes per frame (as far as the LiDAR reaches), parked cars and crossing pedestrians
  (crossings.py) per frame, and the share of vehicles that are parked or stopped
  (< 0.5 m/s); urban scenes separately.
- Label change per 0.5 s: of the voxels occupied in frame t or t + 1, the share whose label
  differs between the two.
- Copy baselines at 1 / 2 / 3 s (2, 4, 6 frames): the last frame as the prediction of a later
  one ("copy"), and the last frame moved by the true ego motion into the later frame's ego
  frame ("warp", nearest voxel, free where it falls outside); mIoU (Occ3D's rule, NaN classes
  left out) and geometry IoU from one confusion matrix per horizon, over all voxels and inside
  the later frame's visibility mask.
- LiDAR: returns per sweep; stored (noisy) returns inside an occupied voxel; and, on two
  re-made frames per sequence, each noise-free return checked against the raster's solids:
  off the surface by more than 1 cm (the point is not in solid, or 1 cm back along the ray
  is still solid), and rays that pass through solid (sampled every 2 cm) before their return.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from einops import rearrange
from tqdm import tqdm

from worldmodels.data.driving import generate, lidar, scene, store, voxels
from worldmodels.data.driving.config import PRESETS, Preset, get_preset
from worldmodels.data.driving.crossings import WALKER_ID
from worldmodels.data.driving.ego_motion import warp
from worldmodels.data.driving.report import report
from worldmodels.data.driving.scenarios import get_scenario
from worldmodels.metrics.occupancy import confusion_matrix, scores_from_confusion
from worldmodels.occ3d import CLASS_ID, CLASS_NAMES, FREE, NUM_CLASSES

HORIZONS = (2, 4, 6)  # frames at 2 Hz: 1, 2, 3 s
VEHICLES = [CLASS_ID[c] for c in ("car", "truck", "bus", "trailer", "motorcycle")]
VEHICLES.append(CLASS_ID["construction_vehicle"])
PARKED_ID = 200_000
STOPPED = 0.5  # m/s


@dataclass
class Totals:
    """Running sums over every frame measured."""

    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))
    frames_with: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))
    confusion: dict = field(default_factory=lambda: defaultdict(lambda: np.zeros((18, 18), int)))
    lists: dict = field(default_factory=lambda: defaultdict(list))
    sums: dict = field(default_factory=lambda: defaultdict(float))

    def add_sequence(self, seq: dict, preset: Preset) -> None:
        occ, vis = seq["occupancy"], seq["visibility"]
        T = len(occ)
        self.class_counts += np.bincount(occ.reshape(-1), minlength=NUM_CLASSES)
        self.frames_with += frames_holding(occ)
        urban = get_scenario(str(seq["scenario"])).style == "urban"
        self.lists["ego_speed"] += seq["ego_speed"].tolist()
        self._agents(seq, urban)
        for t in range(T - 1):
            either = (occ[t] != FREE) | (occ[t + 1] != FREE)
            changed = either & (occ[t] != occ[t + 1])
            self.sums["either"] += either.sum()
            self.sums["changed"] += changed.sum()
        for k in HORIZONS:
            for t in range(T - k):
                target, mask = occ[t + k], vis[t + k]
                moved = warp(occ[t], seq["ego_pose"][t], seq["ego_pose"][t + k], preset)
                for name, pred in (("copy", occ[t]), ("warp", moved)):
                    matrix = confusion_matrix(pred, target).numpy()
                    self.confusion[name, k, "all"] += matrix
                    self.confusion[name, k, "visible"] += confusion_matrix(
                        pred, target, mask=mask
                    ).numpy()
        returns = seq["lidar_range"] > 0
        self.lists["returns"] += returns.sum(axis=(1, 2)).tolist()
        self._stored_returns_in_voxels(seq, preset)

    def _agents(self, seq: dict, urban: bool) -> None:
        starts = np.concatenate([[0], np.cumsum(seq["box_count"])])
        for t in range(len(seq["box_count"])):
            part = slice(starts[t], starts[t + 1])
            cls, ids, speed = seq["box_class"][part], seq["box_id"][part], seq["box_speed"][part]
            vehicle = np.isin(cls, VEHICLES)
            parked = ids >= PARKED_ID
            crossing = (ids >= WALKER_ID) & (ids < PARKED_ID)
            for scope in ("all", "urban") if urban else ("all",):
                self.lists[scope, "agents"].append(len(cls))
                self.lists[scope, "parked"].append(int(parked.sum()))
                self.lists[scope, "crossing"].append(int(crossing.sum()))
                self.sums[scope, "vehicles"] += vehicle.sum()
                self.sums[scope, "still"] += (vehicle & (parked | (speed < STOPPED))).sum()

    def _stored_returns_in_voxels(self, seq: dict, preset: Preset) -> None:
        directions = preset.lidar.ray_directions()  # (H, W, 3)
        sensor = preset.lidar.sensor_to_ego()[:3, 3]
        grid = preset.grid
        low = np.array([-grid.half_extent[0], -grid.half_extent[1], grid.z_range[0]])
        size = np.array([grid.voxel_xy, grid.voxel_xy, grid.voxel_z])
        for t in range(len(seq["occupancy"])):
            r = seq["lidar_range"][t].astype(np.float64) * generate.RANGE_UNIT
            valid = r > 0
            points = sensor + r[valid, None] * directions[valid]
            k = np.floor((points - low) / size).astype(np.int64)
            inside = np.all((k >= 0) & (k < np.array(grid.size)), axis=-1)
            k = k[inside]
            occupied = seq["occupancy"][t][k[:, 0], k[:, 1], k[:, 2]] != FREE
            self.sums["in_grid"] += inside.sum()
            self.sums["in_occupied"] += occupied.sum()


def frames_holding(occ: np.ndarray) -> np.ndarray:
    """(NUM_CLASSES,) how many frames of occ (T, X, Y, Z) hold each class at least once: a rare
    class is rare in frames, not only in voxels."""
    flat = occ.reshape(len(occ), -1)  # (T, X * Y * Z)
    return np.stack([np.bincount(f, minlength=NUM_CLASSES) > 0 for f in flat]).sum(0)


def solid_at(raster, points: np.ndarray) -> np.ndarray:
    """(N,) bool: ego-frame points (N, 3) inside the raster's solids (ground or object)."""
    count = raster.ground.shape[0]
    i = np.clip(((points[:, 0] + raster.half) // raster.cell).astype(np.int64), 0, count - 1)
    j = np.clip(((points[:, 1] + raster.half) // raster.cell).astype(np.int64), 0, count - 1)
    z = points[:, 2]
    in_ground = z <= raster.ground_z[i, j]
    in_object = (z >= raster.bottom[i, j]) & (z < raster.top[i, j])
    return in_ground | in_object


def check_lidar(raster, grid, preset: Preset, rng) -> dict[str, float]:
    """Each noise-free return of one frame against the raster's solids (module docstring)."""
    dirs = rearrange(preset.lidar.ray_directions(), "H W xyz -> (H W) xyz")
    origin = preset.lidar.sensor_to_ego()[:3, 3]
    cast = lidar.cast_rays(raster, grid, preset, origin, dirs)
    hit = np.flatnonzero(np.isfinite(cast.t))
    t = cast.t[hit]
    inside = solid_at(raster, origin + t[:, None] * dirs[hit])
    before = solid_at(raster, origin + (t - 0.01)[:, None] * dirs[hit])
    off = ~inside | before
    sample = rng.choice(hit, size=min(len(hit), 400), replace=False)
    crossed = 0
    for ray in sample:
        steps = np.arange(0.02, cast.t[ray] - 0.01, 0.02)
        crossed += bool(solid_at(raster, origin + steps[:, None] * dirs[ray]).any())
    return {"returns": len(hit), "off_1cm": int(off.sum()), "sampled": len(sample),
            "crossed": crossed}  # fmt: skip


def remade_frames(spec_scenario: str, seed: int, preset: Preset, frames=(0, 8)):
    """The raster and voxels of some frames of a sequence, made again (for check_lidar)."""
    spec = get_scenario(spec_scenario)
    record, _ = generate.simulate_safely(spec, seed, preset)
    static, walkers = generate.build_surroundings(spec, record, seed, preset)
    for t in frames:
        if t >= len(record.ego_xy):
            continue
        place = generate.ego_place(static, record, t)
        raster, _ = scene.ego_raster(static, place, record.agents[t] + walkers[t], preset)
        yield raster, voxels.voxelize(raster, preset)


def summarize(totals: Totals, checks: list[dict]) -> dict:
    """The measured figures as one flat dict (percentages where the name says %)."""
    counts = totals.class_counts
    occupied = counts[:FREE].sum()
    out: dict = {"frames": len(totals.lists["ego_speed"])}
    out["free_%"] = 100 * counts[FREE] / counts.sum()
    out["share_%"] = {CLASS_NAMES[c]: 100 * counts[c] / occupied for c in range(FREE)}
    out["frames_with_class"] = {CLASS_NAMES[c]: int(totals.frames_with[c]) for c in range(FREE)}
    speed = np.array(totals.lists["ego_speed"])
    out["ego_speed_p10_p50_p90"] = np.percentile(speed, [10, 50, 90]).tolist()
    for scope in ("all", "urban"):
        if (scope, "agents") in totals.lists:
            out[f"{scope}_agents_per_frame"] = float(np.mean(totals.lists[scope, "agents"]))
            out[f"{scope}_parked_per_frame"] = float(np.mean(totals.lists[scope, "parked"]))
            out[f"{scope}_crossing_per_frame"] = float(np.mean(totals.lists[scope, "crossing"]))
            still = totals.sums[scope, "still"] / max(totals.sums[scope, "vehicles"], 1)
            out[f"{scope}_vehicles_parked_or_stopped_%"] = 100 * still
    out["label_change_per_step_%"] = 100 * totals.sums["changed"] / totals.sums["either"]
    for (name, k, where), matrix in sorted(totals.confusion.items()):
        scores = scores_from_confusion(matrix)
        occworld = scores_from_confusion(matrix, absent_iou="occworld")
        key = f"{name}_{k / 2:g}s_{where}"
        out[key] = {"mIoU": 100 * scores.miou, "IoU": 100 * scores.iou,
                    "mIoU_occworld": 100 * occworld.miou}  # fmt: skip
    out["returns_per_sweep"] = float(np.mean(totals.lists["returns"]))
    out["stored_returns_in_occupied_voxel_%"] = (
        100 * totals.sums["in_occupied"] / max(totals.sums["in_grid"], 1)
    )
    returns = sum(c["returns"] for c in checks)
    out["noise_free_off_surface_over_1cm_%"] = 100 * sum(c["off_1cm"] for c in checks) / returns
    sampled = sum(c["sampled"] for c in checks)
    out["rays_through_solid_before_return_%"] = 100 * sum(c["crossed"] for c in checks) / sampled
    out["checked_returns"] = returns
    return out


def sequences(preset: Preset, split: str, per_scenario: int | None):
    """(scenario, seed, arrays) of every sequence measured."""
    if per_scenario is None:
        folder = store.ensure_dataset(preset)
        manifest = store.load_manifest(folder)
        for entry in manifest["sequences"]:
            if entry["split"] == split:
                yield entry["scenario"], entry["seed"], store.read_shard(folder / entry["file"])
        return
    data = preset.data
    for name in data.scenarios if split != "heldout" else (data.heldout_scenario,):
        count = max(1, data.count(name, per_scenario)) if split != "heldout" else per_scenario
        for k in range(count):
            seed = generate.SPLIT_SEED_BASE[split] + k
            yield name, seed, generate.generate_sequence(name, seed, preset)


def measure(preset: str | Preset, split: str = "val", per_scenario: int | None = None) -> dict:
    preset = get_preset(preset)
    totals, checks = Totals(), []
    rng = np.random.default_rng(0)
    plan = [s for s in store.dataset_plan(preset) if s.split == split]
    total = len(plan) if per_scenario is None else None
    start = time.process_time()
    for scenario, seed, seq in tqdm(sequences(preset, split, per_scenario), total=total,
                                    desc=f"stats {preset.name}/{split}", unit="seq"):  # fmt: skip
        totals.add_sequence(seq, preset)
        for raster, grid in remade_frames(scenario, seed, preset):
            checks.append(check_lidar(raster, grid, preset, rng))
    out = summarize(totals, checks)
    out.update(preset=preset.name, split=split, per_scenario=per_scenario,
               sequences=len(checks) // 2, cpu_s=time.process_time() - start)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.data.driving.stats")
    parser.add_argument("--preset", default="debug", choices=sorted(PRESETS))
    parser.add_argument("--split", default="val", choices=("train", "val", "heldout"))
    parser.add_argument("--per-scenario", type=int, default=None, metavar="N",
                        help="make N sequences per scenario in memory instead of reading "
                        "the dataset")  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    stats = measure(args.preset, args.split, args.per_scenario)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(stats, f, indent=1)
    print(report(stats))


if __name__ == "__main__":
    main()
