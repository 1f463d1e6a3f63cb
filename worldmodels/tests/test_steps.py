"""optimizer_step: the one update the trainer and the benchmarks run."""

import contextlib
import copy

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from worldmodels.checkpoint import find_checkpoint, read_state
from worldmodels.steps import LossModule, StepPosition, optimizer_step
from worldmodels.tests.test_faults import optimizer_steps
from worldmodels.tests.test_trainer import fit


def squared(model, batch):
    loss = (model(batch) ** 2).sum()
    return loss, {"out": loss.detach()}


def test_one_step_clips_by_the_global_norm_and_returns_tensors():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    reference = copy.deepcopy(model)
    batch = 10 * torch.randn(8, 4)  # large gradients: clipping must act
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(enabled=False)
    position = StepPosition(in_step=True)
    loss, metrics = optimizer_step(LossModule(model, squared), optimizer, scaler, batch, 1.0,
                                   contextlib.nullcontext(), position)  # fmt: skip
    assert isinstance(loss, torch.Tensor) and not loss.requires_grad
    assert set(metrics) == {"out", "grad_norm"} and isinstance(metrics["grad_norm"], torch.Tensor)
    assert position.updating  # set before the update; the caller clears it
    assert all(p.grad is None for p in model.parameters())  # gradients freed
    # By hand: g <- g * min(1, 1 / ||g||) over both tensors, then w <- w - lr * g.
    squared(reference, batch)[0].backward()
    grads = [p.grad for p in reference.parameters()]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    assert metrics["grad_norm"] == pytest.approx(norm.item(), rel=1e-5) and norm > 1
    for p, q, g in zip(model.parameters(), reference.parameters(), grads):
        assert torch.allclose(p, q - 0.1 * g / (norm + 1e-6), atol=1e-6)


def test_no_clipping_no_grad_norm():
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _, metrics = optimizer_step(LossModule(model, squared), optimizer,
                                torch.amp.GradScaler(enabled=False), torch.randn(2, 4), 0.0,
                                contextlib.nullcontext())  # fmt: skip
    assert set(metrics) == {"out"}


def test_an_error_inside_the_update_saves_no_half_updated_weights(tmp_path, capsys):
    calls = {"n": 0}

    def fail_after_the_14th_update(optimizer, args, kwargs):
        calls["n"] += 1
        if calls["n"] == 14:  # the weights of step 14 are written, the step is not counted
            raise RuntimeError("device lost")

    handle = register_optimizer_step_post_hook(fail_after_the_14th_update)
    try:
        with pytest.raises(RuntimeError, match="device lost"):
            fit(tmp_path, steps=20, checkpoint_every=10)
    finally:
        handle.remove()
    step_dir = find_checkpoint(tmp_path / "run")
    assert read_state(step_dir)["step"] == 10 == optimizer_steps(step_dir)  # not 13
    assert "half-updated, not saved" in capsys.readouterr().out
