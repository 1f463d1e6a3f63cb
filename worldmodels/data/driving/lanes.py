"""Lanes and agents in the world frame: highway-env's road network read out, mirrored in y.

highway-env's plane has its y axis pointing to the driver's right (like screen pixels); ours
is mirrored, so that x, y, z form a right-handed frame with z up and "left" is +y for a
vehicle heading along +x. Headings flip sign under the mirror.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from highway_env.road.lane import CircularLane, SineLane, StraightLane


def mirror_xy(xy: np.ndarray) -> np.ndarray:
    """highway-env plane -> world plane: (x, y) -> (x, -y). Works on (..., 2) arrays."""
    return np.asarray(xy, dtype=np.float64) * np.array([1.0, -1.0])


@dataclass
class AgentState:
    """One agent at one frame, world frame: centre (x, y) m, yaw rad, body size m, speed m/s
    (0 for parked cars and static objects)."""

    agent_id: int
    class_id: int
    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    speed: float = 0.0


@dataclass(frozen=True)
class RoadLane:
    """A highway-env lane and how far (m) to continue it straight before its start and after
    its end: a road that dead-ends at the border of highway-env's map is drawn on to the
    horizon instead of stopping in a field."""

    lane: object
    extend_before: float
    extend_after: float


ROAD_EXTENSION = 300.0  # m


def road_lanes(network) -> list[RoadLane]:
    """Every lane of a road network; straight lanes with nothing before (after) them are
    extended before (after) by ROAD_EXTENSION."""
    has_incoming = {to for to_dict in network.graph.values() for to in to_dict}
    out = []
    for _from, to_dict in network.graph.items():
        for _to, lanes in to_dict.items():
            for lane in lanes:
                straight = isinstance(lane, StraightLane) and not isinstance(lane, SineLane)
                before = ROAD_EXTENSION * (straight and _from not in has_incoming)
                after = ROAD_EXTENSION * (straight and not network.graph.get(_to))
                out.append(RoadLane(lane, before, after))
    return out


@dataclass
class LaneSamples:
    """Points along a lane's centre line in the world frame, every `step` m of arc length.

    centre: (S, 2) m; heading: (S,) rad; width: (S,) m; step: m between samples.
    """

    centre: np.ndarray
    heading: np.ndarray
    width: np.ndarray
    step: float

    @property
    def left(self) -> np.ndarray:
        """(S, 2) unit vectors to the lane's left (the driver's left)."""
        return np.stack([-np.sin(self.heading), np.cos(self.heading)], axis=-1)


def sample_lane(lane, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (S, 2), heading (S,) and width (S,) of a highway-env lane at arc lengths s (S,),
    in highway-env's plane. Vectorised for its straight, sine and circular lanes (the same
    formulas as their `position`/`heading_at`), with a per-sample fallback for other kinds."""
    if isinstance(lane, SineLane):
        lateral = lane.amplitude * np.sin(lane.pulsation * s + lane.phase)
        centre = (
            lane.start + s[:, None] * lane.direction + lateral[:, None] * lane.direction_lateral
        )
        slope = lane.amplitude * lane.pulsation * np.cos(lane.pulsation * s + lane.phase)
        heading = lane.heading + np.arctan(slope)
    elif isinstance(lane, StraightLane):
        centre = lane.start + s[:, None] * lane.direction
        heading = np.full(s.shape, lane.heading)
    elif isinstance(lane, CircularLane):
        phi = lane.direction * s / lane.radius + lane.start_phase
        centre = lane.center + lane.radius * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
        heading = phi + np.pi / 2 * lane.direction
    else:
        centre = np.array([lane.position(float(si), 0.0) for si in s] or np.zeros((0, 2)))
        heading = np.array([lane.heading_at(float(si)) for si in s])
        width = np.array([lane.width_at(float(si)) for si in s])
        return centre, heading, width
    return centre, heading, np.full(s.shape, float(lane.width_at(0.0)))


def lane_samples_in(
    lanes: list[RoadLane], box_min: np.ndarray, box_max: np.ndarray, step: float
) -> list[LaneSamples]:
    """World-frame samples every `step` m of every lane (with its straight extensions), kept
    where they lie in the world box [box_min, box_max] (2,) m. A 10 km highway lane is first
    scanned every 5 m so that only its visible part is sampled finely."""
    out = []
    for road_lane in lanes:
        lane = road_lane.lane
        start, end = -road_lane.extend_before, lane.length + road_lane.extend_after
        coarse = np.append(np.arange(start, end, 5.0), end)
        centre, _, _ = sample_lane(lane, coarse)
        world = mirror_xy(centre)
        margin = 10.0
        inside = np.all((world > box_min - margin) & (world < box_max + margin), axis=1)
        if not inside.any():
            continue
        first, last = np.flatnonzero(inside)[[0, -1]]
        s0, s1 = coarse[max(first - 1, 0)], coarse[min(last + 1, len(coarse) - 1)]
        s = np.append(np.arange(s0, s1, step), s1)
        centre, heading, width = sample_lane(lane, s)
        out.append(LaneSamples(mirror_xy(centre), -heading, width, step))
    return out
