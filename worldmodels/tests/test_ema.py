"""The weight average: its update is the stated formula; through the trainer it never changes
the training itself, evaluation sees it, and it survives an interruption and --resume; old
checkpoints (no EMA, no ema_decay key) still resume."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from worldmodels.checkpoint import CheckpointError, find_checkpoint, load_model
from worldmodels.config import ConfigError, RunConfig, parse_config
from worldmodels.ema import EMA
from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)
from worldmodels.tests.test_trainer import Config, Noisy, fit, mse

SHORT = dict(eval_every=5, checkpoint_every=5, log_every=5)  # 12-step runs


def test_the_update_is_the_formula():
    model = nn.Linear(2, 1)
    model.bias.requires_grad_(False)  # frozen: never changes, not kept
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    ema = EMA(model, decay=0.75)
    assert set(ema.shadow) == {"weight"}
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 2.0]]))
    ema.update(model)  # 0.75 * (1, -2) + 0.25 * (3, 2)
    assert torch.allclose(ema.shadow["weight"], torch.tensor([[1.5, -1.0]]))
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0]]))
    ema.update(model)  # 0.75 * (1.5, -1) + 0.25 * 0
    assert torch.allclose(ema.shadow["weight"], torch.tensor([[1.125, -0.75]]))


def test_applied_swaps_in_and_back_even_after_an_error():
    model = nn.Linear(3, 2)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        ema.shadow["weight"].fill_(7.0)
    with pytest.raises(RuntimeError, match="inside"), ema.applied(model):
        assert (model.weight == 7.0).all() and torch.equal(model.bias, own["bias"])
        raise RuntimeError("inside")
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items())
    assert (ema.shadow["weight"] == 7.0).all()


def weights(run_dir, name="model.safetensors"):
    return load_file(find_checkpoint(run_dir) / name)


def test_the_trainer_averages_evaluates_and_saves(tmp_path):
    """The same run with ema_decay 0 and 0.9: identical training weights (the average never
    leaks into training, though evaluations swap it in), the average saved, and evaluation
    run on it; with ema_decay 0 nothing of the EMA appears."""
    seen = {}

    def evaluate(model, step):
        seen[step] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"w": float(model.net[0].weight.sum())}

    fit(tmp_path, steps=12, name="plain", evaluate=evaluate, **SHORT)
    plain_seen = dict(seen)
    fit(tmp_path, steps=12, name="ema", evaluate=evaluate, ema_decay=0.9, **SHORT)
    plain, averaged = weights(tmp_path / "plain"), weights(tmp_path / "ema")
    assert plain.keys() == averaged.keys()
    assert all(torch.equal(plain[k], averaged[k]) for k in plain)
    assert not (find_checkpoint(tmp_path / "plain") / "ema.safetensors").exists()
    assert all(torch.equal(plain_seen[12][k], plain[k]) for k in plain)  # decay 0: the weights
    ema = weights(tmp_path / "ema", "ema.safetensors")
    assert ema.keys() == plain.keys()  # every parameter, none of them equal to the weights
    assert not any(torch.equal(ema[k], plain[k]) for k in ema)
    assert all(torch.equal(seen[12][k], ema[k]) for k in ema)  # evaluation saw the average
    loaded, _, _ = load_model(tmp_path / "ema", Config, lambda c: Noisy(), ema=True)
    assert all(torch.equal(v, ema[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(CheckpointError, match="no ema.safetensors"):
        load_model(tmp_path / "plain", Config, lambda c: Noisy(), ema=True)


def test_the_average_survives_an_interruption_and_resume(tmp_path):
    fit(tmp_path, steps=12, name="straight", ema_decay=0.9, **SHORT)
    calls = {"n": 0}

    def interrupted_at_step_8(model, batch):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return mse(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, steps=12, name="split", loss=interrupted_at_step_8, ema_decay=0.9, **SHORT)
    assert find_checkpoint(tmp_path / "split").name == "step_000008"
    fit(tmp_path, steps=12, name="split", resume=True, ema_decay=0.9, **SHORT)
    for name in ("model.safetensors", "ema.safetensors"):
        straight, split = weights(tmp_path / "straight", name), weights(tmp_path / "split", name)
        assert all(torch.equal(straight[k], split[k]) for k in straight), name


def test_old_checkpoints_resume(tmp_path):
    """A checkpoint from before the option (no ema_decay key, no ema.safetensors) resumes as
    it is; turning the EMA on needs --allow_config_change and starts it at the weights."""
    fit(tmp_path, steps=5, **SHORT)
    config_file = find_checkpoint(tmp_path / "run") / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["run"]["ema_decay"]
    config_file.write_text(json.dumps(saved))
    fit(tmp_path, steps=6, resume=True, **SHORT)
    with pytest.raises(ConfigError, match="run.ema_decay"):
        fit(tmp_path, steps=7, resume=True, ema_decay=0.9, **SHORT)
    with pytest.warns(UserWarning, match="no EMA weights"):
        fit(tmp_path, steps=7, resume=True, ema_decay=0.9, allow_config_change=True, **SHORT)
    assert (find_checkpoint(tmp_path / "run") / "ema.safetensors").exists()


def test_a_damaged_average_stops_the_resume(tmp_path):
    fit(tmp_path, steps=5, ema_decay=0.9, **SHORT)
    (find_checkpoint(tmp_path / "run") / "ema.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="ema.safetensors is corrupt"):
        fit(tmp_path, steps=6, resume=True, ema_decay=0.9, **SHORT)


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_ema_decay_range(value):
    with pytest.raises(ConfigError, match=r"RunConfig\.ema_decay=.*expected"):
        parse_config({"debug": Config}, [f"--ema_decay={value}"])
    assert RunConfig(ema_decay=0.9999).ema_decay == 0.9999
