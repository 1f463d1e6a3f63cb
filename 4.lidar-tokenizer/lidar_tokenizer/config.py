"""Chapter 4's run config: the tokenizer's sizes, how it renders and is trained, its data.

    model    the tokenizer (model.py): region and voxel grid, encoder, quantizer, decoder, heads
    render   rays and samples, spatial skipping, the loss weights (model.py, sweeps.py)
    data     which sweeps train and score it (data.py)
    run      the shared training settings (worldmodels.config.RunConfig)

A preset is a short diff from `debug`:

    debug       a 2-core CPU: +-40 m x +-40 m x [-4.5, 4.5] m, 128 x 128 x 32 voxels of
                62.5 x 62.5 x 28.125 cm, 16 x 16 tokens, 256 codes, 1024 rays a frame
                (the driving `debug` LiDAR reaches 50 m, so the region's corners, 57 m away,
                are partly beyond its range)
    prototype   one GPU: CoPilot4D's region +-80 m at 512 x 512 x 64 voxels, 64 x 64 tokens
    paper       CoPilot4D: 1024 x 1024 x 64 voxels, 128 x 128 tokens, 1024 codes of 1024 dims
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from worldmodels.config import RunConfig, at_least, gpu_run, override, parse_config, require
from worldmodels.data.driving.config import PRESETS as DRIVING_PRESETS

CHAPTER_DIR = Path(__file__).resolve().parent.parent  # 4.lidar-tokenizer/
SOURCES = ("driving", "synthetic")


@dataclass
class TokenizerConfig:
    """The tokenizer's sizes; the defaults are CoPilot4D's where the paper gives them."""

    region_xy: float = 80.0  # the region is [-r, r] x [-r, r] (m, sensor frame)
    region_z: tuple[float, float] = (-4.5, 4.5)  # (bottom, top) m, sensor frame
    grid: tuple[int, int, int] = (1024, 1024, 64)  # (X, Y, Z) voxels
    point_dim: int = 16  # PointNet feature per voxel
    bev_dim: int = 64  # BEV image channels
    dims: tuple[int, ...] = (128, 256)  # Swin width per stage (encoder; decoder mirrors)
    depths: tuple[int, ...] = (2, 6)  # encoder Swin blocks per stage
    decoder_depths: tuple[int, ...] = (2, 6)  # decoder blocks per stage, same stage order
    heads: tuple[int, ...] = (8, 8)
    window: int = 8
    patch: int = 4
    mlp_ratio: float = 4.0
    code_dim: int = 1024  # E
    codebook_size: int = 1024  # K
    restarts: bool = True  # k-means restarts of dead codes (False: a plain VQ, never restarts)
    dead_after: int = 256  # steps unpicked after which a code is dead
    restart_fraction: float = 0.03  # restart when more than this fraction is dead
    restart_every: int = 200  # at least this many steps between two restarts
    codebook_weight: float = 0.25  # VQ loss: codebook_weight ||sg[z] - e||^2
    commitment_weight: float = 1.0  # + commitment_weight ||z - sg[e]||^2 (CoPilot4D, unverified)
    unit_latents: bool = False  # l2-normalise the latents before the lookup (cosine VQ)
    grid_channels: int = 16  # C of the neural feature grid
    grid_levels: int = 64  # its height levels
    grid_factor: int = 2  # each decoder BEV cell emits a (factor, factor, levels, C) block
    field_hidden: int = 32  # hidden width of the MLP that reads a feature into alpha
    # binary head: (factor, factor, Z) logits per decoder BEV cell; factor = patch lands on
    # the voxel grid (CoPilot4D), a smaller factor on a coarser grid (voxels max-pooled)
    occupancy_factor: int = 4

    def __post_init__(self):
        at_least(self, 1, "point_dim", "bev_dim", "window", "patch", "code_dim", "grid_levels")
        at_least(self, 1, "codebook_size", "dead_after", "grid_channels", "grid_factor")
        at_least(self, 0, "restart_every")
        require(self, "region_xy", self.region_xy > 0, "a half-width > 0 (m)")
        require(
            self, "region_z", self.region_z[1] > self.region_z[0], "(bottom, top), top > bottom"
        )
        stages = len(self.dims)
        same = stages == len(self.depths) == len(self.decoder_depths) == len(self.heads) >= 1
        require(self, "dims", same, "one entry per stage in dims, depths, decoder_depths, heads")
        reduction = self.patch * 2 ** (stages - 1)
        divides = all(n % reduction == 0 for n in self.grid[:2])
        require(self, "grid", divides, f"X and Y divisible by patch * 2^(stages - 1) = {reduction}")
        require(self, "restart_fraction", 0 <= self.restart_fraction < 1, "in [0, 1)")
        ok = self.occupancy_factor >= 1 and self.patch % self.occupancy_factor == 0
        require(self, "occupancy_factor", ok, f"a divisor of patch = {self.patch}")

    @property
    def head_cell(self) -> int:
        """Voxel columns per side of a binary-head cell: patch / occupancy_factor."""
        return self.patch // self.occupancy_factor

    @property
    def token_grid(self) -> tuple[int, int]:
        """(h, w): the tokens of one frame."""
        reduction = self.patch * 2 ** (len(self.dims) - 1)
        return self.grid[0] // reduction, self.grid[1] // reduction


@dataclass
class RenderConfig:
    """Rays, samples and the loss. CoPilot4D gives eps = 0.4 m and the pooling by 8; the rest
    is chosen (the paper does not say how many rays or samples)."""

    near: float = 1.0  # m: samples start here (the driving world's nearest returns: ~2.5 m)
    train_rays: int = 4096  # rays per frame in a training step (chosen: the paper gives no count)
    train_samples: int = 64  # stratified samples over [near, far] per training ray
    train_skip_samples: int = 32  # + samples inside the true voxels' pooled cells
    eval_samples: int = 128  # uniform sampling at evaluation
    skip_samples: int = 32  # spatial skipping at evaluation, inside the head's marked cells
    pool: int = 8  # BEV max-pooling of the occupancy masks (CoPilot4D: 8)
    threshold: float = 0.5  # sigmoid of the binary head above which a voxel is marked
    widen_levels: int = 0  # also mark this many height levels above and below (sampling.py)
    skip_step: float = 0.5  # m: inference skipping marches in such pieces; 0: cut at faces
    eval_skipping: bool = True  # the headline numbers render with spatial skipping
    alpha_length: float = 1.0  # m: the field's opacity is that of a slab this thick (sampling.py)
    chunk: int = 4096  # rays rendered at once
    surface_eps: float = 0.4  # m, CoPilot4D's eps of the surface-concentration term
    surface_weight: float = 1.0
    occupancy_weight: float = 1.0  # BCE of the binary head
    occupancy_pos_weight: float = 1.0  # BCE weight of an occupied voxel (they are rare)
    vq_weight: float = 1.0  # the quantizer's own loss (0.25 codebook + 1.0 commitment)

    def __post_init__(self):
        at_least(self, 1, "train_rays", "train_samples", "eval_samples", "skip_samples")
        at_least(self, 1, "pool", "chunk")
        at_least(self, 0, "train_skip_samples", "widen_levels")
        require(self, "near", self.near > 0, "a distance > 0 (m)")
        require(self, "alpha_length", self.alpha_length > 0, "a length > 0 (m)")
        require(self, "threshold", 0 < self.threshold < 1, "in (0, 1)")
        require(self, "skip_step", self.skip_step >= 0, "0 (exact) or a length > 0 (m)")


@dataclass
class DataConfig:
    """Which sweeps train and score the tokenizer (data.py)."""

    source: str = "driving"  # driving: the driving world's LiDAR; synthetic: tests only
    preset: str = "debug"  # the driving preset (worldmodels.data.driving): debug | small | paper
    root: str = ""  # folder of the generated data; "" = <repo>/data/driving/<preset>
    eval_sequences: int = 8  # sequences of val and heldout scored at each evaluation in training
    eval_frames: int = 2  # consecutive frames from each (>= 2: temporal coherence needs pairs)
    max_rays: int = 32768  # rays scored per frame at most (evenly spaced returns)

    def __post_init__(self):
        at_least(self, 1, "eval_sequences", "eval_frames", "max_rays")
        require(self, "source", self.source in SOURCES, f"one of {SOURCES}")
        ok = self.preset in DRIVING_PRESETS
        require(self, "preset", ok, f"one of {sorted(DRIVING_PRESETS)}")


@dataclass
class Config:
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)


def debug() -> Config:
    """A 2-core CPU: 128 x 128 x 32 voxels over +-40 m -> 16 x 16 tokens of 256 codes.

    The grid: at 256 x 256 x 32 -> 32 x 32 tokens, 500 steps (9 minutes) left the tokenizer
    behind the OR codec at its token grid (depth L1 on 94 val sweeps 3.23 m against 2.46 m,
    validate.py at commit 09effa6);
    at 128 x 128 x 32 -> 16 x 16 a step costs half as much and 1200 steps beat the codec
    (README). The binary head's mask is max-pooled by 4 voxels (2.5 m), CoPilot4D's 8 x
    15.6 cm = 1.25 m scaled to these coarser voxels.

    Departures from CoPilot4D's recipe, each measured on a half-trained tokenizer: a feature
    grid of 8 channels (16 doubled the step time through grid_sample and the head's layout
    copy), a binary head on 4 x 4 voxel columns (occupancy_factor 1: the full-resolution
    BCE cost a third of a step), the BCE weighted 5 with occupied voxels 10 (the head learned
    too slowly to mark surfaces for skipping), VQ weights 1.0 / 0.25 (the original VQ-VAE's;
    with CoPilot4D's 0.25 / 1.0 the latents collapsed faster), 256 codes for 1024 tokens a
    frame (CoPilot4D: 1024 for 16384), and codes dead after 10 steps with restarts at least
    10 apart (with 32 / 50, usage fell from ~25% of the codes in a batch to ~4% between two
    restarts; the run is 1200 steps, not 400k). Rendering: opacity per 25 cm slab of ray
    (at 1 m, after 200 steps, surfaces were still too faint: skipping's depth L1 on 6 val
    sweeps 5.9 m against 3.5 m), the skipping mask thresholded at 0.3 and widened by one
    height level (at 0.5 and none it covered a quarter of the true voxels' cells).
    """
    model = TokenizerConfig(
        region_xy=40.0, grid=(128, 128, 32), point_dim=16, bev_dim=32, dims=(32, 64),
        depths=(2, 2), decoder_depths=(2, 2), heads=(2, 4), code_dim=32, codebook_size=256,
        dead_after=10, restart_every=10, codebook_weight=1.0, commitment_weight=0.25,
        grid_channels=8, grid_levels=32, occupancy_factor=1,
    )  # fmt: skip
    render = RenderConfig(train_rays=1024, train_samples=32, train_skip_samples=16,
                          eval_samples=64, skip_samples=16, chunk=2048, occupancy_weight=5.0,
                          occupancy_pos_weight=10.0, threshold=0.3, widen_levels=1,
                          alpha_length=0.25, pool=4)  # fmt: skip
    run = RunConfig(steps=1200, batch_size=4, lr=3e-3, warmup_steps=20, log_every=10,
                    eval_every=600, checkpoint_every=100, grad_clip=1.0)  # fmt: skip
    return Config(model=model, render=render, data=DataConfig(), run=run)


def prototype() -> Config:
    """One GPU: CoPilot4D's +-80 m region at half its resolution, 512 x 512 x 64 voxels of
    31.25 x 31.25 x 14.0625 cm -> 64 x 64 tokens; CoPilot4D's Swin widths and depths, 1024
    codes of 256 dims; the driving `paper` preset's LiDAR (32 beams x 1080, 70 m)."""
    config = override(debug(), {
        "model.region_xy": 80.0, "model.grid": (512, 512, 64), "model.bev_dim": 64,
        "model.dims": (128, 256), "model.depths": (2, 6), "model.decoder_depths": (2, 6),
        "model.heads": (8, 8), "model.code_dim": 256, "model.codebook_size": 1024,
        "model.dead_after": 256, "model.restart_every": 200, "model.grid_levels": 64,
        "model.grid_channels": 16, "model.occupancy_factor": 4,
        "render.train_rays": 4096, "render.train_samples": 64, "render.train_skip_samples": 32,
        "render.eval_samples": 128, "render.skip_samples": 32, "render.chunk": 8192,
        "render.pool": 8,
        "data.preset": "paper", "data.eval_sequences": 16,
    })  # fmt: skip
    run = gpu_run(steps=20_000, batch_size=16, lr=1e-3, warmup_steps=1000, eval_every=2000,
                  grad_clip=1.0, beta2=0.95, weight_decay=1e-4)  # fmt: skip
    return dataclasses.replace(config, run=run)


def paper() -> Config:
    """CoPilot4D's tokenizer: 1024 x 1024 x 64 voxels, 128 x 128 tokens, 1024 codes of 1024
    dims, its VQ weights (0.25 / 1.0) and unweighted BCE; AdamW lr 1e-3, 4000 warmup steps,
    cosine over 400k, batch 16, clip 0.1, beta2 0.95, weight decay 1e-4."""
    config = override(prototype(), {
        "model.grid": (1024, 1024, 64), "model.code_dim": 1024, "model.codebook_weight": 0.25,
        "model.commitment_weight": 1.0, "render.occupancy_weight": 1.0,
        "render.occupancy_pos_weight": 1.0,
    })  # fmt: skip
    run = gpu_run(steps=400_000, batch_size=16, lr=1e-3, warmup_steps=4000, eval_every=10_000,
                  grad_clip=0.1, beta2=0.95, weight_decay=1e-4, num_workers=8)  # fmt: skip
    return dataclasses.replace(config, run=run)


PRESETS = {"debug": debug, "prototype": prototype, "paper": paper}


def parse_run(argv=None) -> tuple[Config, str]:
    """(config, preset name) from `--preset NAME` and typed `--key=value` overrides."""
    return parse_config(PRESETS, argv)


def run_name(config: Config, preset: str) -> str:
    """The run folder's name: the preset, and "-norestart" for the plain-VQ comparison."""
    return preset + ("" if config.model.restarts else "-norestart")
