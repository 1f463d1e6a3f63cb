"""Pedestrians walking along the sidewalks of urban scenes.

A pedestrian walks straight along the direction of the nearest lane (one way or the other) at
0.8-1.6 m/s and turns back when the next step would leave the sidewalk or hit a pole, tree or
bench. Simple, deterministic, and enough to put moving people next to the road.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.lanes import AgentState, LaneSamples
from worldmodels.data.driving.world import SIDEWALK, WorldMap
from worldmodels.occ3d import CLASS_ID

PEDESTRIAN = CLASS_ID["pedestrian"]
FIRST_ID = 100_000  # pedestrian ids start here (vehicles count up from 0)


def spawn_points(world: WorldMap, ego_xy: np.ndarray, count: int, reach: float, rng) -> np.ndarray:
    """(N, 2) world positions of sidewalk cells within `reach` m of the ego's path, N <= count."""
    cells = np.argwhere(world.ground == SIDEWALK)
    if len(cells) == 0:
        return np.zeros((0, 2))
    picks = cells[rng.choice(len(cells), size=min(len(cells), 40 * count), replace=False)]
    xy = world.origin + (picks + 0.5) * world.cell
    near = np.min(np.linalg.norm(xy[:, None, :] - ego_xy[None, ::4, :], axis=-1), axis=1) < reach
    return xy[near][:count]


def walk(
    world: WorldMap,
    lanes: list[LaneSamples],
    ego_xy: np.ndarray,
    frames: int,
    dt: float,
    rng: np.random.Generator,
    reach: float = 45.0,
) -> list[list[AgentState]]:
    """Per frame, the pedestrians near the ego's path (world frame)."""
    start = spawn_points(world, ego_xy, int(rng.integers(20, 40)), reach, rng)
    if len(start) == 0 or not lanes:
        return [[] for _ in range(frames)]
    centres = np.concatenate([lane.centre for lane in lanes])  # (S, 2)
    headings = np.concatenate([lane.heading for lane in lanes])
    nearest = np.argmin(np.linalg.norm(start[:, None] - centres[None], axis=-1), axis=1)
    heading = headings[nearest] + np.pi * (rng.random(len(start)) < 0.5)
    speed = rng.uniform(0.8, 1.6, len(start))
    position = start.copy()
    out = []
    for _ in range(frames):
        out.append(
            [
                AgentState(
                    FIRST_ID + k, PEDESTRIAN, *position[k], heading[k], 0.6, 0.6, 1.7, speed[k]
                )
                for k in range(len(position))
            ]
        )
        step = (speed * dt)[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        ahead = position + step
        ok = (world.ground_at(ahead) == SIDEWALK) & ~world.has_object_at(ahead)
        position = np.where(ok[:, None], ahead, position)
        heading = np.where(ok, heading, heading + np.pi)
    return out
