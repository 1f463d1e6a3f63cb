"""Scoring an occupancy tokenizer on held-out driving frames, beside the non-learned codec.

    evaluate = OccupancyEvaluator(config, datasets)              # what the trainer calls
    metrics = evaluate(model, step)    # {"val_mIoU_occ3d": %, "heldout_IoU_occworld": %, ...}

For each held-out set ("val": unseen sequences of the training scenarios; "heldout": the
roundabout scenario, never trained on), the same fixed frames (4d: clips) every time:
    <set>_mIoU_<mode>, <set>_IoU_<mode>           every voxel (as OccWorld scores)
    <set>_visible_mIoU_<mode>, ..._IoU_<mode>      inside the LiDAR visibility mask (as Occ3D)
    <set>_codebook_usage, <set>_perplexity
mode "occ3d" leaves a class absent from truth and prediction out of the mean; "occworld"
scores a class absent from the truth as 1 (worldmodels.metrics.occupancy). With `full=True`
(validate.py) also the codec at the same token grid (`codec.py`) as <set>_codec_..., the
model-minus-codec differences with 95% intervals over sequences, per-class IoU
(`self.per_class`), and for the multi-scale kind the reconstruction after each scale.

Shapes: B batch, T time steps, X, Y, Z voxel-grid sizes, n a count of items, said here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from occupancy_tokenizer.codec import codec_bits_per_frame, majority_codec
from occupancy_tokenizer.figures import save_bev_rows
from occupancy_tokenizer.fourd import FourDTokenizer
from occupancy_tokenizer.multiscale import MultiScaleQuantizer
from occupancy_tokenizer.scoring import (
    bits_summary,
    difference_interval,
    item_confusions,
    per_class,
    summary,
)
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import CodebookStats

HELD_OUT = ("val", "heldout")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruct(model: nn.Module, grids: torch.Tensor, batch_size: int = 16):
    """(class ids, token ids) of grids (n, X, Y, Z) or clips (n, T, X, Y, Z): argmax of the
    logits, uint8 on the CPU."""
    preds, ids = [], []
    for chunk in grids.split(batch_size):
        out = model(chunk.to(_device(model)))
        preds.append(out.logits.argmax(dim=-1).to(torch.uint8).cpu())
        ids.append(out.indices.cpu())
    return torch.cat(preds), torch.cat(ids)


@torch.no_grad()
def reconstruct_per_scale(model: nn.Module, grids: torch.Tensor, batch_size: int = 16):
    """Multi-scale kind: [class ids (n, X, Y, Z) decoded from f_hat through scale k], k = 1..K."""
    quantizer: MultiScaleQuantizer = model.quantizer
    per_scale = [[] for _ in quantizer.scales]
    for chunk in grids.split(batch_size):
        ids = quantizer.split_ids(model.encode(chunk.to(_device(model))))  # [(B, s_k, s_k)]
        side = quantizer.scales[-1]
        f_hat = quantizer.codebook.weight.new_zeros(len(chunk), quantizer.dim, side, side)
        for k, ids_k in enumerate(ids):
            f_hat = quantizer.add_scale(f_hat, ids_k, k)  # (B, E, h, w), through scale k
            per_scale[k].append(model.decode_codes(f_hat).argmax(-1).to(torch.uint8).cpu())
    return [torch.cat(p) for p in per_scale]


def token_cell(model: nn.Module) -> tuple[int, int]:
    """(columns per token side, frames per latent frame) of a tokenizer's token grid."""
    c = model.config
    if isinstance(model, FourDTokenizer):
        return c.spatial_downsample, c.temporal_compression
    return c.downsample, 1


def tokens_per_frame(model: nn.Module) -> float:
    c = model.config
    if isinstance(model, FourDTokenizer):
        T_latent, h, w = c.token_shape
        return T_latent * h * w / c.frames
    if isinstance(model.quantizer, MultiScaleQuantizer):
        return float(model.quantizer.tokens_per_frame)
    h, w = c.latent_grid
    return float(h * w)


def codec_reconstruct(model: nn.Module, grids: torch.Tensor, batch_size: int = 64):
    """The majority codec at the model's token grid, on grids or clips (n, ...)."""
    factor, time_factor = token_cell(model)
    return torch.cat([
        majority_codec(chunk, factor, time_factor).to(torch.uint8)
        for chunk in grids.split(batch_size)
    ])  # fmt: skip


class OccupancyEvaluator:
    """Scores fixed held-out frames (4d: clips) at each evaluation; `full` adds the codec,
    intervals, per-class IoU and per-scale scores (validate.py)."""

    def __init__(self, config, datasets: dict, out_dir: Path | None = None,
                 frames: int | None = None, full: bool = False, bootstrap: int = 1000):  # fmt: skip
        count = frames or config.data.eval_frames
        self.sets = {
            name: stack_items(datasets[name], fixed_subset(datasets[name], count))
            for name in HELD_OUT
            if name in datasets
        }
        self.out_dir, self.full, self.bootstrap = out_dir, full, bootstrap
        self.per_class: dict[str, dict[str, dict[str, float]]] = {}
        self.last: dict[str, dict[str, torch.Tensor]] = {}  # set -> truth, pred, codec
        self.confusions: dict[str, torch.Tensor] = {}  # set -> (n, Q, Q) per item, all voxels

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        metrics: dict[str, float] = {}
        for name, items in self.sets.items():
            metrics.update(self.score_set(model, name, items))
        if self.full:
            factor, time_factor = token_cell(model)
            grid = tuple(model.config.grid)
            h, w = grid[0] // factor, grid[1] // factor
            codec_bits = codec_bits_per_frame((h, w), grid[2], time_factor)
            metrics.update(bits_summary(tokens_per_frame(model), model.codebook_size, grid,
                                        codec_bits))  # fmt: skip
        if self.out_dir is not None and "val" in self.last:
            shown = self.last["val"]
            save_bev_rows(
                {k: v[:: max(1, len(v) // 4)][:4] for k, v in shown.items() if k != "scales"},
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: held-out sequences (val), from above",
            )
        model.train(was_training)
        return metrics

    def score_set(self, model: nn.Module, name: str, items: dict) -> dict[str, float]:
        truth, visible = items["occupancy"], items["visibility"]
        pred, ids = reconstruct(model, truth)
        stats = CodebookStats(model.codebook_size)
        stats.update(ids)
        codebook = stats.compute()
        metrics = {f"{name}_codebook_usage": codebook["codebook_usage"],
                   f"{name}_perplexity": codebook["perplexity"]}  # fmt: skip
        confusions = {"all": item_confusions(pred, truth),
                      "visible": item_confusions(pred, truth, visible)}  # fmt: skip
        metrics.update(summary(confusions["all"].sum(0), f"{name}_"))
        metrics.update(summary(confusions["visible"].sum(0), f"{name}_visible_"))
        self.last[name] = {"original": truth, "reconstruction": pred}
        self.confusions[name] = confusions["all"]  # (n, Q, Q): paired comparisons of runs
        if not self.full:
            return metrics
        codec = codec_reconstruct(model, truth)
        self.last[name]["codec"] = codec
        codec_conf = {"all": item_confusions(codec, truth),
                      "visible": item_confusions(codec, truth, visible)}  # fmt: skip
        metrics.update(summary(codec_conf["all"].sum(0), f"{name}_codec_"))
        metrics.update(summary(codec_conf["visible"].sum(0), f"{name}_codec_visible_"))
        for region in ("all", "visible"):
            for score in ("mIoU", "IoU"):
                for mode in ("occ3d", "occworld"):
                    interval = difference_interval(
                        confusions[region],
                        codec_conf[region],
                        items["sequence"],
                        score,
                        mode,
                        self.bootstrap,
                    )
                    where = "" if region == "all" else "visible_"
                    metrics.update(interval.as_dict(f"{name}_{where}{score}_{mode}_minus_codec"))
        self.per_class[name] = {"model": per_class(confusions["all"].sum(0)),
                                "codec": per_class(codec_conf["all"].sum(0))}  # fmt: skip
        if isinstance(getattr(model, "quantizer", None), MultiScaleQuantizer):
            self.last[name]["scales"] = reconstruct_per_scale(model, truth)
            for k, pred_k in enumerate(self.last[name]["scales"]):
                side = model.quantizer.scales[k]
                scores = summary(item_confusions(pred_k, truth).sum(0))
                metrics[f"{name}_scale{k + 1}_{side}x{side}_mIoU_occ3d"] = scores["mIoU_occ3d"]
                metrics[f"{name}_scale{k + 1}_{side}x{side}_IoU_occ3d"] = scores["IoU_occ3d"]
        return metrics
