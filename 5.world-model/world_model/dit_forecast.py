"""The DiT world model as a benchmark forecaster, and OccSora's generation from a trajectory.

    forecaster = dit_forecaster(model, tokenizer, motion_tokenizer, steps=50, guidance=0)
    future = forecaster(past, past_poses, future_poses)     # (B, 6, X, Y, Z) uint8, CPU
    clip = generate_from_trajectory(model, tokenizer, motion_tokenizer, poses)  # no past
    codec = fourd_codec(tokenizer)      # the ceiling: 6 true future frames through the tokenizer

What one forecast does (`baselines.Forecaster`'s contract; clips as in `latent_clips.py`):

    past     = s * codebook[tokenizer.encode(past clip)]              (B, E, T, h, w)
    traj     = normalised motions of the target clip's poses           (B, T_c - 1, 3)
    x0       = DDIM(eps_theta(. | past, traj)) from x_T ~ N(0, I)      (B, E, T, h, w)
    frames   = tokenizer.decode(nearest codes of x0 / s)                (B, T_c, X, Y, Z)
    future   = the last 6 of them (the first T_c - 6 are the past frames the clip starts with)

The whole future is one diffusion of one clip: `steps` DDIM steps (default 50, eta 0:
deterministic given the starting noise), each one DiT call over the 2T latent frames (two
calls with guidance). Decoding snaps each sampled vector to its nearest code first (`snap`,
the default; the decoder only ever saw codebook rows), then `tokenizer.decode`;
`snap=False` decodes the raw vectors (`decode_codes`).

Guidance (`guidance` = w >= 0, validate.py's --guidance, the same convention as MaskGIT's):

    eps = eps_cond + w (eps_cond - eps_uncond)         uncond: the trajectory's null embedding

with the past in both branches, so w pushes the trajectory's effect. That is dit.py's
`eps_fn` at weight 1 + w (its eps_uncond + w' (eps_cond - eps_uncond), w' = 1 + w); w = 0
is the conditional model alone, one call a step. It needs a model trained with cond_drop > 0.

Each call draws its starting noise from a generator seeded with `seed`: the same inputs give
the same forecast.

The ceiling (`fourd_codec`, the benchmark's `Codec`): the 6 true future frames of a window as
one clip of the 4D tokenizer (the first held in front to fill T_c frames, as the past clip is
filled), encoded and decoded. The DiT's own target clip starts with 2 past frames instead, so
this is the tokenizer's bound on the future, not exactly the model's.

Shapes: B batch, T latent frames of a clip, T_c frames of a 4D tokenizer's clip, T_p past
frames, T_f future frames, h, w token-grid height and width, E code dims, X, Y, Z voxel-grid
sizes.
"""

from __future__ import annotations

import torch
from einops import rearrange
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from torch import nn

from world_model.baselines import Codec, Forecaster
from world_model.dit import DiT, eps_fn
from world_model.dit_world import code_latents, with_past
from world_model.latent_clips import (
    check_layout,
    clip_trajectory,
    normalised_motions,
    past_clip,
)
from world_model.noise_schedule import ddim_sample
from world_model.windows import FUTURE_FRAMES

DEFAULT_STEPS = 50  # DDIM steps (OccSora samples its 1000-step DDPM; 50 is DDIM's usual)


def check_fourd_tokenizer(model: DiT, tokenizer: nn.Module) -> None:
    """The tokenizer must be the 4D one the model was built for (code dims, clip, codes)."""
    c, tc = model.config, getattr(tokenizer, "config", None)
    if getattr(tc, "temporal_compression", None) is None:
        raise ValueError(
            f"{type(tokenizer).__name__} is not chapter 3's 4D tokenizer: the DiT world model "
            "diffuses the latent of its clips (kind '4d', e.g. 4d-debug-t2)"
        )
    got = (tc.latent_dim, tc.frames - 1, tuple(tc.token_shape), tc.codebook_size)
    wanted = (c.channels, c.traj_len, tuple(c.latent_shape), c.codebook_size)
    if got != wanted:
        raise ValueError(
            f"the 4D tokenizer has (code dims, motions a clip, latent shape, codes) = {got}, "
            f"the model expects {wanted}: use the 4D tokenizer of the model's run"
        )


def check_guidance(steps: int, guidance: float) -> None:
    if steps < 1 or guidance < 0:
        raise ValueError(f"need steps >= 1 and guidance >= 0, got {steps} and {guidance}")


@torch.no_grad()
def sample_latent(
    model: DiT, past: torch.Tensor, trajectory: torch.Tensor | None, steps: int = DEFAULT_STEPS,
    guidance: float = 0.0, eta: float = 0.0, generator: torch.Generator | None = None,
) -> torch.Tensor:  # fmt: skip
    """The scaled past (B, E, T, h, w) (zeros: no past) and the normalised trajectory
    (B, T_c - 1, 3) (None: unconditional) -> a sampled target latent (B, E, T, h, w), scaled."""
    check_guidance(steps, guidance)

    def target_eps(x, t, traj):  # the DiT on [past, x_t], its target part
        return with_past(model, past, x, t, traj)

    if trajectory is None:
        fn = lambda x, t: target_eps(x, t, None)
    else:
        fn = eps_fn(target_eps, trajectory, 1 + guidance)  # eps_c + w (eps_c - eps_u)
    schedule = model.config.schedule.build()
    return ddim_sample(fn, tuple(past.shape), steps, eta, generator, schedule=schedule,
                       device=past.device)  # fmt: skip


@torch.no_grad()
def decode_latent(tokenizer: nn.Module, latent: torch.Tensor, scale: float,
                  snap: bool = True) -> torch.Tensor:  # fmt: skip
    """A scaled latent (B, E, T, h, w) -> class ids (B, T_c, X, Y, Z) int64: x / s snapped to
    the nearest codes and decoded (snap), or decoded as it is."""
    codes = rearrange(latent.float() / scale, "b e t h w -> b t h w e")  # c = x / s
    if snap:
        return tokenizer.decode(tokenizer.quantizer.nearest(codes))
    return tokenizer.decode_codes(codes).argmax(-1)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def dit_rollout(
    model: DiT, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer, past, past_poses,
    future_poses, steps: int = DEFAULT_STEPS, guidance: float = 0.0, eta: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:  # fmt: skip
    """The sampled target latent (B, E, T, h, w) from past grids (B, T_p, X, Y, Z) and poses
    (B, T_p, 4, 4), (B, T_f, 4, 4)."""
    T_c = tokenizer.config.frames
    check_layout(past.shape[1], future_poses.shape[1], T_c)  # before the tokenizer runs
    device, scale = device_of(model), model.config.latent_scale
    ids = tokenizer.encode(past_clip(past, T_c).to(device))  # (B, T, h, w)
    past_latent = code_latents(tokenizer.quantizer.codebook.weight, ids, scale)
    trajectory = clip_trajectory(past_poses, future_poses, T_c, motion_tokenizer).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    return sample_latent(model, past_latent, trajectory, steps, guidance, eta, generator)


def dit_forecaster(
    model: DiT, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    steps: int = DEFAULT_STEPS, guidance: float = 0.0, eta: float = 0.0, seed: int = 0,
    snap: bool = True,
) -> Forecaster:  # fmt: skip
    """A `Forecaster` (past (B, T_p, X, Y, Z), past_poses (B, T_p, 4, 4), future_poses
    (B, T_f, 4, 4)) -> (B, T_f, X, Y, Z) uint8 on the CPU, from a trained DiT world model, the
    4D tokenizer it was trained on and the motion bins of its run (their range)."""
    check_fourd_tokenizer(model, tokenizer)
    check_guidance(steps, guidance)
    sampling = dict(steps=steps, guidance=guidance, eta=eta, seed=seed)

    @torch.no_grad()
    def forecast(past, past_poses, future_poses):
        latent = dit_rollout(model, tokenizer, motion_tokenizer, past, past_poses,
                             future_poses, **sampling)  # fmt: skip
        clip = decode_latent(tokenizer, latent, model.config.latent_scale, snap)  # (B, T_c, ...)
        return clip[:, -future_poses.shape[1] :].to(torch.uint8).cpu()  # (B, T_f, X, Y, Z)

    return forecast


@torch.no_grad()
def generate_from_trajectory(
    model: DiT, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    poses: torch.Tensor, steps: int = DEFAULT_STEPS, guidance: float = 0.0, eta: float = 0.0,
    seed: int = 0, snap: bool = True,
) -> torch.Tensor:  # fmt: skip
    """OccSora's use: a whole clip (B, T_c, X, Y, Z) uint8 on the CPU from its ego poses
    (B, T_c, 4, 4) alone, with no past (the past input all zeros, as `past_drop` trained it)."""
    check_fourd_tokenizer(model, tokenizer)
    T_c = tokenizer.config.frames
    if poses.dim() != 4 or poses.shape[1] != T_c:
        raise ValueError(f"poses must be (B, T_c = {T_c}, 4, 4), got {tuple(poses.shape)}")
    device, c = device_of(model), model.config
    past = torch.zeros(poses.shape[0], c.channels, *c.latent_shape, device=device)  # no past
    trajectory = normalised_motions(relative_motion(poses), motion_tokenizer).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    latent = sample_latent(model, past, trajectory, steps, guidance, eta, generator)
    return decode_latent(tokenizer, latent, c.latent_scale, snap).to(torch.uint8).cpu()


def fourd_codec(tokenizer: nn.Module, batch_size: int = 4) -> Codec:
    """The 4D tokenizer as the benchmark's codec: frames (n, X, Y, Z), n = windows * 6 future
    frames in window order (`baselines.ceiling_forecast`), each window's 6 as one clip (the
    first frame held in front to fill T_c), encoded and decoded -> (n, X, Y, Z) uint8, CPU."""
    T_c, device = tokenizer.config.frames, device_of(tokenizer)

    @torch.no_grad()
    def roundtrip(frames: torch.Tensor) -> torch.Tensor:
        clips = rearrange(frames, "(b t) x y z -> b t x y z", t=FUTURE_FRAMES)
        out = []
        for chunk in clips.split(batch_size):
            decoded = tokenizer.decode(tokenizer.encode(past_clip(chunk, T_c).to(device)))
            out.append(decoded[:, -FUTURE_FRAMES:].to(torch.uint8).cpu())  # (b, 6, X, Y, Z)
        return rearrange(torch.cat(out), "b t x y z -> (b t) x y z")

    return roundtrip
