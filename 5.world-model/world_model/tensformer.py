"""OccTENS's TENSFormer: temporal next-scale prediction of occupancy tokens and ego motion.

One transformer reads a clip frame by frame in time and scale by scale in space (the sequence
and the mask are `layout.py`'s). What position (frame t, block k) holds, before the learned
position-within-frame (L), scale (n) and frame (max_frames) embeddings are added:

    block 1 (1 position, the motion slot):  E_m[m_t]                 + W_prev down(f_hat^{t-1}, 1)
    block k >= 2 (s_k^2 positions):  W_in down(f_hat_{k-1}^t, s_k)  + W_prev down(f_hat^{t-1}, s_k)

- m_t: frame t's ego-motion token (chapter 3's `EgoMotionTokenizer`: the motion from frame
  t-1 to t). m_0 has no previous frame: a learned START embedding, the last row of E_m.
- f_hat_{k-1}^t: frame t's reconstruction through scale k-1 (VAR's teacher-forcing input,
  chapter 3's `teacher_forcing_input`); `down` is area averaging (`quantizer.down`).
- f_hat^{t-1}: frame t-1's full reconstruction f_hat_n (zeros for frame 0).

Departure (OccTENS does not publish its layout): the previous-frame term W_prev. In VAR's
layout the finest scale's tokens are never an input (only f_hat_{n-1} is), so without it frame
t+1 could never see frame t's finest scale. It is added to every block, the motion slot
included (its 1x1 mean there), so that every block follows one rule.

Outputs: the scene head at block k's positions gives logits over the K codes of frame t's
scale-k tokens. The motion head reads the mean of the outputs of frame t's LAST block (it sees
all of frame t that is ever an input) and predicts m_{t+1}; the motion slot of frame t+1
comes later in the sequence, so nothing sees the motion token it predicts.

Shapes: B batch, T frames, L flattened sequence length of one frame (its positions = tokens,
all scales), l = L - 1 the positions after the motion slot, n positions of one pass (a count
local to `hidden`), D model width, E code dims, K codebook size; "vocab" the ego-motion
tokens' vocabulary (`motion_vocab`).
"""

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from video_tokenizer.transformer import Attention, SwiGLU

from world_model.layout import FrameLayout, check_scales
from worldmodels.config import at_least, derived, require


@dataclass
class TENSFormerConfig:
    """Sizes of the TENSFormer. `derived` fields come from the tokenizers (`matching`)."""

    scales: tuple[int, ...] = derived((1, 2, 4, 8, 16), "the scene tokenizer")  # s_1 = 1
    codebook_size: int = derived(512, "the scene tokenizer")  # K
    code_dim: int = derived(64, "the scene tokenizer")  # E
    motion_vocab: int = derived(32 * 16 * 32, "the ego-motion tokenizer")  # vocab
    max_frames: int = 11  # longest clip: OccWorld's 5 past + 6 future frames
    context: int = 5  # past frames: inputs only, never scored
    dim: int = 256  # D
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    motion_weight: float = 0.05  # loss = scene CE + motion_weight * motion CE

    def __post_init__(self):
        self.scales = tuple(self.scales)
        require(self, "scales", _scales_ok(self.scales), "increasing sides starting at 1")
        at_least(self, 1, "codebook_size", "code_dim", "motion_vocab", "dim", "depth", "heads")
        at_least(self, 1, "context")
        at_least(self, self.context + 1, "max_frames", note="context + at least one to predict")
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        require(self, "motion_weight", self.motion_weight >= 0, "a number >= 0")

    @classmethod
    def matching(cls, quantizer, motion_tokenizer, **sizes) -> "TENSFormerConfig":
        """A config whose derived fields are those of the frozen tokenizers (chapter 3's
        `MultiScaleQuantizer` and `EgoMotionTokenizer`)."""
        return cls(
            scales=quantizer.scales, codebook_size=quantizer.codebook_size,
            code_dim=quantizer.dim, motion_vocab=motion_tokenizer.vocab_size, **sizes,
        )  # fmt: skip


def _scales_ok(scales) -> bool:
    try:
        check_scales(scales)
    except ValueError:
        return False
    return True


class TENSBlock(nn.Module):
    """Pre-norm block: x += Attn(norm(x), mask); x += SwiGLU(norm(x)). Chapter 1's attention,
    not causal: the block-causal mask of `layout.py` says who sees whom."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp_norm = nn.RMSNorm(dim)
        self.mlp = SwiGLU(dim, int(2 * mlp_ratio * dim / 3))  # 2/3 width: 3 matrices, not 2

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache=None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), mask=mask, cache=cache)  # (B, n, D)
        return x + self.mlp(self.mlp_norm(x))  # (B, n, D)


class TENSFormer(nn.Module):
    """The network: inputs of each position -> scene logits and motion logits."""

    def __init__(self, config: TENSFormerConfig):
        super().__init__()
        c = self.config = config
        self.layout = FrameLayout(c.scales)
        L, D = self.layout.tokens_per_frame, c.dim
        self.start_motion = c.motion_vocab  # the table's last row: m_0, "no previous frame"
        self.motion_emb = nn.Embedding(c.motion_vocab + 1, D)
        self.scale_in = nn.Linear(c.code_dim, D)  # W_in: f_hat of the same frame, scales < k
        self.prev_in = nn.Linear(c.code_dim, D)  # W_prev: the previous frame's full f_hat
        self.slot_emb = nn.Embedding(L, D)  # position within the frame
        self.scale_emb = nn.Embedding(self.layout.num_blocks, D)
        self.frame_emb = nn.Embedding(c.max_frames, D)
        self.blocks = nn.ModuleList(TENSBlock(D, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.RMSNorm(D)
        self.scene_head = nn.Linear(D, c.codebook_size, bias=False)
        self.motion_head = nn.Linear(D, c.motion_vocab, bias=False)
        for emb in (self.motion_emb, self.slot_emb, self.scale_emb, self.frame_emb):
            nn.init.normal_(emb.weight, std=0.02)  # N(0, 1) would drown the residual stream

    @property
    def max_len(self) -> int:
        return self.config.max_frames * self.layout.tokens_per_frame

    # ----- what each position holds -------------------------------------------------------

    def block_content(self, block: int, first: torch.Tensor, prev_BsE: torch.Tensor):
        """Content (B, s_k^2, D) of one block of one frame. Block 0: `first` = motions (B,)
        (START allowed); block k >= 1: `first` = same-frame input (B, s_k^2, E) of f_hat
        through the coarser scales. prev_BsE: the previous frame's f_hat at size s_k."""
        own = self.motion_emb(first)[:, None] if block == 0 else self.scale_in(first)
        return own + self.prev_in(prev_BsE)  # (B, s_k^2, D)

    def content(self, motions_BT, same_BTlE, prev_BTLE) -> torch.Tensor:
        """Content (B, T * L, D) of a whole clip: motions (B, T) (frame 0: START), same-frame
        inputs (B, T, L - 1, E) of blocks 2..n, previous-frame inputs (B, T, L, E)."""
        own = torch.cat([self.motion_emb(motions_BT)[:, :, None], self.scale_in(same_BTlE)], 2)
        x = own + self.prev_in(prev_BTLE)  # (B, T, L, D)
        return rearrange(x, "b t l d -> b (t l) d")

    # ----- the transformer ----------------------------------------------------------------

    def hidden(self, content_BSD: torch.Tensor, start: int = 0, cache=None) -> torch.Tensor:
        """Content of positions [start, start + n) -> normed outputs (B, n, D).

        Without a cache, start must be 0 (a sequence from its beginning). With one, the n
        positions follow the cache.length cached ones, and the cache is extended by them.
        """
        n = content_BSD.shape[1]
        if start != (0 if cache is None else cache.length):
            raise ValueError(f"start={start} must equal the cached length (0 without a cache)")
        if start + n > self.max_len:
            raise ValueError(
                f"{start + n} positions exceed max_frames * L = {self.max_len} "
                f"(max_frames={self.config.max_frames})"
            )
        positions = torch.arange(start, start + n, device=content_BSD.device)  # (n,)
        lay = self.layout
        x = content_BSD + (
            self.slot_emb(lay.slot_of(positions))
            + self.scale_emb(lay.block_of(positions))
            + self.frame_emb(lay.frame_of(positions))
        )  # (B, n, D)
        mask = lay.mask(start, start + n, device=x.device)  # (n, start + n)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if cache is None else cache.layer(i))  # (B, n, D)
        if cache is not None:
            cache.advance(n)
        return self.norm(x)

    def motion_logits(self, last_block_BsD: torch.Tensor) -> torch.Tensor:
        """Outputs of a frame's last block (..., s_n^2, D) -> logits (..., vocab) of the next
        frame's motion token: the head reads their mean."""
        return self.motion_head(last_block_BsD.mean(dim=-2))

    def forward(self, motions_BT, same_BTlE, prev_BTLE):
        """Teacher-forced pass over a clip -> (scene logits (B, T, L, K), motion logits
        (B, T, vocab)); scene_logits[:, t, j] predicts frame t's token j, motion_logits[:, t]
        predicts m_{t+1}. Inputs as `content`'s (`scale_inputs.teacher_forced_inputs`)."""
        T = motions_BT.shape[1]
        h = self.hidden(self.content(motions_BT, same_BTlE, prev_BTLE))  # (B, T * L, D)
        h = rearrange(h, "b (t l) d -> b t l d", t=T)  # (B, T, L, D)
        last = h[:, :, self.layout.block_slice(self.layout.num_blocks - 1)]  # (B, T, s_n^2, D)
        return self.scene_head(h), self.motion_logits(last)
