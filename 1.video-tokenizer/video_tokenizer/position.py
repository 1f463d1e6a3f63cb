"""Spatio-temporal positional encoding: where (n) and when (t) a token is.

Attention is permutation-invariant, so without a position signal a token could not tell the
top-left patch from the bottom-right one, or frame 0 from frame 3. We add

    pos[t, n] = time[t] + space[n]          time: (T_max, D),  space: (N, D)

a factorised table: T_max + N vectors instead of T_max * N, the same way ViViT factorises.

Learned rather than sinusoidal, for two reasons. (1) The tokenizer always sees the same
h x w grid and at most `max_frames` frames, so there is nothing to extrapolate to, which is
the main strength of a fixed sinusoid. (2) Summing two sinusoidal tables built from the same
frequencies is symmetric: sin/cos(t) + sin/cos(n) gives pos[1, 0] == pos[0, 1], so "frame 1,
patch 0" and "frame 0, patch 1" would look identical unless time and space were given
separate channels. Learned tables have no such tie, and after training the notebook can show
what they learned as a heat map (`table()`).
"""

import torch
from einops import rearrange
from torch import nn


class SpatioTemporalPosition(nn.Module):
    """Adds learned pos[t, n] = time[t] + space[n] to tokens (B, T, N, D), T <= max_frames."""

    def __init__(self, max_frames: int, num_tokens: int, dim: int):
        super().__init__()
        # Small init (std 0.02, as in ViT/GPT-2): positions start as a gentle nudge that
        # training can grow, instead of drowning the patch content at step 0.
        self.time = nn.Parameter(0.02 * torch.randn(max_frames, dim))  # (T_max, D)
        self.space = nn.Parameter(0.02 * torch.randn(num_tokens, dim))  # (N, D)

    def table(self, num_frames: int | None = None) -> torch.Tensor:
        """The full table pos (T, N, D) for the first `num_frames` frames (default: all)."""
        T = self.time.shape[0] if num_frames is None else num_frames
        if T > self.time.shape[0]:
            raise ValueError(
                f"clip has {T} (latent) frames but the positional table holds only "
                f"{self.time.shape[0]}; raise max_frames"
            )
        time = rearrange(self.time[:T], "t d -> t 1 d")  # (T, 1, D)
        space = rearrange(self.space, "n d -> 1 n d")  # (1, N, D)
        return time + space  # (T, N, D): pos[t, n] = time[t] + space[n]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, N, D) -> x + pos[:T], same shape."""
        B, T, N, D = x.shape
        if N != self.space.shape[0]:
            raise ValueError(
                f"got {N} tokens per frame, the positional table has {self.space.shape[0]}"
            )
        return x + self.table(T)  # (B, T, N, D), the table broadcast over the batch
