"""The committed tokenizer (pretrained/debug, what chapter 5 reads) loads and tokenizes."""

import torch
from lidar_tokenizer.build import load_run
from lidar_tokenizer.config import CHAPTER_DIR
from lidar_tokenizer.data import SyntheticSweeps
from lidar_tokenizer.sweeps import points_of, returns


def test_pretrained_debug_loads_and_round_trips():
    model, config, _ = load_run(CHAPTER_DIR / "pretrained" / "debug")
    assert model.token_grid == (16, 16) and model.codebook_size == 256
    item = SyntheticSweeps("val")[0]
    sweep = points_of(returns(item["range"], item["dirs"]))  # (P, 3) metres
    with torch.no_grad():
        ids = model.encode([sweep])  # (1, h, w)
        again = model.encode([sweep])
    assert ids.shape == (1, 16, 16) and ids.dtype == torch.int64
    assert int(ids.max()) < 256 and torch.equal(ids, again)  # eval mode: no restarts, no noise
    assert (CHAPTER_DIR / "pretrained" / "debug" / "metrics.json").exists()
