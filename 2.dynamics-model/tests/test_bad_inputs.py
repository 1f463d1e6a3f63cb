"""Chapter 2's bad inputs stop at start-up (sampling settings included, not at the first
evaluation), and a damaged token cache names its file."""

import pytest
import torch
from dynamics_model.config import PRESETS
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
        ("--context_frames=4", "context_frames"),  # debug clips are 4 frames: at most 3
        ("--kind=diffusion", "kind"),
        ("--steps=-5", "steps"),
    ],
)
def test_config_values(arg, named):
    value = arg.split("=")[1].replace(",", ", ")
    with pytest.raises(ConfigError, match=rf"{named}.*{value.lstrip('-')}"):
        parse_config(PRESETS, [arg])


def test_sizes_the_tokenizer_decides_are_not_overrides():
    with pytest.raises(ConfigError, match="maskgit.vocab_size is set from the tokenizer"):
        parse_config(PRESETS, ["--maskgit.vocab_size=5"])
    with pytest.raises(ConfigError, match="lam.max_frames is set from data.clip_len"):
        parse_config(PRESETS, ["--lam.max_frames=5"])


@pytest.mark.parametrize("content", [b"not a torch file", {"tokens": torch.zeros(2)}, [1, 2]])
def test_token_cache_file(tmp_path, content):
    path = tmp_path / "train.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match=rf"(?s)token cache {path} .*delete it"):
        _load_cache(path, ("tokens", "actions"))
