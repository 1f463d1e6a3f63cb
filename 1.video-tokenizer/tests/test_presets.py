"""Presets are short diffs of `debug`; what they build is what the full configs built before."""

import pytest
from video_tokenizer.config import PRESETS, Config, DataConfig
from video_tokenizer.model import TokenizerConfig

from worldmodels.config import RunConfig, to_dict

WIDE = dict(fsq_levels=(8, 8, 8, 5, 5, 5), max_frames=16)
# The presets as they were written out in full before they became diffs (a deliberate copy,
# the reference the diffs are checked against).
WRITTEN_OUT = {
    "debug": Config(
        model=TokenizerConfig(),
        run=RunConfig(steps=3000, batch_size=16, lr=2e-3, warmup_steps=100, eval_every=1000,
                      checkpoint_every=500),
    ),
    "prototype": Config(
        model=TokenizerConfig(patch=4, dim=256, heads=8, encoder_depth=8, decoder_depth=8,
                              **WIDE),
        data=DataConfig(atari_preset="full", clip_len=8, eval_clips=512),
        run=RunConfig(steps=50_000, batch_size=64, lr=1e-3, warmup_steps=1000, eval_every=5000,
                      checkpoint_every=5000, num_workers=4, compile=True),
    ),
    "paper": Config(
        model=TokenizerConfig(image_size=128, patch=8, dim=512, heads=16, encoder_depth=12,
                              decoder_depth=12, **WIDE),
        data=DataConfig(atari_preset="full", clip_len=16, eval_clips=512),
        run=RunConfig(steps=300_000, batch_size=32, lr=3e-4, warmup_steps=5000,
                      eval_every=10_000, checkpoint_every=5000, num_workers=8, compile=True),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(WRITTEN_OUT))
def test_each_preset_equals_its_written_out_config(name):
    assert to_dict(PRESETS[name]()) == to_dict(WRITTEN_OUT[name])


def test_presets_are_fresh_copies():
    first = PRESETS["prototype"]()
    first.model.dim = 1
    assert PRESETS["prototype"]().model.dim == 256 and PRESETS["debug"]().model.dim == 64
