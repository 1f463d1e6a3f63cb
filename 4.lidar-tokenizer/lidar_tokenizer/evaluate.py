"""Scoring a LiDAR tokenizer on held-out sweeps, beside the two non-learned references.

    evaluate = LidarEvaluator(config, datasets)          # what the trainer calls
    metrics = evaluate(model, step)       # {"val_depth_l1": m, "heldout_chamfer": m, ...}

For each set ("val": unseen sequences of the training scenarios; "heldout": the roundabout
scenario, never trained on; with `real`, "real": the Ouster scans), the same fixed frames
every time: `frames` consecutive frames from the middle of `sequences` evenly spaced
sequences. Every frame is encoded from its measured (noisy) returns, its tokens decoded,
and depth rendered along its returned rays (at most `max_rays`, evenly spaced), scored
against the noise-free range of the driving world (the measured range for real scans):

    <set>_depth_l1, _absrel          rays whose true return lies in the region (metres)
    <set>_depth_l1_all, _absrel_all  every returned ray (those beyond the region render at
                                     best to the region's edge)
    <set>_chamfer, _chamfer_all      Chamfer distance in metres (not squared) inside the
                                     region / over all points; the rendered cloud is one
                                     point per ray at its rendered depth (4D-Occ's protocol)
    <set>_codebook_usage, _perplexity, _coherence, _coherence_ego (consecutive frames'
                                     equal tokens without / with the true ego motion)

With `full=True` (validate.py) also the voxelization floor (<set>_floor_...) and the OR
codec at the token grid (<set>_codec_...) on the same rays, the model without spatial
skipping (<set>_uniform_...), the differences model - codec and model - floor with 95%
intervals over sequences, and `skipping_comparison`'s timings.

Shapes: R rays, P points, h, w token-grid height, width, n a count local to one function.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from lidar_tokenizer.model import FrameRays, LidarTokenizer
from lidar_tokenizer.rays import Rays
from lidar_tokenizer.references import token_codec_depth, voxel_floor_depth
from lidar_tokenizer.region import voxelize
from lidar_tokenizer.scoring import (
    difference_intervals,
    ego_coherence,
    frame_scores,
    stack,
    summary,
    token_coherence,
)
from lidar_tokenizer.sweeps import Frame, frame_rays, points_of, returns, spread  # noqa: F401
from worldmodels.metrics import CodebookStats

HELD_OUT = ("val", "heldout")


def driving_frames(dataset, sequences: int, frames: int, max_rays: int) -> list[Frame]:
    """`frames` consecutive frames from the middle of `sequences` evenly spaced sequences
    (0 = every sequence) of a LidarSweeps split."""
    count = len(dataset.ranges)
    chosen = torch.linspace(0, count - 1, min(sequences or count, count)).round().long()
    picked = []
    for k in chosen.tolist():
        items = dataset.frames_of(k)
        start = max(0, (len(items) - frames) // 2)
        for i in items[start : start + frames]:
            item = dataset[i]
            measured = returns(item["range"], item["dirs"])
            truth = returns(item["range_clean"], item["dirs"])
            # the noisy and the clean image return on the same pixels: one ray set
            picked.append(Frame(points_of(measured), spread(truth, max_rays), k,
                                int(item["frame"]), item["ego_pose"]))  # fmt: skip
    return picked


def real_frames(scans: list[dict], max_rays: int) -> list[Frame]:
    """data.real_scans() as Frames: the truth is the measured return."""
    out = []
    for scan in scans:
        points = scan["points"]
        depth = points.norm(dim=-1)
        rays = Rays(torch.zeros_like(points), points / depth[:, None], depth)
        out.append(Frame(points, spread(rays, max_rays), scan["sequence"], scan["frame"],
                         name=scan["name"]))  # fmt: skip
    return out


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reference_depths(model: LidarTokenizer, frame: Frame, rays: FrameRays) -> dict:
    """{"floor": depth (R,), "codec": depth (R,)} on the CPU; no hit -> the ray's far."""
    grid, near = model.grid, model.render_config.near
    coords = voxelize(frame.points, grid).coords  # the voxels the encoder sees
    origins, dirs, far = rays.origins[0].cpu(), rays.dirs[0].cpu(), rays.far[0].cpu()
    floor, floor_hit = voxel_floor_depth(coords, grid, origins, dirs, near, float(far.max()))
    codec, codec_hit = token_codec_depth(coords, grid, model.token_grid, origins, dirs, near,
                                         float(far.max()))  # fmt: skip
    return {"floor": torch.where(floor_hit, floor, far),
            "codec": torch.where(codec_hit, codec, far)}  # fmt: skip


class LidarEvaluator:
    """Scores fixed held-out frames at each evaluation; `full` adds the references, the
    intervals and the skipping comparison (validate.py); `real` the Ouster scans."""

    def __init__(self, config, datasets: dict, sequences: int | None = None,
                 frames: int | None = None, full: bool = False, real: list | None = None,
                 bootstrap: int = 1000, out_dir: Path | None = None):  # fmt: skip
        data = config.data
        sequences = data.eval_sequences if sequences is None else sequences
        frames = frames or data.eval_frames
        self.sets = {
            name: driving_frames(datasets[name], sequences, frames, data.max_rays)
            for name in HELD_OUT
            if name in datasets
        }
        if real:
            self.sets["real"] = real_frames(real, data.max_rays)
        self.full, self.bootstrap, self.out_dir = full, bootstrap, out_dir
        self.last: dict[str, dict] = {}  # set -> per-frame depths and tokens, for pictures

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        for name, frames in self.sets.items():
            metrics.update(self.score_set(model, name, frames))
        if self.out_dir is not None and "val" in self.last:
            from lidar_tokenizer.figures import save_sample  # matplotlib only when drawing

            save_sample(self.last["val"], model, self.out_dir / "samples" / f"step_{step:06d}.png",
                        f"step {step}: a held-out sweep (val), from above")  # fmt: skip
        model.train(was_training)
        return metrics

    @torch.no_grad()
    def score_set(self, model: LidarTokenizer, name: str, frames: list[Frame]) -> dict:
        r = model.render_config
        methods = ["model"] + (["uniform", "floor", "codec"] if self.full else [])
        rows = {m: [] for m in methods}
        seconds = {"uniform": 0.0, "skipping": 0.0}
        stats = CodebookStats(model.codebook_size)
        tokens, depths = [], []
        for start in range(0, len(frames), 4):  # encode 4 sweeps at a time
            chunk = frames[start : start + 4]
            indices = model.encode([f.points.to(_device(model)) for f in chunk])  # (n, h, w)
            decoded = model.decode(indices)
            stats.update(indices)
            for b, frame in enumerate(chunk):
                rays, inside = frame_rays(model, frame)
                timed = self.render_both(model, decoded.frame(b), rays, seconds)
                found = {"model": timed["skipping" if r.eval_skipping else "uniform"]}
                if self.full:
                    found |= {"uniform": timed["uniform"], **reference_depths(model, frame, rays)}
                truth, dirs = frame.rays.depths, frame.rays.dirs
                for method, depth in found.items():
                    rows[method].append(frame_scores(depth, truth, dirs, inside,
                                                     model.grid.bounds))  # fmt: skip
                tokens.append(indices[b].cpu())
                depths.append(found)
        tables = {m: stack(v) for m, v in rows.items()}
        metrics = summary(tables["model"], f"{name}_")
        codebook = stats.compute()
        metrics |= {f"{name}_codebook_usage": codebook["codebook_usage"],
                    f"{name}_perplexity": codebook["perplexity"],
                    **self.coherence(name, frames, tokens, model.config.region_xy)}  # fmt: skip
        self.last[name] = {"frames": frames, "tokens": tokens, "depths": depths}
        if self.full:
            metrics |= self.references(name, frames, tables, seconds)
        return metrics

    def render_both(self, model, decoded, rays: FrameRays, seconds: dict) -> dict:
        """{"uniform": depth (R,), "skipping": depth (R,)} on the CPU; in full mode both,
        timed into `seconds`, otherwise only the headline mode."""
        wanted = ("uniform", "skipping") if self.full else (
            ("skipping",) if model.render_config.eval_skipping else ("uniform",))  # fmt: skip
        out = {}
        for mode in wanted:
            start = time.perf_counter()
            depth = model.render(decoded, rays, skipping=mode == "skipping").depth[0]
            out[mode] = depth.float().cpu()  # .cpu() waits for the device: a fair clock
            seconds[mode] += time.perf_counter() - start
        return out

    def references(self, name: str, frames, tables: dict, seconds: dict) -> dict:
        """The references' and the uniform render's summaries, the model-minus-reference
        intervals, and the skipping timings."""
        metrics = {}
        for method in ("uniform", "floor", "codec"):
            metrics |= summary(tables[method], f"{name}_{method}_")
        groups = [f.sequence for f in frames]
        for other in ("codec", "floor"):
            intervals = difference_intervals(tables["model"], tables[other], groups,
                                             self.bootstrap)  # fmt: skip
            for key, interval in intervals.items():
                metrics |= interval.as_dict(f"{name}_{key}_minus_{other}")
        rays = float(tables["model"]["rays_all"].sum())
        return metrics | skipping_summary(name, seconds, rays)

    def coherence(self, name: str, frames: list[Frame], tokens: list, region_xy: float):
        """Mean over consecutive frame pairs of one sequence: token agreement in place, and
        after carrying the tokens by the true ego motion (driving sets only)."""
        raw, ego = [], []
        for k in range(1, len(frames)):
            a, b = frames[k - 1], frames[k]
            if a.sequence != b.sequence or b.frame != a.frame + 1:
                continue
            raw.append(token_coherence(tokens[k - 1], tokens[k]))
            if a.pose is not None:
                ego.append(ego_coherence(tokens[k - 1], tokens[k], a.pose, b.pose, region_xy))
        out = {}
        if raw:
            out[f"{name}_coherence"] = sum(raw) / len(raw)
        if ego:
            out[f"{name}_coherence_ego"] = sum(ego) / len(ego)
        return out


def skipping_summary(name: str, seconds: dict, rays: float) -> dict:
    """Rendering time of the same rays with and without spatial skipping (the decoded grid
    given: the decoder's own time is in neither; skipping's includes thresholding, pooling
    and the DDA through the coarse cells). Their depth L1s: <set>_uniform_depth_l1 and
    <set>_depth_l1 (when eval_skipping)."""
    uniform, skipping = seconds["uniform"], seconds["skipping"]
    return {
        f"{name}_render_s_uniform": uniform,
        f"{name}_render_s_skipping": skipping,
        f"{name}_rays_per_s_uniform": rays / uniform if uniform else 0.0,
        f"{name}_rays_per_s_skipping": rays / skipping if skipping else 0.0,
        f"{name}_skipping_speedup": uniform / skipping if skipping else 0.0,
    }
