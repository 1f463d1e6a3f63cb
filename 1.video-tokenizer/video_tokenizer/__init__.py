"""Chapter 1: a video tokenizer (Genie's ST-ViViT tokenizer, with FSQ or VQ).

Usage (frames float32 in [0, 1]):

from video_tokenizer import VideoTokenizer, TokenizerConfig
tokenizer = VideoTokenizer(TokenizerConfig())
ids = tokenizer.encode(frames)   # (B, T, 3, 64, 64) in [0, 1] -> (B, T, 8, 8) int64
frames = tokenizer.decode(ids)   # -> (B, T, 3, 64, 64) in [0, 1]
"""

from video_tokenizer.fsq import FSQ, round_ste
from video_tokenizer.model import TokenizerConfig, TokenizerOutput, VideoTokenizer
from video_tokenizer.patches import PatchEmbed, PixelShuffleHead, patchify, unpatchify
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.quantizer import Quantized, Quantizer
from video_tokenizer.temporal import TemporalMerge, TemporalSplit
from video_tokenizer.transformer import (
    Attention,
    SpatioTemporalBlock,
    SpatioTemporalTransformer,
    SwiGLU,
    spatial_attention_mask,
    temporal_attention_mask,
)
from video_tokenizer.vq import VectorQuantizer

__all__ = [
    "FSQ",
    "Attention",
    "PatchEmbed",
    "PixelShuffleHead",
    "Quantized",
    "Quantizer",
    "SpatioTemporalBlock",
    "SpatioTemporalPosition",
    "SpatioTemporalTransformer",
    "SwiGLU",
    "TemporalMerge",
    "TemporalSplit",
    "TokenizerConfig",
    "TokenizerOutput",
    "VectorQuantizer",
    "VideoTokenizer",
    "patchify",
    "round_ste",
    "spatial_attention_mask",
    "temporal_attention_mask",
    "unpatchify",
]
