"""The video tokenizer: frames -> discrete tokens -> frames (Genie's ST-ViViT tokenizer).

    encoder:  frames (B, T, C, H, W)
              -> PatchEmbed                       (B, T, N, D)   one token per p x p patch
              -> [TemporalMerge]                  (B, T', N, D)  1 + t*k frames -> 1 + k
              -> + positions                      (B, T', N, D)
              -> SpatioTemporalTransformer        (B, T', N, D)  causal in time
              -> Linear D -> E                    (B, T', N, E)  the quantizer's latent z
    quantizer: FSQ or VQ                          codes (B, T', N, E), ids (B, T', h, w)
    decoder:  Linear E -> D -> + positions -> SpatioTemporalTransformer (causal in time)
              -> [TemporalSplit]                  (B, T, N, D)
              -> PixelShuffleHead                 (B, T, C, H, W)

Positions are added after the temporal merge, on the grid the transformer actually sees
(latent frames): the merge needs no time signal of its own, because concatenating a group's
frames along D already tells its projection which frame is which.

Both transformers are causal in time, so latent frame j depends only on frames up to the end
of its group, and decoded frames depend only on tokens up to their own latent frame: a
dynamics model (chapter 2) can encode and decode a growing video one step at a time.

Pixels come out of a plain linear head, not a sigmoid: targets are in [0, 1], and many
pixels of game frames are exactly 0 (black backgrounds), which a sigmoid reaches only at
infinite logits, where its gradient vanishes; a linear output reaches them with the full
MSE gradient. `decode` clamps to [0, 1] for viewing; `forward` does not, so the loss sees
(and corrects) overshoots.
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from video_tokenizer.fsq import FSQ
from video_tokenizer.patches import PatchEmbed, PixelShuffleHead, check_frame_size
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.quantizer import Quantized, Quantizer
from video_tokenizer.temporal import TemporalMerge, TemporalSplit, check_num_frames
from video_tokenizer.transformer import SpatioTemporalTransformer
from video_tokenizer.vq import VectorQuantizer
from worldmodels.metrics import psnr

QUANTIZERS = ("fsq", "vq")


@dataclass
class TokenizerConfig:
    """Sizes of the video tokenizer. The defaults are the CPU `debug` size (about 0.3 M
    parameters); Genie's tokenizer is 200 M parameters with patch 4 and 1024 codes."""

    image_size: int = 64  # H = W, pixels
    channels: int = 3  # C
    patch: int = 8  # p, pixels per patch side
    dim: int = 64  # D, transformer width
    heads: int = 4  # G
    encoder_depth: int = 2  # ST-blocks in the encoder
    decoder_depth: int = 2  # ST-blocks in the decoder
    mlp_ratio: float = 4.0
    quantizer: str = "fsq"  # "fsq" | "vq"
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # K = 1000, the FSQ paper's choice for ~2^10
    vq_codebook_size: int = 1024  # K for "vq", as in Genie
    vq_dim: int = 32  # E for "vq", Genie's code width
    temporal_compression: int = 1  # t: 1 + t*k frames -> 1 + k latent frames; 1 = per frame
    max_frames: int = 16  # longest clip, in frames, the positional table is sized for

    def __post_init__(self):
        self.fsq_levels = tuple(self.fsq_levels)  # a list from JSON becomes a tuple again
        positive = (
            *("image_size", "channels", "patch", "dim", "heads", "encoder_depth"),
            *("decoder_depth", "vq_codebook_size", "vq_dim", "temporal_compression"),
            "max_frames",
        )
        for name in positive:  # first: the checks below divide by some of these
            if getattr(self, name) < 1:
                raise ValueError(f"TokenizerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"TokenizerConfig.mlp_ratio must be > 0, got {self.mlp_ratio}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r}; expected one of {QUANTIZERS}")
        if self.dim % self.heads != 0:
            raise ValueError(f"dim={self.dim} is not divisible by heads={self.heads}")
        check_frame_size(self.image_size, self.image_size, self.patch)
        if not self.fsq_levels or min(self.fsq_levels) < 2:
            raise ValueError(f"fsq_levels must be ints >= 2, got {self.fsq_levels}")


class TokenizerOutput(NamedTuple):
    """What `VideoTokenizer.forward` returns."""

    recon: torch.Tensor  # (B, T, C, H, W) float, reconstructed frames, not clamped
    indices: torch.Tensor  # (B, T', h, w) int64 token ids
    aux_loss: torch.Tensor  # scalar: VQ's codebook + commitment loss; 0 for FSQ


class VideoTokenizer(nn.Module):
    """Frames (B, T, C, H, W) in [0, 1] <-> token ids (B, T', h, w) in [0, K)."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        c = config
        self.config = c
        self.grid = c.image_size // c.patch  # h = w
        num_tokens = self.grid * self.grid  # N
        t = c.temporal_compression
        latent_frames = 1 + (c.max_frames - 1) // t  # T' of the longest clip

        self.quantizer: Quantizer = (
            FSQ(c.fsq_levels)
            if c.quantizer == "fsq"
            else VectorQuantizer(c.vq_codebook_size, c.vq_dim)
        )
        code_dim = self.quantizer.dim  # E

        self.patch_embed = PatchEmbed(c.channels, c.patch, c.dim)
        self.merge = TemporalMerge(c.dim, t) if t > 1 else nn.Identity()
        self.encoder_pos = SpatioTemporalPosition(latent_frames, num_tokens, c.dim)
        self.encoder = SpatioTemporalTransformer(
            c.dim, c.encoder_depth, c.heads, c.mlp_ratio, causal_time=True
        )
        self.to_code = nn.Linear(c.dim, code_dim)  # D -> E: a narrow bottleneck to quantize

        self.from_code = nn.Linear(code_dim, c.dim)  # E -> D
        self.decoder_pos = SpatioTemporalPosition(latent_frames, num_tokens, c.dim)
        self.decoder = SpatioTemporalTransformer(
            c.dim, c.decoder_depth, c.heads, c.mlp_ratio, causal_time=True
        )
        self.split = TemporalSplit(c.dim, t) if t > 1 else nn.Identity()
        self.head = PixelShuffleHead(c.dim, c.channels, c.patch)
        # Start by predicting mid-grey everywhere: zero weights and bias 0.5, the best guess
        # for [0, 1] pixels before seeing any data. A randomly initialised head would instead
        # paint noise of std ~0.6 at step 0, which the first steps only spend undoing.
        nn.init.zeros_(self.head.proj.weight)
        nn.init.constant_(self.head.proj.bias, 0.5)

    @property
    def codebook_size(self) -> int:
        """K, the number of distinct token ids."""
        return self.quantizer.codebook_size

    def tokens_shape(self, num_frames: int) -> tuple[int, int, int]:
        """(T', h, w) of the token ids of a clip of `num_frames` frames."""
        k = check_num_frames(num_frames, self.config.temporal_compression)
        if num_frames > self.config.max_frames:
            raise ValueError(
                f"clip has {num_frames} frames but max_frames={self.config.max_frames}"
            )
        return 1 + k, self.grid, self.grid

    def encode_latents(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, C, H, W) in [0, 1] -> continuous latents z (B, T', h, w, E)."""
        B, T, C, H, W = frames.shape
        self.tokens_shape(T)  # validates T: 1 + t*k, at most max_frames
        x = self.patch_embed(frames)  # (B, T, N, D)
        x = self.merge(x)  # (B, T', N, D)
        x = self.encoder(self.encoder_pos(x))  # (B, T', N, D)
        z = self.to_code(x)  # (B, T', N, E)
        return rearrange(z, "b t (h w) e -> b t h w e", h=self.grid)  # (B, T', h, w, E)

    def quantize(self, z: torch.Tensor) -> Quantized:
        """z (B, T', h, w, E) -> Quantized(codes (B, T', h, w, E), ids (B, T', h, w), aux)."""
        return self.quantizer(z)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', h, w, E) -> frames (B, T, C, H, W), unclamped."""
        x = rearrange(codes, "b t h w e -> b t (h w) e")  # (B, T', N, E)
        x = self.from_code(x)  # (B, T', N, D)
        x = self.decoder(self.decoder_pos(x))  # (B, T', N, D)
        x = self.split(x)  # (B, T, N, D)
        return self.head(x, self.grid, self.grid)  # (B, T, C, H, W)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, C, H, W) in [0, 1] -> token ids (B, T', h, w) int64."""
        return self.quantize(self.encode_latents(frames)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T', h, w) int64 -> frames (B, T, C, H, W) clamped to [0, 1]."""
        codes = self.quantizer.indices_to_codes(indices)  # (B, T', h, w, E)
        return self.decode_codes(codes).clamp(0, 1)  # (B, T, C, H, W)

    def forward(self, frames: torch.Tensor) -> TokenizerOutput:
        """Frames (B, T, C, H, W) -> TokenizerOutput(recon, indices, aux_loss).

        The training loss is mse(recon, frames) + aux_loss; gradients reach the encoder
        through the quantizer's straight-through estimator.
        """
        codes, indices, aux_loss = self.quantize(self.encode_latents(frames))
        return TokenizerOutput(self.decode_codes(codes), indices, aux_loss)


def loss_fn(model: VideoTokenizer, batch: dict) -> tuple[torch.Tensor, dict]:
    """The training objective: pixel MSE + the quantizer's aux loss (VQ's; 0 for FSQ).

    loss = mean (recon - frames)^2 + aux_loss; the logged metrics stay tensors (the trainer
    reads them once per log line).
    """
    frames = batch["frames"]  # (B, T, C, H, W) in [0, 1]
    out = model(frames)
    mse = F.mse_loss(out.recon.float(), frames)
    return mse + out.aux_loss, {
        "mse": mse.detach(),
        "psnr": psnr(out.recon.detach(), frames).mean(),
    }
