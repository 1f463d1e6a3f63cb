"""Roads and traffic from highway-env: scenarios, an ego policy of meta-actions, agent boxes.

highway-env simulates the road network and the other vehicles (IDM car following with
MOBIL lane changes); we only read its state, never render it. The ego vehicle is an
`MDPVehicle` steered by highway-env's meta-actions LANE_LEFT / IDLE / LANE_RIGHT / FASTER /
SLOWER, chosen at random now and then but never into a vehicle (`choose_action`).

Everything leaving this module is in our world frame: highway-env's plane mirrored in y
(its y axis points to the driver's right), so that x, y, z form a right-handed frame with z up
and "left" is +y for a vehicle heading along +x. Headings flip sign under the mirror.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worldmodels.occ3d import CLASS_ID

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")  # highway-env imports pygame
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym  # noqa: E402
import highway_env  # noqa: E402, F401  (registers the environments)
from highway_env.road.lane import CircularLane, SineLane, StraightLane  # noqa: E402
from highway_env.vehicle import behavior, controller, kinematics  # noqa: E402
from highway_env.vehicle.controller import MDPVehicle  # noqa: E402

# highway-env's discrete meta-action ids (DiscreteMetaAction.ACTIONS_ALL).
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")
ACTION_ID = {name: i for i, name in enumerate(META_ACTIONS)}


def mirror_xy(xy: np.ndarray) -> np.ndarray:
    """highway-env plane -> world plane: (x, y) -> (x, -y). Works on (..., 2) arrays."""
    return np.asarray(xy, dtype=np.float64) * np.array([1.0, -1.0])


@dataclass(frozen=True)
class Scenario:
    """A highway-env environment plus the look of its surroundings.

    style: "highway" (guard rails, noise walls, fields), "urban" (sidewalks, buildings,
    pedestrians) or "racetrack" (tyre barriers, gravel, grandstands).
    lane_changes: whether the ego may change lanes there.
    """

    name: str
    env_id: str
    style: str
    lane_changes: bool
    config: Callable[[np.random.Generator], dict]
    traffic_mix: tuple[float, float, float, float]  # P(truck), P(bus), P(semi), P(motorbike)
    ego_speeds: tuple[float, ...] | None = None  # target speeds (m/s); None: highway-env's


HIGHWAY_SPEEDS = (10.0, 15.0, 20.0, 25.0, 30.0)  # m/s, the ego's target speeds on highways

SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "highway",
            "highway-v0",
            "highway",
            True,
            lambda rng: {
                "lanes_count": int(rng.integers(2, 5)),
                "vehicles_count": int(rng.integers(14, 22)),
                "vehicles_density": float(rng.uniform(1.2, 2.0)),
            },
            (0.08, 0.02, 0.05, 0.03),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "merge",
            "merge-v0",
            "highway",
            True,
            lambda rng: {},
            (0.1, 0.0, 0.05, 0.03),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "exit",
            "exit-v0",
            "highway",
            True,
            lambda rng: {"vehicles_count": int(rng.integers(12, 20))},
            (0.08, 0.03, 0.05, 0.03),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "intersection",
            "intersection-v0",
            "urban",
            False,
            lambda rng: {"spawn_probability": float(rng.uniform(0.4, 0.8))},
            (0.06, 0.06, 0.0, 0.05),
            (0.0, 3.0, 6.0, 9.0),
        ),
        Scenario(
            "roundabout",
            "roundabout-v0",
            "urban",
            True,
            lambda rng: {},
            (0.06, 0.06, 0.0, 0.05),
            (0.0, 4.0, 8.0, 12.0, 16.0),
        ),
        Scenario(
            "racetrack",
            "racetrack-v0",
            "racetrack",
            True,
            lambda rng: {"other_vehicles": int(rng.integers(4, 9))},
            (0.0, 0.0, 0.0, 0.15),
            (6.0, 9.0, 12.0, 15.0),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown driving scenario {name!r}; expected one of {sorted(SCENARIOS)}")
    return SCENARIOS[name]


# Vehicle bodies: (class name, length range m, width m, height m). Heights are multiples of
# 0.8 m (see config.HEIGHT_STEP). A semi is a 6 m tractor ("truck") pulling a 10.5 m "trailer".
BODY = {
    "car": ("car", (4.0, 5.0), 1.9, 1.6),
    "truck": ("truck", (7.0, 9.5), 2.4, 3.2),
    "bus": ("bus", (10.5, 12.0), 2.5, 3.2),
    "semi": ("truck", (16.5, 16.5), 2.5, 4.0),
    "motorbike": ("motorcycle", (2.0, 2.2), 0.8, 1.6),
}
SEMI_TRACTOR = 6.0  # m, front part of a semi; the rest is the trailer


@dataclass
class AgentState:
    """One agent at one frame, world frame: centre (x, y) m, yaw rad, body size m."""

    agent_id: int
    class_id: int
    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float


@contextlib.contextmanager
def _restored_class_constants():
    """Some highway-env scenarios overwrite class constants of the vehicle models (e.g. the
    intersection sets IDMVehicle.DISTANCE_WANTED = 7 for every later environment too). Save and
    restore them so each sequence depends on its own seed only, not on what ran before."""
    classes = [
        kinematics.Vehicle,
        controller.ControlledVehicle,
        controller.MDPVehicle,
        behavior.IDMVehicle,
        behavior.LinearVehicle,
    ]
    saved = [
        {k: v for k, v in vars(cls).items() if k.isupper() and not callable(v)} for cls in classes
    ]
    try:
        yield
    finally:
        for cls, constants in zip(classes, saved, strict=True):
            for key in [k for k in vars(cls) if k.isupper() and k not in constants]:
                delattr(cls, key)
            for key, value in constants.items():
                setattr(cls, key, value)


def make_env(scenario: Scenario, seed: int, rng: np.random.Generator, simulation_rate: float):
    """Create and reset the highway-env environment; return its unwrapped object."""
    config = {"simulation_frequency": int(simulation_rate), **scenario.config(rng)}
    with warnings.catch_warnings():  # "merge-v0 is out of date": we want these exact versions
        warnings.simplefilter("ignore", DeprecationWarning)
        env = gym.make(scenario.env_id, config=config).unwrapped
    env.reset(seed=seed)
    _ensure_mdp_ego(env)
    if scenario.ego_speeds is not None:
        ego = env.vehicle
        ego.target_speeds = np.array(scenario.ego_speeds, dtype=np.float64)
        ego.speed_index = ego.speed_to_index(ego.speed)
        ego.target_speed = ego.index_to_speed(ego.speed_index)
    if scenario.style == "highway":
        _fill_behind(env, rng, int(rng.integers(6, 14)))
    return env


def _ensure_mdp_ego(env) -> None:
    """Make the ego an MDPVehicle (the racetrack scenario creates a continuous-action one)."""
    ego = env.vehicle
    if isinstance(ego, MDPVehicle):
        return
    new = MDPVehicle(env.road, ego.position, ego.heading, max(ego.speed, 9.0))
    env.road.vehicles[env.road.vehicles.index(ego)] = new
    env.controlled_vehicles = [new]


def _lane_gaps(road, vehicle, lane_index) -> tuple[float, float, float, float]:
    """Bumper-to-bumper gaps (m) to the vehicles in front of and behind `vehicle` on a lane,
    and how fast each gap is closing (m/s); inf / 0 where there is no such vehicle."""
    front, rear = road.neighbour_vehicles(vehicle, lane_index)
    lane = road.network.get_lane(lane_index)
    s = lane.local_coordinates(vehicle.position)[0]
    gap_front = gap_rear = np.inf
    closing_front = closing_rear = 0.0
    if front is not None:
        half = (front.LENGTH + vehicle.LENGTH) / 2
        gap_front = lane.local_coordinates(front.position)[0] - s - half
        closing_front = vehicle.speed - front.speed
    if rear is not None:
        half = (rear.LENGTH + vehicle.LENGTH) / 2
        gap_rear = s - lane.local_coordinates(rear.position)[0] - half
        closing_rear = rear.speed - vehicle.speed
    return gap_front, closing_front, gap_rear, closing_rear


def _safe_gap(speed: float, closing: float) -> float:
    """Gap (m) the ego wants in front: 4 m + 1 s headway + 2 s of closing speed."""
    return 4.0 + 1.0 * speed + 2.0 * max(closing, 0.0)


def _free_lane_change(ego, road, rng: np.random.Generator) -> str | None:
    """LANE_LEFT or LANE_RIGHT towards a neighbouring lane with room, or None."""
    _from, _to, lane_id = ego.lane_index
    lanes = road.network.graph[_from][_to]
    for side in rng.permutation([-1, 1]):
        target = lane_id + int(side)
        if not 0 <= target < len(lanes) or not lanes[target].is_reachable_from(ego.position):
            continue
        front, closing_f, rear, closing_r = _lane_gaps(road, ego, (_from, _to, target))
        if front > _safe_gap(ego.speed, closing_f) and rear > 6.0 + 2.0 * max(closing_r, 0.0):
            return "LANE_LEFT" if side < 0 else "LANE_RIGHT"
    return None


def choose_action(ego, road, rng: np.random.Generator, lane_changes: bool, cruise: int) -> str:
    """A varied but safe driver, deciding at every frame.

    Blocked by a close or slower vehicle: overtake if a neighbouring lane has room, otherwise
    slow down. Free road: back up to the cruise speed index `cruise`; now and then change lane
    (10%) or speed (12%); otherwise IDLE. SLOWER by choice never goes down to the lowest target
    speed (often 0 m/s), and a stopped ego with room ahead drives on."""
    gap, closing, _, _ = _lane_gaps(road, ego, ego.lane_index)
    wanted = _safe_gap(ego.speed, closing)
    if gap < wanted:
        change = _free_lane_change(ego, road, rng) if lane_changes else None
        return change or "SLOWER"
    roomy = gap > wanted + 20.0
    if ego.speed_index == 0 or (ego.speed_index < cruise and roomy and rng.random() < 0.5):
        return "FASTER"
    u = rng.random()
    if lane_changes and u < 0.10:
        return _free_lane_change(ego, road, rng) or "IDLE"
    if u < 0.16 and roomy:
        return "FASTER"
    if u < 0.22 and ego.speed_index > 1:
        return "SLOWER"
    return "IDLE"


def _fill_behind(env, rng: np.random.Generator, count: int) -> None:
    """highway-env spawns traffic ahead of the ego only; add `count` IDM vehicles behind it
    (random lanes of the ego's road, at least 15 m apart), so that traffic overtakes too."""
    road, ego = env.road, env.vehicle
    _from, _to, _ = ego.lane_index
    lanes = road.network.graph[_from][_to]
    s_ego = lanes[0].local_coordinates(ego.position)[0]
    for _ in range(count):
        lane_id = int(rng.integers(len(lanes)))
        s = s_ego - float(rng.uniform(12.0, 220.0))
        position = lanes[lane_id].position(s, 0.0)
        if s < 0 or any(np.linalg.norm(v.position - position) < 15.0 for v in road.vehicles):
            continue
        vehicle = behavior.IDMVehicle.make_on_lane(
            road, (_from, _to, lane_id), s, speed=float(rng.uniform(20.0, 28.0))
        )
        vehicle.randomize_behavior()
        road.vehicles.append(vehicle)


def _assign_body(vehicle, scenario: Scenario, rng: np.random.Generator, next_id: int) -> int:
    """Give a new vehicle an id, a class and a body size (also used by the simulator for its
    gaps and collisions). Long bodies only where there is room, to avoid spawning overlaps."""
    p_truck, p_bus, p_semi, p_bike = scenario.traffic_mix
    u = rng.random()
    kind = "car"
    for name, p in (("truck", p_truck), ("bus", p_bus), ("semi", p_semi), ("motorbike", p_bike)):
        if u < p:
            kind = name
            break
        u -= p
    _, (lo, hi), width, _ = BODY[kind]
    length = float(rng.uniform(lo, hi)) if kind != "car" else float(rng.uniform(4.0, 5.0))
    others = [v for v in vehicle.road.vehicles if v is not vehicle]
    if length > 5.0 and others:
        nearest = min(np.linalg.norm(v.position - vehicle.position) for v in others)
        if nearest < length / 2 + 8.0:
            kind, length, width = "car", 4.6, BODY["car"][2]
    vehicle.LENGTH, vehicle.WIDTH = length, width
    vehicle.diagonal = float(np.hypot(length, width))
    vehicle.wm_kind, vehicle.wm_id = kind, next_id
    return next_id + 2  # a semi uses two ids: tractor and trailer


def agent_states(vehicle) -> list[AgentState]:
    """World-frame boxes of one vehicle (two for a semi: tractor and trailer)."""
    kind = vehicle.wm_kind
    class_name, _, _, height = BODY[kind]
    xy = mirror_xy(vehicle.position)
    yaw = -float(vehicle.heading)
    length, width = float(vehicle.LENGTH), float(vehicle.WIDTH)
    if kind != "semi":
        cls = CLASS_ID[class_name]
        return [AgentState(vehicle.wm_id, cls, *xy, yaw, length, width, height)]
    forward = np.array([np.cos(yaw), np.sin(yaw)])
    trailer = length - SEMI_TRACTOR
    tractor_xy = xy + forward * (length / 2 - SEMI_TRACTOR / 2)
    trailer_xy = xy - forward * (length / 2 - trailer / 2)
    return [
        AgentState(vehicle.wm_id, CLASS_ID["truck"], *tractor_xy, yaw, SEMI_TRACTOR, width, 3.2),
        AgentState(vehicle.wm_id + 1, CLASS_ID["trailer"], *trailer_xy, yaw, trailer, width, 4.0),
    ]


@dataclass
class TrafficRecord:
    """A simulated sequence in the world frame.

    ego_xy: (T, 2) m; ego_yaw: (T,) rad; ego_speed: (T,) m/s; actions: (T,) int64 meta-action
    ids, action t applied between frames t and t+1 (the last is IDLE); agents: per frame, the
    list of other road users; obstacles: static highway-env objects (world boxes); lanes: the
    road network's lanes (highway-env objects, in its mirrored plane).
    """

    ego_xy: np.ndarray
    ego_yaw: np.ndarray
    ego_speed: np.ndarray
    actions: np.ndarray
    agents: list[list[AgentState]]
    obstacles: list[AgentState]
    lanes: list
    crashed: bool
    off_road: bool


def simulate(
    scenario: Scenario, seed: int, frames: int, frame_rate: float, simulation_rate: float
) -> TrafficRecord:
    """Run highway-env for `frames` frames at `frame_rate` Hz, integrating at `simulation_rate`.

    The same (scenario, seed) gives the same record. Vehicles farther than 250 m from the ego
    are removed as the sequence runs (they cannot be seen and they cost simulation time).
    """
    rng = np.random.default_rng([seed, 7919])
    substeps = round(simulation_rate / frame_rate)
    if substeps < 1 or abs(substeps * frame_rate - simulation_rate) > 1e-9:
        raise ValueError(
            f"simulation_rate ({simulation_rate} Hz) must be a multiple of frame_rate "
            f"({frame_rate} Hz)"
        )
    with _restored_class_constants():
        env = make_env(scenario, seed, rng, simulation_rate)
        return _run(env, scenario, rng, frames, substeps, 1.0 / simulation_rate)


def _off_road(vehicle) -> bool:
    """More than 1 m sideways off its lane. (Running past the end of a lane that highway-env's
    map cuts off is fine: the world draws that road on, see RoadLane.)"""
    _, lateral = vehicle.lane.local_coordinates(vehicle.position)
    return abs(lateral) > vehicle.lane.width_at(0.0) / 2 + 1.0


def _run(env, scenario, rng, frames, substeps, dt) -> TrafficRecord:
    road, ego = env.road, env.vehicle
    cruise = int(rng.integers(len(ego.target_speeds) // 2, len(ego.target_speeds)))
    ego.wm_kind, ego.wm_id = "car", 0
    next_id = 1
    ego_xy, ego_yaw, ego_speed, actions, agents = [], [], [], [], []
    crashed = off_road = False
    for t in range(frames):
        for v in road.vehicles:
            if not hasattr(v, "wm_id"):
                next_id = _assign_body(v, scenario, rng, next_id)
        ego_xy.append(mirror_xy(ego.position))
        ego_yaw.append(-float(ego.heading))
        ego_speed.append(float(ego.speed))
        agents.append([a for v in road.vehicles if v is not ego for a in agent_states(v)])
        crashed |= bool(ego.crashed)
        off_road |= _off_road(ego)
        last = t == frames - 1
        action = "IDLE" if last else choose_action(ego, road, rng, scenario.lane_changes, cruise)
        actions.append(ACTION_ID[action])
        if t == frames - 1:
            break
        ego.act(action)  # set the new target lane / speed, as env.step does on its first substep
        for _ in range(substeps):
            road.act()
            road.step(dt)
        if scenario.name == "intersection":  # what IntersectionEnv.step does after simulating
            env._clear_vehicles()
            env._spawn_vehicle(spawn_probability=env.config["spawn_probability"])
        road.vehicles = [
            v for v in road.vehicles if np.linalg.norm(v.position - ego.position) < 250.0
        ]
    obstacles = [
        AgentState(
            -1, CLASS_ID["barrier"], *mirror_xy(o.position), -o.heading, o.LENGTH, o.WIDTH, 0.8
        )
        for o in road.objects
    ]
    lanes = road_lanes(road.network)
    return TrafficRecord(
        ego_xy=np.array(ego_xy),
        ego_yaw=np.array(ego_yaw),
        ego_speed=np.array(ego_speed),
        actions=np.array(actions, dtype=np.int64),
        agents=agents,
        obstacles=obstacles,
        lanes=lanes,
        crashed=crashed,
        off_road=off_road,
    )


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
