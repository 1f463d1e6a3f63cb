"""The TENSFormer's sequence layout and mask, against brute force."""

import pytest
import torch
from occupancy_tokenizer.multiscale import MultiScaleQuantizer
from world_model.layout import FrameLayout, check_scales

SCALES = (1, 2, 4)  # L = 1 + 4 + 16 = 21


def test_blocks_of_a_frame():
    lay = FrameLayout(SCALES)
    assert lay.tokens_per_frame == 21 and lay.num_blocks == 3
    assert [lay.block_slice(k) for k in range(3)] == [slice(0, 1), slice(1, 5), slice(5, 21)]
    assert lay.block_of_slot.tolist() == [0] + [1] * 4 + [2] * 16
    positions = torch.arange(3 * 21)
    assert torch.equal(lay.frame_of(positions), positions // 21)
    assert torch.equal(lay.block_of(positions), lay.block_of_slot.repeat(3))
    assert lay.position(2, 1) == 2 * 21 + 1


def test_block_slices_match_the_quantizers_flat_ids():
    lay = FrameLayout(SCALES)
    quantizer = MultiScaleQuantizer(16, 4, SCALES)
    ids = torch.arange(21)[None]  # (1, L): id j at slot j
    for k, per_scale in enumerate(quantizer.split_ids(ids)):
        assert torch.equal(per_scale.flatten(), ids[0, lay.block_slice(k)])


def test_mask_against_a_double_loop():
    lay, T = FrameLayout(SCALES), 3
    mask = lay.mask(0, T * lay.tokens_per_frame)  # (P, P)
    P = T * lay.tokens_per_frame
    block = lay.block_of_slot.tolist() * T
    for q in range(P):
        fq, bq = q // lay.tokens_per_frame, block[q]
        for k in range(P):
            fk, bk = k // lay.tokens_per_frame, block[k]
            allowed = fk < fq or (fk == fq and bk <= bq)
            assert bool(mask[q, k]) == allowed, (q, k)
            if fk > fq or (fk == fq and bk > bq):  # a later frame or a later scale: never
                assert not mask[q, k], (q, k)
            if fk < fq or (fk == fq and bk == bq):  # an earlier frame or its own block: always
                assert mask[q, k], (q, k)


def test_mask_rows_for_cached_queries_are_rows_of_the_full_mask():
    lay = FrameLayout(SCALES)
    full = lay.mask(0, 3 * 21)
    for start, end in [(0, 21), (21, 22), (22, 26), (26, 42), (42, 63)]:
        assert torch.equal(lay.mask(start, end), full[start:end, :end])
    assert lay.mask(22, 26).all()  # one whole block after the cache: it sees everything


@pytest.mark.parametrize("scales", [(2, 4), (), (1, 4, 2), (1, 1, 2)])
def test_bad_scales(scales):
    with pytest.raises(ValueError, match="scales must"):
        check_scales(scales)
    with pytest.raises(ValueError, match="start at 1" if scales == (2, 4) else "increasing"):
        FrameLayout(scales)
