"""The diffusion algorithm apart from the network: schedules against their closed forms,
q_sample and the loss against hand-computed cases, DDIM's determinism at eta = 0, its exact
recovery of x0 from a perfect noise predictor, and its samples of a known distribution."""

import math

import pytest
import torch
from world_model.noise_schedule import (
    NoiseSchedule,
    ScheduleConfig,
    ddim_sample,
    ddim_timesteps,
    diffusion_loss,
    guided,
    guided_eps,
)

from worldmodels.config import ConfigError


def test_alpha_bar_is_the_product_of_the_alphas():
    schedule = NoiseSchedule(torch.tensor([0.1, 0.2, 0.3]))
    # alpha_bar = 0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7
    assert schedule.alpha_bar.tolist() == pytest.approx([0.9, 0.72, 0.504])
    linear = NoiseSchedule.linear(1000)
    assert linear.betas[0].item() == pytest.approx(1e-4) and linear.betas[-1] == 0.02
    expected, product = [], 1.0
    for beta in torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64).tolist():
        product *= 1 - beta
        expected.append(product)
    assert torch.allclose(linear.alpha_bar, torch.tensor(expected, dtype=torch.float64))


def test_cosine_alpha_bar_is_the_closed_form():
    n, s = 50, 0.008
    schedule = NoiseSchedule.cosine(n, s)

    def f(t):
        return math.cos((t / n + s) / (1 + s) * math.pi / 2) ** 2

    closed = torch.tensor([f(t) / f(0) for t in range(1, n + 1)], dtype=torch.float64)
    # index i is step t = i + 1; the last beta (alpha_bar(n) = 0) is capped at 0.999
    assert torch.allclose(schedule.alpha_bar[:-1], closed[:-1], rtol=1e-10, atol=1e-12)
    assert schedule.betas[-1].item() == pytest.approx(0.999)
    assert (schedule.betas[:-1] < 0.999).all() and (schedule.alpha_bar > 0).all()


def test_q_sample_is_the_formula():
    schedule = NoiseSchedule(torch.tensor([0.1, 0.2, 0.3]))
    x0 = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    noise = torch.tensor([[2.0, 1.0], [-1.0, 4.0]])
    t = torch.tensor([1, 0])  # alpha_bar 0.72 for the first sample, 0.9 for the second
    expected = torch.tensor([
        [math.sqrt(0.72) * 1 + math.sqrt(0.28) * 2, math.sqrt(0.72) * -2 + math.sqrt(0.28) * 1],
        [math.sqrt(0.9) * 3 + math.sqrt(0.1) * -1, math.sqrt(0.9) * 0.5 + math.sqrt(0.1) * 4],
    ])  # fmt: skip
    assert torch.allclose(schedule.q_sample(x0, t, noise), expected)


def perfect_eps_fn(x0: torch.Tensor, schedule: NoiseSchedule):
    """The noise that takes x0 to x_t: eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)."""

    def eps_fn(x_t, t):
        a = schedule.alpha_bar[t].float().reshape(-1, *[1] * (x_t.dim() - 1))
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    return eps_fn


def test_the_loss_of_a_perfect_predictor_is_zero():
    schedule = NoiseSchedule.linear(100)
    x0 = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0))
    loss = diffusion_loss(perfect_eps_fn(x0, schedule), x0, schedule, torch.Generator())
    assert loss.item() < 1e-8
    wrong = diffusion_loss(lambda x, t: torch.zeros_like(x), x0, schedule, torch.Generator())
    assert wrong.item() == pytest.approx(1.0, abs=0.5)  # E[eps^2] = 1


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_recovers_x0_from_a_perfect_predictor(eta):
    schedule = NoiseSchedule.linear(1000)
    x0 = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    sample = ddim_sample(
        perfect_eps_fn(x0, schedule), x0.shape, steps=10, eta=eta,
        generator=torch.Generator().manual_seed(2), schedule=schedule,
    )  # fmt: skip
    assert torch.allclose(sample, x0, atol=1e-4)


def test_ddim_at_eta_0_draws_no_noise():
    """The same starting noise and generators of different seeds: eta = 0 gives one answer,
    eta = 1 two (so the test would see noise drawn where eta = 0 says none)."""
    schedule = NoiseSchedule.linear(1000)
    x_T = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))

    def eps_fn(x, t):
        return 0.5 * x + 0.01 * t[:, None]

    def sample(eta, seed):
        return ddim_sample(eps_fn, x_T.shape, steps=20, eta=eta, schedule=schedule,
                           generator=torch.Generator().manual_seed(seed), noise=x_T)  # fmt: skip

    assert torch.equal(sample(0.0, 1), sample(0.0, 2))
    assert not torch.allclose(sample(1.0, 1), sample(1.0, 2))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_samples_the_data_distribution(eta):
    """Data x0 ~ N(mu, s^2): the exact eps predictor is known, E[eps | x_t] =
    sqrt(1 - a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a), and DDIM must draw N(mu, s^2) with it.
    (A perfect x0 predictor cannot test the update of x_t; this does.)"""
    schedule, mu, s = NoiseSchedule.linear(1000), 2.0, 0.5

    def eps_fn(x, t):
        a = schedule.alpha_bar[t].float()[:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s**2 + 1 - a)

    x = ddim_sample(eps_fn, (4000, 1), steps=100, eta=eta, schedule=schedule,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert x.mean().item() == pytest.approx(mu, abs=0.05)
    assert x.std().item() == pytest.approx(s, abs=0.03)


def test_timesteps_and_guidance():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1)) and ddim_timesteps(10, 1) == [9]
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(10, 11)
    cond, uncond = torch.tensor([3.0]), torch.tensor([1.0])
    assert guided_eps(cond, uncond, 1.0) == cond and guided_eps(cond, uncond, 0.0) == uncond
    assert guided_eps(cond, uncond, 2.0) == 5.0  # 1 + 2 (3 - 1)
    calls = []

    def fn(name):
        return lambda x, t: calls.append(name) or x

    guided(fn("cond"), fn("uncond"), 1.0)(torch.zeros(1), torch.zeros(1))
    assert calls == ["cond"]  # w = 1: the conditional model alone, one pass


def test_schedule_config():
    assert ScheduleConfig().build().num_steps == 1000
    assert ScheduleConfig(kind="cosine", num_steps=10).build().betas[-1] == pytest.approx(0.999)
    with pytest.raises(ConfigError, match="kind"):
        ScheduleConfig(kind="sigmoid")
    with pytest.raises(ConfigError, match="beta_end"):
        ScheduleConfig(beta_start=0.1, beta_end=0.01)
