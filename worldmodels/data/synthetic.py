"""Moving sprites: a tiny, deterministic, action-controlled video source for fast tests.

Square sprites on a dark background. Sprite 0 (always white, drawn on top) is the
player: at each step it moves by the action's direction; the others drift at a constant
velocity and bounce off the walls. Nothing is random once (seed, clip index) is fixed,
so a model that predicts frame t+1 from frames <= t and actions[t] can reach zero error
on sprite 0 only by reading the action.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

# (dy, dx) per action, in units of the sprite speed; y grows downwards (image rows).
MOVES = (
    (0, 0),  # 0 stay
    (-1, 0),  # 1 up
    (1, 0),  # 2 down
    (0, -1),  # 3 left
    (0, 1),  # 4 right
    (-1, -1),  # 5 up-left
    (-1, 1),  # 6 up-right
    (1, -1),  # 7 down-left
    (1, 1),  # 8 down-right
)
PLAYER_COLOUR = (1.0, 1.0, 1.0)
# Saturated colours for the drifting sprites, far from white and from the background.
SPRITE_COLOURS = (
    (0.95, 0.25, 0.2),
    (0.2, 0.8, 0.3),
    (0.25, 0.45, 0.95),
    (0.95, 0.8, 0.15),
    (0.8, 0.3, 0.9),
    (0.15, 0.85, 0.85),
    (1.0, 0.55, 0.1),
)
BACKGROUND = (0.06, 0.06, 0.1)


class MovingSprites(torch.utils.data.Dataset):
    """`num_clips` clips of `clip_len` frames; clip i is generated from seed (seed, i).

    Item: dict(
        frames=(T, C, H, W) float32 in [0, 1], C = 3, H = W = size,
        actions=(T,) int64 in [0, num_actions): actions[t] moves sprite 0 between frames[t]
                and frames[t+1] by MOVES[a] * speed pixels (0 stay, 1 up, 2 down, 3 left,
                4 right, 5-8 diagonals), stopping at the walls.
    )
    Sprites are `sprite_size = max(2, size // 8)` pixels wide; `speed = max(1, size // 16)`
    pixels per step. Clips are rendered on demand (nothing is stored).
    """

    def __init__(
        self,
        num_clips: int,
        clip_len: int,
        size: int = 32,
        num_sprites: int = 2,
        seed: int = 0,
        num_actions: int = 5,
    ):
        if num_clips < 1 or clip_len < 1:
            raise ValueError(f"num_clips and clip_len must be >= 1, got {num_clips}, {clip_len}")
        if not 1 <= num_actions <= len(MOVES):
            raise ValueError(f"num_actions must be in [1, {len(MOVES)}], got {num_actions}")
        if not 1 <= num_sprites <= 1 + len(SPRITE_COLOURS):
            raise ValueError(
                f"num_sprites must be in [1, {1 + len(SPRITE_COLOURS)}], got {num_sprites}"
            )
        self.sprite_size, self.speed = max(2, size // 8), max(1, size // 16)
        if size < 2 * self.sprite_size:
            raise ValueError(f"size must be >= 4 pixels, got {size}")
        self.num_clips, self.clip_len, self.size = num_clips, clip_len, size
        self.num_sprites, self.seed, self.num_actions = num_sprites, seed, num_actions

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.num_clips:
            raise IndexError(f"clip {i} out of range for {self.num_clips} clips")
        rng = np.random.default_rng([self.seed, i])
        actions = rng.integers(self.num_actions, size=self.clip_len)
        positions = self.trajectories(rng, actions)  # (T, num_sprites, 2): top-left row, column
        frames = np.stack([self._render(step) for step in positions])  # (T, H, W, 3)
        return {
            "frames": torch.from_numpy(rearrange(frames, "t h w c -> t c h w")),
            "actions": torch.from_numpy(actions.astype(np.int64)),
        }

    def trajectories(self, rng: np.random.Generator, actions: np.ndarray) -> np.ndarray:
        """Top-left corners (T, num_sprites, 2) int64 (y, x) in pixels of every sprite."""
        highest = self.size - self.sprite_size  # largest valid top-left coordinate
        position = rng.integers(0, highest + 1, size=(self.num_sprites, 2))
        # drift: each component +-1..speed pixels per step, never 0
        speeds = rng.integers(1, self.speed + 1, size=(self.num_sprites, 2))
        velocity = rng.choice([-1, 1], size=(self.num_sprites, 2)) * speeds
        steps = []
        for action in actions:
            steps.append(position.copy())
            # player: p_{t+1} = clip(p_t + speed * move(a_t), 0, highest)
            position[0] = np.clip(position[0] + self.speed * np.array(MOVES[action]), 0, highest)
            # drifters: p_{t+1} = p_t + v_t, reflected back inside [0, highest] at a wall
            moved = position[1:] + velocity[1:]
            inside = np.where(
                moved < 0, -moved, np.where(moved > highest, 2 * highest - moved, moved)
            )
            velocity[1:] = np.where(inside != moved, -velocity[1:], velocity[1:])
            position[1:] = inside
        return np.stack(steps)

    def _render(self, corners: np.ndarray) -> np.ndarray:
        """(num_sprites, 2) corners -> (H, W, 3) float32 frame; sprite 0 drawn last (on top)."""
        frame = np.empty((self.size, self.size, 3), dtype=np.float32)
        frame[:] = BACKGROUND
        colours = (PLAYER_COLOUR,) + SPRITE_COLOURS
        for k in reversed(range(self.num_sprites)):
            y, x = corners[k]
            frame[y : y + self.sprite_size, x : x + self.sprite_size] = colours[k]
        return frame
