"""The committed tokenizers (pretrained/, what chapter 5 loads by name) load and round-trip."""

import pytest
import torch
from occupancy_tokenizer.config import DEBUG_GRID
from occupancy_tokenizer.pretrained import PRETRAINED_DIR, load_tokenizer


@pytest.mark.parametrize("name", ["scene-debug", "multiscale-debug-znorm", "4d-debug-t2"])
def test_committed_tokenizer_loads_encodes_and_decodes(name):
    tokenizer, config = load_tokenizer(name)
    assert not tokenizer.training and (PRETRAINED_DIR / name / "metrics.json").exists()
    frames = config.fourd.frames if config.kind == "4d" else 0
    shape = (1, frames, *DEBUG_GRID) if frames else (1, *DEBUG_GRID)
    grid = torch.randint(0, 18, shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids = tokenizer.encode(grid)
        back = tokenizer.decode(ids)
    assert ids.dtype == torch.int64 and int(ids.min()) >= 0
    assert back.shape == grid.shape and int(back.max()) < 18  # class ids on the same grid
