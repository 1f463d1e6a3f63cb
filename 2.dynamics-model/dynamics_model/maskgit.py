"""MaskGIT dynamics: predict the next frame's tokens all at once, then refine (Genie).

An autoregressive model (ar.py) spends N sequential network calls on a frame of N tokens.
MaskGIT (Chang et al. 2022), which Genie and CoPilot4D use as their dynamics model, trains a
bidirectional model to fill in masked tokens, and samples a frame in S << N steps:

    training:  hide a random fraction r of the frame's tokens behind [MASK] and predict them
               from the visible ones and the past frames (cross-entropy on masked tokens).
    sampling:  start from an all-[MASK] frame; at each step predict every masked token,
               keep the most confident predictions, re-mask the rest, repeat.

The mask ratio follows the cosine schedule r = cos(pi/2 * u): in training u ~ U(0, 1), so
heavily masked frames (r near 1, like the first sampling steps) are common; in sampling, after
step i of S, a fraction cos(pi/2 * (i+1)/S) of tokens is still masked, so the first steps fix
few tokens (when the model knows least) and the last steps many.

Architecture (Genie): token embedding + spatio-temporal position + action embedding ->
SpatioTemporalTransformer(causal_time=True) -> logits over the K codes. Within a frame,
attention is bidirectional (masked tokens see every visible token of their frame); across
frames it is causal, so frame t sees only frames <= t, and every frame of a clip can be
trained at once, in parallel, in one forward pass.

Action convention. actions[:, t] is the action taken at frame t, the one that leads from
frame t to frame t+1 (the convention of the datasets). Frame t+1's tokens get the embedding
of actions[:, t] added; frame 0 has no action leading to it and gets a learned "no action"
embedding (row A of the table). The last action of a clip, actions[:, T-1], leads out of the
clip: training ignores it; sampling uses it to generate frame T.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.transformer import SpatioTemporalTransformer

from dynamics_model.maskgit_decode import mask_schedule, maskgit_decode
from dynamics_model.sampling import SampleConfig, sample_from_logits
from worldmodels.config import at_least, derived, require


@dataclass
class MaskGITConfig:
    """Size of the MaskGIT dynamics model (defaults: a mid-size Atari model)."""

    vocab_size: int = derived(1000, "the tokenizer")  # K codes; id K is [MASK]
    num_actions: int = derived(18, "the data")  # A: ALE's full action set (or latent actions)
    token_grid: tuple[int, int] = derived((8, 8), "the tokenizer")  # (h, w): 64x64, patch 8
    max_frames: int = derived(16, "data.clip_len")  # longest clip (context + predicted frame)
    dim: int = 256  # D
    depth: int = 8  # spatio-temporal blocks
    heads: int = 8  # G
    mlp_ratio: float = 4.0
    # Training masks: "cosine" (MaskGIT: exactly round(cos(pi/2 u) N) tokens, u ~ U(0, 1)) or
    # "genie" (Genie: each token masked i.i.d. with a rate drawn from U(0.5, 1)).
    masking: str = "cosine"

    def __post_init__(self):  # bad sizes stop at start-up with the key and the value
        require(self, "masking", self.masking in MASKINGS, f"one of {MASKINGS}")
        self.token_grid = tuple(self.token_grid)
        at_least(self, 1, "vocab_size", "num_actions", "max_frames", "dim", "depth", "heads")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "token_grid", min(self.token_grid) >= 1, "sizes >= 1")


MASKINGS = ("cosine", "genie")


def num_masked(ratio: torch.Tensor, N: int) -> torch.Tensor:
    """How many of N tokens a ratio masks: max(1, round(r * N)), int64 of ratio's shape."""
    return torch.round(ratio * N).long().clamp(1, N)


def random_mask(
    ratio: torch.Tensor, N: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mask exactly num_masked(r, N) tokens per frame, chosen uniformly: (...) -> (..., N) bool.

    A uniformly random permutation of the N positions is the argsort of N i.i.d. uniform
    scores; the first `num_masked` positions of it are masked, i.e. positions whose rank
    in the scores is < num_masked.
    """
    scores = torch.rand(*ratio.shape, N, generator=generator, device=ratio.device)  # (..., N)
    rank = scores.argsort(dim=-1).argsort(dim=-1)  # (..., N): rank of each position
    return rank < num_masked(ratio, N)[..., None]  # (..., N) bool


def bernoulli_mask(
    shape: tuple[int, ...], N: int, generator: torch.Generator | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Genie's training mask: per frame a rate r ~ U(0.5, 1), then each of its N tokens is
    masked with probability r, independently. Returns (mask (*shape, N) bool, r (*shape,))."""
    rate = 0.5 + 0.5 * torch.rand(*shape, generator=generator, device=device)  # (...,)
    draws = torch.rand(*shape, N, generator=generator, device=device)  # (..., N)
    return draws < rate[..., None], rate


@dataclass
class DecodeTrace:
    """How `generate_next` filled a frame, for the notebook's pictures.

    fixed_at_step: (B, h, w) int64, the step (0..S-1) at which each token was fixed.
    frames: (B, S, h, w) int64, the frame after each step; still-masked tokens hold K.
    """

    fixed_at_step: torch.Tensor
    frames: torch.Tensor


class MaskGITDynamics(nn.Module):
    """Action-conditioned masked-token model over (B, T, h, w) token clips."""

    def __init__(self, config: MaskGITConfig):
        super().__init__()
        self.config = config
        K, A, D = config.vocab_size, config.num_actions, config.dim
        h, w = config.token_grid
        self.num_tokens = h * w  # N
        self.mask_id = K  # the extra row of the token table
        self.no_action = A  # the extra row of the action table, for frame 0
        self.token_emb = nn.Embedding(K + 1, D)
        self.action_emb = nn.Embedding(A + 1, D)
        self.position = SpatioTemporalPosition(config.max_frames, self.num_tokens, D)
        self.transformer = SpatioTemporalTransformer(
            D, config.depth, config.heads, config.mlp_ratio, causal_time=True
        )
        self.head = nn.Linear(D, K)
        for emb in (self.token_emb, self.action_emb):
            nn.init.normal_(emb.weight, std=0.02)  # N(0, 1) would drown the residual stream

    def _check(self, tokens: torch.Tensor, actions: torch.Tensor) -> None:
        h, w = self.config.token_grid
        if tokens.ndim != 4 or tuple(tokens.shape[2:]) != (h, w):
            raise ValueError(f"tokens must be (B, T, {h}, {w}), got {tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() > self.mask_id:
            raise ValueError(f"tokens must lie in [0, {self.mask_id}] ({self.mask_id} = [MASK])")
        B, T = tokens.shape[:2]
        if actions.ndim != 2 or actions.shape[0] != B or actions.shape[1] < T - 1:
            raise ValueError(
                f"actions must be (B, >= T - 1) = ({B}, >= {T - 1}) for tokens "
                f"{tuple(tokens.shape)}, got {tuple(actions.shape)}"
            )
        if actions.numel() and (actions.min() < 0 or actions.max() >= self.config.num_actions):
            raise ValueError(f"actions must lie in [0, {self.config.num_actions})")

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, h, w) int64 in [0, K] (K = [MASK]), actions (B, >= T-1) int64.

        Returns logits (B, T, h, w, K). Frame t's logits depend only on frames <= t and on
        the actions leading to them, actions[:, :t].
        """
        self._check(tokens, actions)
        B, T, h, w = tokens.shape
        x = self.token_emb(rearrange(tokens, "b t h w -> b t (h w)"))  # (B, T, N, D)
        x = self.position(x)  # (B, T, N, D): + time[t] + space[n]
        # the action leading to each frame: none for frame 0, actions[:, t-1] for frame t
        no_action = torch.full((B, 1), self.no_action, dtype=torch.long, device=tokens.device)
        leading = torch.cat([no_action, actions[:, : T - 1]], dim=1)  # (B, T)
        x = x + rearrange(self.action_emb(leading), "b t d -> b t 1 d")  # same for all N
        x = self.transformer(x)  # (B, T, N, D)
        logits = self.head(x)  # (B, T, N, K)
        return rearrange(logits, "b t (h w) k -> b t h w k", h=h)

    # ----- training -----------------------------------------------------------------------

    def masking_loss(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        last_frame_only: bool = False,
        generator: torch.Generator | None = None,
    ):
        """MaskGIT cross-entropy on masked tokens. tokens (B, T, h, w), actions (B, T).

        For every frame t >= 1: u ~ U(0, 1), r = cos(pi/2 u), mask max(1, round(r N)) of its
        tokens chosen uniformly; frame 0 is never masked (it is pure context). With causal
        time attention all frames train at once, but frame t then sees frames 1..t-1
        partly masked, whereas at sampling time its context is clean. `last_frame_only`
        masks only frame T-1, which matches sampling exactly at 1/(T-1) of the signal.
        Returns (loss, {"ce": nats, "accuracy": on masked tokens, "mask_ratio": mean r}).
        """
        B, T, h, w = tokens.shape
        if T < 2:
            raise ValueError(f"masking_loss needs T >= 2 frames, got tokens {tuple(tokens.shape)}")
        if self.config.masking == "genie":  # r ~ U(0.5, 1), Bernoulli(r) per token
            mask, _ = bernoulli_mask((B, T), self.num_tokens, generator, tokens.device)
        else:  # u ~ U(0, 1), exactly round(cos(pi/2 u) N) tokens
            u = torch.rand(B, T, generator=generator, device=tokens.device)  # (B, T)
            mask = random_mask(mask_schedule(u), self.num_tokens, generator)  # (B, T, N)
        first_target = T - 1 if last_frame_only else 1
        mask[:, :first_target] = False  # context frames stay fully visible
        mask = rearrange(mask, "b t (h w) -> b t h w", h=h)  # (B, T, h, w)
        inputs = torch.where(mask, self.mask_id, tokens)  # (B, T, h, w)
        logits = self(inputs, actions)  # (B, T, h, w, K)
        loss = F.cross_entropy(logits[mask], tokens[mask])  # masked tokens only
        accuracy = (logits[mask].argmax(-1) == tokens[mask]).float().mean()
        ratio = mask[:, first_target:].float().mean()
        return loss, {"ce": loss.detach(), "accuracy": accuracy, "mask_ratio": ratio}  # tensors

    def teacher_forced_logits(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Logits (B, h, w, K) for the LAST frame, fully masked, given the true frames before.

        The one-shot prediction of every token of frame T-1 from frames < T-1 and the actions:
        its cross-entropy is MaskGIT's teacher-forced CE (the first sampling step's view).
        """
        if tokens.ndim != 4 or tokens.shape[1] < 2:
            raise ValueError(f"tokens must be (B, T, h, w), T >= 2, got {tuple(tokens.shape)}")
        masked = tokens.clone()  # (B, T, h, w)
        masked[:, -1] = self.mask_id
        return self(masked, actions)[:, -1]  # (B, h, w, K)

    # 1X's "temporally teacher-forced" scenario: the frame sees none of its own true tokens
    temporally_teacher_forced_logits = teacher_forced_logits

    @torch.no_grad()
    def fully_teacher_forced_logits(
        self, tokens: torch.Tensor, actions: torch.Tensor, batch: int = 512
    ) -> torch.Tensor:
        """Logits (B, h, w, K) for the LAST frame, each token predicted with every OTHER true
        token of the frame visible (leave one out: N passes). The MaskGIT counterpart of the
        AR model's fully teacher-forced CE, where token n sees the true tokens < n: both see
        the frame's own true tokens, which 1X's ranking metric (`teacher_forced_logits` here:
        the frame fully masked) never gives a model."""
        B, T, h, w = tokens.shape
        out = []
        for n in range(self.num_tokens):
            masked = rearrange(tokens.clone(), "b t h w -> b t (h w)")  # (B, T, N)
            masked[:, -1, n] = self.mask_id  # hide token n of the last frame only
            masked = rearrange(masked, "b t (h w) -> b t h w", h=h)
            logits = [
                self(m, a)[:, -1].flatten(1, 2)[:, n]  # (b, K)
                for m, a in zip(masked.split(batch), actions.split(batch))
            ]
            out.append(torch.cat(logits))  # (B, K)
        return rearrange(torch.stack(out, 1), "b (h w) k -> b h w k", h=h)  # (B, h, w, K)

    # ----- sampling -----------------------------------------------------------------------

    @torch.no_grad()
    def generate_next(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        steps: int = 8,
        temperature: float = 1.0,
        top_p: float = 1.0,
        confidence_noise: float = 0.0,
        generator: torch.Generator | None = None,
        return_trace: bool = False,
    ):
        """Sample the next frame by confidence-based iterative unmasking (`maskgit_decode`).

        context (B, T, h, w) int64; actions (B, T) with actions[:, -1] the action that
        leads to the new frame. The network, given the context, the action and the frame so
        far (unfixed tokens = [MASK]), is the decoder's logits function; S steps, tokens drawn
        with temperature (0 = argmax) and top-p, ranked by confidence plus annealed Gumbel
        noise (`confidence_noise`, MaskGIT's "choice temperature", 4.5 in the paper; 0 =
        none). Returns (B, h, w) int64, and a DecodeTrace too with `return_trace`.
        """
        B, T, h, w = context.shape

        def logits_fn(partial: torch.Tensor) -> torch.Tensor:  # (B, N) -> (B, N, K)
            clip = torch.cat([context, rearrange(partial, "b (h w) -> b 1 h w", h=h)], dim=1)
            return rearrange(self(clip, actions)[:, -1], "b h w k -> b (h w) k")

        decoded = maskgit_decode(
            logits_fn, B, self.num_tokens, self.mask_id, steps,
            sampler=lambda logits: sample_from_logits(logits, temperature, top_p, generator),
            confidence_noise=confidence_noise, generator=generator, device=context.device,
        )  # fmt: skip
        next_frame = rearrange(decoded.ids, "b (h w) -> b h w", h=h)  # (B, h, w)
        if not return_trace:
            return next_frame
        trace = DecodeTrace(
            fixed_at_step=rearrange(decoded.fixed_at_step, "b (h w) -> b h w", h=h),
            frames=rearrange(decoded.partial, "b s (h w) -> b s h w", h=h),
        )
        return next_frame, trace

    # ----- the rollout protocol (dynamics_model.rollout) -----------------------------------
    # Twins: ar.py and rollout.py (the NextFramePredictor protocol, one signature on purpose).

    @property
    def context_window(self) -> int:
        """Context frames read at once: the clip length trained on, minus the new frame."""
        return self.config.max_frames - 1

    def predict_next_frame(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        sample: SampleConfig,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The next frame (B, h, w) after context (B, T, h, w), actions (B, T), by `sample`."""
        return self.generate_next(
            context, actions, sample.maskgit_steps, sample.temperature, sample.top_p,
            sample.confidence_noise, generator,
        )  # fmt: skip
