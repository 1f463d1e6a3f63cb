"""The DiT: adaLN-Zero starts as the identity (and the model at eps = 0), patches go back where
they came from, the trajectory condition is dropped when (and only when) it should be, and
guidance mixes the two predictions. Tiny sizes: C = 3, T = 2, H = W = 4, D = 24."""

import pytest
import torch
from torch import nn
from world_model.dit import DiT, DiTBlock, DiTConfig, eps_fn, patchify, unpatchify

from worldmodels.config import ConfigError

B, C, T, H, W, TRAJ = 3, 3, 2, 4, 4, 5


def tiny(seed: int = 0, **sizes) -> DiT:
    torch.manual_seed(seed)
    sizes = dict(channels=C, traj_len=TRAJ, dim=24, depth=2, heads=4, freq_dim=16) | sizes
    return DiT(DiTConfig(**sizes))


def lively(model: DiT) -> DiT:
    """The model with its zero-initialised layers drawn at random: at init its output is 0
    whatever the input, so no dependence on the trajectory could be seen."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and not module.weight.any():
                module.weight.normal_(0, 0.3)
                module.bias.normal_(0, 0.3)
    return model


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, T, H, W, generator=g)
    t = torch.randint(1000, (B,), generator=g)
    return x, t, torch.randn(B, TRAJ, 3, generator=g), torch.randn(B, TRAJ, 3, generator=g)


def test_a_block_starts_as_the_identity():
    block = DiTBlock(dim=24, heads=4, mlp_ratio=4.0)
    x, c = torch.randn(2, 7, 24), torch.randn(2, 24)
    assert torch.equal(block(x, c), x)  # every gate is 0: both residual branches are closed
    with torch.no_grad():
        block.ada[1].weight.normal_()
    assert not torch.allclose(block(x, c), x)  # ... and it is the gates that close them


def test_the_model_starts_at_eps_zero():
    model = tiny().eval()
    x, t, traj, _ = inputs()
    out = model(x, t, traj)
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(x))


def test_patchify_round_trip_and_layout():
    x = torch.randn(B, C, T, 6, 4)
    tokens = patchify(x, 2)  # h, w = 3, 2: N = 6 tokens a frame
    assert tokens.shape == (B, T * 6, 2 * 2 * C)
    assert torch.equal(unpatchify(tokens, T, 3, 2), x)
    # token t*N + y*w + x holds the p x p cells of frame t at (y, x), channels last
    patch = x[:, :, 1, 2:4, 2:4]  # frame 1, token row 1, column 1: (B, C, p, p)
    assert torch.equal(tokens[:, 6 + 1 * 2 + 1], patch.permute(0, 2, 3, 1).reshape(B, -1))
    model = lively(tiny(patch=2)).eval()
    assert model(x, torch.zeros(B, dtype=torch.long), None).shape == x.shape


def test_the_trajectory_conditions_the_output():
    model = lively(tiny(cond_drop=0.0)).train()
    x, t, traj_a, traj_b = inputs()
    assert not torch.allclose(model(x, t, traj_a), model(x, t, traj_b))


def test_dropout_with_p_1_removes_the_trajectory():
    model = lively(tiny(cond_drop=1.0)).train()
    x, t, traj_a, traj_b = inputs()
    dropped = model(x, t, traj_a)
    assert torch.equal(dropped, model(x, t, traj_b))
    assert torch.equal(dropped, model(x, t, None))  # the null embedding: unconditional
    model.eval()  # no dropping at evaluation, whatever cond_drop says
    assert not torch.allclose(model(x, t, traj_a), model(x, t, traj_b))


def test_dropout_is_per_clip_and_forced_drops_are_unconditional():
    model = lively(tiny(cond_drop=0.5)).train()
    x, t, traj, _ = inputs()
    torch.manual_seed(0)
    draws = [model.dropped(1000, None, "cpu").float().mean().item() for _ in range(3)]
    assert all(0.4 < d < 0.6 for d in draws)
    model.eval()
    forced = model(x, t, traj, drop=torch.tensor([True, False, True]))
    uncond, cond = model(x, t, None), model(x, t, traj)
    assert torch.equal(forced[0], uncond[0]) and torch.equal(forced[2], uncond[2])
    assert torch.equal(forced[1], cond[1]) and not torch.allclose(forced[1], uncond[1])


def test_guidance_mixes_the_conditional_and_unconditional_predictions():
    model = lively(tiny()).eval()
    x, t, traj, _ = inputs()
    cond, uncond = model(x, t, traj), model(x, t, None)
    assert torch.equal(eps_fn(model, traj, 1.0)(x, t), cond)
    assert torch.allclose(eps_fn(model, traj, 0.0)(x, t), uncond)
    assert torch.allclose(eps_fn(model, traj, 3.0)(x, t), uncond + 3 * (cond - uncond), atol=1e-5)


def test_refusals():
    model = tiny().eval()
    x, t, traj, _ = inputs()
    with pytest.raises(ValueError, match="trajectory"):
        model(x, t, traj[:, :-1])
    with pytest.raises(ValueError, match="channels"):
        model(x[:, :2], t, traj)
    with pytest.raises(ValueError, match="patch=3"):
        tiny(patch=3)(x, t, traj)
    with pytest.raises(ConfigError, match="heads"):
        DiTConfig(dim=24, heads=5)
    with pytest.raises(ConfigError, match="cond_drop"):
        DiTConfig(cond_drop=1.5)
