"""The majority codec at the token grid, by hand; and the scoring it feeds."""

import math

import pytest
import torch
from occupancy_tokenizer.codec import codec_bits_per_frame, majority_codec
from occupancy_tokenizer.scoring import bits_summary, difference_interval, item_confusions, summary

FREE = 17


def test_each_cell_and_level_takes_its_majority_class():
    grid = torch.full((1, 4, 4, 2), FREE, dtype=torch.uint8)  # (B, X, Y, Z), cells of 2 x 2
    grid[0, 0, 0, 0] = grid[0, 0, 1, 0] = grid[0, 1, 0, 0] = 4  # 3 of 4: car at level 0
    grid[0, 0, 0, 1] = 4  # 1 of 4 at level 1: free wins there
    grid[0, 2:, 2:, 1] = 15  # a whole cell of manmade at level 1
    grid[0, 2, 0, 0] = 11  # 2 road, 2 free: the tie goes to the lower id (road)
    grid[0, 3, 0, 0] = 11
    out = majority_codec(grid, 2)
    assert out.dtype == torch.int64 and out.shape == grid.shape
    assert (out[0, :2, :2, 0] == 4).all() and (out[0, :2, :2, 1] == FREE).all()
    assert (out[0, 2:, 2:, 1] == 15).all() and (out[0, 2:, 2:, 0] == FREE).all()
    assert (out[0, 2:, :2, 0] == 11).all()
    assert (out[0, :2, 2:] == FREE).all()


def test_codec_is_exact_on_grids_constant_per_cell_and_over_time():
    cells = torch.randint(0, 18, (2, 3, 4, 4, 5))  # (B, T', h, w, Z)
    clips = cells.repeat_interleave(2, 1).repeat_interleave(4, 2).repeat_interleave(4, 3)
    assert torch.equal(majority_codec(clips, 4, time_factor=2), clips)
    frames = clips[:, 0]  # (B, X, Y, Z)
    assert torch.equal(majority_codec(frames, 4), frames)
    # a single voxel change inside a cell of 32 votes cannot flip it
    changed = clips.clone()
    changed[0, 1, 5, 5, 0] = (clips[0, 1, 5, 5, 0] + 1) % 18
    assert torch.equal(majority_codec(changed, 4, time_factor=2), clips)


def test_codec_refuses_bad_input():
    with pytest.raises(ValueError, match="integer class ids"):
        majority_codec(torch.zeros(1, 4, 4, 2), 2)
    with pytest.raises(ValueError, match="does not split"):
        majority_codec(torch.zeros(1, 6, 4, 2, dtype=torch.long), 4)


def test_bits():
    assert codec_bits_per_frame((16, 16), 8) == pytest.approx(16 * 16 * 8 * math.log2(18))
    bits = bits_summary(256, 512, (64, 64, 8), 0.0)
    assert bits["bits_per_frame"] == 256 * 9
    assert bits["compression_vs_raw"] == pytest.approx(64 * 64 * 8 * math.log2(18) / 2304)


def test_summary_conventions_and_paired_difference():
    truth = torch.full((4, 2, 2, 1), FREE)
    truth[:, 0, 0, 0] = 4  # one car voxel per frame
    pred = truth.clone()
    pred[2:, 0, 0, 0] = FREE  # frames 2, 3 miss it
    conf = item_confusions(pred, truth)  # (4, Q, Q)
    scores = summary(conf.sum(0))
    assert scores["mIoU_occ3d"] == pytest.approx(50.0)  # car IoU 2/4, every other class absent
    assert scores["mIoU_occworld"] == pytest.approx(100 * (16 + 0.5) / 17)  # absent = 1
    sequences = torch.tensor([0, 0, 1, 1])
    same = difference_interval(conf, conf, sequences, samples=50)
    assert same.estimate == same.low == same.high == 0
    perfect = item_confusions(truth, truth)
    diff = difference_interval(perfect, conf, sequences, samples=200)
    assert diff.estimate == pytest.approx(50.0) and diff.groups == 2 and diff.high <= 100
