"""The autoregressive baseline: a GPT that reads a clip as one long sentence of tokens.

Cosmos' autoregressive world models and the 1X world-model challenge predict video the way
a language model predicts text: flatten every frame's h x w token grid in raster order,
put the frames one after another, and train p(next token | every token before it).

Sequence layout (N = h * w tokens per frame; `use_actions=True`):

    f0[0] f0[1] ... f0[N-1] a0  f1[0] ... f1[N-1] a1  ...  f_{T-1}[0] ... f_{T-1}[N-1] a_{T-1}

- f_t[n] is the code of token n of frame t, an id in [0, K).
- a_t is the action taken at frame t (the one that leads to frame t+1), written as the id
  K + a_t: actions have their own rows K..K+A-1 of the embedding table, so an action can
  never be mistaken for a code. The model never predicts actions (they are given); the
  output head has K logits, and the output at a_t's position predicts f_{t+1}[0].
- With `use_actions=False` (the 1X compression-challenge mode: a 1 + t*k frame clip
  tokenised with temporal compression, no actions) the a_t are simply left out.

Each element has a learned position made of two parts, time_emb[t] + slot_emb[j], where t
is its frame and j its slot inside the frame (j < N a token, j = N the action). This costs
(T + N + 1) * D parameters instead of T * (N + 1) * D and tells the model directly which
tokens sit at the same place in successive frames.

Sampling generates the N tokens of the next frame one at a time, each attending to all
before it. A key-value cache keeps the keys and values of past elements so that each new
token costs one row of attention instead of recomputing the whole sequence:
`generate_next` uses it, `generate_next_no_cache` recomputes everything (same tokens for
the same random state; the tests check it).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.transformer import Attention, SwiGLU

from dynamics_model.kv_cache import KVCache, LayerCache
from dynamics_model.sampling import SampleConfig, sample_from_logits
from worldmodels.config import at_least, derived, require


@dataclass
class ARConfig:
    """Size of the autoregressive dynamics model (defaults: a mid-size Atari model)."""

    vocab_size: int = derived(1000, "the tokenizer")  # K codes (FSQ levels (8, 5, 5, 5))
    num_actions: int = derived(18, "the data")  # A: ALE's full action set
    token_grid: tuple[int, int] = derived((8, 8), "the tokenizer")  # (h, w): 64x64, patch 8
    max_frames: int = derived(16, "data.clip_len")  # longest clip (context + next frame)
    dim: int = 256  # D
    depth: int = 8  # transformer blocks
    heads: int = 8  # G
    mlp_ratio: float = 4.0
    use_actions: bool = derived(True, "the tokenizer")  # False: compressed tokens, no actions

    def __post_init__(self):  # bad sizes stop at start-up with the key and the value
        self.token_grid = tuple(self.token_grid)
        at_least(self, 1, "vocab_size", "num_actions", "max_frames", "dim", "depth", "heads")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "token_grid", min(self.token_grid) >= 1, "sizes >= 1")


class ARBlock(nn.Module):
    """Pre-norm GPT block: x += Attn(norm(x)); x += SwiGLU(norm(x)). The attention is chapter
    1's, causal: element l sees elements <= l (and, with a cache, every cached one)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = Attention(dim, heads, causal=True)
        self.mlp_norm = nn.RMSNorm(dim)
        self.mlp = SwiGLU(dim, int(2 * mlp_ratio * dim / 3))  # 2/3 width: 3 matrices, not 2

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None):
        x = x + self.attn(self.attn_norm(x), cache=cache)  # (B, L, D)
        return x + self.mlp(self.mlp_norm(x))  # (B, L, D)


class ARDynamics(nn.Module):
    """GPT over [frame tokens, action] chunks; see the module docstring for the layout."""

    def __init__(self, config: ARConfig):
        super().__init__()
        self.config = config
        K, D = config.vocab_size, config.dim
        h, w = config.token_grid
        self.num_tokens = h * w  # N
        # elements per frame: N tokens (+ 1 action)
        self.chunk = self.num_tokens + int(config.use_actions)
        self.max_len = config.max_frames * self.chunk
        vocab = K + config.num_actions if config.use_actions else K  # codes, then actions
        self.token_emb = nn.Embedding(vocab, D)
        self.time_emb = nn.Embedding(config.max_frames, D)
        self.slot_emb = nn.Embedding(self.chunk, D)
        self.blocks = nn.ModuleList(
            ARBlock(D, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.RMSNorm(D)
        self.head = nn.Linear(D, K, bias=False)
        for emb in (self.token_emb, self.time_emb, self.slot_emb):
            nn.init.normal_(emb.weight, std=0.02)  # N(0, 1) would drown the residual stream

    # ----- layout -------------------------------------------------------------------------

    def _check_clip(self, tokens: torch.Tensor, actions: torch.Tensor | None) -> None:
        h, w = self.config.token_grid
        if tokens.ndim != 4 or tuple(tokens.shape[2:]) != (h, w):
            raise ValueError(f"tokens must be (B, T, {h}, {w}), got {tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= self.config.vocab_size:  # else read as actions
            raise ValueError(f"tokens must lie in [0, {self.config.vocab_size})")
        if not self.config.use_actions:
            if actions is not None:
                raise ValueError("this model has use_actions=False; pass actions=None")
            return
        if actions is None or actions.shape != tokens.shape[:2]:
            got = None if actions is None else tuple(actions.shape)
            raise ValueError(f"actions must be (B, T) = {tuple(tokens.shape[:2])}, got {got}")
        if actions.min() < 0 or actions.max() >= self.config.num_actions:
            raise ValueError(f"actions must lie in [0, {self.config.num_actions})")

    def flatten_clip(self, tokens: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
        """tokens (B, T, h, w) + actions (B, T) -> ids (B, T * chunk), the layout above.

        The last element is a_{T-1}, the action that leads to the frame after the clip.
        """
        self._check_clip(tokens, actions)
        frame_ids = rearrange(tokens, "b t h w -> b t (h w)")  # (B, T, N)
        if self.config.use_actions:
            action_ids = rearrange(actions + self.config.vocab_size, "b t -> b t 1")  # (B, T, 1)
            frame_ids = torch.cat([frame_ids, action_ids], dim=2)  # (B, T, N + 1)
        return rearrange(frame_ids, "b t slot -> b (t slot)")  # (B, T * chunk)

    # ----- the network --------------------------------------------------------------------

    def new_cache(self, batch: int) -> KVCache:
        param = self.head.weight
        head_dim = self.config.dim // self.config.heads
        return KVCache(
            self.config.depth, batch, self.config.heads, self.max_len, head_dim,
            device=param.device, dtype=param.dtype,
        )  # fmt: skip

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """ids (B, L) -> logits (B, L, K); the logits at l predict element l + 1.

        Without a cache, ids is a sequence from its start. With one, ids are the L elements
        that follow the cache.length already cached, and the cache is extended by them.
        """
        B, L = ids.shape
        start = 0 if cache is None else cache.length
        if start + L > self.max_len:
            raise ValueError(
                f"sequence of {start + L} elements exceeds max_frames * chunk = {self.max_len}"
            )
        position = torch.arange(start, start + L, device=ids.device)  # (L,)
        # element l sits in frame l // chunk, slot l % chunk
        pos_emb = self.time_emb(position // self.chunk) + self.slot_emb(position % self.chunk)
        x = self.token_emb(ids) + pos_emb  # (B, L, D)
        for layer, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache.layer(layer))  # (B, L, D)
        if cache is not None:
            cache.advance(L)
        return self.head(self.norm(x))  # (B, L, K)

    # ----- training -----------------------------------------------------------------------

    def next_token_loss(self, tokens: torch.Tensor, actions: torch.Tensor | None = None):
        """Teacher-forced next-token cross-entropy over every frame token of the clip.

        tokens (B, T, h, w) int64, actions (B, T) int64 (a_{T-1} is unused) or None.
        Every code except f0[0] (which has nothing before it) is a target; actions are
        inputs only. Returns (loss, {"ce": nats, "accuracy": argmax accuracy}).
        """
        ids = self.flatten_clip(tokens, actions)  # (B, T * chunk)
        if self.config.use_actions:
            ids = ids[:, :-1]  # a_{T-1} leads out of the clip: nothing to predict from it
        logits = self(ids[:, :-1])  # (B, L - 1, K): position l predicts element l + 1
        targets = ids[:, 1:]  # (B, L - 1)
        is_code = targets < self.config.vocab_size  # (B, L - 1): actions are not targets
        loss = F.cross_entropy(logits[is_code], targets[is_code])
        accuracy = (logits[is_code].argmax(-1) == targets[is_code]).float().mean()
        return loss, {"ce": loss.detach(), "accuracy": accuracy}  # tensors: no sync per step

    def teacher_forced_logits(
        self, tokens: torch.Tensor, actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for every token of the LAST frame given all true tokens before it.

        tokens (B, T, h, w), T >= 2; actions (B, T) or None. Returns (B, h, w, K): the
        distribution of f_{T-1}[n] given frames < T-1, their actions and f_{T-1}[< n].
        """
        if tokens.ndim != 4 or tokens.shape[1] < 2:
            raise ValueError(f"tokens must be (B, T, h, w) with T >= 2, got {tuple(tokens.shape)}")
        ids = self.flatten_clip(tokens, actions)  # (B, T * chunk)
        if self.config.use_actions:
            ids = ids[:, :-1]  # (B, L): ends with the last frame's last token
        N = self.num_tokens
        logits = self(ids[:, :-1])[:, -N:]  # (B, N, K): the outputs that predict ids[:, -N:]
        return rearrange(logits, "b (h w) k -> b h w k", h=self.config.token_grid[0])

    # 1X's "fully teacher-forced" scenario: token n sees the true tokens < n
    fully_teacher_forced_logits = teacher_forced_logits

    # ----- sampling -----------------------------------------------------------------------

    def _prompt(self, context: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
        """The sequence that precedes the next frame's first token: (B, T * chunk)."""
        T = context.shape[1]
        if T + 1 > self.config.max_frames:
            raise ValueError(
                f"{T} context frames + 1 predicted exceed max_frames={self.config.max_frames}"
            )
        return self.flatten_clip(context, actions)  # ends with a_{T-1} (or f_{T-1}[N-1])

    def _to_frame(self, new_ids: list[torch.Tensor]) -> torch.Tensor:
        frame = torch.stack(new_ids, dim=1)  # (B, N)
        return rearrange(frame, "b (h w) -> b h w", h=self.config.token_grid[0])  # (B, h, w)

    @torch.no_grad()
    def generate_next(
        self,
        context: torch.Tensor,
        actions: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample the next frame token by token with a KV cache.

        context (B, T, h, w) int64; actions (B, T) with actions[:, -1] the action that leads
        to the new frame (None if use_actions=False). Returns (B, h, w) int64.
        Cost: one pass over the prompt, then N single-element passes.
        """
        new_ids, _ = self._decode_cached(
            self._prompt(context, actions),
            lambda logits: sample_from_logits(logits, temperature, top_p, generator),
        )
        return self._to_frame(new_ids)

    def _decode_cached(self, prompt: torch.Tensor, choose) -> tuple[list, list]:
        """Decode one frame after `prompt` (B, L0) with a KV cache, token n chosen by
        `choose(logits (B, K)) -> (B,)`. Returns the N chosen ids and the N logits, each (B,)
        and (B, K). (Twin: generate_next_no_cache, kept uncached on purpose, compared in
        the tests.)"""
        cache = self.new_cache(prompt.shape[0])
        logits = self(prompt, cache)[:, -1]  # (B, K): distribution of f_T[0]
        new_ids, all_logits = [], []
        for n in range(self.num_tokens):
            all_logits.append(logits)
            new_ids.append(choose(logits))  # (B,)
            if n < self.num_tokens - 1:
                logits = self(new_ids[-1][:, None], cache)[:, -1]  # (B, K): f_T[n + 1]
        return new_ids, all_logits

    @torch.no_grad()
    def temporally_teacher_forced_logits(
        self, tokens: torch.Tensor, actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, h, w, K) for the LAST frame without its own true tokens (1X's ranking
        scenario, "temporally teacher-forced"): the true frames < T-1 and their actions are
        given; token n is conditioned on the model's own greedy (argmax) tokens < n of the
        frame, as when it generates. Compare `teacher_forced_logits`, which gives it the
        true tokens < n (1X's easier "fully teacher-forced" scenario).
        """
        if tokens.ndim != 4 or tokens.shape[1] < 2:
            raise ValueError(f"tokens must be (B, T, h, w) with T >= 2, got {tuple(tokens.shape)}")
        T = tokens.shape[1]
        prompt_actions = None if actions is None else actions[:, : T - 1]
        prompt = self._prompt(tokens[:, :-1], prompt_actions)  # (B, L0)
        _, logits = self._decode_cached(prompt, lambda logits: logits.argmax(-1))
        logits = torch.stack(logits, dim=1)  # (B, N, K)
        return rearrange(logits, "b (h w) k -> b h w k", h=self.config.token_grid[0])

    @torch.no_grad()
    def generate_next_no_cache(
        self,
        context: torch.Tensor,
        actions: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """As `generate_next`, recomputing the whole sequence for every token (slow, simple).

        Twin of `generate_next` (same signature, same draws), kept uncached on purpose: the
        tests and the notebook compare the two token for token and time them."""
        sequence = self._prompt(context, actions)  # (B, L0)
        new_ids = []
        for _ in range(self.num_tokens):
            logits = self(sequence)[:, -1]  # (B, K)
            new_ids.append(sample_from_logits(logits, temperature, top_p, generator))  # (B,)
            sequence = torch.cat([sequence, new_ids[-1][:, None]], dim=1)  # (B, L + 1)
        return self._to_frame(new_ids)

    # ----- the rollout protocol (dynamics_model.rollout) -----------------------------------
    # Twins: maskgit.py and rollout.py (the NextFramePredictor protocol, one signature on purpose).

    @property
    def context_window(self) -> int:
        """Context frames read at once: the positions trained on, minus the new frame."""
        return self.config.max_frames - 1

    def predict_next_frame(
        self,
        context: torch.Tensor,
        actions: torch.Tensor | None,
        sample: SampleConfig,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The next frame (B, h, w) after context (B, T, h, w), actions (B, T) or None."""
        return self.generate_next(context, actions, sample.temperature, sample.top_p, generator)
