"""The spatio-temporal transformer of Genie's tokenizer (ST-ViViT).

A clip of T frames with N tokens each is T*N tokens. Full attention over all of them costs
(T*N)^2; Genie's ST-transformer factorises it into two cheaper attentions per block:

    spatial  attention: each token looks at the N tokens of its own frame      -> T * N^2
    temporal attention: each token looks at the T tokens at its own position  -> N * T^2

Stacking blocks lets information travel anywhere (space, then time, then space, ...), and a
causal mask on the temporal attention makes frame t depend only on frames <= t, which is what
lets a dynamics model (chapter 2) predict the future from tokens of the past.

Shapes: B batch, T frames, N tokens per frame, D width, G heads, F = D / G per-head width.
"""

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention over the last-but-one axis of x (..., L, D).

    Every leading axis is a batch axis: called on (B, T, N, D) it mixes the N tokens of each
    frame; called on (B, N, T, D) it mixes the T frames of each token position. With
    `causal=True` position l attends only to positions <= l.

    The one attention of the repository: the ST transformer calls it plain, chapter 2's GPT
    with a KV cache, and later blocks (Swin windows, DiT) with a mask.
      mask:  bool, broadcastable to (..., G, L, S) over the S keys; True = may attend.
      cache: the keys and values of the `cache.length` elements before x, for one layer;
             `cache.update(k, v)` appends x's and returns all S = length + L of them
             (chapter 2's `KVCache.layer(i)`). x is then the L newest elements.
    """

    def __init__(self, dim: int, heads: int, causal: bool = False):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.causal = causal
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)  # q, k, v in one matmul
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, cache=None
    ) -> torch.Tensor:
        """x: (..., L, D) -> (..., L, D)."""
        x, packed_shape = pack([x], "* l d")  # (B', L, D): fold all leading axes into one
        L = x.shape[1]
        qkv = self.to_qkv(x)  # (B', L, 3*D)
        # Split into q, k, v and into G heads of width F = D / G; each is (B', G, L, F).
        q, k, v = rearrange(qkv, "b l (qkv g f) -> qkv b g l f", qkv=3, g=self.heads)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(k, v)  # (B', G, S, F), S = past + L
        is_causal = False
        if self.causal:
            if past == 0 and mask is None:
                is_causal = True  # the plain lower triangle
            elif L > 1 or mask is not None:  # query l sits at position past + l
                not_future = causal_mask(L, past, x.device)  # (L, S)
                mask = not_future if mask is None else mask & not_future
            # else: one new element after the cached ones may see them all, no mask needed
        # softmax(q k^T / sqrt(F) + [0 where allowed, -inf elsewhere]) v, per head
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        out = self.to_out(rearrange(out, "b g l f -> b l (g f)"))  # (B', L, D)
        [out] = unpack(out, packed_shape, "* l d")  # (..., L, D)
        return out


def causal_mask(L: int, past: int = 0, device=None) -> torch.Tensor:
    """(L, past + L) bool: query l (at position past + l) may see keys at positions <= its own."""
    query_position = torch.arange(past, past + L, device=device)[:, None]  # (L, 1)
    key_position = torch.arange(past + L, device=device)[None, :]  # (1, S)
    return key_position <= query_position


class SwiGLU(nn.Module):
    """Gated MLP of PaLM/LLaMA: W2( silu(W1 x) * W3 x ), (..., D) -> (..., D).

    The gate silu(W1 x) decides, per hidden unit, how much of the value W3 x passes; this
    trains better than a plain GELU MLP at the same parameter count (Shazeer 2020).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)  # gate
        self.w3 = nn.Linear(dim, hidden, bias=False)  # value
        self.w2 = nn.Linear(hidden, dim, bias=False)  # back to the residual width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # (..., D)


class SpatioTemporalBlock(nn.Module):
    """One ST-transformer block on (B, T, N, D), pre-norm residual:

    x = x + SpatialAttn(norm(x))    within a frame, over its N tokens
    x = x + TemporalAttn(norm(x))   per token position, over T (causal: t sees <= t)
    x = x + SwiGLU(norm(x))
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, causal_time: bool = True):
        super().__init__()
        self.spatial_norm = nn.RMSNorm(dim)
        self.spatial_attn = Attention(dim, heads)
        self.temporal_norm = nn.RMSNorm(dim)
        self.temporal_attn = Attention(dim, heads, causal=causal_time)
        self.mlp_norm = nn.RMSNorm(dim)
        # A gated MLP has three matrices instead of two, so its hidden width is 2/3 of
        # mlp_ratio * dim to keep the parameter count of a plain mlp_ratio MLP (LLaMA's rule).
        self.mlp = SwiGLU(dim, int(2 * mlp_ratio * dim / 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, N, D) -> (B, T, N, D)."""
        x = x + self.spatial_attn(self.spatial_norm(x))  # (B, T, N, D): attends over N
        x = rearrange(x, "b t n d -> b n t d")  # (B, N, T, D): time is now the sequence axis
        x = x + self.temporal_attn(self.temporal_norm(x))  # (B, N, T, D): attends over T
        x = rearrange(x, "b n t d -> b t n d")  # (B, T, N, D)
        x = x + self.mlp(self.mlp_norm(x))  # (B, T, N, D): per token, no mixing
        return x


class SpatioTemporalTransformer(nn.Module):
    """`depth` SpatioTemporalBlocks and a final norm: (B, T, N, D) -> (B, T, N, D)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        causal_time: bool = True,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(dim, heads, mlp_ratio, causal_time) for _ in range(depth)
        )
        self.norm = nn.RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, N, D) -> (B, T, N, D)."""
        for block in self.blocks:
            x = block(x)  # (B, T, N, D)
        return self.norm(x)  # (B, T, N, D)


def spatial_attention_mask(N: int, T: int = 1) -> torch.Tensor:
    """Which token may attend to which in the spatial attention, as a bool matrix.

    Returns (T*N, T*N) over the clip's tokens flattened frame by frame (index t*N + n):
    entry [i, j] is True when token i attends to token j, i.e. both lie in the same frame.
    With the default T=1 this is the (N, N) all-True matrix of one frame; with T > 1 it is
    block diagonal, one N x N block per frame.
    """
    frame_of_token = torch.arange(T).repeat_interleave(N)  # (T*N,) frame index t of each token
    return frame_of_token[:, None] == frame_of_token[None, :]  # (T*N, T*N) bool


def temporal_attention_mask(T: int, N: int = 1, causal: bool = True) -> torch.Tensor:
    """Which token may attend to which in the temporal attention, as a bool matrix.

    Returns (T*N, T*N) over tokens flattened frame by frame (index t*N + n): entry [i, j] is
    True when tokens i and j share a position n and, if causal, frame(j) <= frame(i). With the
    default N=1 this is the (T, T) lower-triangular matrix.
    """
    frame_of_token = torch.arange(T).repeat_interleave(N)  # (T*N,)
    position_of_token = torch.arange(N).repeat(T)  # (T*N,) position n within the frame
    same_position = position_of_token[:, None] == position_of_token[None, :]  # (T*N, T*N)
    if not causal:
        return same_position
    not_future = frame_of_token[None, :] <= frame_of_token[:, None]  # key frame <= query frame
    return same_position & not_future  # (T*N, T*N) bool
