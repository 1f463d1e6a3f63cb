"""The patch-mean codec: what it keeps (one colour per patch), what it returns, what it rejects."""

import pytest
import torch
from einops import reduce
from video_tokenizer.codec import patch_mean, patch_mean_at
from video_tokenizer.model import TokenizerConfig


def dyadic(*shape, generator=None):
    """Values k/256 in [0, 1): their sums and means over a patch are exact in float32."""
    return torch.randint(0, 256, shape, generator=generator).float() / 256


def test_a_frame_constant_on_each_patch_is_returned_exactly():
    g = torch.Generator().manual_seed(0)
    colours = dyadic(2, 3, 3, 4, 6, generator=g)  # (B, T, C, h, w): one colour per patch
    frames = colours.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)  # p = 4
    assert torch.equal(patch_mean(frames, 4), frames)
    # with time = 3, a frame constant on each p x p x t tube (first frame alone) too
    tubes = dyadic(2, 3, 3, 4, 6, generator=g)  # (B, 1 + k, C, h, w), k = 2
    clip = torch.cat([tubes[:, :1], tubes[:, 1:].repeat_interleave(3, dim=1)], dim=1)
    clip = clip.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)  # (B, 7, C, 16, 24)
    assert torch.equal(patch_mean(clip, 4, time=3), clip)


def test_shape_is_kept_and_each_patch_is_one_colour_its_mean():
    frames = torch.rand(2, 3, 3, 16, 24)  # (B, T, C, H, W), non-square on purpose
    out = patch_mean(frames, 8)
    assert out.shape == frames.shape
    means = reduce(frames, "b t c (h p1) (w p2) -> b t c h w", "mean", p1=8, p2=8)
    assert torch.allclose(reduce(out, "b t c (h p1) (w p2) -> b t c h w", "mean", p1=8, p2=8),
                          means, atol=1e-6)  # fmt: skip
    assert torch.allclose(out[..., :8, :8], means[..., :1, :1].expand(2, 3, 3, 8, 8), atol=1e-6)
    assert torch.allclose(out[..., 8:, 16:], means[..., 1:, 2:].expand(2, 3, 3, 8, 8), atol=1e-6)


def test_by_hand():
    frame = torch.tensor([[0.0, 1.0, 0.5, 0.5], [1.0, 0.0, 0.25, 0.75]]).reshape(1, 1, 1, 2, 4)
    expected = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]).reshape(1, 1, 1, 2, 4)
    assert torch.equal(patch_mean(frame, 2), expected)
    frame[..., 2:] = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert patch_mean(frame, 2)[0, 0, 0, :, 2:].tolist() == [[0.25, 0.25], [0.25, 0.25]]


def test_temporal_groups_follow_the_tokenizers_latent_frames():
    """t = 3, T = 7: frame 0 alone, frames 1-3 and 4-6 each averaged together."""
    frames = torch.rand(2, 7, 3, 8, 8)
    out = patch_mean(frames, 4, time=3)
    per_frame = patch_mean(frames, 4)
    assert torch.allclose(out[:, 0], per_frame[:, 0], atol=1e-6)
    for group in (slice(1, 4), slice(4, 7)):
        tube = per_frame[:, group].mean(1, keepdim=True).expand(-1, 3, -1, -1, -1)
        assert torch.allclose(out[:, group], tube, atol=1e-6)
    config = TokenizerConfig(image_size=8, patch=4, temporal_compression=3)
    assert torch.equal(patch_mean_at(frames, config), out)


def test_wrong_patch_size_or_clip_length_raises():
    with pytest.raises(ValueError, match="frame size 64x64 is not divisible by patch 5"):
        patch_mean(torch.zeros(1, 1, 3, 64, 64), 5)
    with pytest.raises(ValueError, match="frame size 16x20 is not divisible by patch 8"):
        patch_mean(torch.zeros(1, 1, 3, 16, 20), 8)
    with pytest.raises(ValueError, match="patch and time must be >= 1"):
        patch_mean(torch.zeros(1, 1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="cannot be compressed by 3"):
        patch_mean(torch.zeros(1, 5, 3, 8, 8), 4, time=3)  # T = 5 is not 1 + 3k
    with pytest.raises(ValueError, match=r"expects frames \(B, T, C, H, W\)"):
        patch_mean(torch.zeros(3, 8, 8), 4)
