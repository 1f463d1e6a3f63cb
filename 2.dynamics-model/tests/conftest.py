"""A tiny synthetic token world shared by the dynamics-model tests.

Frame 0 is random; every later frame is a deterministic function of the previous frame
and the action: f_{t+1}[i, j] = (f_t[i, j] + a_t) mod K. A model that reads the action and
the token at the same place one frame back predicts every token after frame 0 exactly.
"""

import pytest
import torch

from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)

K, A, GRID = 8, 4, (3, 3)


def token_world(num_clips: int, T: int, seed: int = 0):
    """tokens (B, T, h, w) int64 in [0, K), actions (B, T) int64 in [0, A)."""
    g = torch.Generator().manual_seed(seed)
    actions = torch.randint(A, (num_clips, T), generator=g)
    frames = [torch.randint(K, (num_clips, *GRID), generator=g)]
    for t in range(T - 1):
        frames.append((frames[-1] + actions[:, t, None, None]) % K)
    return torch.stack(frames, dim=1), actions


@pytest.fixture
def make_token_world():
    """The generator above, plus its sizes as attributes (K, A, GRID)."""
    token_world.K, token_world.A, token_world.GRID = K, A, GRID
    return token_world
