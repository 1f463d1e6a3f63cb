"""Atari recording and clips, on tiny recordings (1 training game, 30 steps) in tmp folders."""

import dataclasses
import hashlib
import json
import os
import time

import numpy as np
import pytest
import torch

from worldmodels.data import atari
from worldmodels.data.atari import AtariClips, AtariConfig

TINY = AtariConfig(
    games=("Breakout",),
    heldout_game="Boxing",
    train_episodes=2,
    val_episodes=1,
    heldout_episodes=1,
    max_steps=30,
)
BREAKOUT_MINIMAL = {0, 1, 3, 4}  # NOOP, FIRE, RIGHT, LEFT in the full 18-action set


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari")
    folder, manifest = atari.ensure_recorded(TINY, root, progress=False)
    return root, folder, manifest


def file_bytes(folder, manifest):
    return {shard["file"]: (folder / shard["file"]).read_bytes() for shard in manifest["shards"]}


def test_action_meanings_match_ale():
    import ale_py

    assert atari.NUM_ACTIONS == 18
    for value, name in enumerate(atari.ACTION_MEANINGS):
        assert ale_py.Action[name].value == value


def test_manifest_counts_and_splits(recorded):
    _, folder, manifest = recorded
    assert manifest["format_version"] == atari.FORMAT_VERSION
    assert manifest["game_names"] == ["Breakout", "Boxing"]
    assert manifest["episodes"] == {"train": 2, "val": 1, "heldout_game": 1}
    for split in atari.SPLITS:
        lengths = [s["frames"] for s in manifest["shards"] if s["split"] == split]
        assert manifest["frames"][split] == sum(lengths)
        assert all(1 <= length <= TINY.max_steps for length in lengths)
    for shard in manifest["shards"]:
        digest = hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest()
        assert digest == shard["sha256"]
        assert len(atari.load_shard(folder / shard["file"])["actions"]) == shard["frames"]
    assert not list(folder.glob(".*.tmp"))


def test_splits_are_disjoint(recorded):
    _, _, manifest = recorded
    by_split = {s: [x for x in manifest["shards"] if x["split"] == s] for s in atari.SPLITS}
    train_seeds = {x["seed"] for x in by_split["train"]}
    assert len(train_seeds) == 2
    assert not train_seeds & {x["seed"] for x in by_split["val"]}
    assert {x["game"] for x in by_split["train"] + by_split["val"]} == {"Breakout"}
    assert {x["game"] for x in by_split["heldout_game"]} == {"Boxing"}
    root = recorded[0]
    train = AtariClips("train", 4, TINY, root, progress=False)
    heldout = AtariClips("heldout_game", 4, TINY, root, progress=False)
    assert {train[i]["game"] for i in range(len(train))} == {0}
    assert {heldout[i]["game"] for i in range(len(heldout))} == {1}
    # different episodes: the val episode's actions differ from every train episode's
    val = AtariClips("val", 4, TINY, root, progress=False)
    assert all(not np.array_equal(val._actions[0][:20], a[:20]) for a in train._actions)


def test_same_settings_same_bytes_other_seed_other_data(recorded, tmp_path):
    _, folder, manifest = recorded
    again_folder, again = atari.ensure_recorded(TINY, tmp_path / "again", progress=False)
    assert file_bytes(folder, manifest) == file_bytes(again_folder, again)
    other = dataclasses.replace(TINY, seed=1)
    assert other.name != TINY.name
    other_folder, other_manifest = atari.ensure_recorded(other, tmp_path / "other", progress=False)
    first = atari.load_shard(other_folder / other_manifest["shards"][0]["file"])["actions"]
    ours = atari.load_shard(folder / manifest["shards"][0]["file"])["actions"]
    assert not np.array_equal(first[:20], ours[:20])


def test_item_format_and_action_range(recorded):
    root = recorded[0]
    clips = AtariClips("train", 6, TINY, root, progress=False)
    item = clips[len(clips) - 1]
    assert item["frames"].shape == (6, 3, 64, 64) and item["frames"].dtype == torch.float32
    assert 0.0 <= item["frames"].min() and item["frames"].max() <= 1.0
    assert item["actions"].shape == (6,) and item["actions"].dtype == torch.int64
    assert clips.num_actions == 18 and clips.game_names == ("Breakout", "Boxing")
    every_action = np.concatenate(clips._actions)
    assert set(every_action.tolist()) <= BREAKOUT_MINIMAL
    for actions in clips._actions:  # Breakout only serves the ball on FIRE
        assert actions[0] == atari.FIRE


class FakeAle:
    """Stands in for an ALE env: a blank screen, and a life lost every 5 steps."""

    def __init__(self, minimal):
        self.unwrapped = self
        self.ale = self
        self.minimal = minimal
        self.steps = 0

    def getMinimalActionSet(self):  # noqa: N802  (ALE's name)
        import ale_py

        return [ale_py.Action(value) for value in self.minimal]

    def reset(self, seed):
        self.steps = 0
        return np.zeros((210, 160, 3), np.uint8), {"lives": 9}

    def step(self, action):
        self.steps += 1
        info = {"lives": 9 - self.steps // 5}
        return np.zeros((210, 160, 3), np.uint8), 0.0, False, False, info


def test_policy_fires_at_start_and_after_each_lost_life():
    config = dataclasses.replace(TINY, max_steps=40, sticky_mean=1.0, noop_max=0)
    actions = atari.record_episode(FakeAle([0, 1, 3, 4]), seed=0, config=config)["actions"]
    # lives drop on steps 5, 10, ... (after actions 4, 9, ...): FIRE comes next
    forced = [0, 5, 10, 15, 20, 25, 30, 35]
    assert (actions[forced] == atari.FIRE).all()
    assert set(actions.tolist()) <= {0, 1, 3, 4}
    assert len(set(actions.tolist())) > 1  # the policy still picks the other actions
    no_fire = atari.record_episode(FakeAle([0, 2, 5]), seed=0, config=config)["actions"]
    assert set(no_fire.tolist()) <= {0, 2, 5}  # a game without FIRE never gets one


def test_episodes_start_after_a_random_number_of_unrecorded_noops():
    config = dataclasses.replace(TINY, max_steps=10, noop_max=30)
    noops = []
    for seed in range(20):
        env = FakeAle([0, 1, 3, 4])
        recorded = len(atari.record_episode(env, seed=seed, config=config)["actions"])
        noops.append(env.steps - recorded)  # steps the env took that were not recorded
    assert all(0 <= n <= 30 for n in noops) and len(set(noops)) > 5  # varied starts


def test_sticky_policy_holds_actions():
    config = dataclasses.replace(TINY, max_steps=2000, sticky_mean=4.0, noop_max=0)
    actions = atari.record_episode(FakeAle([0, 2, 3, 4, 5]), seed=1, config=config)["actions"]
    switches = (np.diff(actions.astype(int)) != 0).sum()
    # a new action every ~4 steps, equal to the old one 1/5 of the time:
    # expected switches ~ 2000 / 4 * 4 / 5 = 400 (plus the forced FIRE, none here)
    assert 300 < switches < 500


def test_clips_never_cross_episodes(recorded):
    root = recorded[0]
    clip_len = 8
    clips = AtariClips("train", clip_len, TINY, root, progress=False)
    lengths = clips.episode_lengths
    assert len(clips) == sum(length - clip_len + 1 for length in lengths)
    for i in range(len(clips)):  # every clip is a contiguous slice of one episode
        episode, start = clips._index[i]
        assert start + clip_len <= lengths[episode]
        expected = clips._frames[episode][start : start + clip_len] / np.float32(255)
        np.testing.assert_array_equal(clips[i]["frames"].numpy(), expected)
    # clip_len == the longest episode: exactly one clip, from that episode
    whole = AtariClips("train", max(lengths), TINY, root, progress=False)
    assert len(whole) == lengths.count(max(lengths))
    strided = AtariClips("train", clip_len, TINY, root, stride=5, progress=False)
    assert len(strided) == sum((length - clip_len) // 5 + 1 for length in lengths)


def test_actions_replay_to_the_recorded_frames(recorded):
    """actions[t] is taken at frames[t] and leads to frames[t + 1]: replaying the stored
    actions from the stored seed reproduces every stored frame."""
    _, folder, manifest = recorded
    shard = manifest["shards"][0]
    arrays = atari.load_shard(folder / shard["file"])
    env = atari._make_env(shard["game"], TINY)
    screen, _ = env.reset(seed=shard["seed"])
    for frame, action in zip(arrays["frames"], arrays["actions"], strict=True):
        np.testing.assert_array_equal(atari._downsample(screen, TINY.frame_size), frame)
        screen, *_ = env.step(int(action))
    env.close()
    assert (np.abs(np.diff(arrays["frames"].astype(int), axis=0)).sum(axis=(1, 2, 3)) > 0).any()


def test_resume_after_interruption(recorded, tmp_path):
    _, folder, manifest = recorded
    copy = tmp_path / TINY.name
    copy.mkdir()
    for name, data in file_bytes(folder, manifest).items():
        (copy / name).write_bytes(data)
    # an interrupted run: no manifest, one shard missing, one half-written temporary file
    missing = manifest["shards"][1]["file"]
    (copy / missing).unlink()
    half_written = copy / f".{missing}.123.tmp"
    half_written.write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(half_written, (an_hour_ago, an_hour_ago))
    _, resumed = atari.ensure_recorded(TINY, tmp_path, progress=False)
    assert file_bytes(copy, resumed) == file_bytes(folder, manifest)
    assert not list(copy.glob(".*.tmp"))
    assert json.loads((copy / "manifest.json").read_text())["frames"] == manifest["frames"]


def test_corrupt_shard_is_named(recorded, tmp_path):
    _, folder, manifest = recorded
    copy = tmp_path / TINY.name
    copy.mkdir()
    for name, data in file_bytes(folder, manifest).items():
        (copy / name).write_bytes(data)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    bad = copy / manifest["shards"][0]["file"]
    bad.write_bytes(bad.read_bytes()[:500])  # truncated
    with pytest.raises(ValueError, match=rf"{bad.name} is corrupt.*delete it"):
        AtariClips("train", 4, TINY, tmp_path, progress=False)


def test_bad_arguments(recorded):
    root = recorded[0]
    with pytest.raises(ValueError, match="unknown split 'test'"):
        AtariClips("test", 4, TINY, root, progress=False)
    with pytest.raises(ValueError, match=r"clip_len=31 is longer than every episode.*longest"):
        AtariClips("train", 31, TINY, root, progress=False)
    with pytest.raises(ValueError, match=r"unknown game\(s\) \['Pong'\].*holds: \['Breakout'\]"):
        AtariClips("train", 4, TINY, root, games=["Pong"], progress=False)
    with pytest.raises(ValueError, match="unknown Atari preset 'huge'"):
        AtariClips("train", 4, "huge", root, progress=False)


def test_bad_config(tmp_path):
    with pytest.raises(ValueError, match=r"unknown Atari game\(s\) \['Pongg'\].*MsPacman"):
        atari.record(dataclasses.replace(TINY, games=("Pongg",)), tmp_path, progress=False)
    with pytest.raises(ValueError, match="heldout_game='Breakout' is also a training game"):
        dataclasses.replace(TINY, heldout_game="Breakout")
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        dataclasses.replace(TINY, max_steps=0)


def test_presets_and_names():
    assert atari.resolve_config(None) == atari.PRESETS["debug"]
    names = {config.name for config in atari.PRESETS.values()}
    assert len(names) == len(atari.PRESETS)
    assert dataclasses.replace(TINY, sticky_mean=3.0).name != TINY.name


def test_cli_prints_summary(recorded, monkeypatch, capsys):
    root = recorded[0]
    monkeypatch.setitem(atari.PRESETS, "tiny", TINY)
    manifest = atari.main(["--preset", "tiny", "--root", str(root)])
    out = capsys.readouterr().out
    assert "already recorded" in out
    assert f"{manifest['frames']['train']:7d} frames" in out
