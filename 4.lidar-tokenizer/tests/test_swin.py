"""Swin pieces: windows, the shift mask, window attention against a naive full attention."""

import math

import pytest
import torch
from lidar_tokenizer.swin import (
    PatchEmbed,
    PatchExpand,
    PatchMerging,
    SwinBlock,
    SwinEncoder,
    SwinStage,
)
from lidar_tokenizer.windows import (
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def naive_window_attention(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """Full attention over all h*w tokens of x (B, h, w, D), each query restricted to the
    tokens of its own window in a window grid offset by `block.shift` (no roll, no
    partition): token (r, c) lies in window (floor((r - shift) / s), floor((c - shift) / s)).
    The relative bias is read from the original positions' offsets."""
    attn, s, shift = block.attn, block.window, block.shift
    B, h, w, D = x.shape
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()  # (h*w,)
    group = torch.div(rows - shift, s, rounding_mode="floor") * (w + 1) + torch.div(
        cols - shift, s, rounding_mode="floor"
    )
    allowed = group[:, None] == group[None, :]  # (h*w, h*w)
    d_row = (rows[:, None] - rows[None, :]).clamp(-(s - 1), s - 1) + s - 1
    d_col = (cols[:, None] - cols[None, :]).clamp(-(s - 1), s - 1) + s - 1
    bias = attn.relative_bias[d_row * (2 * s - 1) + d_col].permute(2, 0, 1)  # (G, hw, hw)

    tokens = x.reshape(B, h * w, D)
    q, k, v = attn.to_qkv(tokens).chunk(3, dim=-1)
    G = attn.heads
    q, k, v = (t.reshape(B, h * w, G, D // G).transpose(1, 2) for t in (q, k, v))
    logits = q @ k.transpose(-1, -2) / math.sqrt(D // G) + bias
    logits = logits.masked_fill(~allowed, float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, h * w, D)
    return attn.to_out(out).reshape(B, h, w, D)


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("size", [(8, 8), (8, 12)])
def test_window_attention_equals_naive_masked_full_attention(shift, size):
    torch.manual_seed(0)
    block = SwinBlock(dim=16, heads=2, window=4, shift=shift)
    with torch.no_grad():  # a bias large enough that a wrong offset would show
        block.attn.relative_bias.normal_()
    x = torch.randn(2, *size, 16)
    fast = block.windowed_attention(x)
    torch.testing.assert_close(fast, naive_window_attention(block, x), atol=1e-5, rtol=1e-4)


def test_partition_reverse_round_trip_and_window_content():
    x = torch.arange(2 * 8 * 12 * 3).float().reshape(2, 8, 12, 3)
    windows = window_partition(x, 4)  # (2, 6, 16, 3)
    assert windows.shape == (2, 6, 16, 3)
    torch.testing.assert_close(windows[1, 4], x[1, 4:8, 4:8].reshape(16, 3))  # row 1, col 1
    torch.testing.assert_close(window_reverse(windows, 4, 8, 12), x)


def test_shift_mask_only_separates_wrapped_pieces():
    assert shifted_window_mask(8, 8, 4, 0).all()
    mask = shifted_window_mask(8, 8, 4, 2)  # (4, 16, 16)
    assert mask[0].all()  # an interior window never wraps
    # the last window holds 4 pieces of 2 x 2 tokens from the four corners: 4 * 4^2 pairs
    assert mask[3].sum() == 4 * 16
    assert torch.equal(mask, mask.transpose(1, 2)) and mask.diagonal(dim1=1, dim2=2).all()


def test_relative_index_is_one_entry_per_offset():
    index = relative_position_index(3)  # (9, 9)
    assert index.unique().numel() == 5 * 5
    assert (index.diagonal() == 12).all()  # offset (0, 0) is the centre of the 5 x 5 table


def test_bias_table_gets_gradient():
    block = SwinBlock(dim=8, heads=2, window=4, shift=2)
    block(torch.randn(1, 8, 8, 8)).pow(2).sum().backward()
    assert block.attn.relative_bias.grad.abs().sum() > 0


def test_encoder_shapes_and_pyramid():
    encoder = SwinEncoder(
        in_channels=6, image_size=(32, 32), dims=(16, 32), depths=(2, 2), heads=(2, 4), window=4
    )
    out = encoder(torch.randn(2, 6, 32, 32))  # patch 4 -> 8 x 8, merge -> 4 x 4
    assert out.shape == (2, 4, 4, 32)
    assert PatchEmbed(6, 16)(torch.randn(1, 6, 32, 32)).shape == (1, 8, 8, 16)
    assert PatchMerging(16)(torch.randn(1, 8, 8, 16)).shape == (1, 4, 4, 32)
    assert PatchExpand(32)(torch.randn(1, 4, 4, 32)).shape == (1, 8, 8, 16)
    assert SwinStage(16, 2, 2, 4)(torch.randn(1, 8, 8, 16)).shape == (1, 8, 8, 16)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="does not split into 4 x 4 windows"):
        SwinBlock(8, 2, window=4)(torch.randn(1, 6, 8, 8))
    with pytest.raises(ValueError, match="shift must lie in"):
        SwinBlock(8, 2, window=4, shift=4)
    encoder = SwinEncoder(6, (32, 32), dims=(16,), depths=(1,), heads=(2,), window=4)
    with pytest.raises(ValueError, match="built for a \\(8, 8\\) token grid"):
        encoder(torch.randn(1, 6, 64, 64))
