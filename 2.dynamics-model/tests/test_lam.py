"""Genie's latent action model: shapes, causality, conditioning, standardisation, learning."""

import pytest
import torch
from dynamics_model.lam import LatentActionConfig, LatentActionModel, StepwiseStandardize
from video_tokenizer.fsq import FSQ

SIZE, PATCH, CODES = 16, 4, 9


def tiny_lam(seed: int = 0, trained_head: bool = True, **overrides) -> LatentActionModel:
    """A small LAM; `trained_head` replaces the zero-initialised head (a fresh model predicts
    exactly "copy the last frame", which would hide what the code changes)."""
    torch.manual_seed(seed)
    config = LatentActionConfig(
        image_size=(SIZE, SIZE), patch=PATCH, max_frames=6, dim=32, encoder_depth=1,
        decoder_depth=1, heads=4, action_levels=(3, 3),
    )  # fmt: skip
    for key, value in overrides.items():
        setattr(config, key, value)
    model = LatentActionModel(config)
    if trained_head:
        torch.nn.init.normal_(model.head.proj.weight, std=0.05)
    return model


def test_a_fresh_model_predicts_the_last_frame_and_scores_loss_one():
    model = tiny_lam(trained_head=False)
    frames = random_frames()
    recon_next, _ = model(frames)
    assert torch.equal(recon_next, frames[:, :-1])
    loss, _ = model.loss(frames)
    assert loss.item() == pytest.approx(1.0)


def test_codes_ignore_an_offset_shared_by_every_clip_at_a_time_step():
    """The bug StepwiseStandardize fixes: a per-time-step offset (the temporal position the
    encoder's output carries) must not decide the code; only differences between clips do."""
    norm = StepwiseStandardize(max_steps=3, channels=2).train()
    x = torch.randn(32, 3, 2, generator=torch.Generator().manual_seed(0))
    offset = torch.tensor([[-5.0, 5.0], [0.0, 3.0], [7.0, -1.0]])  # (T, E), same for all clips
    assert torch.allclose(norm(x), norm(x + offset), atol=1e-4)
    standardised = norm(x)
    assert torch.allclose(standardised.mean(0), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(standardised.std(0, unbiased=False), torch.ones(3, 2), atol=1e-3)
    # at eval: the running statistics, which have moved toward the batch's
    norm.eval()
    assert (norm.running_mean != 0).any() and torch.isfinite(norm(x)).all()
    with pytest.raises(ValueError, match="at most 3 steps"):
        norm(torch.randn(4, 4, 2))


def random_frames(B: int = 2, T: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.rand(B, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_forward_shapes_and_action_ids():
    model = tiny_lam()
    frames = random_frames()
    recon_next, action_ids = model(frames)
    assert recon_next.shape == (2, 3, 3, SIZE, SIZE)
    assert action_ids.shape == (2, 3) and action_ids.dtype == torch.long
    assert ((action_ids >= 0) & (action_ids < CODES)).all()
    model.eval()
    assert torch.equal(model.infer_actions(frames), model(frames)[1])


def test_latent_action_of_t_sees_only_frames_up_to_t_plus_1():
    model = tiny_lam().eval()
    frames = random_frames(T=5)
    changed = frames.clone()
    changed[:, 3] = torch.rand_like(frames[:, 3])
    with torch.no_grad():
        before, after = model.encode_actions(frames), model.encode_actions(changed)  # (B, 4, E)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)  # actions 0->1, 1->2
    assert (before[:, 2] - after[:, 2]).abs().max() > 1e-4  # 2->3 reads frame 3


def test_decoder_is_causal_and_obeys_the_latent_action():
    model = tiny_lam().eval()
    frames = random_frames(T=3)
    ids = torch.tensor([[0, 1, 2], [3, 3, 0]])
    prediction = model.decode_with_actions(frames, ids)  # (B, 3, C, H, W)
    assert prediction.shape == frames.shape
    # a different action at step 1 changes the prediction of step 1, not of step 0
    other = ids.clone()
    other[:, 1] = (ids[:, 1] + 1) % CODES
    changed = model.decode_with_actions(frames, other)
    assert torch.allclose(prediction[:, 0], changed[:, 0], atol=1e-6)
    assert (prediction[:, 1] - changed[:, 1]).abs().max() > 1e-4
    # a later frame does not reach an earlier prediction
    later = frames.clone()
    later[:, 2] = 0.0
    assert torch.allclose(model.decode_with_actions(later, ids)[:, :2], prediction[:, :2])


def test_latent_actions_are_the_fsq_ids_and_decode_back_to_their_codes():
    model = tiny_lam().eval()
    assert model.config.num_latent_actions == CODES == model.quantizer.codebook_size
    frames = random_frames()
    codes, ids, _ = model.quantizer(model.encode_actions(frames))
    assert torch.equal(model.infer_actions(frames), ids)
    assert torch.equal(model.quantizer.indices_to_codes(ids), codes)
    # decoding with the inferred ids is the forward pass's own reconstruction
    assert torch.allclose(model.decode_with_actions(frames[:, :-1], ids), model(frames)[0])


def test_trains_on_moving_sprites_to_beat_copying_the_last_frame():
    from worldmodels.data.synthetic import MovingSprites

    dataset = MovingSprites(num_clips=8, clip_len=4, size=SIZE, num_sprites=1, num_actions=5)
    frames = torch.stack([dataset[i]["frames"] for i in range(len(dataset))])  # (8, 4, 3, H, W)
    copy_mse = (frames[:, 1:] - frames[:, :-1]).square().mean().item()  # x̂_{t+1} = x_t
    model = tiny_lam(trained_head=False).train()  # as initialised for training
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss, metrics = model.loss(frames)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["mse"])
    # the residual decoder starts near "copy x_t" and must learn the sprites' moves
    assert sum(losses[-5:]) / 5 < 0.8 * copy_mse
    assert 1 <= metrics["codes_used"] <= CODES


def test_bad_inputs_raise_clear_errors():
    model = tiny_lam()
    with pytest.raises(ValueError, match="frames must be"):
        model(torch.rand(2, 4, 3, SIZE, SIZE + 4))
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(torch.rand(2, 1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="action_ids must be"):
        model.decode_with_actions(random_frames(T=3), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="action_ids must lie"):
        model.decode_with_actions(random_frames(T=3), torch.full((2, 3), CODES))
    with pytest.raises(ValueError, match="not divisible by patch"):
        tiny_lam(image_size=(18, 16))


def test_calibration_replaces_trailing_running_statistics():
    """Encoder outputs with a tiny spread around a large mean (what a short run produced):
    running statistics that trail the mean put every transition on one code at eval;
    statistics measured on the data itself restore the spread."""
    norm = StepwiseStandardize(max_steps=3, channels=2).eval()
    g = torch.Generator().manual_seed(0)
    x = 3.6 + 0.05 * torch.randn(256, 3, 2, generator=g)  # (B, T, E)
    norm.running_mean.fill_(3.1)  # 10 spreads behind the mean, with the right spread
    norm.running_var.fill_(0.05**2)
    fsq = FSQ((3, 3))
    assert fsq(norm(x))[1].unique().numel() == 1  # one code for everything
    norm.calibrate(x)
    z = norm(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(3, 2), atol=5e-3, rtol=0)
    assert fsq(z)[1].unique().numel() == 9  # all 3 x 3 codes in use
