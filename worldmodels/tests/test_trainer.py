"""The shared training loop: loss falls, resume is exact, interruption loses nothing."""

import json
from dataclasses import dataclass, field

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from worldmodels.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from worldmodels.config import RunConfig, to_dict
from worldmodels.runlog import read_log
from worldmodels.runtime import setup_runtime
from worldmodels.schedule import warmup_cosine
from worldmodels.trainer import StepSampler, train


class LinearData(Dataset):
    """y = x @ w_true + noise: a problem whose loss must fall under any working loop."""

    def __init__(self, n=256, dim=8):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, dim, generator=g)
        self.y = self.x @ torch.randn(dim, 1, generator=g) + 0.01 * torch.randn(n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


class Noisy(nn.Module):
    """A model whose loss also draws random numbers, so RNG state must be restored on resume."""

    def __init__(self, dim=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.GELU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x + 0.01 * torch.randn_like(x))


def mse(model, batch):
    loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
    return loss, {"mse": loss.detach()}


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)


def fit(tmp_path, steps, resume=False, name="run", evaluate=None, loss=mse, **run_kw):
    torch.manual_seed(0)
    model = Noisy()
    settings = dict(lr=3e-2, warmup_steps=5, log_every=5, eval_every=10, checkpoint_every=10)
    run = RunConfig(
        steps=steps, batch_size=16, resume=resume, progress=False, **{**settings, **run_kw}
    )
    runtime = setup_runtime("cpu", "float32", seed=run.seed)
    if resume:  # a resumed process starts from a different RNG state than the original
        torch.manual_seed(12345)
    result = train(
        model,
        loss,
        LinearData(),
        run,
        runtime,
        tmp_path / name,
        to_dict(Config(run)),
        evaluate=evaluate,
    )
    return model, result


def test_loss_falls_and_log_is_written(tmp_path):
    evaluations = []

    def evaluate(model, step):
        evaluations.append(step)
        data = LinearData()
        return {"mse": ((model(data.x) - data.y) ** 2).mean()}

    model, result = fit(tmp_path, steps=60, evaluate=evaluate)
    log = read_log(tmp_path / "run" / "log.jsonl")
    train_losses = [r["loss"] for r in log if "loss" in r]
    assert train_losses[-1] < 0.2 * train_losses[0]
    assert evaluations == [10, 20, 30, 40, 50, 60]
    assert result["eval/mse"] < 0.1 * (LinearData().y ** 2).mean()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["run"]["steps"] == 60 and "git_commit" in info


def test_resume_continues_exactly(tmp_path):
    straight, _ = fit(tmp_path, steps=20, name="straight")
    calls = {"n": 0}

    def interrupted_at_step_13(model, batch):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt
        return mse(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, steps=20, name="split", loss=interrupted_at_step_13)
    resumed, result = fit(tmp_path, steps=20, name="split", resume=True)
    assert result["step"] == 20
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    # the optimizer state saved at the end matches too
    opt_a = torch.load(find_checkpoint(tmp_path / "straight") / "optimizer.pt", weights_only=True)
    opt_b = torch.load(find_checkpoint(tmp_path / "split") / "optimizer.pt", weights_only=True)
    for sa, sb in zip(opt_a["optimizer"]["state"].values(), opt_b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_interrupt_saves_the_current_step(tmp_path):
    calls = {"n": 0}

    def interrupting_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return mse(model, batch)

    run = RunConfig(steps=50, batch_size=4, checkpoint_every=100, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(
            Noisy(),
            interrupting_loss,
            LinearData(),
            run,
            setup_runtime("cpu", "float32"),
            tmp_path / "r",
            {},
        )
    state = json.loads((find_checkpoint(tmp_path / "r") / "state.json").read_text())
    assert state["step"] == 7  # seven steps finished before the eighth was interrupted


def test_fresh_run_keeps_an_old_run_folder(tmp_path):
    fit(tmp_path, steps=10)
    fit(tmp_path, steps=10)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run-")]
    assert len(kept) == 1 and (kept[0] / "checkpoints").is_dir()


def test_checkpoint_round_trip_and_corruption(tmp_path):
    model = Noisy()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 8)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path, 3, model, opt, {"a": 1}, keep=2)
    for step in (4, 5):
        save_checkpoint(tmp_path, step, model, opt, {"a": 1}, keep=2)
    assert not path.exists() and find_checkpoint(tmp_path).name == "step_000005"
    weights = load_file(find_checkpoint(tmp_path) / "model.safetensors")
    assert torch.equal(weights["net.0.weight"], model.net[0].weight)

    other = Noisy()
    state = load_checkpoint(tmp_path, other, torch.optim.AdamW(other.parameters()))
    assert state["step"] == 5 and torch.equal(other.net[0].weight, model.net[0].weight)

    (find_checkpoint(tmp_path) / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path, Noisy())
    with pytest.raises(CheckpointError, match="does not fit"):
        save_checkpoint(tmp_path, 6, nn.Linear(3, 3), None, {})
        load_checkpoint(tmp_path, Noisy())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        find_checkpoint(tmp_path / "nowhere")
    (find_checkpoint(tmp_path) / "model.safetensors").unlink()
    # the newest step is incomplete: the newest complete one is used, with a warning
    with pytest.warns(CheckpointWarning, match="step_000006 .* incomplete"):
        assert find_checkpoint(tmp_path).name == "step_000005"
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError, match="step_000005/m"):
        load_checkpoint(tmp_path, Noisy())


def test_step_sampler_is_a_function_of_the_step():
    whole = list(StepSampler(100, 4, seed=1, rank=0, start=0, stop=10))
    tail = list(StepSampler(100, 4, seed=1, rank=0, start=6, stop=10))
    assert whole[6:] == tail
    # two ranks of batch 4 take the two halves of one process's batch of 8
    halves = [list(StepSampler(100, 4, 1, rank, 0, 10, world_size=2)) for rank in (0, 1)]
    single = list(StepSampler(100, 8, seed=1, rank=0, start=0, stop=10))
    assert [a + b for a, b in zip(*halves)] == single and halves[0] != halves[1]
    with pytest.raises(ValueError, match="empty"):
        StepSampler(0, 4, 0, 0, 0, 1)


def test_warmup_cosine_shape():
    lrs = [warmup_cosine(s, 1.0, 10, 110, 0.1) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)  # halfway through the decay: (1 + 0.1) / 2
    assert warmup_cosine(110, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
