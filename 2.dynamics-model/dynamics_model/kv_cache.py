"""The key-value cache of an autoregressive transformer: what makes token-by-token sampling
cost one row of attention per token instead of the whole sequence.

Attention of a new element l reads the keys and values of every element <= l. Those of the
elements before it do not change when l arrives (the model is causal), so they are computed
once and kept: a pass over L new elements computes only their own q, k, v and appends k, v
here. Chapter 1's `Attention(cache=...)` reads a layer's view (`KVCache.layer(i)`).

Shapes: B batch, G heads, F per-head width, L new elements of the sequence.
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for the elements seen so far, preallocated.

    keys, values: (depth, B, G, max_len, F). `length` elements are filled; a forward pass
    over L new elements writes slots [length, length + L) in every layer (each layer's
    Attention through `layer(i)`), then `advance(L)`.
    """

    def __init__(
        self,
        depth: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ):
        shape = (depth, batch, heads, max_len, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store the new k, v (B, G, L, F) of `layer`; return all keys, values so far."""
        end = self.length + k.shape[2]
        if end > self.keys.shape[3]:
            raise ValueError(f"KV cache holds {self.keys.shape[3]} elements, asked for {end}")
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]  # (B, G, end, F)

    def layer(self, index: int) -> LayerCache:
        """The view of one layer that chapter 1's `Attention(cache=...)` reads and extends."""
        return LayerCache(self, index)

    def advance(self, num_new: int) -> None:
        self.length += num_new


class LayerCache:
    """One layer of a KVCache: `length` cached elements, `update(k, v)` appends."""

    def __init__(self, cache: KVCache, index: int):
        self.cache, self.index = cache, index

    @property
    def length(self) -> int:
        return self.cache.length

    def update(self, k: torch.Tensor, v: torch.Tensor):
        return self.cache.update(self.index, k, v)
