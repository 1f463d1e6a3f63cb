"""Pedestrians of urban scenes: walking along the sidewalks, and crossing at the crossings.

12-27 pedestrians walk the sidewalks near the ego's path. Each walks straight along the
direction of the nearest lane (one way or the other) at 0.8-1.6 m/s and turns back when the
next step would leave the sidewalk or hit a pole, tree or bench. A crossing pedestrian
(crossings.py decided, in traffic, when it reached its kerb, stepped off and reached the far
kerb) comes along the sidewalk, turns to the kerb, waits there, crosses straight at its
speed, and walks off along the far sidewalk: its sidewalk legs are paths of the same walk,
found here once the world is built.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.crossings import KERB_STEP
from worldmodels.data.driving.lanes import AgentState, LaneSamples
from worldmodels.data.driving.world import SIDEWALK, WorldMap
from worldmodels.occ3d import CLASS_ID

PEDESTRIAN = CLASS_ID["pedestrian"]
FIRST_ID = 100_000  # pedestrian ids start here (vehicles count up from 0)
BODY = (0.6, 0.6, 1.7)  # m: length, width, height
STEP = 0.25  # m, the resolution of a crossing pedestrian's sidewalk path


def spawn_points(world: WorldMap, ego_xy: np.ndarray, count: int, reach: float, rng) -> np.ndarray:
    """(N, 2) world positions on the sidewalks within `reach` m of the ego's path, where a
    pedestrian has room (`free_ahead`), N <= count."""
    cells = np.argwhere(world.ground == SIDEWALK)
    if len(cells) == 0:
        return np.zeros((0, 2))
    picks = cells[rng.choice(len(cells), size=min(len(cells), 40 * count), replace=False)]
    xy = world.origin + (picks + 0.5) * world.cell
    near = np.min(np.linalg.norm(xy[:, None, :] - ego_xy[None, ::4, :], axis=-1), axis=1) < reach
    xy = xy[near]
    return xy[free_ahead(world, xy)][:count]


def free_ahead(world: WorldMap, points: np.ndarray) -> np.ndarray:
    """(N,) bool: a pedestrian's body (BODY's half-width around each point (N, 2), tested at
    the centre and 4 points around it) stands on sidewalk with no solid, so it keeps clear of
    the kerb, of parked cars and of posts."""
    half = BODY[1] / 2
    probes = points[:, None, :] + np.array([[0, 0], [half, 0], [-half, 0], [0, half], [0, -half]])
    ok = (world.ground_at(probes) == SIDEWALK) & ~world.has_object_at(probes)
    return ok.all(axis=1)


def walk(
    world: WorldMap,
    lanes: list[LaneSamples],
    ego_xy: np.ndarray,
    frames: int,
    dt: float,
    rng: np.random.Generator,
    reach: float = 45.0,
) -> list[list[AgentState]]:
    """Per frame, the pedestrians walking the sidewalks near the ego's path (world frame)."""
    start = spawn_points(world, ego_xy, int(rng.integers(12, 28)), reach, rng)
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
                AgentState(FIRST_ID + k, PEDESTRIAN, *position[k], heading[k], *BODY, speed[k])
                for k in range(len(position))
            ]
        )
        step = (speed * dt)[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        ahead = position + step
        ok = free_ahead(world, ahead)
        position = np.where(ok[:, None], ahead, position)
        heading = np.where(ok, heading, heading + np.pi)
    return out


def sidewalk_path(world: WorldMap, kerb, outward, along, length: float):
    """A path from a kerb point (2,) out to the sidewalk, then along it: straight `outward`
    (unit, away from the road) to 1.2 m short of the sidewalk's far side, then the sidewalk
    walk along `along` (unit), turning back where blocked. Points every STEP m of walking,
    (K, 2), with the heading of each step (K,) rad; K covers at least `length` m."""
    depth = 0.0
    while depth < 12.0 and free_ahead(world, kerb + (depth + STEP) * outward[None])[0]:
        depth += STEP
    out_leg = np.arange(0.0, max(depth - 1.2, STEP), STEP)
    points = list(kerb + out_leg[:, None] * outward)
    headings = [float(np.arctan2(outward[1], outward[0]))] * len(points)
    position, heading = points[-1], float(np.arctan2(along[1], along[0]))
    while len(points) * STEP < length + 2 * STEP:
        ahead = position + STEP * np.array([np.cos(heading), np.sin(heading)])
        if free_ahead(world, ahead[None])[0]:
            position = ahead
        else:
            heading += np.pi
        points.append(position)
        headings.append(heading)
    return np.array(points), np.array(headings)


def at_distance(path: tuple[np.ndarray, np.ndarray], s: float) -> tuple[np.ndarray, float]:
    """Position (2,) and heading s m along a sidewalk path (linear between its points)."""
    points, headings = path
    k = min(int(s / STEP), len(points) - 2)
    w = min(max(s / STEP - k, 0.0), 1.0)
    return (1 - w) * points[k] + w * points[k + 1], float(headings[k])


def crossing_walkers(world: WorldMap, crossings: list[dict], frames: int, dt: float, rng):
    """Per frame, the pedestrians of the crossings (traffic's record, world frame)."""
    out = [[] for _ in range(frames)]
    duration = frames * dt
    for crossing in crossings:
        a, b = np.asarray(crossing["a"]), np.asarray(crossing["b"])
        if not world.index(((a + b) / 2)[None])[2][0]:
            continue  # beyond the world built for this sequence
        across = (b - a) / np.linalg.norm(b - a)
        along = np.array([-across[1], across[0]])
        for w in crossing["walkers"]:
            sign = w.direction
            first, last = (a, b) if sign > 0 else (b, a)
            kerb_from = first - sign * KERB_STEP * across + w.offset * along
            kerb_to = last + sign * KERB_STEP * across + w.offset * along
            turn = (1.0 if rng.random() < 0.5 else -1.0, 1.0 if rng.random() < 0.5 else -1.0)
            come = sidewalk_path(world, kerb_from, -sign * across, turn[0] * along,
                                 w.speed * max(w.arrive, 0.0))  # fmt: skip
            go = sidewalk_path(world, kerb_to, sign * across, turn[1] * along,
                               w.speed * max(duration - min(w.end, duration), 0.0))  # fmt: skip
            for t in range(frames):
                state = _walker_at(w, t * dt, kerb_from, kerb_to, come, go)
                if state is not None:
                    xy, yaw, speed = state
                    out[t].append(AgentState(w.agent_id, PEDESTRIAN, *xy, yaw, *BODY, speed))
    return out


def _walker_at(w, time: float, kerb_from, kerb_to, come, go):
    """(xy, yaw, speed) of a crossing pedestrian at `time` s: coming along the sidewalk (its
    `come` path walked backwards), waiting at the kerb, crossing, or going off (`go`)."""
    direction = kerb_to - kerb_from
    yaw = float(np.arctan2(direction[1], direction[0]))
    if time < w.arrive:
        xy, heading = at_distance(come, w.speed * (w.arrive - time))
        return xy, heading + np.pi, w.speed
    if time < w.start:
        return kerb_from, yaw, 0.0
    if time < w.end:
        return kerb_from + direction * (time - w.start) / (w.end - w.start), yaw, w.speed
    xy, heading = at_distance(go, w.speed * (time - w.end))
    return xy, heading, w.speed
