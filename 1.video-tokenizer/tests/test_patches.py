"""Patches: exact reshapes, the conv equals a linear map on patches, pixel shuffle layout."""

import pytest
import torch
from einops import rearrange
from torch import nn
from video_tokenizer.patches import PatchEmbed, PixelShuffleHead, patchify, unpatchify
from video_tokenizer.position import SpatioTemporalPosition


def test_patchify_then_unpatchify_is_identity():
    frames = torch.randn(2, 3, 3, 16, 24)  # (B, T, C, H, W), non-square on purpose
    patches = patchify(frames, 4)
    assert patches.shape == (2, 3, 4 * 6, 3 * 4 * 4)  # (B, T, N, C*p*p)
    assert torch.equal(unpatchify(patches, 4, h=4, w=6), frames)


def test_patch_order_by_hand():
    frames = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 1, 2, 4, 4)  # C=2, 4x4
    patches = patchify(frames, 2)  # N = 4 patches of 2*2*2 = 8 values
    # Token 1 is the top-right patch (row-major grid); its vector is channel 0's 2x2 block
    # read row by row, then channel 1's.
    assert patches[0, 0, 1].tolist() == [2, 3, 6, 7, 18, 19, 22, 23]
    assert patches[0, 0, 2].tolist() == [8, 9, 12, 13, 24, 25, 28, 29]  # bottom-left


def test_patch_embed_is_a_linear_map_on_patches():
    torch.manual_seed(0)
    embed = PatchEmbed(channels=3, patch=4, dim=16)
    frames = torch.rand(2, 3, 3, 16, 16)
    weight = rearrange(embed.proj.weight, "d c p1 p2 -> d (c p1 p2)")  # (D, C*p*p)
    expected = patchify(frames, 4) @ weight.T + embed.proj.bias  # (B, T, N, D)
    tokens = embed(frames)
    assert tokens.shape == (2, 3, 16, 16)
    assert torch.allclose(tokens, expected, atol=1e-5)


def test_pixel_shuffle_head_equals_nn_pixel_shuffle():
    torch.manual_seed(0)
    B, T, h, w, D, C, p = 2, 3, 4, 5, 16, 3, 4
    head = PixelShuffleHead(D, C, p)
    tokens = torch.randn(B, T, h * w, D)
    frames = head(tokens, h, w)
    assert frames.shape == (B, T, C, h * p, w * p)
    features = rearrange(head.proj(tokens), "b t (h w) k -> (b t) k h w", h=h)  # (B*T, Cpp, h, w)
    reference = rearrange(nn.PixelShuffle(p)(features), "(b t) c hh ww -> b t c hh ww", b=B)
    assert torch.equal(frames, reference)


def test_frame_size_not_divisible_by_patch_raises():
    embed = PatchEmbed(3, 8, 16)
    message = "frame size 63x64 is not divisible by patch 8"
    with pytest.raises(ValueError, match=message):
        embed(torch.zeros(1, 1, 3, 63, 64))
    with pytest.raises(ValueError, match=message):
        patchify(torch.zeros(1, 1, 3, 63, 64), 8)


def test_channel_mismatch_raises():
    with pytest.raises(ValueError, match="1 channels but PatchEmbed expects 3"):
        PatchEmbed(3, 8, 16)(torch.zeros(1, 1, 1, 64, 64))


def test_position_table_is_time_plus_space():
    torch.manual_seed(0)
    pos = SpatioTemporalPosition(max_frames=5, num_tokens=6, dim=4)
    table = pos.table(3)
    assert table.shape == (3, 6, 4)
    assert torch.equal(table[2, 4], pos.time[2] + pos.space[4])
    assert pos.table().shape == (5, 6, 4)
    x = torch.randn(2, 3, 6, 4)
    assert torch.equal(pos(x), x + table)
    # Learned tables have no sinusoid's time/space tie: (t=1, n=0) differs from (t=0, n=1).
    assert not torch.allclose(table[1, 0], table[0, 1])


def test_position_rejects_too_many_frames_or_tokens():
    pos = SpatioTemporalPosition(max_frames=4, num_tokens=6, dim=4)
    with pytest.raises(ValueError, match="raise max_frames"):
        pos(torch.zeros(1, 5, 6, 4))
    with pytest.raises(ValueError, match="7 tokens per frame"):
        pos(torch.zeros(1, 2, 7, 4))
