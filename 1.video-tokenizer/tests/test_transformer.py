"""The ST-transformer mixes exactly the tokens its masks say, and nothing else."""

import pytest
import torch
from einops import rearrange, reduce
from torch.autograd.functional import jacobian
from video_tokenizer.transformer import (
    Attention,
    SpatioTemporalBlock,
    SpatioTemporalTransformer,
    SwiGLU,
    spatial_attention_mask,
    temporal_attention_mask,
)

T, N, D, G = 3, 4, 8, 2


def dependency(fn, x: torch.Tensor) -> torch.Tensor:
    """Bool (T*N, T*N): [i, j] True when output token i changes with input token j.

    x is one clip (T, N, D); the Jacobian d out[t, n, :] / d x[t', n', :] is summed in
    absolute value over the two D axes. Masked attention weights are exactly zero, so
    "does not depend" is an exact zero here, not a small number.
    """
    jac = jacobian(fn, x)  # (T, N, D, T, N, D)
    return reduce(jac.abs(), "t n d u m e -> (t n) (u m)", "sum") > 0


def test_masks_hand_computed():
    assert torch.equal(
        temporal_attention_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()
    )
    assert torch.equal(temporal_attention_mask(3, causal=False), torch.ones(3, 3, dtype=torch.bool))
    assert torch.equal(spatial_attention_mask(4), torch.ones(4, 4, dtype=torch.bool))
    # Two frames of two tokens: spatial is block diagonal, temporal links same positions.
    assert spatial_attention_mask(2, T=2).int().tolist() == [
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 1],
        [0, 0, 1, 1],
    ]
    assert temporal_attention_mask(2, N=2).int().tolist() == [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 0, 1],
    ]


def test_temporal_mask_is_lower_triangular():
    mask = temporal_attention_mask(6)
    assert torch.equal(mask, torch.tril(torch.ones(6, 6, dtype=torch.bool)))


def test_attention_shapes_and_head_check():
    attn = Attention(D, G)
    assert attn(torch.randn(2, T, N, D)).shape == (2, T, N, D)
    assert attn(torch.randn(5, D)).shape == (5, D)  # no batch axis at all also works
    with pytest.raises(ValueError, match="not divisible by heads"):
        Attention(10, 3)


def test_spatial_attention_sees_its_own_frame_only():
    torch.manual_seed(0)
    block = SpatioTemporalBlock(D, G)
    x = torch.randn(T, N, D, dtype=torch.float64)
    block = block.double()
    # Spatial sub-layer as the block applies it: attention over N, frames are batch.
    spatial = lambda x: block.spatial_attn(block.spatial_norm(x))
    assert torch.equal(dependency(spatial, x), spatial_attention_mask(N, T))


@pytest.mark.parametrize("causal", [True, False])
def test_temporal_attention_sees_same_position_past_only(causal):
    torch.manual_seed(0)
    block = SpatioTemporalBlock(D, G, causal_time=causal).double()
    x = torch.randn(T, N, D, dtype=torch.float64)

    def temporal(x):  # (T, N, D), as in the block: positions become the batch axis
        y = block.temporal_attn(block.temporal_norm(rearrange(x, "t n d -> n t d")))
        return rearrange(y, "n t d -> t n d")

    assert torch.equal(dependency(temporal, x), temporal_attention_mask(T, N, causal=causal))


def test_block_receptive_field_is_composition_of_masks():
    # Spatial then temporal: token (t, n) reaches every token of every frame t' <= t.
    torch.manual_seed(0)
    block = SpatioTemporalBlock(D, G).double()
    x = torch.randn(T, N, D, dtype=torch.float64)
    reach = (temporal_attention_mask(T, N).int() @ spatial_attention_mask(N, T).int()) > 0
    frame = torch.arange(T).repeat_interleave(N)
    assert torch.equal(reach, frame[None, :] <= frame[:, None])  # sanity: the expected shape
    assert torch.equal(dependency(lambda x: block(x[None])[0], x), reach)


def test_transformer_is_causal_in_time():
    torch.manual_seed(0)
    model = SpatioTemporalTransformer(D, depth=2, heads=G).eval()
    x = torch.randn(2, 4, N, D)
    x_changed = x.clone()
    x_changed[:, 2] += 1.0  # change frame 2 only
    y, y_changed = model(x), model(x_changed)
    assert torch.equal(y[:, :2], y_changed[:, :2])  # frames 0, 1 untouched
    assert not torch.allclose(y[:, 2:], y_changed[:, 2:])  # frames 2, 3 do change


def test_non_causal_transformer_sees_the_future():
    torch.manual_seed(0)
    model = SpatioTemporalTransformer(D, depth=1, heads=G, causal_time=False).eval()
    x = torch.randn(1, 3, N, D)
    x_changed = x.clone()
    x_changed[:, 2] += 1.0
    assert not torch.allclose(model(x)[:, 0], model(x_changed)[:, 0])


def test_swiglu_matches_formula():
    torch.manual_seed(0)
    mlp = SwiGLU(D, 12)
    x = torch.randn(5, D)
    expected = (
        torch.nn.functional.silu(x @ mlp.w1.weight.T) * (x @ mlp.w3.weight.T)
    ) @ mlp.w2.weight.T
    assert torch.allclose(mlp(x), expected, atol=1e-6)


class _Cache:
    """The smallest cache Attention accepts: `length` and `update(k, v)`."""

    def __init__(self):
        self.k = self.v = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


def test_causal_attention_equals_its_mask_and_its_cached_chunks():
    torch.manual_seed(0)
    attn = Attention(16, 4, causal=True)
    x = torch.randn(2, 7, 16)
    full = attn(x)
    plain = Attention(16, 4)
    plain.load_state_dict(attn.state_dict())
    from video_tokenizer.transformer import causal_mask

    torch.testing.assert_close(plain(x, mask=causal_mask(7)), full)
    cache = _Cache()  # 3 elements at once, then one at a time, then 2: the GPT's pattern
    chunks = [attn(x[:, :3], cache=cache)]
    chunks += [attn(x[:, i : i + 1], cache=cache) for i in (3, 4)]
    chunks.append(attn(x[:, 5:], cache=cache))
    torch.testing.assert_close(torch.cat(chunks, dim=1), full)


def test_a_mask_restricts_what_attention_sees():
    torch.manual_seed(0)
    attn = Attention(8, 2)
    x = torch.randn(1, 4, 8)
    only_self = torch.eye(4, dtype=torch.bool)  # each element sees itself: no mixing
    alone = torch.cat([attn(x[:, i : i + 1]) for i in range(4)], dim=1)
    torch.testing.assert_close(attn(x, mask=only_self), alone)
