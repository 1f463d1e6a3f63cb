"""The autoregressive baseline (OccWorld / OccLLaMA style): chapter 2's GPT over the
single-scale scene tokens of the same clips, the ego motion as its actions.

The network, its layout and its KV-cache sampling are chapter 2's `ARDynamics`, imported as
they are. A clip of T frames (5 past + 6 future) is one sentence, each frame's h x w tokens
in raster order, then the motion token that leads to the next frame:

    f_0[0] .. f_0[N-1] a_0  f_1[0] .. f_1[N-1] a_1  ...  f_{T-1}[0] .. f_{T-1}[N-1]
    a_t = m_{t+1}    (chapter 3's `EgoMotionTokenizer`: the motion from frame t to t+1)

Loss: teacher-forced next-token cross-entropy on the FUTURE frames' tokens only (frames
t >= context = 5); the past is context, as for the TENSFormer (`tens_loss.py`). One pass
over the clip; the output before f_t[n] predicts it.

Forecast (the benchmark's `Forecaster` contract, as `forecaster.tensformer_forecaster`):

    tokens_BThw  = tokenizer.encode(past frames)                        (B, T_p, h, w)
    m_1..m_{T-1} = motion_tokenizer.encode(relative_motion([past_poses, future_poses]))
    for each future frame t = T_p .. T_p + T_f - 1:
        f_t = generate_next(f_0 .. f_{t-1}, a_0 .. a_{t-1} = m_1 .. m_t)   N tokens, KV cache
    future       = tokenizer.decode(f_{T_p} ..)                          (B, T_f, X, Y, Z)

Shapes: B batch, T frames, T_p past frames, T_f future frames, h, w token-grid height and
width, N tokens per frame (h*w), L flattened sequence length, K codebook size, X, Y, Z
voxel-grid sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from dynamics_model.ar import ARConfig, ARDynamics
from einops import rearrange
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from torch import nn

from world_model.baselines import Forecaster
from world_model.token_data import CLIP_FRAMES, ClipEvaluator, TokenClips
from world_model.windows import PAST_FRAMES

AR_EVAL_KEYS = ("scene_ce", "scene_accuracy")


def ar_config_matching(tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
                       **sizes) -> ARConfig:  # fmt: skip
    """Chapter 2's ARConfig whose derived fields are those of the frozen single-scale scene
    tokenizer (codes, token grid) and the motion tokenizer (actions); one clip long."""
    return ARConfig(
        vocab_size=tokenizer.codebook_size, num_actions=motion_tokenizer.vocab_size,
        token_grid=tuple(tokenizer.config.latent_grid), max_frames=CLIP_FRAMES,
        use_actions=True, **sizes,
    )  # fmt: skip


def clip_tokens(model: ARDynamics, ids_BTN: torch.Tensor, motions_Bt: torch.Tensor):
    """A clip batch (ids (B, T, N), motions (B, T - 1) = m_1 .. m_{T-1}) -> ARDynamics'
    (tokens (B, T, h, w), actions (B, T)): a_t = m_{t+1}; a_{T-1} leads out of the clip and
    is never read, so it is a 0 placeholder."""
    h, w = model.config.token_grid
    tokens = rearrange(ids_BTN, "b t (h w) -> b t h w", h=h, w=w)
    actions = F.pad(motions_Bt, (0, 1))  # (B, T): a_0 .. a_{T-2} = m_1 .. m_{T-1}, then 0
    return tokens.long(), actions.long()


def future_positions(model: ARDynamics, frames: int, context: int, device=None) -> torch.Tensor:
    """Indices (T_f * N,) into the flattened clip of the future frames' tokens (t >= context)."""
    N, chunk = model.num_tokens, model.chunk
    frame = torch.arange(context, frames, device=device)[:, None] * chunk  # (T_f, 1): f_t[0]
    return (frame + torch.arange(N, device=device)).flatten()  # (T_f * N,)


def ar_loss(model: ARDynamics, ids_BTN: torch.Tensor, motions_Bt: torch.Tensor,
            context: int = PAST_FRAMES) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Teacher-forced CE on the future frames' tokens (frames >= context) of a clip batch
    (ids (B, T, N), motions (B, T - 1)) -> (loss, {"scene_ce", "scene_accuracy"})."""
    B, T, N = ids_BTN.shape
    if not 1 <= context < T:
        raise ValueError(f"context={context} must leave at least one of the {T} frames to score")
    ids_BL = model.flatten_clip(*clip_tokens(model, ids_BTN, motions_Bt))  # (B, T * (N + 1))
    ids_BL = ids_BL[:, :-1]  # a_{T-1} leads out of the clip
    positions = future_positions(model, T, context, ids_BL.device)  # (T_f * N,)
    logits_BLK = model(ids_BL[:, :-1])  # (B, L - 1, K): the output at l predicts element l + 1
    logits = logits_BLK[:, positions - 1]  # (B, T_f * N, K): the output before each target
    targets = ids_BL[:, positions]  # (B, T_f * N) = the future frames' ids, in order
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
    accuracy = (logits.argmax(-1) == targets).float().mean()
    return loss, {"scene_ce": loss.detach(), "scene_accuracy": accuracy}  # no sync per step


def make_ar_loss(context: int = PAST_FRAMES):
    """The trainer's `loss_fn(model, batch) -> (loss, metrics)` for the AR baseline."""

    def loss_fn(model: ARDynamics, batch: dict):
        return ar_loss(model, batch["ids"], batch["motions"], context)  # ids (B, T, N)

    return loss_fn


class ARTeacherForcedEvaluator(ClipEvaluator):
    """`evaluate(model, step) -> {"val_scene_ce", "val_scene_accuracy"}` of the AR baseline on
    `count` fixed, evenly spaced clips of a split (the TENSFormer evaluator's clips)."""

    def __init__(self, clips: TokenClips, count: int = 8, batch_size: int = 2,
                 prefix: str = "val", context: int = PAST_FRAMES):  # fmt: skip
        def loss(model, ids_BTN, motions_Bt):
            return ar_loss(model, ids_BTN, motions_Bt, context)

        super().__init__(loss, AR_EVAL_KEYS, clips, count, batch_size, prefix)
        self.context = context


def check_ar_tokenizers(model: ARDynamics, tokenizer: nn.Module,
                        motion_tokenizer: EgoMotionTokenizer) -> None:  # fmt: skip
    """The tokenizers must be those the model was built for (codes, grid, motion bins)."""
    c = model.config
    grid = tuple(getattr(getattr(tokenizer, "config", None), "latent_grid", ()))
    if tokenizer.codebook_size != c.vocab_size or grid != tuple(c.token_grid):
        raise ValueError(
            f"the scene tokenizer has {tokenizer.codebook_size} codes on a {grid} grid, the "
            f"model expects {c.vocab_size} on {tuple(c.token_grid)}: use the single-scale "
            "tokenizer of the model's run"
        )
    if motion_tokenizer.vocab_size != c.num_actions:
        raise ValueError(
            f"the motion tokenizer has {motion_tokenizer.vocab_size} tokens (bins "
            f"{motion_tokenizer.bins}), the model expects {c.num_actions}: use the bins saved "
            "with the model's run"
        )


@torch.no_grad()
def ar_rollout(
    model: ARDynamics, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    past, past_poses, future_poses, temperature: float = 1.0, top_p: float = 1.0,
    seed: int = 0, context: int = PAST_FRAMES,
) -> torch.Tensor:  # fmt: skip
    """The forecast's tokens (B, T_f, h, w) from past grids (B, T_p, X, Y, Z) and poses
    (B, T_p, 4, 4), (B, T_f, 4, 4): frame after frame, each with chapter 2's `generate_next`
    (KV cache) after all frames so far, the future poses' motion tokens as its actions."""
    B, T_p = past.shape[:2]
    T_f = future_poses.shape[1]
    if T_p < context or T_p + T_f > model.config.max_frames:
        raise ValueError(
            f"{T_p} past + {T_f} future frames: need >= context={context} past frames and "
            f"at most max_frames={model.config.max_frames} in all"
        )
    device = model.head.weight.device
    frames = rearrange(past, "b t x y z -> (b t) x y z").to(device)
    tokens = rearrange(tokenizer.encode(frames), "(b t) h w -> b t h w", b=B)  # (B, T_p, h, w)
    poses = torch.cat([past_poses, future_poses], dim=1)  # (B, T_p + T_f, 4, 4)
    motions = motion_tokenizer.encode(relative_motion(poses)).to(device)  # (B, T - 1)
    generator = torch.Generator(device).manual_seed(seed)
    for _ in range(T_f):
        T = tokens.shape[1]  # a_0 .. a_{T-1} = m_1 .. m_T: a_{T-1} leads to frame T
        frame = model.generate_next(tokens, motions[:, :T], temperature, top_p, generator)
        tokens = torch.cat([tokens, frame[:, None]], dim=1)  # (B, T + 1, h, w)
    return tokens[:, T_p:]


def ar_forecaster(
    model: ARDynamics, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, context: int = PAST_FRAMES,
) -> Forecaster:  # fmt: skip
    """A `Forecaster` (past (B, T_p, X, Y, Z), past_poses (B, T_p, 4, 4), future_poses
    (B, T_f, 4, 4)) -> (B, T_f, X, Y, Z) uint8 on the CPU, from a trained AR baseline, the
    single-scale scene tokenizer it was trained on and the motion bins of its run. The
    future poses steer it (their motion tokens are its actions); each call draws from a
    generator seeded with `seed`, so the same inputs give the same forecast."""
    check_ar_tokenizers(model, tokenizer, motion_tokenizer)
    sampling = dict(temperature=temperature, top_p=top_p, seed=seed, context=context)

    @torch.no_grad()
    def forecast(past, past_poses, future_poses):
        tokens = ar_rollout(
            model, tokenizer, motion_tokenizer, past, past_poses, future_poses, **sampling
        )  # (B, T_f, h, w)
        grids = tokenizer.decode(rearrange(tokens, "b t h w -> (b t) h w"))  # (B*T_f, X, Y, Z)
        return rearrange(grids, "(b t) x y z -> b t x y z", b=past.shape[0]).to(torch.uint8).cpu()

    return forecast
