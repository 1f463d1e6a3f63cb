"""MaskGIT dynamics: schedule, masking, causality, iterative decoding, conditioning, learning."""

import math

import pytest
import torch
from dynamics_model.maskgit import (
    MaskGITConfig,
    MaskGITDynamics,
    bernoulli_mask,
    mask_schedule,
    num_masked,
    random_mask,
)
from dynamics_model.rollout import rollout_model
from dynamics_model.sampling import SampleConfig

K, A, GRID = 8, 4, (3, 3)
N = GRID[0] * GRID[1]


def tiny_maskgit(seed: int = 0, **overrides) -> MaskGITDynamics:
    torch.manual_seed(seed)
    config = MaskGITConfig(
        vocab_size=K, num_actions=A, token_grid=GRID, max_frames=5, dim=32, depth=2, heads=4
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return MaskGITDynamics(config).eval()


def random_clip(B: int = 2, T: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(K, (B, T, *GRID), generator=g), torch.randint(A, (B, T), generator=g)


def test_cosine_schedule_end_points_and_values():
    assert mask_schedule(0.0) == 1.0
    assert mask_schedule(1.0) == pytest.approx(0.0, abs=1e-12)
    assert mask_schedule(1 / 3) == pytest.approx(math.cos(math.pi / 6))
    u = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(mask_schedule(u), torch.tensor([1.0, math.sqrt(0.5), 0.0]), atol=1e-7)


def test_random_mask_masks_exactly_the_intended_count_per_frame():
    N_big = 64
    ratios = torch.tensor([[0.0, 0.01, 0.1, 0.3], [0.5, 0.77, 0.99, 1.0]])
    # max(1, round(r * 64)): hand-computed
    expected = torch.tensor([[1, 1, 6, 19], [32, 49, 63, 64]])
    assert torch.equal(num_masked(ratios, N_big), expected)
    for seed in range(5):
        mask = random_mask(ratios, N_big, torch.Generator().manual_seed(seed))  # (2, 4, 64)
        assert mask.dtype == torch.bool and mask.shape == (2, 4, N_big)
        assert torch.equal(mask.sum(-1), expected)


def test_random_mask_chooses_positions_uniformly():
    ratios = torch.full((4000,), 0.25)  # 4 of 16 positions each draw
    mask = random_mask(ratios, 16, torch.Generator().manual_seed(0))  # (4000, 16)
    frequency = mask.float().mean(0)  # (16,)
    assert torch.allclose(frequency, torch.full((16,), 0.25), atol=0.03)


def test_masking_loss_masks_only_frames_after_the_first(monkeypatch):
    model = tiny_maskgit()
    tokens, actions = random_clip(B=8, T=4)
    seen = {}

    def spy(module, args):
        seen["inputs"] = args[0].clone()

    model.register_forward_pre_hook(spy)
    loss, metrics = model.masking_loss(tokens, actions, generator=torch.Generator().manual_seed(0))
    is_mask = seen["inputs"] == K  # (B, T, h, w)
    assert not is_mask[:, 0].any()  # frame 0 is pure context
    assert (is_mask[:, 1:].flatten(2).sum(-1) >= 1).all()  # at least one per later frame
    # visible tokens are the true ones
    assert torch.equal(seen["inputs"][~is_mask], tokens[~is_mask])
    assert metrics["mask_ratio"] == pytest.approx(is_mask[:, 1:].float().mean().item())
    assert loss.item() > 0

    model.masking_loss(tokens, actions, last_frame_only=True)
    is_mask = seen["inputs"] == K
    assert not is_mask[:, :-1].any() and (is_mask[:, -1].flatten(1).sum(-1) >= 1).all()


def test_frames_do_not_see_later_frames_but_tokens_see_their_whole_frame():
    model = tiny_maskgit()
    tokens, actions = random_clip(T=4)
    with torch.no_grad():
        before = model(tokens, actions)  # (B, T, h, w, K)
        later = tokens.clone()
        later[:, 2, 1, 1] = (tokens[:, 2, 1, 1] + 1) % K
        after = model(later, actions)
        earlier = tokens.clone()
        earlier[:, 0, 2, 2] = (tokens[:, 0, 2, 2] + 1) % K
        after_earlier = model(earlier, actions)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)  # frames 0, 1 blind to 2
    assert (before[:, 2, 0, 0] - after[:, 2, 0, 0]).abs().max() > 1e-4  # same frame, any place
    assert (before[:, 3] - after[:, 3]).abs().max() > 1e-4
    assert (before[:, 1:] - after_earlier[:, 1:]).abs().amax(dim=(2, 3, 4)).min() > 1e-4


def test_action_t_conditions_frame_t_plus_1_only():
    model = tiny_maskgit()
    tokens, actions = random_clip(T=4)
    other = actions.clone()
    other[:, 1] = (actions[:, 1] + 1) % A  # leads from frame 1 to frame 2
    with torch.no_grad():
        before, after = model(tokens, actions), model(tokens, other)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)
    assert (before[:, 2] - after[:, 2]).abs().max() > 1e-4
    # the last action leads out of the clip: it changes nothing here
    last = actions.clone()
    last[:, -1] = (actions[:, -1] + 1) % A
    with torch.no_grad():
        assert torch.equal(model(tokens, last), before)
    tf = model.teacher_forced_logits(tokens, actions)
    assert torch.equal(tf, model.teacher_forced_logits(tokens, last))
    changed = actions.clone()
    changed[:, 2] = (actions[:, 2] + 1) % A  # leads to the last frame
    assert (tf - model.teacher_forced_logits(tokens, changed)).abs().max() > 1e-4


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_iterative_decoding_follows_the_schedule_and_never_unfixes(steps):
    model = tiny_maskgit()
    context, actions = random_clip(B=3, T=2)
    frame, trace = model.generate_next(
        context, actions, steps=steps, confidence_noise=2.0,
        generator=torch.Generator().manual_seed(0), return_trace=True,
    )  # fmt: skip
    assert frame.shape == (3, *GRID) and (frame < K).all()
    assert trace.frames.shape == (3, steps, *GRID)
    fixed_counts = (trace.frames != K).flatten(2).sum(-1)  # (B, S)
    expected = [N - round(N * math.cos(math.pi / 2 * (i + 1) / steps)) for i in range(steps)]
    expected[-1] = N
    assert fixed_counts.tolist() == [expected] * 3
    assert expected[-2 if steps > 1 else 0] < N or steps == 1  # the last step is needed
    for s in range(steps):
        fixed = trace.frames[:, s] != K
        assert torch.equal(trace.frames[:, s][fixed], frame[fixed])  # never changed later
        assert torch.equal(fixed, (trace.fixed_at_step <= s) & (trace.fixed_at_step >= 0))
    assert (trace.fixed_at_step >= 0).all()


def test_one_greedy_step_is_the_argmax_of_teacher_forcing_and_seeds_repeat():
    model = tiny_maskgit()
    context, actions = random_clip(T=2)
    frame = model.generate_next(context, actions, steps=1, temperature=0.0)
    clip = torch.cat([context, frame[:, None]], dim=1)
    tf = model.teacher_forced_logits(clip, actions)
    assert torch.equal(frame, tf.argmax(-1))
    a = model.generate_next(context, actions, generator=torch.Generator().manual_seed(5))
    b = model.generate_next(context, actions, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_rollout_generates_horizon_frames_and_slides_its_window():
    model = tiny_maskgit()
    context, _ = random_clip(T=2)
    actions = torch.randint(A, (2, 2 + 6 - 1))
    frames = rollout_model(model, context, actions, 6, SampleConfig(maskgit_steps=2, temperature=0))
    assert frames.shape == (2, 6, *GRID)  # 2 + 6 frames > max_frames = 5: window slid
    first = model.generate_next(context, actions[:, :2], steps=2, temperature=0.0)
    assert torch.equal(frames[:, 0], first)


def train_on_token_world(world, blind: bool, steps: int = 100, **overrides) -> MaskGITDynamics:
    """A tiny MaskGIT trained on the action-driven world; `blind` zeroes every action."""
    tokens, actions = world(num_clips=128, T=3, seed=0)
    if blind:
        actions = torch.zeros_like(actions)
    model = tiny_maskgit(**overrides).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss, _ = model.masking_loss(tokens, actions, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("masking", ["cosine", "genie"])
def test_actions_matter_on_fresh_clips_and_a_blind_model_fails(make_token_world, masking):
    """Scored on clips never trained on (another seed), with the last frame fully masked:
    only a model that reads the action can know the shift. On its own training clips an
    action-blind model passed the old 0.6 bar by memorising (0.648)."""
    tokens, actions = make_token_world(num_clips=128, T=3, seed=1)  # fresh clips

    def accuracy(model):
        with torch.no_grad():
            predicted = model.teacher_forced_logits(tokens, actions).argmax(-1)
        return (predicted == tokens[:, -1]).float().mean().item()

    assert accuracy(train_on_token_world(make_token_world, False, masking=masking)) > 0.6
    assert accuracy(train_on_token_world(make_token_world, True, masking=masking)) < 0.45


def test_genie_masking_rate_is_uniform_between_half_and_one():
    mask, rate = bernoulli_mask((4000,), 64, torch.Generator().manual_seed(0))
    assert 0.5 <= rate.min() and rate.max() <= 1.0
    assert abs(rate.mean().item() - 0.75) < 0.01
    assert abs(mask.float().mean().item() - 0.75) < 0.01  # E[Bernoulli(r)] = E[r]
    per_frame = mask.float().mean(-1)  # follows its own frame's rate
    assert torch.corrcoef(torch.stack([per_frame, rate]))[0, 1] > 0.9


def test_decoding_fixes_the_most_confident_tokens_first(monkeypatch):
    """With logits whose confidence falls with the position, a greedy decode must fix
    position 0 first and never fix a less confident token before a more confident one;
    unmasking the least confident first fails this."""
    model = tiny_maskgit()
    confidence = torch.linspace(8.0, 0.0, N)  # (N,) logit margin of class 0 per position

    def fake_forward(clip, actions):
        B, T = clip.shape[:2]
        logits = torch.zeros(B, T, N, K)
        logits[..., 0] = confidence  # p(class 0) falls with the position
        return logits.reshape(B, T, *GRID, K)

    monkeypatch.setattr(model, "forward", fake_forward)
    context, actions = random_clip(B=2, T=2)
    _, trace = model.generate_next(context, actions, steps=4, temperature=0.0, return_trace=True)
    order = trace.fixed_at_step.flatten(1)  # (B, N): the step each position was fixed at
    assert (order[:, 1:] >= order[:, :-1]).all()  # more confident -> fixed no later
    assert (order[:, 0] == 0).all() and (order[:, -1] == 3).all()


def test_fully_teacher_forced_is_leave_one_out():
    model = tiny_maskgit()
    tokens, actions = random_clip(B=3, T=3)
    full = model.fully_teacher_forced_logits(tokens, actions)  # (B, h, w, K)
    for n in (0, 4, N - 1):
        masked = tokens.clone().flatten(2)
        masked[:, -1, n] = model.mask_id
        with torch.no_grad():
            direct = model(masked.reshape(tokens.shape), actions)[:, -1].flatten(1, 2)[:, n]
        torch.testing.assert_close(full.flatten(1, 2)[:, n], direct)


def test_bad_inputs_raise_clear_errors():
    model = tiny_maskgit()
    tokens, actions = random_clip(T=3)
    with pytest.raises(ValueError, match="tokens must be"):
        model(tokens[:, :, :2], actions)
    with pytest.raises(ValueError, match="tokens must lie"):
        model(tokens + K + 1, actions)
    with pytest.raises(ValueError, match="actions must be"):
        model(tokens, actions[:, :1])
    with pytest.raises(ValueError, match="actions must lie"):
        model(tokens, actions + A)
    with pytest.raises(ValueError, match="steps"):
        model.generate_next(tokens, actions, steps=0)
    with pytest.raises(ValueError, match="T >= 2"):
        model.masking_loss(tokens[:, :1], actions[:, :1])
    with pytest.raises(ValueError, match="max_frames"):
        long_tokens, long_actions = random_clip(T=5)
        model.generate_next(long_tokens, long_actions)
