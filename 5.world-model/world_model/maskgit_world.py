"""CoPilot4D's world model on occupancy: MaskGIT discrete diffusion over scene tokens.

The network reads a clip of T frames (5 past + 6 future) of chapter 3's single-scale scene
tokens (the AR baseline's, N = h * w a frame), some of them MASK, and gives logits over the K
codes at every position. What token n of frame t holds before the transformer:

    x[t, n] = E_tok[id_t[n]] + time[t] + space[n] + E_m[m_t]       id = K is MASK
    m_t = frame t's ego-motion token (chapter 3's `EgoMotionTokenizer`: the motion from frame
          t-1 to t, as the other two kinds read it); m_0 = START, the last row of E_m

then `depth` of chapter 1's `SpatioTemporalBlock`s (imported): spatial attention among the N
tokens of a frame, temporal attention among the T frames at one position, SwiGLU; and a
linear head, logits[t, n] = W_out x[t, n] over the K codes.

Time is NOT causal by default (`causal_time=False`): the six future frames are drawn together
(`maskgit_forecast.py`), so a future frame sees the tokens already decided in the frames on
both sides of it. CoPilot4D's temporal blocks are causal; `causal_time=True` is that. Its
U-Net of Swin blocks is replaced by chapter 1's plain ST transformer at one resolution.

Training (`maskgit_loss`), CoPilot4D's Algorithm 1 (`discrete_diffusion.training_inputs`):
per clip one objective, drawn with `objective_probs` (0.5, 0.4, 0.1; the paper gives no split):

    FUTURE   the future frames corrupted (masked ceil(gamma(u0) N_c), some of the rest noised),
             the past clean: the forecast the benchmark asks for
    JOINT    every frame corrupted, past and future denoised together
    NO_PAST  the future corrupted, the past fed as all MASK: the unconditional model that
             classifier-free guidance subtracts (the motions stay: "uncond sees the target
             frame's action but no past frames")
    loss = (1 - e) CE + e mean_k(-log p_k), e = 0.1, at every position of the corrupted frames

Metrics: `scene_ce` and `scene_accuracy` are plain cross-entropy and top-1 accuracy on the
MASKED positions of the future frames (given the clean past and the unmasked future tokens,
at a random mask ratio), not the teacher-forced next-frame CE of the other two kinds: the
numbers are not comparable across kinds. `smoothed_ce` is the loss. The evaluation
(`MaskGITEvaluator`) draws the FUTURE objective only, from a generator seeded the same way at
every evaluation (the same masks each time), so its numbers move only with the weights.

Shapes: B batch, T frames, N tokens per frame (h*w), h, w token-grid height and width,
D model width, K codebook size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from occupancy_tokenizer.ego import EgoMotionTokenizer
from torch import nn
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.transformer import SpatioTemporalTransformer

from world_model.discrete_diffusion import (
    ETA,
    LABEL_SMOOTHING,
    OBJECTIVE_PROBS,
    smoothed_cross_entropy,
    training_inputs,
)
from world_model.token_data import CLIP_FRAMES, ClipEvaluator, TokenClips
from world_model.windows import PAST_FRAMES
from worldmodels.config import at_least, derived, require

MASKGIT_EVAL_KEYS = ("scene_ce", "scene_accuracy", "smoothed_ce")
FUTURE_ONLY = (1.0, 0.0, 0.0)  # the evaluation's objective mix: the forecast only


@dataclass
class MaskGITWorldConfig:
    """Sizes of the MaskGIT world model; `derived` fields come from the frozen tokenizers
    (`maskgit_config_matching`)."""

    codebook_size: int = derived(512, "the single-scale scene tokenizer")  # K; id K is MASK
    token_grid: tuple[int, int] = derived((32, 32), "the single-scale scene tokenizer")  # (h, w)
    motion_vocab: int = derived(32 * 16 * 32, "the ego-motion tokenizer")  # + 1 row: START
    max_frames: int = derived(CLIP_FRAMES, "the clip length (5 past + 6 future)")
    context: int = PAST_FRAMES  # past frames: clean under FUTURE, all MASK under NO_PAST
    dim: int = 256  # D
    depth: int = 8  # spatio-temporal blocks
    heads: int = 8
    mlp_ratio: float = 4.0
    causal_time: bool = False  # True: CoPilot4D's causal temporal attention
    objective_probs: tuple[float, float, float] = OBJECTIVE_PROBS  # future, joint, no past
    eta: float = ETA  # the largest share of the unmasked corrupted tokens that is noised
    label_smoothing: float = LABEL_SMOOTHING

    def __post_init__(self):
        self.token_grid = tuple(self.token_grid)
        self.objective_probs = tuple(float(p) for p in self.objective_probs)
        at_least(self, 1, "codebook_size", "motion_vocab", "dim", "depth", "heads", "context")
        at_least(self, self.context + 1, "max_frames", note="context + at least one to predict")
        require(self, "token_grid", len(self.token_grid) == 2 and min(self.token_grid) >= 1,
                "two sizes >= 1 (h, w)")  # fmt: skip
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        probs = self.objective_probs
        require(self, "objective_probs", len(probs) == 3 and min(probs) >= 0 and sum(probs) > 0,
                "three weights >= 0, not all 0 (future, joint, no past)")  # fmt: skip
        require(self, "eta", 0 <= self.eta <= 1, "a share in [0, 1]")
        require(self, "label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)")


def maskgit_config_matching(tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
                            **sizes) -> MaskGITWorldConfig:  # fmt: skip
    """The config whose derived fields are those of the frozen single-scale scene tokenizer
    (codes, token grid) and the motion tokenizer (vocabulary); one clip long."""
    return MaskGITWorldConfig(
        codebook_size=tokenizer.codebook_size, token_grid=tuple(tokenizer.config.latent_grid),
        motion_vocab=motion_tokenizer.vocab_size, max_frames=CLIP_FRAMES, **sizes,
    )  # fmt: skip


def frame_motions(motions_Bt: torch.Tensor, start: int) -> torch.Tensor:
    """m_1 .. m_{T-1} (B, T - 1) -> the motion into each frame (B, T): START, m_1, .., m_{T-1}."""
    return F.pad(motions_Bt, (1, 0), value=start)


def hide_past(ids_BTN: torch.Tensor, past: int, mask_id: int) -> torch.Tensor:
    """The unconditional branch's input: the first `past` frames all MASK (NO_PAST's input)."""
    hidden = ids_BTN.clone()
    hidden[:, :past] = mask_id
    return hidden


class MaskGITWorld(nn.Module):
    """(ids (B, T, N) in [0, K], K = MASK; motions (B, T - 1) = m_1 .. m_{T-1}) -> logits
    (B, T, N, K) at every position."""

    def __init__(self, config: MaskGITWorldConfig):
        super().__init__()
        c = self.config = config
        h, w = c.token_grid
        self.num_tokens, D = h * w, c.dim  # N
        self.mask_id = c.codebook_size  # the token table's last row
        self.start_motion = c.motion_vocab  # the motion table's last row: m_0
        self.token_emb = nn.Embedding(c.codebook_size + 1, D)
        self.motion_emb = nn.Embedding(c.motion_vocab + 1, D)
        self.position = SpatioTemporalPosition(c.max_frames, self.num_tokens, D)  # learned
        self.transformer = SpatioTemporalTransformer(
            D, c.depth, c.heads, c.mlp_ratio, causal_time=c.causal_time
        )
        self.head = nn.Linear(D, c.codebook_size)
        for emb in (self.token_emb, self.motion_emb):
            nn.init.normal_(emb.weight, std=0.02)  # N(0, 1) would drown the residual stream

    def _check(self, ids_BTN: torch.Tensor, motions_Bt: torch.Tensor) -> None:
        B, T, N = ids_BTN.shape if ids_BTN.ndim == 3 else (None, None, None)
        if N != self.num_tokens or not 1 <= T <= self.config.max_frames:
            raise ValueError(
                f"ids must be (B, T <= {self.config.max_frames}, N = {self.num_tokens}) (a "
                f"{self.config.token_grid} grid in raster order), got {tuple(ids_BTN.shape)}"
            )
        if tuple(motions_Bt.shape) != (B, T - 1):
            raise ValueError(
                f"motions must be (B, T - 1) = ({B}, {T - 1}), m_1 .. m_{T - 1}, got "
                f"{tuple(motions_Bt.shape)}"
            )

    def forward(self, ids_BTN: torch.Tensor, motions_Bt: torch.Tensor) -> torch.Tensor:
        self._check(ids_BTN, motions_Bt)
        x = self.position(self.token_emb(ids_BTN))  # (B, T, N, D): E_tok + time[t] + space[n]
        into = self.motion_emb(frame_motions(motions_Bt, self.start_motion))  # (B, T, D)
        x = x + rearrange(into, "b t d -> b t 1 d")  # + E_m[m_t], the same for all N tokens
        return self.head(self.transformer(x))  # (B, T, N, K)


def masked_future_scores(logits, targets, masked, context: int) -> dict[str, torch.Tensor]:
    """Plain CE and top-1 accuracy on the masked positions of frames >= context (no host
    sync: weighted means, 0 when none is masked)."""
    with torch.no_grad():
        weight = masked.clone()
        weight[:, :context] = False  # (B, T, N)
        weight = weight.flatten().float()
        ce = F.cross_entropy(rearrange(logits, "b t n k -> (b t n) k").float(),
                             targets.flatten(), reduction="none")  # fmt: skip
        hits = (logits.argmax(-1) == targets).flatten().float()
        count = weight.sum().clamp(min=1)
        return {"scene_ce": (ce * weight).sum() / count,
                "scene_accuracy": (hits * weight).sum() / count}  # fmt: skip


def maskgit_loss(model: MaskGITWorld, ids_BTN: torch.Tensor, motions_Bt: torch.Tensor,
                 generator: torch.Generator | None = None, probs=None,
                 context: int | None = None) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Algorithm 1 on a clip batch (ids (B, T, N), motions (B, T - 1)): per clip an objective
    (`probs`, default the config's), the corruption, the network on it, the label-smoothed CE
    on every position of the corrupted frames -> (loss, {"scene_ce", "scene_accuracy",
    "smoothed_ce"}). `context`: the past frames of these clips (default the config's; the
    LiDAR model trains 2 -> 2 and 6 -> 6 clips)."""
    c = model.config
    context = c.context if context is None else context
    if not 1 <= context < ids_BTN.shape[1]:
        raise ValueError(f"context={context} must leave a frame of the {ids_BTN.shape[1]}")
    probs = c.objective_probs if probs is None else probs
    _, x = training_inputs(ids_BTN, context, c.codebook_size, generator, probs, c.eta)
    logits = model(x.inputs, motions_Bt)  # (B, T, N, K): the network sees x_k, never x0
    loss = smoothed_cross_entropy(logits, x.targets, x.loss_mask, c.label_smoothing)
    metrics = masked_future_scores(logits, x.targets, x.masked, context)
    return loss, {**metrics, "smoothed_ce": loss.detach()}


def make_maskgit_loss():
    """The trainer's `loss_fn(model, batch) -> (loss, metrics)` for the MaskGIT world model."""

    def loss_fn(model: MaskGITWorld, batch: dict):
        return maskgit_loss(model, batch["ids"], batch["motions"])  # ids (B, T, N)

    return loss_fn


class MaskGITEvaluator(ClipEvaluator):
    """`evaluate(model, step) -> {"val_scene_ce", "val_scene_accuracy", "val_smoothed_ce"}` on
    `count` fixed val clips: the FUTURE objective only, its corruption drawn from a generator
    seeded with `seed` at every call (the same masks at every evaluation)."""

    def __init__(self, clips: TokenClips, count: int = 8, batch_size: int = 2,
                 prefix: str = "val", seed: int = 0):  # fmt: skip
        def loss(model, ids_BTN, motions_Bt):
            return maskgit_loss(model, ids_BTN, motions_Bt, self.generator, FUTURE_ONLY)

        super().__init__(loss, MASKGIT_EVAL_KEYS, clips, count, batch_size, prefix)
        self.seed, self.generator = seed, None

    def __call__(self, model: nn.Module, step: int = 0) -> dict[str, float]:
        device = next(model.parameters()).device
        self.generator = torch.Generator(device).manual_seed(self.seed)
        return super().__call__(model, step)
