"""OccSora's 4D tokenizer: a clip of occupancy frames -> a few latent frames of tokens -> clip.

OccWorld tokenizes each frame alone; OccSora compresses time too, so a diffusion model
(chapter 5) sees a whole clip as one small block of tokens (OccSora: 32 frames of
200 x 200 x 16 -> 4 x 25 x 25 tokens, 512x fewer values than voxels):

    grid (B, T, X, Y, Z) class ids
      -> per frame: embed (Q -> C) and fold height                  (B, Z*C, T, X, Y)
      -> 3D convs, kernel 4 stride 2 where an axis still halves,
         kernel 3 stride 1 where it is done (OccSora: three stride-2 convs on T, X, Y)
                                                                     (B, D, T', h, w)
      -> [ResBlock3d + attention along T, then h, then w] x res_blocks
      -> GN, swish, 1x1x1 conv                                       (B, E, T', h, w)
      -> VQ (chapter 1's VectorQuantizer; OccSora: 512 codes, beta 1, no EMA)
      -> the mirror: 1x1x1 conv, the same blocks, transposed 3D convs  (B, Z*C, T, X, Y)
      -> per frame: the tied head                                    (B, T, X, Y, Z, Q)

T' = T / temporal_compression and h = X / spatial_downsample (both powers of two). Axial
attention costs T'^2 + h^2 + w^2 per position instead of (T' h w)^2 for full attention.
The lesson OccSora's numbers teach (27.4 recon mIoU at 512x against OccWorld's 66 at 16x):
every halving of T' throws away a factor of 2 of the token budget; measure what it costs by
training this model at temporal_compression 1, 2, 4, 8.

Shapes: B batch, T time steps (latent frames after compression where said), X, Y, Z
voxel-grid sizes, C channels of a class embedding, Q semantic classes, D model width, E code
dims, h, w token-grid height and width.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn
from video_tokenizer.vq import VectorQuantizer

from occupancy_tokenizer.blocks import AxialAttention3d, ResBlock, group_norm
from occupancy_tokenizer.folding import HeightFolding, check_grid
from occupancy_tokenizer.tied_head import TiedHead
from worldmodels.config import at_least, require
from worldmodels.occ3d import NUM_CLASSES


def _power_of_two(n) -> bool:
    return isinstance(n, int) and n >= 1 and n & (n - 1) == 0


@dataclass
class FourDTokenizerConfig:
    """Sizes of the 4D tokenizer. Defaults: a CPU debug size (8 frames of 32 x 32 x 8 ->
    2 x 8 x 8 tokens); OccSora's is grid (200, 200, 16), frames 32, channels 512,
    temporal_compression 8, spatial_downsample 8, latent_dim 128, codebook_size 512."""

    grid: tuple[int, int, int] = (32, 32, 8)  # (X, Y, Z) voxels
    frames: int = 8  # T, frames of a clip
    num_classes: int = NUM_CLASSES  # Q
    embed_dim: int = 8  # C (OccSora: 8)
    channels: int = 64  # D, width of the 3D stack
    temporal_compression: int = 4  # T / T', a power of two: 1, 2, 4, 8, ...
    spatial_downsample: int = 4  # X / h = Y / w, a power of two
    res_blocks: int = 1  # (ResBlock3d + axial attention) pairs on each side
    heads: int = 1
    latent_dim: int = 64  # E (OccSora: 128)
    codebook_size: int = 512  # K (OccSora: 512)
    vq_beta: float = 1.0  # OccSora: 1

    def __post_init__(self):
        self.grid = tuple(self.grid)
        at_least(self, 2, "num_classes")
        at_least(self, 1, "frames", "embed_dim", "channels", "res_blocks", "heads")
        at_least(self, 1, "latent_dim", "codebook_size")
        require(self, "grid", len(self.grid) == 3 and min(self.grid) >= 1, "(X, Y, Z) >= 1")
        for name in ("temporal_compression", "spatial_downsample"):
            require(self, name, _power_of_two(getattr(self, name)), "a power of two >= 1")
        t, s = self.temporal_compression, self.spatial_downsample
        require(self, "frames", self.frames % t == 0, f"divisible by temporal_compression={t}")
        require(self, "grid", self.grid[0] % s == 0 and self.grid[1] % s == 0,
                f"X and Y divisible by spatial_downsample={s}")  # fmt: skip
        require(self, "heads", self.channels % self.heads == 0, "a divisor of channels")
        require(self, "vq_beta", self.vq_beta >= 0, ">= 0")

    @property
    def strides(self) -> list[tuple[int, int]]:
        """(time, space) stride of each down stage: 2 while that axis still halves, else 1."""
        a = int(math.log2(self.temporal_compression))
        b = int(math.log2(self.spatial_downsample))
        return [(2 if i < a else 1, 2 if i < b else 1) for i in range(max(a, b))]

    @property
    def token_shape(self) -> tuple[int, int, int]:
        """(T', h, w) of a clip's token ids."""
        s = self.spatial_downsample
        return self.frames // self.temporal_compression, self.grid[0] // s, self.grid[1] // s


def _down(c_in: int, c_out: int, stride: tuple[int, int]) -> nn.Conv3d:
    """Kernel 4 stride 2 pad 1 halves an axis exactly; kernel 3 stride 1 pad 1 keeps it."""
    kernel = tuple(4 if s == 2 else 3 for s in (stride[0], stride[1], stride[1]))
    return nn.Conv3d(c_in, c_out, kernel, (stride[0], stride[1], stride[1]), padding=1)


def _up(c_in: int, c_out: int, stride: tuple[int, int]) -> nn.ConvTranspose3d:
    """The transpose of `_down`: kernel 4 stride 2 pad 1 doubles an axis exactly."""
    kernel = tuple(4 if s == 2 else 3 for s in (stride[0], stride[1], stride[1]))
    return nn.ConvTranspose3d(c_in, c_out, kernel, (stride[0], stride[1], stride[1]), padding=1)


def _blocks(c: "FourDTokenizerConfig") -> list[nn.Module]:
    D = c.channels
    return [
        m for _ in range(c.res_blocks) for m in (ResBlock(D, D, 3), AxialAttention3d(D, c.heads))
    ]


class FourDOutput(NamedTuple):
    """What `FourDTokenizer.forward` returns."""

    logits: torch.Tensor  # (B, T, X, Y, Z, Q) float
    indices: torch.Tensor  # (B, T', h, w) int64
    aux_loss: torch.Tensor  # () float32, VQ's codebook + commitment loss


class FourDTokenizer(nn.Module):
    """Clips of class-id grids (B, T, X, Y, Z) <-> token ids (B, T', h, w)."""

    def __init__(self, config: FourDTokenizerConfig):
        super().__init__()
        c = self.config = config
        D, Z = c.channels, c.grid[2]
        self.folding = HeightFolding(c.num_classes, c.embed_dim, Z)
        folded = self.folding.channels  # Z*C
        down: list[nn.Module] = [nn.Conv3d(folded, D, 3, padding=1)] if not c.strides else []
        for i, stride in enumerate(c.strides):
            down += [_down(folded if i == 0 else D, D, stride), nn.SiLU()]
        self.encoder = nn.Sequential(
            *down, *_blocks(c), group_norm(D), nn.SiLU(), nn.Conv3d(D, c.latent_dim, 1)
        )
        self.quantizer = VectorQuantizer(c.codebook_size, c.latent_dim, beta=c.vq_beta)
        up: list[nn.Module] = []
        for i, stride in enumerate(reversed(c.strides)):
            last = i == len(c.strides) - 1
            up += [_up(D, folded if last else D, stride)] + ([] if last else [nn.SiLU()])
        if not c.strides:
            up = [nn.Conv3d(D, folded, 3, padding=1)]
        self.decoder = nn.Sequential(
            nn.Conv3d(c.latent_dim, D, 1), *_blocks(c), group_norm(D), nn.SiLU(), *up
        )
        self.head = TiedHead(self.folding.embedding, Z)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def encode_latents(self, grid: torch.Tensor) -> torch.Tensor:
        """Class ids (B, T, X, Y, Z) -> latents z (B, T', h, w, E)."""
        check_grid(grid, self.config.num_classes, dims=5)
        c = self.config
        if tuple(grid.shape[1:]) != (c.frames, *c.grid):
            raise ValueError(f"expected clips (B, {c.frames}, *{c.grid}), got {tuple(grid.shape)}")
        B = grid.shape[0]
        folded = self.folding(rearrange(grid, "b t x y z -> (b t) x y z"))  # (B*T, Z*C, X, Y)
        x = rearrange(folded, "(b t) d x y -> b d t x y", b=B)  # (B, Z*C, T, X, Y)
        z = self.encoder(x)  # (B, E, T', h, w)
        return rearrange(z, "b e t h w -> b t h w e")  # (B, T', h, w, E)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', h, w, E) -> logits (B, T, X, Y, Z, Q)."""
        B = codes.shape[0]
        x = self.decoder(rearrange(codes, "b t h w e -> b e t h w"))  # (B, Z*C, T, X, Y)
        logits = self.head(rearrange(x, "b d t x y -> (b t) d x y"))  # (B*T, X, Y, Z, Q)
        return rearrange(logits, "(b t) x y z q -> b t x y z q", b=B)

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        """Class ids (B, T, X, Y, Z) -> token ids (B, T', h, w) int64."""
        return self.quantizer(self.encode_latents(grid)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T', h, w) -> class ids (B, T, X, Y, Z) int64 (argmax)."""
        if tuple(indices.shape[1:]) != self.config.token_shape:
            raise ValueError(
                f"expected ids (B, *{self.config.token_shape}), got {tuple(indices.shape)}"
            )
        return self.decode_codes(self.quantizer.indices_to_codes(indices)).argmax(-1)

    def forward(self, grid: torch.Tensor) -> FourDOutput:
        """Class ids (B, T, X, Y, Z) -> FourDOutput(logits, indices, aux_loss)."""
        codes, indices, aux_loss = self.quantizer(self.encode_latents(grid))
        return FourDOutput(self.decode_codes(codes), indices, aux_loss)
