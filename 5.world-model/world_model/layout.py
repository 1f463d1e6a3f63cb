"""The TENSFormer's sequence: which position holds what, and which position may see which.

A clip of T frames becomes one sequence of T * L positions, L = sum_k s_k^2 per frame, with
scales s_1 = 1 < s_2 < ... < s_n from the multi-scale quantizer (chapter 3). Each frame is
laid out as VAR lays out one image, one block per scale, coarse to fine (row-major inside a
block); block k of frame t predicts frame t's scale-k tokens (no one-position shift):

    frame 0                              frame 1                      ...
    [m_0 | s_2^2 positions | ... | s_n^2] [m_1 | s_2^2 | ... | s_n^2]  ...
     blk 1   blk 2                 blk n   blk 1 ...

Block 1 has s_1^2 = 1 position, the motion slot: it holds the frame's ego-motion token m_t
and its output predicts the frame's single scale-1 token. That is why s_1 must be 1.

Positions are numbered p = t * L + j (t the frame, j the slot inside the frame, 0 <= j < L).
In code blocks are 0-based: block b = k - 1, so block 0 is the motion slot.

Mask (True = may attend), for a query at (frame f, block b) and a key at (frame f', block b'):

    allowed  <=>  f' < f   or   (f' == f  and  b' <= b)

causal across frames, block-causal across the scales of a frame: the positions of one block see
each other (they are predicted in parallel, from inputs that hold only coarser scales), so no
position sees an input that contains the token it predicts. With a KV cache the rule is the
same; keys [0, end) and queries [start, end) (`FrameLayout.mask(start, end)`).

Shapes: T frames, L flattened sequence length of one frame (its positions = tokens, all
scales; a sequence has T * L), n queries and m keys of a mask (counts local to `mask`).
"""

from itertools import accumulate

import torch


def check_scales(scales) -> tuple[int, ...]:
    """The scales as ints, after checking they are increasing and start at 1."""
    scales = tuple(int(s) for s in scales)
    if not scales or any(a >= b for a, b in zip(scales, scales[1:])):
        raise ValueError(f"scales must be increasing sides, got {scales}")
    if scales[0] != 1:
        raise ValueError(
            f"scales must start at 1 (block 1 is the single motion slot that predicts the "
            f"1x1 scale), got {scales}"
        )
    return scales


class FrameLayout:
    """Bookkeeping of the blocks of a frame and of the positions of a clip."""

    def __init__(self, scales):
        self.scales = check_scales(scales)
        self.block_sizes = tuple(s * s for s in self.scales)  # s_k^2 positions per block
        self.tokens_per_frame = sum(self.block_sizes)  # L
        self.block_starts = (0, *accumulate(self.block_sizes))[:-1]  # slot of each block's first
        # block of each slot j of a frame: 0 (motion slot), 1, 1, 1, 1, 2, ...
        self.block_of_slot = torch.repeat_interleave(
            torch.arange(self.num_blocks), torch.tensor(self.block_sizes)
        )  # (L,)

    @property
    def num_blocks(self) -> int:
        """n, the scales (= blocks) of a frame."""
        return len(self.scales)

    def block_slice(self, block: int) -> slice:
        """The slots of 0-based `block` inside a frame (also the ids of that scale in the flat
        (B, L) ids of chapter 3's `join_ids`, laid out the same way)."""
        start = self.block_starts[block]
        return slice(start, start + self.block_sizes[block])

    def frame_of(self, positions: torch.Tensor) -> torch.Tensor:
        """Frame t of each position p = t * L + j."""
        return positions // self.tokens_per_frame

    def slot_of(self, positions: torch.Tensor) -> torch.Tensor:
        """Slot j inside its frame of each position p = t * L + j."""
        return positions % self.tokens_per_frame

    def block_of(self, positions: torch.Tensor) -> torch.Tensor:
        """0-based block (= scale index) of each position."""
        return self.block_of_slot.to(positions.device)[self.slot_of(positions)]

    def position(self, frame: int, block: int) -> int:
        """The position of the first slot of (frame, block)."""
        return frame * self.tokens_per_frame + self.block_starts[block]

    def mask(self, start: int, end: int, device=None) -> torch.Tensor:
        """(end - start, end) bool: may query position start + q attend key position s?"""
        queries = torch.arange(start, end, device=device)  # (n,)
        keys = torch.arange(end, device=device)  # (m,)
        return attention_mask(
            self.frame_of(queries), self.block_of(queries), self.frame_of(keys), self.block_of(keys)
        )


def attention_mask(
    frame_q: torch.Tensor, block_q: torch.Tensor, frame_k: torch.Tensor, block_k: torch.Tensor
) -> torch.Tensor:
    """Queries (n,) at (frame, block), keys (m,) at (frame, block) -> (n, m) bool:
    allowed iff f' < f or (f' == f and b' <= b)."""
    f, b = frame_q[:, None], block_q[:, None]  # (n, 1)
    f_key, b_key = frame_k[None, :], block_k[None, :]  # (1, m)
    return (f_key < f) | ((f_key == f) & (b_key <= b))  # (n, m)
