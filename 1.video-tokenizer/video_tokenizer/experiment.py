"""Chapter 1's experiment: the run config and its presets, the data, the loss, the evaluation.

`train.py`, `validate.py`, `benchmark.py` and the notebook all build their runs from here,
so a preset means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from video_tokenizer.model import TokenizerConfig, VideoTokenizer
from worldmodels.checkpoint import find_checkpoint, load_weights, read_json
from worldmodels.config import RunConfig, at_least, from_dict, require
from worldmodels.data.atari import PRESETS as ATARI_PRESETS
from worldmodels.data.atari import AtariClips
from worldmodels.data.synthetic import MovingSprites
from worldmodels.data.video_folder import VideoFolder
from worldmodels.metrics import CodebookStats, psnr
from worldmodels.viz.frames import frame_grid

CHAPTER_DIR = Path(__file__).resolve().parent.parent
SOURCES = ("atari", "folder", "sprites")


@dataclass
class DataConfig:
    """Where clips come from. Frames are recorded/decoded at the model's image_size."""

    source: str = "atari"  # "atari" (recorded on first use) | "folder" (your videos) | "sprites"
    atari_preset: str = "debug"  # a preset of worldmodels.data.atari
    folder: str = ""  # for source="folder": a folder of video files
    clip_len: int = 4  # T, frames per training clip (1 + t*k with temporal compression)
    eval_clips: int = 128  # held-out clips scored at each evaluation, evenly spread

    def __post_init__(self):  # bad values stop the run at start-up, naming the key
        at_least(self, 1, "clip_len", "eval_clips")
        require(self, "source", self.source in SOURCES, f"one of {SOURCES}")


@dataclass
class Config:
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)


def debug() -> Config:
    """A 2-core CPU in minutes: 0.3 M parameters, 8x8 patches, FSQ (8,5,5,5)."""
    return Config(
        model=TokenizerConfig(),
        run=RunConfig(
            steps=3000,
            batch_size=16,
            lr=2e-3,
            warmup_steps=100,
            eval_every=1000,
            checkpoint_every=500,
        ),
    )


def prototype() -> Config:
    """One GPU in about an hour: 4x4 patches (256 tokens per frame), 8+8 blocks of width 256."""
    return Config(
        model=TokenizerConfig(
            patch=4,
            dim=256,
            heads=8,
            encoder_depth=8,
            decoder_depth=8,
            fsq_levels=(8, 8, 8, 5, 5, 5),
            max_frames=16,
        ),
        data=DataConfig(atari_preset="full", clip_len=8, eval_clips=512),
        run=RunConfig(
            steps=50_000,
            batch_size=64,
            lr=1e-3,
            warmup_steps=1000,
            eval_every=5000,
            checkpoint_every=5000,
            num_workers=4,
            compile=True,
        ),
    )


def paper() -> Config:
    """Genie's tokenizer scale at 128x128 (patch 8, width 512, 12+12 blocks; Genie: ~200 M)."""
    return Config(
        model=TokenizerConfig(
            image_size=128,
            patch=8,
            dim=512,
            heads=16,
            encoder_depth=12,
            decoder_depth=12,
            fsq_levels=(8, 8, 8, 5, 5, 5),
            max_frames=16,
        ),
        data=DataConfig(atari_preset="full", clip_len=16, eval_clips=512),
        run=RunConfig(
            steps=300_000,
            batch_size=32,
            lr=3e-4,
            warmup_steps=5000,
            eval_every=10_000,
            checkpoint_every=5000,
            num_workers=8,
            compile=True,
        ),
    )


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


# ----------------------------------------------------------------------------- data


def atari_config(config: Config):
    """The Atari recording settings of a run: the preset, at the model's frame size."""
    if config.data.atari_preset not in ATARI_PRESETS:
        raise ValueError(
            f"unknown atari_preset {config.data.atari_preset!r}; choose one of "
            f"{sorted(ATARI_PRESETS)}"
        )
    preset = ATARI_PRESETS[config.data.atari_preset]
    return dataclasses.replace(preset, frame_size=config.model.image_size)


def build_datasets(config: Config, progress: bool = True) -> dict[str, Dataset]:
    """{"train": ..., plus held-out sets: "val" and "heldout_game" for Atari}."""
    data, size = config.data, config.model.image_size
    if data.source == "atari":
        atari = atari_config(config)
        sets = {
            split: AtariClips(split, data.clip_len, atari, progress=progress)
            for split in ("train", "val")
        }
        if atari.heldout_game:
            sets["heldout_game"] = AtariClips(
                "heldout_game", data.clip_len, atari, progress=progress
            )
        return sets
    if data.source == "folder":
        if not data.folder:
            raise ValueError("data.source='folder' needs --folder=/path/to/videos")
        videos = VideoFolder(data.folder, data.clip_len, size=size)
        if len(videos) < 2:  # validation must not be the training clip itself
            raise ValueError(
                f"video folder {data.folder} gives {len(videos)} clip of {data.clip_len} "
                "frames: at least 2 are needed (one to train, one held out); add videos or "
                "lower --clip_len"
            )
        # Your own videos: the last tenth of the clips (by index, at least one) is held out.
        cut = min(len(videos) - 1, max(1, int(len(videos) * 0.9)))
        indices = list(range(len(videos)))
        return {
            "train": torch.utils.data.Subset(videos, indices[:cut]),
            "val": torch.utils.data.Subset(videos, indices[cut:]),
        }
    if data.source == "sprites":  # synthetic moving squares: for tests and quick experiments
        return {
            "train": MovingSprites(2048, data.clip_len, size=size, seed=0),
            "val": MovingSprites(64, data.clip_len, size=size, seed=1),
        }
    raise ValueError(f"unknown data.source {data.source!r}; choose 'atari', 'folder' or 'sprites'")


def fixed_subset(dataset: Dataset, count: int) -> list[int]:
    """`count` clip indices spread evenly over the dataset, the same at every evaluation."""
    count = min(count, len(dataset))
    return torch.linspace(0, len(dataset) - 1, count).round().long().tolist()


def load_tokenizer(path: Path | str, device: str | torch.device = "cpu"):
    """(VideoTokenizer in eval mode, its run Config) from a run, checkpoint or exported folder.

    The model is rebuilt from the checkpoint's own config.json, so any preset loads.
    """
    step_dir = find_checkpoint(Path(path))
    config = from_dict(Config, read_json(step_dir / "config.json"))
    model = VideoTokenizer(config.model)
    load_weights(step_dir, model)
    return model.to(device).eval(), config


# ----------------------------------------------------------------------------- training


def loss_fn(model: VideoTokenizer, batch: dict) -> tuple[torch.Tensor, dict]:
    """Reconstruction MSE in pixel space, plus VQ's codebook/commitment loss (0 for FSQ)."""
    frames = batch["frames"]  # (B, T, C, H, W) in [0, 1]
    out = model(frames)
    mse = F.mse_loss(out.recon.float(), frames)
    return mse + out.aux_loss, {
        "mse": mse.detach(),
        "psnr": psnr(out.recon.detach(), frames).mean(),
    }


@torch.no_grad()
def reconstruct(model: VideoTokenizer, frames: torch.Tensor, batch_size: int = 32):
    """(ids, recon) of a stack of clips (B, T, C, H, W), batched; recon clamped to [0, 1]."""
    device = next(model.parameters()).device
    ids, recons = [], []
    for chunk in frames.split(batch_size):
        out = model(chunk.to(device))
        ids.append(out.indices.cpu())
        recons.append(out.recon.float().clamp(0, 1).cpu())
    return torch.cat(ids), torch.cat(recons)


def stack_clips(dataset: Dataset, indices: list[int]) -> torch.Tensor:
    return torch.stack([dataset[i]["frames"] for i in indices])  # (B, T, C, H, W)


def evaluate_sets(model: VideoTokenizer, sets: dict[str, torch.Tensor]) -> dict[str, float]:
    """PSNR of every held-out set, plus codebook usage and perplexity of each."""
    metrics = {}
    for name, frames in sets.items():
        ids, recon = reconstruct(model, frames)
        stats = CodebookStats(model.codebook_size)
        stats.update(ids)
        codebook = stats.compute()
        metrics[f"{name}_psnr"] = psnr(recon, frames).mean().item()
        metrics[f"{name}_codebook_usage"] = codebook["codebook_usage"]
        metrics[f"{name}_perplexity"] = codebook["perplexity"]
    return metrics


def save_reconstructions(frames: torch.Tensor, recon: torch.Tensor, path: Path, title: str):
    """A PNG of original | reconstruction rows, one pair of rows per clip."""
    rows = [row for pair in zip(frames, recon) for row in pair]
    fig, ax = plt.subplots(figsize=(1.2 * frames.shape[1], 1.2 * len(rows)))
    ax.imshow(frame_grid(rows))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


class Evaluator:
    """Scores fixed held-out clips at each evaluation and saves a reconstruction grid."""

    def __init__(self, datasets: dict[str, Dataset], num_clips: int, out_dir: Path | None):
        self.sets = {
            name: stack_clips(ds, fixed_subset(ds, num_clips))
            for name, ds in datasets.items()
            if name != "train"
        }
        self.out_dir = out_dir

    def __call__(self, model: VideoTokenizer, step: int) -> dict[str, float]:
        metrics = evaluate_sets(model, self.sets)
        if self.out_dir is not None and "val" in self.sets:
            frames = self.sets["val"][:: max(1, len(self.sets["val"]) // 4)][:4]
            _, recon = reconstruct(model, frames)
            save_reconstructions(
                frames,
                recon,
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: original / reconstruction (held-out episodes)",
            )
        return metrics
