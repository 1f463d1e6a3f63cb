"""MovingSprites: format, determinism, and that actions (only) steer sprite 0."""

import numpy as np
import pytest
import torch

from worldmodels.data.synthetic import BACKGROUND, MOVES, MovingSprites


def player_corner(frame: torch.Tensor) -> tuple[int, int]:
    """Top-left (y, x) of the white player sprite in a (C, H, W) frame."""
    white = (frame == 1.0).all(dim=0).nonzero()
    return int(white[:, 0].min()), int(white[:, 1].min())


def test_item_format():
    data = MovingSprites(num_clips=3, clip_len=6, size=32, num_sprites=3, num_actions=5)
    item = data[2]
    assert len(data) == 3
    assert item["frames"].shape == (6, 3, 32, 32) and item["frames"].dtype == torch.float32
    assert 0.0 <= item["frames"].min() and item["frames"].max() <= 1.0
    assert item["actions"].shape == (6,) and item["actions"].dtype == torch.int64
    assert set(item["actions"].tolist()) <= set(range(5))
    # background everywhere but 3 sprites of 4 x 4 pixels (fewer where they overlap)
    background = (item["frames"][0] == torch.tensor(BACKGROUND).view(3, 1, 1)).all(dim=0)
    assert 32 * 32 - 3 * 16 <= background.sum() < 32 * 32 - 16


def test_deterministic_and_order_free():
    a = MovingSprites(5, 8, seed=3)
    b = MovingSprites(5, 8, seed=3)
    for i in (4, 0, 2):  # any access order gives the same clip
        assert torch.equal(a[i]["frames"], b[i]["frames"])
        assert torch.equal(a[i]["actions"], b[i]["actions"])
    assert not torch.equal(a[0]["frames"], MovingSprites(5, 8, seed=4)[0]["frames"])
    assert not torch.equal(a[0]["frames"], a[1]["frames"])


@pytest.mark.parametrize("num_actions", [5, 9])
def test_actions_move_the_player(num_actions):
    data = MovingSprites(20, 12, size=32, num_sprites=2, num_actions=num_actions)
    speed, highest = data.speed, data.size - data.sprite_size  # 2 px, 28
    seen = set()
    for i in range(len(data)):
        item = data[i]
        corners = [player_corner(frame) for frame in item["frames"]]
        for t, action in enumerate(item["actions"][:-1].tolist()):
            dy, dx = MOVES[action]
            y, x = corners[t]
            # p_{t+1} = clip(p_t + speed * move(a_t), 0, H - sprite)
            expected = (min(max(y + speed * dy, 0), highest), min(max(x + speed * dx, 0), highest))
            assert corners[t + 1] == expected, (i, t, action)
            seen.add(action)
    assert seen == set(range(num_actions))


def test_only_the_player_depends_on_actions():
    data = MovingSprites(1, 30, size=32, num_sprites=4)
    stay = np.zeros(30, dtype=int)
    right = np.full(30, 4)
    a = data.trajectories(np.random.default_rng(7), stay)
    b = data.trajectories(np.random.default_rng(7), right)
    assert (a[:, 0] == a[0, 0]).all()  # action 0 keeps the player still
    assert (np.diff(b[:, 0, 1]) >= 0).all() and b[-1, 0, 1] == data.size - data.sprite_size
    np.testing.assert_array_equal(a[:, 1:], b[:, 1:])  # drifters ignore actions


def test_drifters_bounce_inside_the_frame():
    data = MovingSprites(1, 200, size=16, num_sprites=3)
    corners = data.trajectories(np.random.default_rng(0), np.zeros(200, dtype=int))
    highest = data.size - data.sprite_size
    assert corners.min() >= 0 and corners.max() <= highest
    steps = np.diff(corners[:, 1:], axis=0)  # (T-1, 2 drifters, 2)
    assert (steps != 0).all()  # they never stop
    assert ((steps[1:] * steps[:-1]) < 0).any()  # and turn back at walls


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_actions must be in"):
        MovingSprites(2, 4, num_actions=10)
    with pytest.raises(ValueError, match="num_sprites must be in"):
        MovingSprites(2, 4, num_sprites=0)
    with pytest.raises(IndexError):
        MovingSprites(2, 4)[2]
