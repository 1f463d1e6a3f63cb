"""train.py and validate.py end to end on a tiny Atari recording and a tiny tokenizer.

The tokenizer has random weights (its tokens are still a fixed function of each frame, which
is all the dynamics models need here); the recording is two games, a few dozen steps each,
at 32x32, so a 4x4 token grid with K = 16 codes.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from dynamics_model.evaluate import random_future_actions
from dynamics_model.tokens import TokenClips, load_tokenizer, tokenize_frames
from video_tokenizer.model import TokenizerConfig, VideoTokenizer

from worldmodels import testing
from worldmodels.checkpoint import CheckpointError, save_checkpoint
from worldmodels.config import ConfigError, to_dict
from worldmodels.data import atari
from worldmodels.data.atari import AtariClips, AtariConfig
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent
TINY_ATARI = AtariConfig(
    games=("Pong", "Breakout"),
    heldout_game=None,
    train_episodes=2,
    val_episodes=1,
    max_steps=40,
    frame_size=32,
)


def load_script(name):
    return testing.load_script(CHAPTER, name)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(tokenizer folder, data root) with the "tiny" Atari preset registered meanwhile."""
    root = tmp_path_factory.mktemp("ch2")
    torch.manual_seed(0)
    model_config = TokenizerConfig(
        image_size=32, patch=8, dim=16, heads=2, encoder_depth=1, decoder_depth=1,
        fsq_levels=(4, 4), max_frames=4,
    )  # fmt: skip
    tokenizer = VideoTokenizer(model_config)
    torch.nn.init.normal_(tokenizer.head.proj.weight, std=0.1)  # decode to varied frames
    config = {"model": to_dict(model_config)}  # the section a tokenizer is loaded from
    save_checkpoint(root / "tokenizer", 0, tokenizer, None, config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(atari.PRESETS, "tiny", TINY_ATARI)
        yield root / "tokenizer", root / "data"


def tiny_args(world, out, kind):
    tokenizer, data = world
    return [
        f"--kind={kind}", f"--tokenizer={tokenizer}", f"--root={data}", "--atari_preset=tiny",
        f"--out_dir={out}", "--progress=false", "--batch_size=8", "--lr=3e-3",
        "--warmup_steps=5", "--log_every=5", "--eval_clips=16", "--rollout_clips=4",
        "--horizon=2", "--maskgit.dim=32", "--maskgit.depth=1", "--maskgit.heads=2",
        "--ar.dim=32", "--ar.depth=1", "--ar.heads=2", "--lam.dim=32", "--lam.heads=2",
        "--encoder_depth=1", "--decoder_depth=1", "--maskgit_steps=2",
    ]  # fmt: skip


def test_token_clips_match_frames_and_cache(world):
    tokenizer_dir, data = world
    clips = TokenClips("val", 3, tokenizer_dir, "tiny", with_frames=True, root=data)
    frames = AtariClips("val", 3, TINY_ATARI, root=data / "atari", progress=False)
    # both leave out the same held-out clips that repeat a training window (worldmodels.data
    # .leakage), so item i is the same clip in both
    all_clips = sum(n - 2 for n in frames.episode_lengths)
    assert len(clips) == len(frames) == all_clips - frames.duplicates_dropped
    assert clips.duplicates_dropped == frames.duplicates_dropped
    tokenizer, _ = load_tokenizer(tokenizer_dir)
    for i in range(len(clips)):
        assert torch.equal(clips[i]["actions"], frames[i]["actions"])
    for i in (0, len(clips) - 1):
        item, truth = clips[i], frames[i]
        assert torch.equal(item["frames"], truth["frames"])
        assert torch.equal(item["actions"], truth["actions"])
        assert item["game"] == truth["game"]
        assert item["tokens"].shape == (3, 4, 4) and item["tokens"].dtype == torch.int64
        assert torch.equal(item["tokens"], tokenize_frames(tokenizer, truth["frames"]))
    # the cache holds tensors only, and a second dataset reads it instead of re-tokenising
    cache = torch.load(clips.cache_file, weights_only=True)
    assert cache["tokens"].shape[0] == sum(frames.episode_lengths)
    stamp = clips.cache_file.stat().st_mtime_ns
    again = TokenClips("val", 5, tokenizer_dir, "tiny", root=data)
    assert again.cache_file == clips.cache_file and stamp == clips.cache_file.stat().st_mtime_ns
    assert torch.equal(again[0]["tokens"][:3], clips[0]["tokens"])


def test_random_future_actions_keep_context_and_game_sets():
    actions = torch.zeros(2, 6, dtype=torch.long)
    games = torch.tensor([0, 1])
    sets = {0: torch.tensor([3, 4]), 1: torch.tensor([7])}
    shuffled = random_future_actions(actions, games, sets, past=3)
    assert torch.equal(shuffled[:, :2], actions[:, :2])  # actions between context frames
    assert set(shuffled[0, 2:].tolist()) <= {3, 4} and shuffled[1, 2:].tolist() == [7] * 4


@pytest.mark.parametrize("kind", ["maskgit", "ar", "lam"])
def test_train_then_validate(world, tmp_path, kind):
    out = tmp_path / kind
    result = load_script("train").main([*tiny_args(world, out, kind), "--steps=40"])
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses[-1] < 0.8 * losses[0], losses
    assert result["step"] == 40
    assert json.loads((out / "run.json").read_text())["config"]["kind"] == kind

    results = tmp_path / "results"
    metrics = load_script("validate").main(
        [str(out), "--clips=16", "--rollout_clips=4", "--horizon=3", "--device=cpu",
         f"--results={results}"]
    )  # fmt: skip
    saved = json.loads((out / "validation" / "metrics.json").read_text())
    assert saved["kind"] == kind
    committed = json.loads((results / f"{kind}.json").read_text())
    assert committed["trained_by"] and committed["checkpoint"] == saved["checkpoint"]
    if kind == "lam":
        assert 0 <= saved["nmi"] <= 1 and 0 <= saved["nmi_chance"] <= 1
        low, high = saved["nmi_minus_chance_ci_low"], saved["nmi_minus_chance_ci_high"]
        assert low <= saved["nmi_minus_chance"] <= high
        assert (out / "validation" / "lam_confusion.png").exists()
        return
    expected = ["tf_temporal_ce_nats", "tf_temporal_ce_bits", "tf_temporal_accuracy"]
    expected += ["tf_full_ce_nats", "unigram_ce_nats", "previous_frame_ce_nats", "delta_psnr"]
    expected += ["tf_action_gain_nats", "copy_last_token_accuracy", "tokenizer_psnr_h1"]
    expected += [f"{name}_h{k}" for name in ("rollout_psnr", "copy_last_psnr") for k in (1, 3)]
    # every claimed difference carries its interval
    for name in (
        "delta_psnr",
        "tf_action_gain_nats",
        "rollout_minus_copy_tokens_psnr_h1",
        "tf_temporal_minus_unigram_nats",
        "tf_temporal_minus_previous_frame_nats",
    ):
        expected += [name, f"{name}_ci_low", f"{name}_ci_high"]
        assert saved[f"{name}_ci_low"] <= saved[name] <= saved[f"{name}_ci_high"]
    assert set(expected) <= set(saved) and "rollout_psnr_h4" not in saved
    assert saved["tf_temporal_ce_bits"] == pytest.approx(
        saved["tf_temporal_ce_nats"] / 0.693147, rel=1e-3
    )
    assert saved["ms_per_frame"] > 0
    # training must have learned something: below the uniform ln K = ln 16 = 2.77 nats
    assert saved["tf_full_ce_nats"] < 2.7
    for name in ("rollout.png", "rollout.gif", "psnr_vs_horizon.png"):
        assert (out / "validation" / name).exists()
    assert metrics[f"{out.name} ({kind})"]["kind"] == kind


def test_bad_kind_key_and_paths(world, tmp_path):
    train = load_script("train").main
    with pytest.raises(ConfigError, match="kind='diffusion': expected one of"):
        train([*tiny_args(world, tmp_path / "x", "diffusion"), "--steps=1"])
    with pytest.raises(ConfigError, match="unknown config key 'stepz'"):
        train([*tiny_args(world, tmp_path / "x", "ar"), "--stepz=3"])
    with pytest.raises(ConfigError, match="ar.vocab_size is set from the tokenizer"):
        train([*tiny_args(world, tmp_path / "x", "ar"), "--ar.vocab_size=5"])
    missing = tmp_path / "no-tokenizer"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        train([*tiny_args(world, tmp_path / "x", "ar"), f"--tokenizer={missing}"])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_script("validate").main([str(tmp_path / "nothing")])


def test_games_filter_keeps_only_those_games_and_matches_frames(world):
    tokenizer_dir, data = world
    clips = TokenClips("train", 3, tokenizer_dir, "tiny", with_frames=True, root=data,
                       games=["Breakout"])  # fmt: skip
    frames = AtariClips("train", 3, TINY_ATARI, root=data / "atari", games=["Breakout"],
                        progress=False)  # fmt: skip
    breakout = TINY_ATARI.game_names.index("Breakout")
    assert (
        0
        < len(clips)
        == len(frames)
        < len(TokenClips("train", 3, tokenizer_dir, "tiny", root=data))
    )
    assert set(clips.clip_games().tolist()) == {breakout}
    for i in (0, len(clips) - 1):
        assert torch.equal(clips[i]["frames"], frames[i]["frames"])
        assert clips[i]["game"] == breakout
    with pytest.raises(ValueError, match="unknown games"):
        TokenClips("train", 3, tokenizer_dir, "tiny", root=data, games=["Tetris"])


@pytest.fixture(scope="module")
def compressed_world(world):
    """A tokenizer with temporal compression t = 2 beside the per-frame one: 5 frames -> 3."""
    tokenizer_dir, data = world
    torch.manual_seed(0)
    model_config = TokenizerConfig(
        image_size=32, patch=8, dim=16, heads=2, encoder_depth=1, decoder_depth=1,
        fsq_levels=(4, 4), max_frames=5, temporal_compression=2,
    )  # fmt: skip
    tokenizer = VideoTokenizer(model_config)
    torch.nn.init.normal_(tokenizer.head.proj.weight, std=0.1)
    folder = tokenizer_dir.parent / "tokenizer-t2"
    save_checkpoint(folder, 0, tokenizer, None, {"model": to_dict(model_config)})
    return folder, data


def test_compressed_clips_are_whole_clips_tokenised_at_once(compressed_world):
    from dynamics_model.compressed_tokens import CompressedTokenClips

    tokenizer_dir, data = compressed_world
    clips = CompressedTokenClips("val", 5, tokenizer_dir, "tiny", with_frames=True, root=data)
    frames = AtariClips("val", 5, TINY_ATARI, root=data / "atari", progress=False)
    assert len(clips) == len(frames)
    tokenizer, _ = load_tokenizer(tokenizer_dir)
    for i in (0, len(clips) - 1):
        item = clips[i]
        assert item["tokens"].shape == (3, 4, 4)  # 1 + 2*2 frames -> 1 + 2 latent frames
        assert torch.equal(item["tokens"], tokenizer.encode(frames[i]["frames"][None])[0])
        assert torch.equal(item["frame_actions"], frames[i]["actions"])


def test_ar_trains_and_validates_on_compressed_tokens(compressed_world, tmp_path):
    tokenizer_dir, data = compressed_world
    out = tmp_path / "ar-t2"
    args = tiny_args((tokenizer_dir, data), out, "ar")
    load_script("train").main([*args, "--clip_len=5", "--steps=40"])
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["ar"]["use_actions"] is False and config["ar"]["max_frames"] == 3
    load_script("validate").main([str(out), "--clips=16", "--rollout_clips=4", "--device=cpu"])
    saved = json.loads((out / "validation" / "metrics.json").read_text())
    assert saved["tf_full_ce_nats"] < 2.7  # learned: below the uniform ln 16
    assert saved["tf_temporal_minus_unigram_nats_ci_low"] <= saved["tf_temporal_minus_unigram_nats"]
    assert {"unigram_ce_nats", "rollout_psnr_h1", "rollout_psnr_h2", "tokenizer_psnr_h2"} <= set(
        saved
    )
    assert "rollout_psnr_h3" not in saved  # the last latent frame stands for t = 2 frames
    train = load_script("train").main
    with pytest.raises(ConfigError, match="only kind=ar"):
        train([*tiny_args((tokenizer_dir, data), tmp_path / "m", "maskgit"), "--clip_len=5"])
    with pytest.raises(ConfigError, match="1 \\+ t\\*k frames"):
        train([*args, "--clip_len=4", "--steps=1"])


def test_paired_difference_between_two_runs(world, tmp_path):
    """Two runs scored on the same clips: the second gets `<score>_minus_first` with an
    interval, and a run compared with itself differs by exactly 0."""
    out = tmp_path / "maskgit"
    load_script("train").main([*tiny_args(world, out, "maskgit"), "--steps=5"])
    twin = tmp_path / "twin"
    shutil.copytree(out, twin)
    results = load_script("validate").main(
        [str(out), str(twin), "--clips=16", "--rollout_clips=4", "--horizon=2", "--device=cpu",
         f"--results={tmp_path / 'results'}"]
    )  # fmt: skip
    second = list(results.values())[-1]
    for key in ("tf_temporal_ce_nats_minus_first", "rollout_psnr_minus_first"):
        assert second[key] == 0 and second[f"{key}_ci_low"] == second[f"{key}_ci_high"] == 0
    assert (tmp_path / "results" / "paired-maskgit-vs-twin.json").exists()


def test_making_the_token_cache_leaves_the_global_random_state_alone(world, tmp_path):
    """A run that has to make the cache must train exactly like one that finds it: making it
    (which builds the tokenizer) must not draw from torch's global generator."""
    tokenizer_dir, _ = world
    atari.ensure_recorded(TINY_ATARI, tmp_path / "atari", progress=False)  # no token cache yet
    state = torch.get_rng_state()
    clips = TokenClips("train", 3, tokenizer_dir, "tiny", root=tmp_path, progress=False)
    assert clips.cache_file.exists() and clips.cache_file.is_relative_to(tmp_path)
    assert torch.equal(torch.get_rng_state(), state)
