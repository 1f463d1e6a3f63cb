"""The committed tokenizer loads from its own config, and a folder of another kind says why not."""

import json

import pytest
import torch
from video_tokenizer import TokenizerConfig, VideoTokenizer
from video_tokenizer.pretrained import PRETRAINED_DIR, load_tokenizer

from worldmodels.checkpoint import CheckpointError


def test_the_committed_tokenizer_loads_in_eval_mode():
    model, config = load_tokenizer()
    saved = json.loads((PRETRAINED_DIR / "config.json").read_text())["model"]
    assert isinstance(model, VideoTokenizer) and not model.training
    assert config == TokenizerConfig(**saved)
    frames = torch.rand(1, 1, 3, config.image_size, config.image_size)
    with torch.no_grad():
        ids = model.encode(frames)
    assert ids.shape == (1, *model.tokens_shape(1)) and ids.max() < model.codebook_size


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_tokenizer(tmp_path / "nothing")
