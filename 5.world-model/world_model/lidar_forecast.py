"""LiDAR forecasting scored as CoPilot4D scores it (the 4D-Occ protocol), beside two baselines.

For each window (12 frames of a sequence) and each protocol (1 s: 2 -> 2 sweeps, 3 s: 6 -> 6):

    ids      = Algorithm 2 over the f future frames' tokens, the p past frames' tokens fixed,
               conditioned on the true ego motion into every frame (`sample_future`)
    field    = chapter 4's decoder on each forecast frame's tokens
    depth    = the field rendered along the TRUE future sweep's rays (its returned pixels, at
               most `max_rays`, in that frame's sensor frame), as the tokenizer renders
    scores   = chapter 4's `frame_scores` against the noise-free range on those rays:
               depth L1 and AbsRel (rays whose true return lies in the region; and all rays),
               Chamfer distance of the clouds p = D d (inside the region; all points), metres

The same rays get three more depths:

    copy_last   the last past sweep's measured points, as they are (the ego assumed to stand
                still), voxelized in the tokenizer's grid and ray-cast (chapter 4's voxel cast:
                the first occupied voxel along each ray, its middle; no hit -> the ray's far)
    warp_last   the same points moved by the TRUE ego motion into the future frame,
                p' = (T_world<-t)^-1 T_world<-last p, then voxelized and cast: a static world
    ceiling     the tokenizer's round trip of the true future sweep (its cached tokens
                decoded and rendered): what a perfect token forecast would score

Depth L1 is also split between rays whose true return is ground (more than 1.4 m below the
sensor) and the rest (`_depth_l1_ground`, `_depth_l1_above_ground`): a copied sweep cast
along the same beams keeps the ground rings where they are, a warped one does not.

A protocol's number is the mean over its future frames (every ray weighs the same in depth
L1, every frame in Chamfer); `_at_horizon` is the last frame alone (at exactly 1 s or 3 s).
Intervals are 95%, from a seeded bootstrap over sequences; differences (model minus a
baseline) are paired over the same frames.

Shapes: B batch (clips: windows), T frames, N tokens per frame (h*w), R rays, P points.
"""

from __future__ import annotations

import numpy as np
import torch
from lidar_tokenizer.references import voxel_floor_depth
from lidar_tokenizer.region import voxelize
from lidar_tokenizer.scoring import difference_intervals, frame_scores, ratio, stack, summary
from lidar_tokenizer.sweeps import Frame, frame_rays, metres, returns, spread
from tqdm.auto import tqdm

from world_model.lidar_data import LIDAR_PAST, PROTOCOLS, LidarClips, measured_points
from world_model.lidar_world import protocol_clip
from world_model.maskgit_forecast import sample_future
from worldmodels.metrics.bootstrap import Interval, mean_interval

METHODS = ("model", "copy_last", "warp_last", "ceiling")
BASELINES = ("copy_last", "warp_last")
# a true return this far below the sensor (1.84 m above the road in the driving world) is
# counted as ground: the road plane within ~0.45 m (depth L1 is also split ground / above)
GROUND_BELOW_SENSOR = 1.4


def move_points(points: torch.Tensor, pose_from: torch.Tensor, pose_to: torch.Tensor):
    """Points (P, 3) in the frame of world-from-ego pose_from -> the frame of pose_to:
    p' = R p + t with [R t] = pose_to^-1 pose_from (float64, then back to float32)."""
    M = torch.linalg.inv(pose_to.double()) @ pose_from.double()  # (4, 4)
    return (points.double() @ M[:3, :3].T + M[:3, 3]).float()


def cast_sweep(points: torch.Tensor, tokenizer, rays) -> torch.Tensor:
    """A point cloud (P, 3), voxelized in the tokenizer's grid, ray-cast along rays (a
    FrameRays of one frame) -> depth (R,), the ray's far where nothing is hit."""
    grid, near = tokenizer.grid, tokenizer.render_config.near
    inside = grid.inside(points)
    if not inside.any():  # nothing left in the region: every ray sees nothing
        return rays.far[0].cpu()
    coords = voxelize(points[inside], grid).coords
    origins, dirs, far = rays.origins[0].cpu(), rays.dirs[0].cpu(), rays.far[0].cpu()
    depth, hit = voxel_floor_depth(coords, grid, origins, dirs, near, float(far.max()))
    return torch.where(hit, depth, far)


def true_frame(sweeps, k: int, t: int, max_rays: int) -> Frame:
    """Frame t of sequence k: its measured points and its scored rays (noise-free range)."""
    truth = spread(returns(metres(sweeps.clean[k][t]), sweeps.dirs), max_rays)
    return Frame(measured_points(sweeps, k, t), truth, k, t, sweeps.poses[k][t])


@torch.no_grad()
def forecast_ids(model, batch: dict, protocol: str, steps: int, guidance: float,
                 temperature: float, seed: int) -> torch.Tensor:  # fmt: skip
    """The forecast tokens (B, f, N) of a batch of 12-frame clips under one protocol."""
    device = model.head.weight.device
    ids, motions, past = protocol_clip({k: v.to(device) for k, v in batch.items()}, protocol)
    generator = torch.Generator(device).manual_seed(seed)
    future = ids.shape[1] - past
    return sample_future(model, ids[:, :past], motions, future, steps, guidance, temperature,
                         generator=generator)  # fmt: skip


class LidarForecastScores:
    """Per-frame scores of every method under each protocol; `metrics` summarises them."""

    def __init__(self):
        self.rows = {name: {m: [] for m in METHODS} for name in PROTOCOLS}
        self.groups = {name: [] for name in PROTOCOLS}  # each frame's sequence
        self.offsets = {name: [] for name in PROTOCOLS}  # each frame's place in the future

    def add(self, protocol: str, depths: dict, frame: Frame, inside, bounds, offset: int):
        truth = frame.rays
        height = truth.dirs[:, 2] * truth.depths  # (R,) the true return's z, sensor frame
        ground = inside & (height < -GROUND_BELOW_SENSOR)
        above = inside & ~ground
        for method, depth in depths.items():
            row = frame_scores(depth, truth.depths, truth.dirs, inside, bounds)
            error = (depth - truth.depths).abs()
            for name, keep in (("ground", ground), ("above", above)):
                row |= {f"abs_{name}": float(error[keep].sum()), f"rays_{name}": int(keep.sum())}
            self.rows[protocol][method].append(row)
        self.groups[protocol].append(frame.sequence)
        self.offsets[protocol].append(offset)

    def metrics(self, split: str, samples: int) -> dict[str, float]:
        out = {}
        for name, rows in self.rows.items():
            if not self.groups[name]:
                continue
            tables = {m: stack(r) for m, r in rows.items()}
            groups = np.asarray(self.groups[name])
            last = np.asarray(self.offsets[name]) == max(self.offsets[name])
            for method, table in tables.items():
                prefix = f"{split}_{name}_{method}_"
                out |= summary(table, prefix)
                out[prefix + "depth_l1_ground"] = ratio(table, "abs_ground", "rays_ground")
                out[prefix + "depth_l1_above_ground"] = ratio(table, "abs_above", "rays_above")
                horizon = {k: v[last] for k, v in table.items()}
                out |= {k.replace(prefix, prefix + "at_horizon_"): v
                        for k, v in summary(horizon, prefix).items()}  # fmt: skip
                for key in ("chamfer_region", "chamfer_all"):
                    values = table[key]
                    finite = np.isfinite(values)
                    ci = mean_interval(values[finite], groups[finite], samples)
                    stem = "chamfer" if key == "chamfer_region" else "chamfer_all"
                    out |= {f"{prefix}{stem}_ci_low": ci.low, f"{prefix}{stem}_ci_high": ci.high}
            for other in BASELINES:
                found = difference_intervals(tables["model"], tables[other], groups, samples)
                diff = tables["model"]["chamfer_all"] - tables[other]["chamfer_all"]
                all_ci = mean_interval(diff, groups, samples)
                found["chamfer_all"] = Interval(all_ci.estimate, all_ci.low, all_ci.high,
                                                all_ci.groups, "sequences")  # fmt: skip
                for key, interval in found.items():
                    out |= interval.as_dict(f"{split}_{name}_model_minus_{other}_{key}")
            out[f"{split}_{name}_frames"] = len(groups)
        return out


@torch.no_grad()
def score_lidar(model, tokenizer, sweeps, clips: LidarClips, split: str, steps: int = 10,
                guidance: float = 0.0, temperature: float = 0.0, seed: int = 0,
                batch_size: int = 8, max_rays: int = 32768, samples: int = 1000,
                progress: bool = True) -> dict[str, float]:  # fmt: skip
    """Every window of `clips` forecast under both protocols and scored with the baselines
    and the ceiling on the true future rays (module doc) -> {"<split>_1s_model_chamfer", ...}."""
    model.eval()
    scores, cache = LidarForecastScores(), {}  # cache: (k, t) -> the protocol-free depths
    r = tokenizer.render_config
    h, w = tokenizer.token_grid
    total = -(-len(clips) // batch_size)
    for first in tqdm(range(0, len(clips), batch_size), total=total, disable=not progress,
                      desc=f"{split} LiDAR forecasts", leave=False):  # fmt: skip
        indices = list(range(first, min(first + batch_size, len(clips))))
        batch = clips.batch(indices)
        for name, (_, future) in PROTOCOLS.items():
            ids = forecast_ids(model, batch, name, steps, guidance, temperature, seed + first)
            decoded = tokenizer.decode(ids.reshape(-1, h, w))  # (B f) frames
            for b, i in enumerate(indices):
                k, s = clips.starts[i]
                last = s + LIDAR_PAST - 1  # the last past frame
                for j in range(future):
                    t = last + 1 + j
                    frame = true_frame(sweeps, k, t, max_rays)
                    rays, inside = frame_rays(tokenizer, frame)
                    if (k, t) not in cache:
                        cache[(k, t)] = protocol_free(tokenizer, sweeps, clips, k, t, last, rays)
                    field = decoded.frame(b * future + j)
                    depth = tokenizer.render(field, rays, skipping=r.eval_skipping).depth[0]
                    depths = {"model": depth.float().cpu(), **cache[(k, t)]}
                    scores.add(name, depths, frame, inside, tokenizer.grid.bounds, j)
    return scores.metrics(split, samples)


def protocol_free(tokenizer, sweeps, clips, k: int, t: int, last: int, rays) -> dict:
    """The depths that do not depend on the protocol: the two baselines (from the last past
    frame, the same for 1 s and 3 s) and the tokenizer's ceiling."""
    points = measured_points(sweeps, k, last)
    poses = sweeps.poses[k]
    true_ids = clips.ids[k][t].long().reshape(1, *tokenizer.token_grid)
    decoded = tokenizer.decode(true_ids.to(next(tokenizer.parameters()).device))
    ceiling = tokenizer.render(decoded.frame(0), rays,
                               skipping=tokenizer.render_config.eval_skipping).depth[0]  # fmt: skip
    return {"copy_last": cast_sweep(points, tokenizer, rays),
            "warp_last": cast_sweep(move_points(points, poses[last], poses[t]), tokenizer, rays),
            "ceiling": ceiling.float().cpu()}  # fmt: skip
