"""The MaskGIT world model as a benchmark forecaster: all six future frames at once.

    forecaster = maskgit_forecaster(model, tokenizer, motion_tokenizer, steps=10, guidance=0)
    future = forecaster(past, past_poses, future_poses)     # (B, 6, X, Y, Z) uint8, CPU

What one call does (`baselines.Forecaster`'s contract, as the AR baseline's `ar_rollout`):

    ids_BTN      = [tokenizer.encode(past frames), MASK x T_f frames]           (B, T, N)
    m_1..m_{T-1} = motion_tokenizer.encode(relative_motion([past_poses, future_poses]))
    ids          = Algorithm 2 (`discrete_diffusion.sample`) over the T_f * N future
                   positions, the past positions `fixed`, in `steps` network calls
    future       = tokenizer.decode(ids of frames >= T_p)                   (B, T_f, X, Y, Z)

CoPilot4D's way for a multi-frame future: the whole future is one diffusion, 10 calls of the
network in all (20 with guidance) against the AR baseline's T_f * N. Not frame by frame.

Guidance (`guidance` = w > 0): each step's logits are cond + w (cond - uncond), where uncond
is the same network with the past frames all MASK and the same motions (the NO_PAST objective
trained it). w = 0 calls the network once a step.

Sampling: `temperature` draws the codes (x~0 ~ softmax(logits / temperature), 0 = argmax),
as the other kinds' temperature; `choice_temperature` scales Algorithm 2's annealed Gumbel
noise on the confidences (1 = the paper's Gumbel * k/S). The paper's schedule and its
revision of decided tokens (`schedule="copilot4d"`, `revise=True`). Each call draws from a
generator seeded with `seed`, so the same inputs give the same forecast.

Shapes: B batch, T frames, T_p past frames, T_f future frames, N tokens per frame (h*w),
h, w token-grid height and width, K codebook size, X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import torch
from einops import rearrange
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from torch import nn

from world_model.baselines import Forecaster
from world_model.discrete_diffusion import guided_logits_fn, sample
from world_model.maskgit_world import MaskGITWorld, hide_past

DEFAULT_STEPS = 10  # CoPilot4D's K = 10 (one reimplementation's; the paper gives none)


def check_maskgit_tokenizers(model: MaskGITWorld, tokenizer: nn.Module,
                             motion_tokenizer: EgoMotionTokenizer) -> None:  # fmt: skip
    """The tokenizers must be those the model was built for (codes, grid, motion bins)."""
    c = model.config
    grid = tuple(getattr(getattr(tokenizer, "config", None), "latent_grid", ()))
    codes = getattr(tokenizer, "codebook_size", None)
    if codes != c.codebook_size or grid != tuple(c.token_grid):
        raise ValueError(
            f"the scene tokenizer has {codes} codes on a {grid} grid, the model expects "
            f"{c.codebook_size} on {tuple(c.token_grid)}: use the single-scale tokenizer of "
            "the model's run"
        )
    if motion_tokenizer.vocab_size != c.motion_vocab:
        raise ValueError(
            f"the motion tokenizer has {motion_tokenizer.vocab_size} tokens (bins "
            f"{motion_tokenizer.bins}), the model expects {c.motion_vocab}: use the bins saved "
            "with the model's run"
        )


def check_frames(model: MaskGITWorld, past_frames: int, future_frames: int) -> None:
    c = model.config
    if past_frames < c.context or past_frames + future_frames > c.max_frames:
        raise ValueError(
            f"{past_frames} past + {future_frames} future frames: need >= context={c.context} "
            f"past frames and at most max_frames={c.max_frames} in all"
        )


def encode_past(model: MaskGITWorld, tokenizer: nn.Module, past: torch.Tensor) -> torch.Tensor:
    """Past grids (B, T_p, X, Y, Z) -> their tokens (B, T_p, N) on the model's device."""
    frames = rearrange(past, "b t x y z -> (b t) x y z").to(model.head.weight.device)
    return rearrange(tokenizer.encode(frames), "(b t) h w -> b t (h w)", b=past.shape[0])


@torch.no_grad()
def sample_future(
    model: MaskGITWorld, past_ids: torch.Tensor, motions: torch.Tensor, future_frames: int,
    steps: int = DEFAULT_STEPS, guidance: float = 0.0, temperature: float = 1.0,
    choice_temperature: float = 1.0, generator: torch.Generator | None = None,
) -> torch.Tensor:  # fmt: skip
    """Past tokens (B, T_p, N) and m_1 .. m_{T-1} (B, T - 1) -> the future's tokens
    (B, T_f, N), all T_f frames in one run of Algorithm 2 with the past fixed."""
    B, T_p, N = past_ids.shape
    T = T_p + future_frames
    check_frames(model, T_p, future_frames)
    masks = past_ids.new_full((B, future_frames, N), model.mask_id)
    init = torch.cat([past_ids, masks], dim=1)  # (B, T, N): the future all MASK
    fixed = rearrange(torch.arange(T, device=init.device) < T_p, "t -> t 1")  # the past

    def cond(ids):  # (B, T, N) -> (B, T, N, K)
        return model(ids, motions)

    def uncond(ids):  # the NO_PAST model: the past all MASK, the motions kept
        return model(hide_past(ids, T_p, model.mask_id), motions)

    logits_fn = guided_logits_fn(cond, uncond, guidance)
    out = sample(logits_fn, init, fixed, steps, choice_temperature, generator,
                 mask_id=model.mask_id, code_temperature=temperature)  # fmt: skip
    return out.ids[:, T_p:]  # (B, T_f, N)


@torch.no_grad()
def maskgit_rollout(
    model: MaskGITWorld, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    past, past_poses, future_poses, steps: int = DEFAULT_STEPS, guidance: float = 0.0,
    temperature: float = 1.0, choice_temperature: float = 1.0, seed: int = 0,
) -> torch.Tensor:  # fmt: skip
    """The forecast's tokens (B, T_f, h, w) from past grids (B, T_p, X, Y, Z) and poses
    (B, T_p, 4, 4), (B, T_f, 4, 4): the future poses' motion tokens condition every frame."""
    T_p, T_f = past.shape[1], future_poses.shape[1]
    check_frames(model, T_p, T_f)  # before the tokenizer runs
    past_ids = encode_past(model, tokenizer, past)  # (B, T_p, N)
    poses = torch.cat([past_poses, future_poses], dim=1)  # (B, T, 4, 4)
    motions = motion_tokenizer.encode(relative_motion(poses)).to(past_ids.device)  # (B, T - 1)
    generator = torch.Generator(past_ids.device).manual_seed(seed)
    ids = sample_future(model, past_ids, motions, T_f, steps, guidance, temperature,
                        choice_temperature, generator)  # fmt: skip
    return rearrange(ids, "b t (h w) -> b t h w", h=model.config.token_grid[0])


def maskgit_forecaster(
    model: MaskGITWorld, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    steps: int = DEFAULT_STEPS, guidance: float = 0.0, temperature: float = 1.0,
    choice_temperature: float = 1.0, seed: int = 0,
) -> Forecaster:  # fmt: skip
    """A `Forecaster` (past (B, T_p, X, Y, Z), past_poses (B, T_p, 4, 4), future_poses
    (B, T_f, 4, 4)) -> (B, T_f, X, Y, Z) uint8 on the CPU, from a trained MaskGIT world model,
    the single-scale scene tokenizer it was trained on and the motion bins of its run."""
    check_maskgit_tokenizers(model, tokenizer, motion_tokenizer)
    if steps < 1 or guidance < 0:
        raise ValueError(f"need steps >= 1 and guidance >= 0, got {steps} and {guidance}")
    sampling = dict(steps=steps, guidance=guidance, temperature=temperature,
                    choice_temperature=choice_temperature, seed=seed)  # fmt: skip

    @torch.no_grad()
    def forecast(past, past_poses, future_poses):
        tokens = maskgit_rollout(
            model, tokenizer, motion_tokenizer, past, past_poses, future_poses, **sampling
        )  # (B, T_f, h, w)
        grids = tokenizer.decode(rearrange(tokens, "b t h w -> (b t) h w"))  # (B*T_f, X, Y, Z)
        return rearrange(grids, "(b t) x y z -> b t x y z", b=past.shape[0]).to(torch.uint8).cpu()

    return forecast
