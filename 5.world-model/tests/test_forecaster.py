"""The TENSFormer as a benchmark forecaster: the benchmark accepts it, it is seeded, and with
plan=False the given future poses steer it (with plan=True they do not)."""

import pytest
import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer
from world_model.baselines import standard_baselines
from world_model.benchmark import run_benchmark
from world_model.forecaster import tensformer_forecaster
from world_model.synthetic import synthetic_windows
from world_model.tensformer import TENSFormer, TENSFormerConfig

EGO = EgoMotionTokenizer(low=(0.0, -1.0, -0.3), high=(2.0, 1.0, 0.3), bins=(3, 3, 3))


@pytest.fixture(scope="module")
def tokenizer(make_tokenizer):
    return make_tokenizer()


def sharp_model(tokenizer) -> TENSFormer:
    """A tiny untrained model whose outputs depend strongly on its inputs (at init every
    input looks alike to it, so a change of motion could go unseen by chance)."""
    torch.manual_seed(0)
    config = TENSFormerConfig.matching(tokenizer.quantizer, EGO, dim=32, depth=2, heads=4)
    model = TENSFormer(config).eval()
    with torch.no_grad():
        for emb in (model.motion_emb, model.slot_emb, model.scale_emb, model.frame_emb):
            emb.weight.normal_(0, 1.0)
        for head in (model.scene_head, model.motion_head):
            head.weight.mul_(5)
    return model


def test_the_benchmark_accepts_it(tokenizer):
    windows = synthetic_windows("val")
    forecaster = tensformer_forecaster(sharp_model(tokenizer), tokenizer, EGO, top_k=8)
    metrics = run_benchmark(windows, {**standard_baselines(windows.grid), "tens": forecaster},
                            samples=10)  # fmt: skip
    assert 0 <= metrics["val_tens_mean_mIoU_occ3d"] <= 100
    assert "val_tens_minus_warp_last_mean_IoU_occ3d_ci_low" in metrics


def test_control_follows_the_given_poses_and_planning_does_not(tokenizer):
    window = synthetic_windows("val").batch([0, 1])
    moved = window.future_poses.clone()
    moved[:, 0, 1, 3] += 0.8  # the first future step swerves left: another motion token
    model = sharp_model(tokenizer)
    control = tensformer_forecaster(model, tokenizer, EGO, seed=3)
    out = control(window.past, window.past_poses, window.future_poses)
    assert out.dtype == torch.uint8 and out.shape == window.future.shape
    assert torch.equal(out, control(window.past, window.past_poses, window.future_poses))
    assert not torch.equal(out, control(window.past, window.past_poses, moved))
    plan = tensformer_forecaster(model, tokenizer, EGO, seed=3, plan=True)
    planned = plan(window.past, window.past_poses, window.future_poses)
    assert torch.equal(planned, plan(window.past, window.past_poses, moved))


def test_a_model_of_other_motion_bins_is_refused(tokenizer):
    other = EgoMotionTokenizer(low=(0, -1, -1), high=(1, 1, 1), bins=(2, 2, 2))
    with pytest.raises(ValueError, match="motion tokenizer has 8 tokens"):
        tensformer_forecaster(sharp_model(tokenizer), tokenizer, other)
