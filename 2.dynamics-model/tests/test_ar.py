"""The autoregressive GPT dynamics: causality, KV cache, sampling, conditioning, learning."""

import pytest
import torch
from dynamics_model.ar import ARConfig, ARDynamics
from dynamics_model.rollout import rollout_model
from dynamics_model.sampling import SampleConfig

K, A, GRID = 8, 4, (3, 3)
N = GRID[0] * GRID[1]


def tiny_ar(use_actions: bool = True, seed: int = 0, **overrides) -> ARDynamics:
    torch.manual_seed(seed)
    config = ARConfig(
        vocab_size=K, num_actions=A, token_grid=GRID, max_frames=5, dim=32, depth=2, heads=4,
        use_actions=use_actions,
    )  # fmt: skip
    for key, value in overrides.items():
        setattr(config, key, value)
    return ARDynamics(config).eval()


def random_clip(B: int = 2, T: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(K, (B, T, *GRID), generator=g), torch.randint(A, (B, T), generator=g)


def test_layout_interleaves_frames_and_offset_actions():
    model = tiny_ar()
    tokens, actions = random_clip(B=1, T=2)
    ids = model.flatten_clip(tokens, actions)[0]  # (2 * (N + 1),)
    assert ids.shape == (2 * (N + 1),)
    assert torch.equal(ids[:N], tokens[0, 0].flatten())
    assert ids[N] == K + actions[0, 0]  # actions live after the K codes
    assert torch.equal(ids[N + 1 : 2 * N + 1], tokens[0, 1].flatten())
    assert ids[-1] == K + actions[0, 1]
    no_actions = tiny_ar(use_actions=False).flatten_clip(tokens, None)[0]
    assert torch.equal(no_actions, tokens[0].flatten())


def test_no_element_sees_a_later_one():
    model = tiny_ar()
    tokens, actions = random_clip()
    ids = model.flatten_clip(tokens, actions)  # (B, L)
    j = 13
    perturbed = ids.clone()
    perturbed[:, j] = (ids[:, j] + 1) % K
    with torch.no_grad():
        before, after = model(ids), model(perturbed)
    assert torch.allclose(before[:, :j], after[:, :j], atol=1e-6)  # the past cannot see j
    assert not torch.allclose(before[:, j:], after[:, j:], atol=1e-4)  # the future does
    assert (before[:, j + 5] - after[:, j + 5]).abs().max() > 1e-4


def test_action_conditions_only_the_following_frame():
    model = tiny_ar()
    tokens, actions = random_clip(T=3)
    other = actions.clone()
    other[:, 1] = (actions[:, 1] + 1) % A  # a_1 leads from frame 1 to frame 2
    with torch.no_grad():
        before = model.flatten_clip(tokens, actions), model.flatten_clip(tokens, other)
        logits, logits_other = model(before[0]), model(before[1])
    a1_position = 2 * (N + 1) - 1  # end of frame 1's chunk
    assert torch.allclose(logits[:, :a1_position], logits_other[:, :a1_position], atol=1e-6)
    # the output at a_1 predicts f_2[0]; it and everything after change
    assert (logits[:, a1_position] - logits_other[:, a1_position]).abs().max() > 1e-4
    tf = model.teacher_forced_logits(tokens, actions)
    tf_other = model.teacher_forced_logits(tokens, other)
    assert (tf - tf_other).abs().max() > 1e-4


def test_teacher_forced_logits_read_the_last_frame_positions():
    model = tiny_ar()
    tokens, actions = random_clip(T=3)
    with torch.no_grad():
        full = model(model.flatten_clip(tokens, actions))  # (B, 3 (N + 1), K)
        tf = model.teacher_forced_logits(tokens, actions)  # (B, h, w, K)
    # f_2[0] is predicted at a_1's position, f_2[n] at f_2[n-1]'s
    start = 2 * (N + 1) - 1
    assert tf.shape == (2, *GRID, K)
    assert torch.allclose(tf.flatten(1, 2), full[:, start : start + N], atol=1e-5)


def test_kv_cache_gives_the_same_logits_as_recomputing():
    model = tiny_ar()
    tokens, actions = random_clip(T=3)
    ids = model.flatten_clip(tokens, actions)  # (B, 3 (N + 1))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(ids.shape[0])
        pieces = [model(ids[:, :11], cache)]  # prefill
        pieces.append(model(ids[:, 11:16], cache))  # several new elements after a prefix
        pieces += [model(ids[:, i : i + 1], cache) for i in range(16, ids.shape[1])]
    assert cache.length == ids.shape[1]
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("use_actions", [True, False])
@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9), (1.3, 0.5)])
def test_cached_sampling_equals_full_recompute(use_actions, temperature, top_p):
    model = tiny_ar(use_actions=use_actions).double()  # float64: no near-tie can flip a draw
    tokens, actions = random_clip(B=3, T=2)
    actions = actions if use_actions else None
    for seed in range(3):
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        cached = model.generate_next(tokens, actions, temperature, top_p, g1)
        recomputed = model.generate_next_no_cache(tokens, actions, temperature, top_p, g2)
        assert cached.shape == (3, *GRID) and cached.dtype == torch.long
        assert torch.equal(cached, recomputed)
        assert torch.equal(g1.get_state(), g2.get_state())  # same randomness consumed


def test_greedy_generation_is_the_argmax_of_teacher_forcing():
    model = tiny_ar()
    tokens, actions = random_clip(T=2)
    frame = model.generate_next(tokens, actions, temperature=0.0)  # (B, h, w)
    clip = torch.cat([tokens, frame[:, None]], dim=1)
    clip_actions = torch.cat([actions, torch.zeros_like(actions[:, :1])], dim=1)
    tf = model.teacher_forced_logits(clip, clip_actions)
    assert torch.equal(tf.argmax(-1), frame)


def test_rollout_feeds_frames_back_and_slides_its_window():
    model = tiny_ar()
    tokens, _ = random_clip(T=2)
    actions = torch.randint(A, (2, 2 + 6 - 1))
    frames = rollout_model(model, tokens, actions, 6, SampleConfig(temperature=0.0))
    assert frames.shape == (2, 6, *GRID)  # 2 + 6 frames > max_frames = 5: window slid
    first = model.generate_next(tokens, actions[:, :2], temperature=0.0)
    assert torch.equal(frames[:, 0], first)
    with pytest.raises(ValueError, match="needs actions"):
        rollout_model(model, tokens, actions[:, :3], 6, SampleConfig())


def test_compressed_mode_learns_without_actions(make_token_world):
    # 1X-challenge mode: no actions; the last frame is a copy of the previous one
    world = make_token_world
    tokens, _ = world(num_clips=32, T=3)
    tokens[:, 2] = tokens[:, 1]
    model = tiny_ar(use_actions=False).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = model.next_token_loss(tokens, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = model.eval().teacher_forced_logits(tokens).argmax(-1) == tokens[:, -1]
    assert accuracy.float().mean() > 0.8


def train_on_token_world(world, blind: bool, steps: int = 100) -> ARDynamics:
    """A tiny AR model trained on the action-driven world; `blind` zeroes every action."""
    tokens, actions = world(num_clips=128, T=3, seed=0)
    if blind:
        actions = torch.zeros_like(actions)
    model = tiny_ar().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss, _ = model.next_token_loss(tokens, actions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_actions_matter_on_fresh_clips_and_a_blind_model_fails(make_token_world):
    """Temporally teacher-forced on clips never trained on: the first token of the frame
    needs the action, and every later one the model's own earlier guesses. Fully teacher
    forced, a blind model reads the shift off the true token 0 (it scored 1.000 there)."""
    tokens, actions = make_token_world(num_clips=128, T=3, seed=1)  # fresh clips

    def accuracy(model):
        predicted = model.temporally_teacher_forced_logits(tokens, actions).argmax(-1)
        return (predicted == tokens[:, -1]).float().mean().item()

    assert accuracy(train_on_token_world(make_token_world, blind=False)) > 0.6
    assert accuracy(train_on_token_world(make_token_world, blind=True)) < 0.45


def test_temporal_teacher_forcing_conditions_on_its_own_greedy_tokens():
    model = tiny_ar()
    tokens, actions = random_clip(B=3, T=3)
    temporal = model.temporally_teacher_forced_logits(tokens, actions)  # (B, h, w, K)
    greedy = model.generate_next(tokens[:, :2], actions[:, :2], temperature=0.0)  # (B, h, w)
    assert torch.equal(temporal.argmax(-1), greedy)  # the logits it decoded greedily from
    # with the greedy frame as the true one, both scenarios see the same tokens
    clip = torch.cat([tokens[:, :2], greedy[:, None]], dim=1)
    with torch.no_grad():
        full = model.fully_teacher_forced_logits(clip, actions)
    torch.testing.assert_close(temporal, full, atol=1e-5, rtol=1e-5)
    first = model.fully_teacher_forced_logits(tokens, actions)[:, 0, 0]  # token 0: no frame
    torch.testing.assert_close(temporal[:, 0, 0], first, atol=1e-5, rtol=1e-5)


def test_bad_inputs_raise_clear_errors():
    model = tiny_ar()
    tokens, actions = random_clip(T=3)
    with pytest.raises(ValueError, match="tokens must be"):
        model.flatten_clip(tokens[:, :, :2], actions)
    with pytest.raises(ValueError, match="tokens must lie"):
        model.flatten_clip(tokens + K, actions)
    with pytest.raises(ValueError, match="actions must be"):
        model.flatten_clip(tokens, actions[:, :2])
    with pytest.raises(ValueError, match="actions must lie"):
        model.flatten_clip(tokens, actions + A)
    with pytest.raises(ValueError, match="use_actions=False"):
        tiny_ar(use_actions=False).flatten_clip(tokens, actions)
    with pytest.raises(ValueError, match="max_frames"):
        long_tokens, long_actions = random_clip(T=5)
        model.generate_next(long_tokens, long_actions)
    with pytest.raises(ValueError, match="T >= 2"):
        model.teacher_forced_logits(tokens[:, :1], actions[:, :1])
