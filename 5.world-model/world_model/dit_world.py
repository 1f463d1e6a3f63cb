"""OccSora's world model on occupancy: a trajectory-conditioned DiT over the 4D latent.

What is diffused: the post-quantization code vectors of chapter 3's 4D tokenizer (OccSora's
choice), the codebook rows of the target clip's ids (`latent_clips.py`), scaled to unit std:

    x0 = s * codebook[ids_target]                        (B, E, T, h, w): E channels
    s  = latent_scale = 1 / std of the training split's code vectors (`fit_latent_scale`)

OccSora multiplies by a fixed 1/10, right for codes of std about 10. 4d-debug-t2's codes have
std 0.195 (48 evenly spaced training windows): times 1/10 the signal would be 0.02 against
unit noise, drowned within the first steps of the schedule, so the scale is fit instead (about
5.1 for 4d-debug-t2; the run fits it on every training window; Stable Diffusion's 0.18215 is
the same idea for its VAE).

How the past conditions it (in-context, concatenated along latent time): the past clip's
code vectors, scaled the same, are put in front of the noisy target, clean at every step,
and the DiT attends over both; only the target part of its output is read:

    eps_theta(x_t, t, traj | past) = DiT([past, x_t], t, traj)[:, :, T:]     (B, E, T, h, w)

so `noise_schedule.diffusion_loss` and `ddim_sample` run on the target alone, unchanged. The
DiT is dit.py's as it is (its position code tells the past's latent frames 0..T-1 from the
target's T..2T-1). With probability `past_drop` per training clip the past is all zeros (a
value no encoded clip takes): the no-past model, OccSora's generation from the trajectory
alone. With probability `cond_drop` (dit.py) the trajectory is the learned null embedding:
the unconditional branch of classifier-free guidance. Each is drawn apart.

The trajectory: the target clip's T_c - 1 motions (dx, dy, dyaw), normalised to [-1, 1] by
the train-fit range of the motion bins (`latent_clips.normalised_motions`); OccSora's is the
clip's T x 2 positions, flattened into an MLP the same way.

Loss (`dit_loss`): DDPM's epsilon MSE, t ~ U{0..999} on OccSora's linear schedule (1e-4 ..
0.02, `noise_schedule.ScheduleConfig`), the past and the trajectory dropped as above; OccSora
also learns the variance, which this DDIM sampler does not use. The evaluation
(`DiTEvaluator`) is the same MSE on fixed val clips at a t and a noise drawn from a generator
seeded the same way at every call (so it moves only with the weights), with the trajectory
(`eps_mse`) and without it (`eps_mse_no_trajectory`: the gap is what the trajectory tells).

Shapes: B batch, T latent frames of a clip, T_c frames of a 4D tokenizer's clip, h, w
token-grid height and width, E code dims (the DiT's channels), K codebook size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from world_model.dit import DiT, DiTConfig
from world_model.latent_clips import LatentClips, check_layout, evenly_spaced
from world_model.noise_schedule import NoiseSchedule, ScheduleConfig, diffusion_loss, epsilon_loss
from world_model.windows import FUTURE_FRAMES, PAST_FRAMES
from worldmodels.config import derived, require

DIT_EVAL_KEYS = ("eps_mse", "eps_mse_no_trajectory")
FOURD = "the 4D tokenizer"


@dataclass
class DiTWorldConfig(DiTConfig):
    """dit.py's DiTConfig (sizes; OccSora's defaults) with what the world model adds: the
    tokenizer's shapes and the train-fit latent scale (`derived`), the past's dropout and the
    noise schedule."""

    channels: int = derived(64, f"{FOURD}'s code dims (E)")
    traj_len: int = derived(7, f"{FOURD}'s clip: its frames - 1 motions")
    latent_shape: tuple[int, int, int] = derived((4, 16, 16), f"{FOURD}'s (T, h, w)")
    codebook_size: int = derived(512, f"{FOURD}'s codebook (K)")
    latent_scale: float = derived(1.0, "the training split's code vectors: 1 / their std")
    past_drop: float = 0.1  # P(past -> zeros) per training clip: the no-past model
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # OccSora's: linear, 1000

    def __post_init__(self):
        super().__post_init__()
        self.latent_shape = tuple(self.latent_shape)
        T, h, w = self.latent_shape
        require(self, "patch", h % self.patch == 0 and w % self.patch == 0,
                f"a divisor of the latent grid {(h, w)}")  # fmt: skip
        require(self, "past_drop", 0 <= self.past_drop < 1, "a probability in [0, 1)")
        require(self, "latent_scale", self.latent_scale > 0, "a number > 0")


def dit_config_matching(tokenizer: nn.Module, latent_scale: float, **sizes) -> DiTWorldConfig:
    """The config whose derived fields are those of the frozen 4D tokenizer (code dims, clip
    length, latent shape, codebook) and the train-fit `latent_scale`."""
    c = getattr(tokenizer, "config", None)
    if getattr(c, "temporal_compression", None) is None:
        raise ValueError(f"{type(tokenizer).__name__} is not chapter 3's 4D tokenizer")
    check_layout(PAST_FRAMES, FUTURE_FRAMES, c.frames)
    return DiTWorldConfig(
        channels=c.latent_dim, traj_len=c.frames - 1, latent_shape=tuple(c.token_shape),
        codebook_size=c.codebook_size, latent_scale=float(latent_scale), **sizes,
    )  # fmt: skip


def code_latents(codebook: torch.Tensor, ids_BThw: torch.Tensor, scale: float) -> torch.Tensor:
    """Code ids (B, T, h, w) -> the scaled code vectors the DiT reads (B, E, T, h, w)."""
    codes = F.embedding(ids_BThw, codebook)  # (B, T, h, w, E): post-quantization vectors
    return scale * rearrange(codes, "b t h w e -> b e t h w")  # x = s * c


def with_past(model: DiT, past, x_t, t, trajectory=None, drop=None) -> torch.Tensor:
    """eps for the target alone: the DiT on [past (clean), x_t] along latent time, its output's
    target part. past, x_t (B, E, T, h, w); t (B,); trajectory (B, T_c - 1, 3) or None."""
    T = past.shape[2]
    x = torch.cat([past.to(x_t.dtype), x_t], dim=2)  # (B, E, 2*T, h, w): past frames first
    return model(x, t, trajectory, drop)[:, :, T:]  # (B, E, T, h, w)


def drop_past(past: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """The past (B, E, T, h, w) set to zeros with probability p per clip: the no-past input."""
    if p == 0:
        return past
    keep = torch.rand(past.shape[0], generator=generator, device=past.device) >= p  # (B,)
    return past * keep.to(past.dtype)[:, None, None, None, None]


def dit_loss(model: DiT, batch: dict, codebook: torch.Tensor, schedule: NoiseSchedule,
             generator: torch.Generator | None = None, past_drop: float | None = None
             ) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """|| eps - eps_theta(x_t, t, traj | past) ||^2 on a batch {"past", "target": ids
    (B, T, h, w), "trajectory": (B, T_c - 1, 3)}: t and eps drawn, the past dropped with
    `past_drop` (default the config's), the trajectory by the DiT itself in training mode."""
    c = model.config
    x0 = code_latents(codebook, batch["target"], c.latent_scale)  # (B, E, T, h, w)
    past = code_latents(codebook, batch["past"], c.latent_scale)
    past = drop_past(past, c.past_drop if past_drop is None else past_drop, generator)
    trajectory = batch["trajectory"]
    loss = diffusion_loss(lambda x, t: with_past(model, past, x, t, trajectory), x0, schedule,
                          generator)  # fmt: skip
    return loss, {"eps_mse": loss.detach()}


def make_dit_loss(codebook: torch.Tensor, schedule: NoiseSchedule):
    """The trainer's `loss_fn(model, batch) -> (loss, metrics)`; the frozen codebook (K, E) is
    closed over, not a submodule, so the optimizer never sees it. The past is dropped in
    training mode only."""

    def loss_fn(model: DiT, batch: dict):
        return dit_loss(model, batch, codebook, schedule, past_drop=None if model.training else 0)

    return loss_fn


class DiTEvaluator:
    """`evaluate(model, step) -> {"val_eps_mse", "val_eps_mse_no_trajectory"}` on `count` fixed,
    evenly spaced clips: t and eps drawn from a generator seeded with `seed` at every call,
    the past always given, each clip weighing the same."""

    def __init__(self, clips: LatentClips, codebook: torch.Tensor, schedule: NoiseSchedule,
                 count: int = 8, batch_size: int = 2, prefix: str = "val",
                 seed: int = 0):  # fmt: skip
        if len(clips) == 0:
            raise ValueError(f"no {prefix} clips to evaluate on")
        self.indices = evenly_spaced(len(clips), count)
        self.clips, self.codebook, self.schedule = clips, codebook, schedule
        self.batch_size, self.prefix, self.seed = batch_size, prefix, seed

    @torch.no_grad()
    def __call__(self, model: DiT, step: int = 0) -> dict[str, float]:
        device = next(model.parameters()).device
        generator = torch.Generator(device).manual_seed(self.seed)
        sums = dict.fromkeys(DIT_EVAL_KEYS, 0.0)
        scale = model.config.latent_scale
        for first in range(0, len(self.indices), self.batch_size):
            chunk = self.indices[first : first + self.batch_size]
            batch = {k: v.to(device) for k, v in self.clips.batch(chunk).items()}
            x0 = code_latents(self.codebook, batch["target"], scale)  # (B, E, T, h, w)
            past = code_latents(self.codebook, batch["past"], scale)
            t = torch.randint(self.schedule.num_steps, (len(chunk),), generator=generator,
                              device=device)  # fmt: skip
            eps = torch.randn(x0.shape, generator=generator, device=device)
            x_t = self.schedule.q_sample(x0, t, eps)
            for key, trajectory in zip(DIT_EVAL_KEYS, (batch["trajectory"], None)):
                mse = epsilon_loss(with_past(model, past, x_t, t, trajectory), eps)
                sums[key] += float(mse) * len(chunk)
        return {f"{self.prefix}_{k}": v / len(self.indices) for k, v in sums.items()}
