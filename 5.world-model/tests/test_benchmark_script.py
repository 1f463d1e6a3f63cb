"""benchmark.py on tiny tokenizers: one row per kind (TENSFormer, AR, MaskGIT, DiT) with
training throughput and generation speed, the AR / TENSFormer ratio computed from the rows,
and the token counts of each model."""

import pytest
import torch

from worldmodels import testing
from worldmodels.config import ConfigError

from .test_train_script import CHAPTER


def small(multiscale_dir, scene_dir, fourd_dir) -> dict:
    return {"data.tokenizer": str(multiscale_dir), "data.single_scale_tokenizer": str(scene_dir),
            "data.fourd_tokenizer": str(fourd_dir),
            "model.dim": "32", "model.depth": "2", "model.heads": "4", "ar.dim": "32",
            "ar.depth": "2", "ar.heads": "4", "maskgit.dim": "32", "maskgit.depth": "2",
            "maskgit.heads": "4", "dit.dim": "32", "dit.depth": "2", "dit.heads": "4",
            "motion.bins": "3,3,3", "run.batch_size": "2", "run.dtype": "float32"}  # fmt: skip


def test_every_kind_side_by_side(tiny_tokenizer_dir, tiny_scene_tokenizer_dir,
                                 tiny_fourd_tokenizer_dir):  # fmt: skip
    benchmark = testing.load_script(CHAPTER, "benchmark")
    args = benchmark.Options(steps=1, warmup=0)
    overrides = small(tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tiny_fourd_tokenizer_dir)
    rows = benchmark.measure("debug", args, torch.device("cpu"), overrides)
    tens, ar, maskgit, dit = rows
    assert [row["kind"] for row in rows] == ["tensformer", "ar", "maskgit", "dit"]
    assert tens["tokens_per_frame"] == 1 + 4 + 16  # scales (1, 2, 4)
    assert ar["tokens_per_frame"] == maskgit["tokens_per_frame"] == 4 * 4  # a 4 x 4 grid
    assert dit["tokens_per_frame"] == 2 * 2  # a 4 x 4 latent at the debug preset's patch 2
    for row in rows:
        assert row["batch"] == 2 and row["step_GFLOP"] > 0 and row["steps_per_s"] > 0
        assert row["gen_ms_per_frame_b1"] > 0 and row["gen_ms_per_frame_bB"] > 0
    ratio = ar["gen_ms_per_frame_b1"] / tens["gen_ms_per_frame_b1"]
    assert ar["ar_over_tensformer_b1"] == round(ratio, 2)


def test_random_clips_have_the_shape_train_py_feeds(tiny_tokenizer_dir, tiny_scene_tokenizer_dir,
                                                    tiny_fourd_tokenizer_dir):  # fmt: skip
    benchmark = testing.load_script(CHAPTER, "benchmark")
    overrides = small(tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tiny_fourd_tokenizer_dir)
    for kind, L in (("tensformer", 21), ("ar", 16), ("maskgit", 16)):
        config, _ = benchmark.completed("debug", kind, overrides, "cpu")
        clips = benchmark.random_clips(config, 3, "cpu")
        assert clips["ids"].shape == (3, 11, L) and clips["motions"].shape == (3, 10)
        assert int(clips["motions"].max()) < 27  # bins 3 x 3 x 3
    config, _ = benchmark.completed("debug", "dit", overrides, "cpu")
    clips = benchmark.random_clips(config, 3, "cpu")  # what LatentClips.batch gives
    assert clips["past"].shape == clips["target"].shape == (3, 4, 4, 4)
    assert clips["trajectory"].shape == (3, 7, 3) and int(clips["target"].max()) < 16


def test_bad_kinds_and_keys_are_refused():
    benchmark = testing.load_script(CHAPTER, "benchmark")
    with pytest.raises(ConfigError, match="kinds"):
        benchmark.main(["--kinds=tensformer,diffusion"])
    with pytest.raises(ConfigError, match="unknown config key 'model.dimm'.*'model.dim'"):
        benchmark.main(["--presets=debug", "--model.dimm=3"])
