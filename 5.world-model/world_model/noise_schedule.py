"""Gaussian diffusion apart from the network: the noise schedule, the loss, the DDIM sampler.

DDPM (Ho et al. 2020) destroys a clean sample x0 in `num_steps` small Gaussian steps with
variances beta_1..beta_n, and a network learns to undo one step. With

    alpha_t = 1 - beta_t,       alpha_bar_t = prod_{s <= t} alpha_s

the noisy sample at any step has a closed form, so training needs no chain of steps:

    q(x_t | x0) = N(sqrt(alpha_bar_t) x0, (1 - alpha_bar_t) I)
    x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps,     eps ~ N(0, I)   (`q_sample`)

The network predicts the noise, and the loss is || eps - eps_theta(x_t, t) ||^2 averaged over
elements, t drawn uniformly (`epsilon_loss`, `diffusion_loss`).

Schedules. Linear (DDPM, and OccSora: 1000 steps, beta from 1e-4 to 0.02). Cosine (Nichol &
Dhariwal 2021) sets alpha_bar itself,

    alpha_bar(t) = f(t) / f(0),     f(t) = cos^2( (t/n + s) / (1 + s) * pi/2 ),  s = 0.008,

which destroys the signal more evenly over t; its betas 1 - alpha_bar(t)/alpha_bar(t-1) are
capped at 0.999, so the last step does not divide by alpha_bar = 0. Index i of every table is
diffusion step t = i + 1 (the tables are 0-based, as the timestep passed to the network is).

Sampling with DDIM (Song et al. 2021) runs any subsequence of the steps, t_k > t_{k-1} > ...
(`steps` of them, the last being t = 1), given an `eps_fn(x_t, t) -> eps` callback:

    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)                          a = alpha_bar
    sigma  = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)
    x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z,   z ~ N(0, I)

with a_prev = 1 after the last step (x_prev = x0_hat). eta = 0 adds no noise (deterministic
DDIM: the result is a function of the starting noise); eta = 1 gives DDPM's posterior variance
(on the full chain of steps, it is DDPM's ancestral sampler).

Classifier-free guidance (Ho & Salimans 2022) is only another eps_fn: with a model trained to
also predict without its condition, `guided_eps` mixes the two predictions,

    eps = eps_uncond + w (eps_cond - eps_uncond),

in this form w = 1 is the plain conditional model, w = 0 the unconditional one, w > 1 pushes
samples towards the condition. (Some papers write (1 + w) eps_cond - w eps_uncond; their w is
ours minus 1.)

Shapes: B batch; "..." the sample's own axes (any), "num_steps" the length of the tables.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from worldmodels.config import at_least, require

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> predicted eps


@dataclass
class ScheduleConfig:
    """Which schedule; OccSora's is the default (linear, 1000 steps, 1e-4 .. 0.02)."""

    kind: str = "linear"  # linear | cosine
    num_steps: int = 1000
    beta_start: float = 1e-4  # linear only
    beta_end: float = 0.02  # linear only
    cosine_s: float = 0.008  # cosine only: the offset s that keeps beta_1 from being ~0

    def __post_init__(self):
        require(self, "kind", self.kind in ("linear", "cosine"), "'linear' or 'cosine'")
        at_least(self, 1, "num_steps")
        ok = 0 < self.beta_start <= self.beta_end < 1
        require(self, "beta_end", ok, f"in [beta_start={self.beta_start}, 1), beta_start > 0")
        require(self, "cosine_s", self.cosine_s >= 0, "a number >= 0")

    def build(self) -> "NoiseSchedule":
        if self.kind == "cosine":
            return NoiseSchedule.cosine(self.num_steps, self.cosine_s)
        return NoiseSchedule.linear(self.num_steps, self.beta_start, self.beta_end)


class NoiseSchedule:
    """The tables of one schedule (float64, on the CPU; looked up per sample)."""

    def __init__(self, betas: torch.Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-D tensor of values in (0, 1)")
        self.betas = betas  # (num_steps,)
        self.alphas = 1 - betas  # alpha_t = 1 - beta_t
        self.alpha_bar = torch.cumprod(self.alphas, 0)  # alpha_bar_t = prod_{s<=t} alpha_s

    @property
    def num_steps(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, num_steps: int = 1000, start: float = 1e-4, end: float = 0.02):
        """DDPM's schedule (OccSora's too): beta_t evenly spaced from `start` to `end`."""
        return cls(torch.linspace(start, end, num_steps, dtype=torch.float64))

    @classmethod
    def cosine(cls, num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999):
        """Nichol & Dhariwal's: alpha_bar from the cos^2 closed form, betas capped at max_beta."""
        a = cosine_alpha_bar(torch.arange(num_steps + 1, dtype=torch.float64), num_steps, s)
        betas = 1 - a[1:] / a[:-1]  # beta_t = 1 - alpha_bar(t) / alpha_bar(t-1)
        return cls(betas.clamp(max=max_beta))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, per sample. x0, noise:
        (B, ...); t: (B,) 0-based step indices."""
        a = per_sample(self.alpha_bar, t, x0)  # (B, 1, ...)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


def cosine_alpha_bar(t: torch.Tensor, num_steps: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t / num_steps) + s) / (1 + s) * pi / 2)."""

    def f(u):
        return torch.cos((u / num_steps + s) / (1 + s) * math.pi / 2) ** 2

    return f(t) / f(torch.zeros_like(t))


def per_sample(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """table[t] as (B, 1, 1, ...): one value per sample, broadcast over `like`'s other axes."""
    values = table.to(t.device)[t].to(like.dtype)  # (B,)
    return values.reshape(-1, *([1] * (like.dim() - 1)))


# ------------------------------------------------------------------------------ training


def epsilon_loss(eps_pred: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """|| eps - eps_theta ||^2, the mean over every element (DDPM's "simple" loss)."""
    return F.mse_loss(eps_pred.float(), eps.float())


def diffusion_loss(
    eps_fn: EpsFn,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One training objective on clean samples x0 (B, ...): t ~ U{0..n-1}, eps ~ N(0, I),
    x_t = q_sample(x0, t, eps), loss = || eps - eps_fn(x_t, t) ||^2."""
    B = x0.shape[0]
    t = torch.randint(schedule.num_steps, (B,), generator=generator, device=x0.device)  # (B,)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return epsilon_loss(eps_fn(schedule.q_sample(x0, t, eps), t), eps)


# ------------------------------------------------------------------------------ sampling


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: eps_uncond + w (eps_cond - eps_uncond); w = 1 is the plain
    conditional prediction, w = 0 the unconditional one."""
    return eps_uncond + w * (eps_cond - eps_uncond)


def guided(cond_fn: EpsFn, uncond_fn: EpsFn, w: float) -> EpsFn:
    """The eps_fn of classifier-free guidance with weight w, from the conditional and the
    unconditional callbacks (w = 1 calls the conditional one only)."""
    if w == 1:
        return cond_fn
    return lambda x, t: guided_eps(cond_fn(x, t), uncond_fn(x, t), w)


def ddim_timesteps(num_steps: int, steps: int) -> list[int]:
    """`steps` 0-based indices from num_steps - 1 down to 0, evenly spaced, all different."""
    if not 1 <= steps <= num_steps:
        raise ValueError(f"steps={steps}: expected 1 <= steps <= num_steps={num_steps}")
    if steps == 1:
        return [num_steps - 1]
    spaced = torch.linspace(num_steps - 1, 0, steps, dtype=torch.float64).round().long()
    return spaced.tolist()


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    schedule: NoiseSchedule,
    noise: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw samples of `shape` (B, ...) in `steps` DDIM steps; eta in [0, 1] (module doc).

    `noise`: the starting x_T (else drawn from `generator`); `generator` also draws the fresh
    noise z of eta > 0 (none is drawn at eta = 0). eps_fn receives t as (B,) 0-based indices.
    """
    if not 0 <= eta <= 1:
        raise ValueError(f"eta={eta}: expected a number in [0, 1]")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    x = noise.clone() if noise is not None else randn(shape, generator, device)  # (B, ...)
    times = ddim_timesteps(schedule.num_steps, steps)
    for t, t_prev in zip(times, times[1:] + [None]):
        a = float(schedule.alpha_bar[t])
        a_prev = 1.0 if t_prev is None else float(schedule.alpha_bar[t_prev])
        eps = eps_fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        x0_hat = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)  # the clean sample eps implies
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a)) * math.sqrt(1 - a / a_prev)
        x = math.sqrt(a_prev) * x0_hat + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * randn(x.shape, generator, x.device, x.dtype)
    return x


def randn(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
