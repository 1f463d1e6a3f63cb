"""load_model rebuilds a model from its checkpoint's own config and names the file it can't read."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from worldmodels.checkpoint import CheckpointError, load_model, save_checkpoint
from worldmodels.config import to_dict


@dataclass
class NetConfig:
    width: int = 3


@dataclass
class RunOf:
    model: NetConfig = field(default_factory=NetConfig)
    seed: int = 0


def build(config: NetConfig) -> nn.Module:
    return nn.Sequential(nn.Linear(2, config.width), nn.Dropout(0.5))


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    model = build(NetConfig(width=5))
    save_checkpoint(tmp_path, 7, model, None, to_dict(RunOf(NetConfig(width=5))))
    return tmp_path, model


def test_whole_config_or_one_section(run_dir):
    folder, saved = run_dir
    model, config, step_dir = load_model(folder, NetConfig, build, section="model")
    assert config == NetConfig(width=5) and step_dir.name == "step_000007"
    assert not model.training  # eval mode: dropout off
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 saved.state_dict().values()))  # fmt: skip
    model, run, _ = load_model(step_dir, RunOf, lambda c: build(c.model))
    assert run == RunOf(NetConfig(width=5)) and model[0].out_features == 5


def test_a_config_of_another_kind_names_the_file(run_dir):
    folder, _ = run_dir
    with pytest.raises(CheckpointError, match=r"config\.json has no 'net' section"):
        load_model(folder, NetConfig, build, section="net")
    with pytest.raises(CheckpointError, match=r"config\.json is not a NetConfig.*seed"):
        load_model(folder, NetConfig, build)  # the whole run config is not a model config
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_model(folder, NetConfig, lambda c: build(NetConfig(width=4)), section="model")
