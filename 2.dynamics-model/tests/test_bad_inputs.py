"""Chapter 2's bad inputs stop at start-up (sampling settings included, not at the first
evaluation), and a damaged token cache names its file."""

import pytest
import torch
from dynamics_model.experiment import PRESETS
from dynamics_model.tokens import _load_cache

from worldmodels.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("arg", "named"),
    [
        ("--temperature=-1", "temperature"),
        ("--top_p=0", "top_p"),
        ("--top_p=1.5", "top_p"),
        ("--maskgit_steps=0", "maskgit_steps"),
        ("--confidence_noise=-1", "confidence_noise"),
        ("--maskgit.heads=0", "heads"),
        ("--ar.dim=0", "dim"),
        ("--lam.mlp_ratio=0", "mlp_ratio"),
        ("--lam.action_levels=1,3", "action_levels"),
        ("--eval_clips=0", "eval_clips"),
        ("--rollout_clips=0", "rollout_clips"),
        ("--horizon=0", "horizon"),
        ("--clip_len=1", "clip_len"),
        ("--kind=diffusion", "kind"),
        ("--steps=-5", "steps"),
    ],
)
def test_config_values(arg, named):
    value = arg.split("=")[1].replace(",", ", ")
    with pytest.raises(ConfigError, match=rf"{named}.*{value.lstrip('-')}"):
        parse_config(PRESETS, [arg])


@pytest.mark.parametrize("content", [b"not a torch file", {"tokens": torch.zeros(2)}, [1, 2]])
def test_token_cache_file(tmp_path, content):
    path = tmp_path / "train.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match=rf"(?s)token cache {path} .*delete it"):
        _load_cache(path, ("tokens", "actions"))
