"""OccWorld's scene tokenizer: one occupancy frame -> an h x w grid of tokens -> the frame.

    grid (B, X, Y, Z) class ids
      -> HeightFolding: embed each id (Q -> C), stack the Z levels   (B, Z*C, X, Y)
      -> Encoder: conv in; per level ResBlocks, stride-2 conv between levels;
         ResBlock + self-attention + ResBlock at the lowest resolution; GN, swish, conv out
                                                                     (B, E, h, w), h = X / 2^m
      -> quantizer: VQ (OccWorld: 512 codes), FSQ, or VAR's multi-scale residual quantizer
                                                                     codes (B, E, h, w)
      -> Decoder: the mirror (nearest x2 upsample + conv between levels)  (B, Z*C, X, Y)
      -> TiedHead: unfold, dot with the input embedding table        logits (B, X, Y, Z, Q)

m = len(channel_mults) - 1 downsamplings (OccWorld: 200 -> 50 with mults (1, 2, 4)).
OccWorld puts a 1x1 conv before and after the VQ; so do we (`to_code`, `from_code`).
Train with `losses.reconstruction_loss(out.logits, grid, out.aux_loss)`.

Shapes: B batch, X, Y, Z voxel-grid sizes, C channels of a class embedding, Q semantic
classes, E code dims, D width, h, w token-grid height and width, L flattened sequence length.
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.fsq import FSQ
from video_tokenizer.quantizer import Quantized
from video_tokenizer.vq import VectorQuantizer

from occupancy_tokenizer.blocks import ResBlock, SelfAttention2d, group_norm
from occupancy_tokenizer.folding import HeightFolding, check_grid
from occupancy_tokenizer.multiscale import UPSAMPLE_MODES, MultiScaleQuantizer
from occupancy_tokenizer.tied_head import TiedHead
from worldmodels.config import at_least, require
from worldmodels.occ3d import NUM_CLASSES

QUANTIZERS = ("vq", "fsq", "multiscale")


@dataclass
class SceneTokenizerConfig:
    """Sizes of the scene tokenizer. Defaults: a CPU size for the driving world's `debug`
    grid (64 x 64 x 8 -> 16 x 16 tokens); OccWorld's is grid (200, 200, 16), channels 64,
    blocks_per_level 2, latent_dim 128, codebook_size 512 (about 14 M parameters)."""

    grid: tuple[int, int, int] = (64, 64, 8)  # (X, Y, Z) voxels
    num_classes: int = NUM_CLASSES  # Q, free included (Occ3D: 18)
    embed_dim: int = 8  # C, channels of a class embedding (OccWorld: 8)
    channels: int = 32  # width of the first level (OccWorld: 64)
    channel_mults: tuple[int, ...] = (1, 2, 4)  # one level each; stride 2 between levels
    blocks_per_level: int = 1  # ResBlocks per level (OccWorld: 2)
    heads: int = 1  # of the self-attention at the lowest resolution (OccWorld: 1)
    quantizer: str = "vq"  # vq | fsq | multiscale
    latent_dim: int = 64  # E for vq and multiscale (OccWorld: 128); fsq: len(fsq_levels)
    codebook_size: int = 512  # K for vq and multiscale (OccWorld: 512)
    vq_beta: float = 1.0  # commitment weight (OccWorld: 1; chapter 1 and VQ-VAE: 0.25)
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # K = 1000
    scales: tuple[int, ...] = (1, 2, 4, 8, 16)  # multiscale sides, the last = h = w
    phi_ratio: float = 0.5  # r of phi(x) = (1 - r) x + r conv(x) (VAR: 0.5)
    num_phi: int = 4  # phi convs shared by the scales (VAR: 4)
    multiscale_beta: float = 0.25  # VAR's beta
    using_znorm: bool = False  # multiscale: cosine lookup instead of L2
    upsample: str = "bicubic"  # multiscale: bicubic (VAR) | bilinear

    def __post_init__(self):
        for name in ("grid", "channel_mults", "fsq_levels", "scales"):  # JSON lists -> tuples
            setattr(self, name, tuple(getattr(self, name)))
        at_least(self, 2, "num_classes")
        at_least(self, 1, "embed_dim", "channels", "blocks_per_level", "heads", "latent_dim")
        at_least(self, 1, "codebook_size", "num_phi")
        require(self, "quantizer", self.quantizer in QUANTIZERS, f"one of {QUANTIZERS}")
        require(self, "grid", len(self.grid) == 3 and min(self.grid) >= 1, "(X, Y, Z) >= 1")
        require(self, "channel_mults", len(self.channel_mults) >= 1
                and all(isinstance(m, int) and m >= 1 for m in self.channel_mults),
                "a non-empty tuple of integers >= 1")  # fmt: skip
        factor = self.downsample
        require(self, "grid", self.grid[0] % factor == 0 and self.grid[1] % factor == 0,
                f"X and Y divisible by 2^(len(channel_mults) - 1) = {factor}")  # fmt: skip
        width = self.channels * self.channel_mults[-1]
        require(self, "heads", width % self.heads == 0, f"a divisor of the last width {width}")
        require(self, "vq_beta", self.vq_beta >= 0, ">= 0")
        require(self, "multiscale_beta", self.multiscale_beta >= 0, ">= 0")
        require(self, "fsq_levels", len(self.fsq_levels) >= 1 and min(self.fsq_levels) >= 2,
                "a non-empty tuple of integers >= 2")  # fmt: skip
        require(self, "phi_ratio", 0 <= self.phi_ratio <= 1, "in [0, 1]")
        require(self, "upsample", self.upsample in UPSAMPLE_MODES, f"one of {UPSAMPLE_MODES}")
        if self.quantizer == "multiscale":
            h, w = self.latent_grid
            increasing = all(a < b for a, b in zip(self.scales, self.scales[1:]))
            require(self, "scales", h == w and increasing and self.scales[0] >= 1
                    and self.scales[-1] == h,
                    f"increasing sides ending at the (square) latent side {h}x{w}")  # fmt: skip

    @property
    def downsample(self) -> int:
        """X / h = 2^(number of levels - 1)."""
        return 2 ** (len(self.channel_mults) - 1)

    @property
    def latent_grid(self) -> tuple[int, int]:
        """(h, w) of the latent and of the token grid."""
        return self.grid[0] // self.downsample, self.grid[1] // self.downsample

    @property
    def code_dim(self) -> int:
        """E, the channels the quantizer sees."""
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.latent_dim


def build_quantizer(c: SceneTokenizerConfig) -> nn.Module:
    """The configured quantizer: chapter 1's VQ or FSQ (imported), or VAR's multi-scale."""
    if c.quantizer == "vq":
        return VectorQuantizer(c.codebook_size, c.latent_dim, beta=c.vq_beta)
    if c.quantizer == "fsq":
        return FSQ(c.fsq_levels)
    return MultiScaleQuantizer(
        c.codebook_size, c.latent_dim, c.scales, c.phi_ratio, c.num_phi,
        c.multiscale_beta, c.using_znorm, c.upsample,
    )  # fmt: skip


class Encoder(nn.Module):
    """(B, D_in, X, Y) -> (B, D_out, h, w): levels of ResBlocks, stride-2 convs between."""

    def __init__(self, c_in: int, c_out: int, c: SceneTokenizerConfig):
        super().__init__()
        widths = [c.channels * m for m in c.channel_mults]
        layers: list[nn.Module] = [nn.Conv2d(c_in, widths[0], 3, padding=1)]
        for i, width in enumerate(widths):
            previous = widths[max(i - 1, 0)]
            for j in range(c.blocks_per_level):
                layers.append(ResBlock(previous if j == 0 else width, width))
            if i < len(widths) - 1:  # halve: (X, Y) -> (X/2, Y/2)
                layers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        top = widths[-1]
        layers += [ResBlock(top, top), SelfAttention2d(top, c.heads), ResBlock(top, top)]
        layers += [group_norm(top), nn.SiLU(), nn.Conv2d(top, c_out, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Upsample(nn.Module):
    """Nearest x2 then a 3x3 conv (taming's decoder upsampling; no checkerboard)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    """(B, D_in, h, w) -> (B, D_out, X, Y): the encoder's mirror."""

    def __init__(self, c_in: int, c_out: int, c: SceneTokenizerConfig):
        super().__init__()
        widths = [c.channels * m for m in reversed(c.channel_mults)]
        top = widths[0]
        layers: list[nn.Module] = [nn.Conv2d(c_in, top, 3, padding=1)]
        layers += [ResBlock(top, top), SelfAttention2d(top, c.heads), ResBlock(top, top)]
        for i, width in enumerate(widths):
            previous = widths[max(i - 1, 0)]
            for j in range(c.blocks_per_level):
                layers.append(ResBlock(previous if j == 0 else width, width))
            if i < len(widths) - 1:  # double: (h, w) -> (2h, 2w)
                layers.append(Upsample(width))
        layers += [group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], c_out, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SceneOutput(NamedTuple):
    """What `SceneTokenizer.forward` returns."""

    logits: torch.Tensor  # (B, X, Y, Z, Q) float
    indices: torch.Tensor  # (B, h, w) int64; multiscale: (B, L), scales concatenated
    aux_loss: torch.Tensor  # () float32, the quantizer's loss


class SceneTokenizer(nn.Module):
    """Class-id grids (B, X, Y, Z) <-> token ids (B, h, w) (multiscale: (B, L))."""

    def __init__(self, config: SceneTokenizerConfig):
        super().__init__()
        c = self.config = config
        X, Y, Z = c.grid
        self.folding = HeightFolding(c.num_classes, c.embed_dim, Z)
        folded = self.folding.channels  # Z*C
        self.encoder = Encoder(folded, c.latent_dim, c)
        self.quantizer = build_quantizer(c)
        E = c.code_dim
        self.to_code = nn.Conv2d(c.latent_dim, E, 1)  # OccWorld's quant_conv
        self.from_code = nn.Conv2d(E, c.latent_dim, 1)  # post_quant_conv
        self.decoder = Decoder(c.latent_dim, folded, c)
        self.head = TiedHead(self.folding.embedding, Z)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def encode_latents(self, grid: torch.Tensor) -> torch.Tensor:
        """Class ids (B, X, Y, Z) -> continuous latents z (B, E, h, w)."""
        check_grid(grid, self.config.num_classes)
        if tuple(grid.shape[1:]) != self.config.grid:
            raise ValueError(f"expected a grid (B, *{self.config.grid}), got {tuple(grid.shape)}")
        x = self.folding(grid)  # (B, Z*C, X, Y)
        return self.to_code(self.encoder(x))  # (B, E, h, w)

    def quantize(self, z: torch.Tensor) -> Quantized:
        """z (B, E, h, w) -> Quantized(codes (B, E, h, w), ids (B, h, w) or (B, L), aux)."""
        if isinstance(self.quantizer, MultiScaleQuantizer):
            return self.quantizer(z)  # works channels-first itself (phi is a conv)
        codes, indices, aux = self.quantizer(rearrange(z, "b e h w -> b h w e"))
        return Quantized(rearrange(codes, "b h w e -> b e h w"), indices, aux)

    def codes_from_ids(self, indices: torch.Tensor) -> torch.Tensor:
        """Token ids (B, h, w) (multiscale: (B, L)) -> codes (B, E, h, w)."""
        if isinstance(self.quantizer, MultiScaleQuantizer):
            return self.quantizer.indices_to_codes(indices)  # (B, E, h, w) already
        codes = self.quantizer.indices_to_codes(indices)  # (B, h, w, E)
        return rearrange(codes, "b h w e -> b e h w")

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, E, h, w) -> logits (B, X, Y, Z, Q)."""
        return self.head(self.decoder(self.from_code(codes)))  # (B, X, Y, Z, Q)

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        """Class ids (B, X, Y, Z) -> token ids (B, h, w) (multiscale: (B, L)) int64."""
        return self.quantize(self.encode_latents(grid)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Token ids -> class ids (B, X, Y, Z) int64, the argmax of the logits."""
        return self.decode_codes(self.codes_from_ids(indices)).argmax(dim=-1)

    def forward(self, grid: torch.Tensor) -> SceneOutput:
        """Class ids (B, X, Y, Z) -> SceneOutput(logits, indices, aux_loss)."""
        codes, indices, aux_loss = self.quantize(self.encode_latents(grid))
        return SceneOutput(self.decode_codes(codes), indices, aux_loss)
