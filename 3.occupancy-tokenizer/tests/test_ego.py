"""Ego-motion tokens: motions read off poses, a round trip within half a bin, and a 3 s
trajectory rebuilt from tokens within a stated bound."""

import math

import pytest
import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer, integrate, relative_motion


def poses_from(traj: torch.Tensor) -> torch.Tensor:
    """(x, y, yaw) (T, 3) -> world-from-ego (T, 4, 4), as the driving data stores them."""
    x, y, yaw = traj.double().unbind(-1)
    P = torch.eye(4, dtype=torch.float64).repeat(len(traj), 1, 1)
    P[:, 0, 0], P[:, 0, 1], P[:, 1, 0], P[:, 1, 1] = yaw.cos(), -yaw.sin(), yaw.sin(), yaw.cos()
    P[:, 0, 3], P[:, 1, 3], P[:, 2, 3] = x, y, 0.3
    return P


def curve(T=7, speed=10.0, yaw_rate=0.3, dt=0.5, start=(5.0, -3.0, 1.0)) -> torch.Tensor:
    """(T, 3) world (x, y, yaw) of a car on a circle, `start` at frame 0."""
    t = torch.arange(T, dtype=torch.float64) * dt
    yaw = start[2] + yaw_rate * t
    radius = speed / yaw_rate
    x = start[0] + radius * (torch.sin(yaw) - math.sin(start[2]))
    y = start[1] - radius * (torch.cos(yaw) - math.cos(start[2]))
    return torch.stack([x, y, yaw], -1)


def test_relative_motion_of_a_circle_by_hand():
    motions = relative_motion(poses_from(curve(speed=10.0, yaw_rate=0.3)))  # (6, 3)
    # a chord of a circle of radius R = 10 / 0.3 through angle a = 0.15 rad, in the old frame:
    # (R sin a, R (1 - cos a)), and the heading turns by a
    R, a = 10 / 0.3, 0.15
    expected = torch.tensor([R * math.sin(a), R * (1 - math.cos(a)), a]).expand(6, 3)
    torch.testing.assert_close(motions, expected.float(), atol=1e-5, rtol=1e-5)


def test_integrate_rebuilds_the_trajectory_in_the_first_frame():
    traj = curve()
    rebuilt = integrate(relative_motion(poses_from(traj)))  # (7, 3), frame 0 at the origin
    x0, y0, yaw0 = traj[0]
    dx, dy = traj[:, 0] - x0, traj[:, 1] - y0  # world offsets, rotated into frame 0
    local = torch.stack([dx * yaw0.cos() + dy * yaw0.sin(), -dx * yaw0.sin() + dy * yaw0.cos()], -1)
    torch.testing.assert_close(rebuilt[:, :2], local.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rebuilt[:, 2], (traj[:, 2] - yaw0).float(), atol=1e-5, rtol=0)


def fitted() -> tuple[EgoMotionTokenizer, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = 2000
    train = torch.stack(
        [
            torch.rand(n, generator=g) * 15,  # dx in [0, 15] m: 0-30 m/s over 0.5 s
            (torch.rand(n, generator=g) - 0.5) * 2,  # dy in [-1, 1] m
            (torch.rand(n, generator=g) - 0.5) * 0.6,  # dyaw in [-0.3, 0.3] rad
        ],
        -1,
    )
    return EgoMotionTokenizer.fit(train, bins=(32, 16, 32)), train


def test_tokens_round_trip_within_half_a_bin():
    tokenizer, train = fitted()
    tokens = tokenizer.encode(train)
    assert tokens.dtype == torch.int64 and tokens.shape == (2000,)
    assert 0 <= int(tokens.min()) and int(tokens.max()) < tokenizer.vocab_size == 32 * 16 * 32
    error = (tokenizer.decode(tokens) - train).abs()  # (n, 3)
    half = torch.tensor(tokenizer.bin_width) / 2
    assert (error <= half * (1 + 1e-4)).all(), (error.max(0).values, half)
    assert torch.equal(tokenizer.encode(tokenizer.decode(tokens)), tokens)  # centres map home


def test_a_3_second_trajectory_from_tokens_drifts_within_its_bound():
    tokenizer, _ = fitted()
    motions = relative_motion(poses_from(curve(T=7, speed=12.0, yaw_rate=0.25)))  # 6 x 0.5 s
    true = integrate(motions)
    rebuilt = tokenizer.integrate(tokenizer.encode(motions))  # (7, 3)
    drift = (rebuilt[-1, :2] - true[-1, :2]).norm()
    bound = tokenizer.drift_bound(motions)
    # 36 m driven; half bins: 0.23 m along, 0.06 m across, 0.0094 rad of heading per step.
    # A constant motion falls in the same bins every step, so its errors add up: the worst case.
    assert drift <= bound, (drift, bound)
    assert bound < 2.5 and drift < 1.0  # measured 0.94 m after 3 s (bound 2.30 m)


def test_the_drift_bound_is_nearly_reached_when_every_heading_error_is_half_a_bin():
    tokenizer, _ = fitted()
    (w_dx, w_dy, w_yaw), low = tokenizer.bin_width, tokenizer.low
    # dx, dy at bin centres (no error of their own), dyaw just above a bin's lower edge: each
    # step turns half a bin too far, and the errors add up along 6 steps of 12 m
    step = torch.tensor([low[0] + 25.5 * w_dx, low[1] + 8.5 * w_dy, low[2] + 20.001 * w_yaw])
    motions = step.expand(6, 3).clone()
    true = integrate(motions)
    drift = (tokenizer.integrate(tokenizer.encode(motions))[-1, :2] - true[-1, :2]).norm()
    bound = tokenizer.drift_bound(motions)
    assert 0.5 * bound < drift <= bound, (drift, bound)  # measured 1.67 m, bound 3.13 m


def test_serialised_tokenizer_encodes_alike():
    tokenizer, train = fitted()
    again = EgoMotionTokenizer.from_dict(tokenizer.to_dict())
    assert torch.equal(again.encode(train), tokenizer.encode(train))


def test_out_of_range_motions_go_to_the_end_bins():
    tokenizer, _ = fitted()
    far = torch.tensor([[100.0, -50.0, 3.0]])
    decoded = tokenizer.decode(tokenizer.encode(far))
    assert decoded[0, 0] > 14.5 and decoded[0, 1] < -0.9 and decoded[0, 2] > 0.29


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.encode(torch.zeros(4, 2)), r"\(dx, dy, dyaw\)"),
        (lambda t: t.encode(torch.tensor([[0.0, float("nan"), 0.0]])), "NaN"),
        (lambda t: t.encode(torch.zeros(4, 3, dtype=torch.long)), "float"),
        (lambda t: t.decode(torch.tensor([32 * 16 * 32])), r"\[0, 16384\)"),
        (lambda t: t.decode(torch.tensor([-1])), r"\[0, 16384\)"),
        (lambda t: t.decode(torch.tensor([0.5])), "integer"),
        (lambda t: relative_motion(torch.eye(4)[None]), r"T >= 2"),
        (lambda t: EgoMotionTokenizer((0, 0, 0), (1, 1, 0), (4, 4, 4)), "low < high"),
        (lambda t: EgoMotionTokenizer((0, 0, 0), (1, 1, 1), (4, 0, 4)), "bins >= 1"),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(fitted()[0])
