"""The training clips: tokens encoded once and cached, clips cut right, motion bins fit on the
training split only, and no val or heldout clip holding a training frame."""

import pytest
import torch
from occupancy_tokenizer.ego import relative_motion
from world_model.synthetic import synthetic_windows
from world_model.token_data import CLIP_FRAMES, TokenClips, fit_motion_tokenizer
from world_model.windows import shared_with_training

from worldmodels.data.leakage import frame_hashes


@pytest.fixture(scope="module")
def splits():
    return {split: synthetic_windows(split) for split in ("train", "val", "heldout")}


def clips_of(windows, tmp_path, tokenizer):
    ego = fit_motion_tokenizer(synthetic_windows("train"), (3, 3, 3))
    return TokenClips.from_windows(windows, tokenizer, ego, tmp_path, progress=False)


def test_held_out_clips_share_no_frame_with_training(splits, tmp_path, make_tokenizer):
    train = clips_of(splits["train"], tmp_path, make_tokenizer())
    seen = {h for i in range(len(train)) for h in frame_hashes(train.frames(i).numpy()).tolist()}
    for split in ("val", "heldout"):
        held = clips_of(splits[split], tmp_path, make_tokenizer())
        assert shared_with_training(train.windows, held.windows)["duplicates"] == 0
        clip_frames = [frame_hashes(held.frames(i).numpy()).tolist() for i in range(len(held))]
        assert not seen & {h for hashes in clip_frames for h in hashes}, split


def test_motion_bins_are_fit_on_the_training_split_only(splits):
    with pytest.raises(ValueError, match="training split only"):
        fit_motion_tokenizer(splits["val"])


def test_clips_hold_each_window_s_tokens_and_motions(splits, tmp_path, make_tokenizer):
    tokenizer = make_tokenizer()
    ego = fit_motion_tokenizer(splits["train"], (3, 3, 3))
    clips = TokenClips.from_windows(splits["val"], tokenizer, ego, tmp_path, progress=False)
    assert len(clips) == len(splits["val"])
    for i in (0, len(clips) - 1):
        item = clips[i]
        window = splits["val"].batch([i])
        poses = torch.cat([window.past_poses, window.future_poses], dim=1)[0]  # (11, 4, 4)
        assert torch.equal(item["motions"], ego.encode(relative_motion(poses)))  # m_1 .. m_10
        with torch.no_grad():
            assert torch.equal(item["ids"], tokenizer.encode(clips.frames(i)))  # (11, L)
        assert item["ids"].shape == (CLIP_FRAMES, 21) and item["motions"].shape == (10,)


def test_tokens_are_encoded_once_then_read_from_the_cache(splits, tmp_path, make_tokenizer):
    tokenizer = make_tokenizer()
    first = clips_of(splits["val"], tmp_path, tokenizer)
    files = list(tmp_path.rglob("*.safetensors"))
    assert len(files) == 1

    def refuse(grid):
        raise AssertionError("encoded again although the tokens are cached")

    tokenizer.encode = refuse
    again = clips_of(splits["val"], tmp_path, tokenizer)
    assert all(torch.equal(a, b) for a, b in zip(first.ids, again.ids))
    other = make_tokenizer(seed=1)  # other weights: another cache file
    clips_of(splits["val"], tmp_path, other)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2
