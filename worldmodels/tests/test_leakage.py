"""Held out means held out: no evaluation clip of the Atari recording repeats training frames."""

import numpy as np
import pytest
import torch

from worldmodels.data import atari
from worldmodels.data.leakage import (
    atari_leakage,
    duplicate_windows,
    frame_hashes,
    recording_hashes,
    training_windows,
    window_keys,
)


def frames_of(*values: int) -> np.ndarray:
    """A toy episode: frame t is a 2x2 image filled with values[t]."""
    return np.stack([np.full((2, 2), v, dtype=np.uint8) for v in values])


def test_duplicate_windows_counts_moving_and_static_repeats():
    train = [frame_hashes(frames_of(1, 2, 3, 4, 4, 4))]
    held_out = [frame_hashes(frames_of(9, 2, 3, 4, 7)), frame_hashes(frames_of(4, 4, 4))]
    counts = duplicate_windows(train, held_out, length=3)
    # windows of length 3: (9,2,3) (2,3,4)* (3,4,7) and (4,4,4)* (static)
    assert counts == {
        "windows": 4, "duplicates": 2, "static_duplicates": 1, "moving_duplicates": 1
    }  # fmt: skip
    assert duplicate_windows(train, held_out, length=5)["duplicates"] == 0


def test_window_keys_differ_by_order_and_length():
    hashes = frame_hashes(frames_of(1, 2, 1))
    keys = window_keys(hashes, 2)
    assert len(keys) == 2 and keys[0] != keys[1]  # (1, 2) vs (2, 1)
    with pytest.raises(ValueError, match="length"):
        window_keys(hashes, 0)


@pytest.fixture(scope="module")
def debug_recording():
    """The default ("debug") recording every chapter trains on, made on first use."""
    return atari.ensure_recorded("debug", progress=False)


@pytest.mark.parametrize("split", ["val", "heldout_game"])
@pytest.mark.parametrize("clip_len", [4, 11])  # chapter 1/2 training clips; chapter 2 rollouts
def test_no_evaluation_clip_repeats_a_training_window(debug_recording, split, clip_len):
    """Hash every clip AtariClips serves (the frames a model is scored on) and every window
    of the raw training shards: none may match. The raw recording does hold such windows
    (MsPacman's opening tune, Pong with the paddle pinned to a wall), so this fails without
    AtariClips' filter."""
    folder, manifest = debug_recording
    hashes = recording_hashes(folder, manifest)
    train = [hashes[s["file"]] for s in manifest["shards"] if s["split"] == "train"]
    seen = training_windows(train, clip_len)
    clips = atari.AtariClips(split, clip_len, "debug", progress=False)
    served = [  # back to the shards' uint8 (T, H, W, C) bytes
        frame_hashes((clips[i]["frames"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
        for i in range(len(clips))
    ]
    repeats = sum(key in seen for h in served for key in window_keys(h, clip_len))
    assert repeats == 0
    assert len(clips) + clips.duplicates_dropped == sum(
        max(0, s["frames"] - clip_len + 1) for s in manifest["shards"] if s["split"] == split
    )


def test_breakout_val_holds_over_a_thousand_distinct_transitions(debug_recording):
    transitions = atari.AtariClips("val", 2, "debug", games=["Breakout"], progress=False)
    assert len(transitions) >= 1000


def test_the_raw_recording_still_repeats_training_windows(debug_recording):
    """What the filter is for (the counts the data README reports): random play on Atari
    replays some screens exactly, even with sticky actions and no-op starts."""
    leaks = atari_leakage("debug", length=11)
    assert sum(c["moving_duplicates"] for c in leaks["val"].values()) > 0
    assert leaks["heldout_game"]["Boxing"]["duplicates"] == 0
