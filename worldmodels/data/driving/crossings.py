"""Marked pedestrian crossings in traffic: where people cross the road, and drivers stop.

A crossing is a strip `width` m wide across the carriageway from kerb point a to kerb point b
(highway-env's plane): on a town street at its traffic light (a signalised mid-block
crossing), and on every arm of an intersection a car's length from the corners (zebras). Its
pedestrians reach a kerb at random times, wait, and step off when it is safe: no vehicle on
the strip, nor one heading for it that could not stop comfortably before it,

    d > 3 m + 1.2 s * v + v^2 / (2 * 4 m/s^2)     (d: gap to the strip, v: the vehicle's speed),

and, where a light controls the crossing, only while the vehicles' light is red for at
least as long as the pedestrian needs to cross (so pedestrians never hold the traffic past
its red); at a zebra only once the drivers have had the road for `wait` s since the last
pedestrian left (or to join people already on the strip). While
someone is on the strip, and while the light is red, an invisible stop line (a highway-env
`Obstacle` that nothing collides with) stands `LINE_GAP` m before the strip on every lane
that crosses it: highway-env's IDM drivers and the ego brake for the nearest object ahead in
their lane, so they stop, queue, and go once the strip is clear.

Pedestrians walk straight across at their own speed; pedestrians.py brings them to their
kerb along the sidewalk and takes them away on the far side, once the world is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.vehicle.objects import Obstacle

from worldmodels.data.driving.lanes import mirror_xy

WIDTH = 3.0  # m, a crossing strip along the road
KERB_STEP = 1.0  # m, where a pedestrian waits: this far behind the carriageway's edge
LINE_GAP = 1.5  # m, stop line before the strip
SEE_AHEAD = 10.0  # m: a line closer than this to its lane's start is repeated before it
SETBACK = 5.0  # m between an intersection's corner and its zebra (a car's length)
JOIN = 2.0  # s after the first steps off a zebra that others may still join
WALKER_ID = 150_000  # crossing pedestrians' track ids start here


def envelope(speed: float) -> float:
    """Gap (m) a vehicle at `speed` m/s needs to stop comfortably before a strip:
    3 m + 1.2 s of reaction + v^2 / (2 * 4 m/s^2)."""
    return 3.0 + 1.2 * speed + speed**2 / 8.0


@dataclass
class Walker:
    """A crossing pedestrian: from kerb a to kerb b (direction +1) or back (-1) at `speed` m/s,
    `offset` m along the road inside the strip; at its kerb from `arrive` s, steps off at
    `start` s, on the far kerb at `end` s (inf: not yet). Times from the sequence's first frame."""

    agent_id: int
    direction: int
    speed: float
    offset: float
    arrive: float
    start: float = np.inf
    end: float = np.inf


@dataclass
class Crossing:
    """A crossing strip and its pedestrians (see the module docstring); a, b: (2,) kerb points
    in highway-env's plane; light: the vehicles' traffic light ({red, cycle, phase} s) or None;
    wait: s the drivers get between pedestrians at a zebra."""

    a: np.ndarray
    b: np.ndarray
    width: float
    walkers: list[Walker]
    light: dict | None = None
    wait: float = 0.0
    lines: list = field(default_factory=list)
    clear_since: float = -np.inf
    busy_since: float = -np.inf
    busy: bool = False

    @property
    def length(self) -> float:
        """m a pedestrian walks from kerb to kerb (waiting KERB_STEP behind each edge)."""
        return float(np.linalg.norm(self.b - self.a)) + 2 * KERB_STEP

    def gap(self, position: np.ndarray) -> float:
        """Distance (m) from a point to the strip (0 inside it)."""
        centre, across = (self.a + self.b) / 2, (self.b - self.a) / np.linalg.norm(self.b - self.a)
        rel = position - centre
        beyond_across = max(abs(rel @ across) - np.linalg.norm(self.b - self.a) / 2, 0.0)
        along = np.array([-across[1], across[0]])
        beyond_along = max(abs(rel @ along) - self.width / 2, 0.0)
        return float(np.hypot(beyond_across, beyond_along))

    def blocked(self, road) -> bool:
        """A vehicle is on the strip, or heading for it within its stopping envelope."""
        centre = (self.a + self.b) / 2
        for v in road.vehicles:
            gap = self.gap(v.position) - np.hypot(v.LENGTH, v.WIDTH) / 2
            if gap <= 0:
                return True
            heading_for = v.velocity @ (centre - v.position) > 0
            if heading_for and gap < envelope(float(v.speed)):
                return True
        return False

    def red(self, time: float) -> bool:
        return self.light is not None and self.red_left(time) > 0

    def red_left(self, time: float) -> float:
        """s of red light left at `time` (0 when green)."""
        t = (time + self.light["phase"]) % self.light["cycle"]
        return max(self.light["red"] - t, 0.0)

    def may_start(self, road, time: float) -> bool:
        if self.light is None:  # a zebra: after `wait` s of traffic, or with the first group
            joining = self.busy and time - self.busy_since < JOIN
            if not joining and (self.busy or time - self.clear_since < self.wait):
                return False
        return not self.blocked(road)

    def step(self, road, time: float) -> None:
        """Let waiting pedestrians step off if they may; note whether anyone is on the strip."""
        waiting = [w for w in self.walkers if w.arrive <= time and w.start == np.inf]
        if self.light is not None:  # walk only while the red light outlasts the crossing
            red_left = self.red_left(time)
            waiting = [w for w in waiting if red_left >= self.length / w.speed]
        if waiting and self.may_start(road, time):
            for w in waiting:
                w.start, w.end = time, time + self.length / w.speed
        busy = any(w.start <= time < w.end for w in self.walkers)
        if self.busy and not busy:
            self.clear_since = time
        if busy and not self.busy:
            self.busy_since = time
        self.busy = busy

    def world(self) -> dict:
        """The crossing in the world frame (lanes.py's mirror) for the record."""
        return {"a": mirror_xy(self.a), "b": mirror_xy(self.b), "width": self.width,
                "walkers": list(self.walkers)}  # fmt: skip


def _line(road, lane, s: float) -> Obstacle:
    line = Obstacle(road, lane.position(s, 0.0), lane.heading_at(s))
    line.collidable = line.solid = False
    line.LENGTH, line.wm_line = 0.5, True
    return line


def stop_lines(road, crossing: Crossing) -> list:
    """One invisible stop line LINE_GAP m before the strip on every lane that crosses it; where
    that lies less than SEE_AHEAD m past the lane's start (an intersection's outgoing lane),
    also at the end of the lanes that lead into it (the turns and the straight way across),
    since drivers see only their own lane's objects: turning drivers wait in the junction."""
    points = crossing.a + np.linspace(0, 1, 17)[:, None] * (crossing.b - crossing.a)
    centre = (crossing.a + crossing.b) / 2
    graph = road.network.graph
    lines = []
    for _from, to_dict in graph.items():
        for _to, lanes in to_dict.items():
            for lane in lanes:
                if not any(lane.on_lane(p) for p in points):
                    continue
                s = lane.local_coordinates(centre)[0] - crossing.width / 2 - LINE_GAP
                if s >= 0:
                    lines.append(_line(road, lane, min(s, lane.length)))
                if s >= SEE_AHEAD:
                    continue
                for before in graph.values():
                    for previous in before.get(_from, []):
                        at = previous.length + min(s, -0.5)
                        lines.append(_line(road, previous, max(at, 0.0)))
    return lines


def make_walkers(rng, count: tuple[int, int], duration: float, width: float, first_id: int):
    """Pedestrians reaching the crossing between 10 s before the sequence and its end."""
    out = []
    for k in range(int(rng.integers(*count))):
        out.append(
            Walker(
                agent_id=first_id + k,
                direction=1 if rng.random() < 0.5 else -1,
                speed=float(rng.uniform(1.0, 1.6)),
                offset=float(rng.uniform(-width / 2 + 0.4, width / 2 - 0.4)),
                arrive=float(rng.uniform(-10.0, duration)),
            )
        )
    return out


def signal_crossing(env, signal, rng, duration: float) -> list[Crossing]:
    """A town street's traffic light `signal.distance` m ahead of the ego, red for the vehicles
    for `signal.red` s and green for `signal.green` s from a random phase, with a crossing
    strip across every lane there."""
    road, ego = env.road, env.vehicle
    lane = road.network.get_lane(ego.lane_index)
    s = lane.local_coordinates(ego.position)[0] + float(rng.uniform(*signal.distance))
    lateral = [
        lane.local_coordinates(other.start)[1]
        for to_dict in road.network.graph.values()
        for lanes in to_dict.values()
        for other in lanes
    ]
    half = lane.width_at(s) / 2
    a, b = lane.position(s, min(lateral) - half), lane.position(s, max(lateral) + half)
    crossing = Crossing(a, b, WIDTH, [])
    red, green = float(rng.uniform(*signal.red)), float(rng.uniform(*signal.green))
    light = {"red": red, "cycle": red + green, "phase": float(rng.uniform(0, red + green))}
    crossing.walkers = make_walkers(rng, (2, 7), duration, WIDTH, WALKER_ID)
    crossing.light, crossing.lines = light, stop_lines(road, crossing)
    return [crossing]


def junction_crossings(env, rng, duration: float) -> list[Crossing]:
    """A zebra on every arm of highway-env's intersection, set back SETBACK m from the corners
    (as zebras near junctions are, clear of the corner that long vehicles sweep as they
    turn): across the incoming lane ("o<k>", "ir<k>", 0) and the outgoing lane beside it."""
    road = env.road
    out = []
    for k in range(4):
        lane = road.network.get_lane((f"o{k}", f"ir{k}", 0))
        width = lane.width_at(0.0)
        s = lane.length - SETBACK - WIDTH / 2
        a, b = lane.position(s, -1.5 * width), lane.position(s, width / 2)
        first_id = WALKER_ID + 100 * (k + 1)
        walkers = make_walkers(rng, (0, 4), duration, WIDTH, first_id)
        crossing = Crossing(a, b, WIDTH, walkers, wait=float(rng.uniform(6.0, 15.0)))
        crossing.lines = stop_lines(road, crossing)
        out.append(crossing)
    return out


def update(road, crossings: list[Crossing], time: float) -> None:
    """Advance every crossing to `time` and stand the stop lines of those that are busy or
    red on the road (and only those)."""
    road.objects = [o for o in road.objects if not getattr(o, "wm_line", False)]
    for crossing in crossings:
        crossing.step(road, time)
        if crossing.busy or crossing.red(time):
            road.objects.extend(crossing.lines)
