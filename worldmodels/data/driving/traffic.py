"""Traffic from highway-env: the environment, an ego policy of meta-actions, agent boxes.

highway-env simulates the road network and the other vehicles (IDM car following with
MOBIL lane changes); we only read its state, never render it. The ego vehicle is an
`MDPVehicle` steered by highway-env's meta-actions LANE_LEFT / IDLE / LANE_RIGHT / FASTER /
SLOWER, chosen at random now and then but never into a vehicle (`choose_action`).

Everything leaving this module is in our world frame (lanes.py: highway-env's plane mirrored
in y). Scenarios and vehicle bodies are in scenarios.py; town streets get extra traffic both
ways (two lanes each way on many), cyclists, and a traffic light; streets and
intersections get pedestrian crossings (crossings.py) whose red light or pedestrians put
invisible stop lines on the road that highway-env's drivers (and the ego) brake for, so
queues form and release.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving import crossings
from worldmodels.data.driving.bodies import agent_states, assign_body  # noqa: F401
from worldmodels.data.driving.lanes import (  # noqa: F401  (re-exported)
    AgentState,
    LaneSamples,
    RoadLane,
    lane_samples_in,
    mirror_xy,
    road_lanes,
    sample_lane,
)
from worldmodels.data.driving.policy import ACTION_ID, META_ACTIONS, choose_action  # noqa: F401
from worldmodels.data.driving.scenarios import (  # noqa: F401  (re-exported)
    BICYCLE_SPEED,
    BODY,
    CLASS_OF,
    SCENARIOS,
    SEMI_TRACTOR,
    Scenario,
    get_scenario,
)
from worldmodels.data.driving.town import town_traffic, widen
from worldmodels.occ3d import CLASS_ID

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")  # highway-env imports pygame
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym  # noqa: E402
import highway_env  # noqa: E402, F401  (registers the environments)
from highway_env.vehicle import behavior, controller, kinematics  # noqa: E402
from highway_env.vehicle.controller import MDPVehicle  # noqa: E402


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


def make_env(
    scenario: Scenario,
    seed: int,
    rng: np.random.Generator,
    simulation_rate: float,
    duration: float = 20.0,
):
    """Create and reset the highway-env environment; return its unwrapped object, with its
    pedestrian crossings (for a sequence of `duration` s) as `wm_crossings`."""
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
        ego.speed = min(ego.speed, float(max(scenario.ego_speeds)))
    if scenario.style == "highway":
        _fill_behind(env, rng, int(rng.integers(6, 14)))
    if scenario.wide and rng.random() < scenario.wide:
        widen(env)
    if scenario.town_traffic is not None:
        town_traffic(env, rng, *scenario.town_traffic)
    env.wm_crossings = []
    if scenario.signal:
        env.wm_crossings = crossings.signal_crossing(env, scenario.signal, rng, duration)
    if scenario.zebras:
        env.wm_crossings = crossings.junction_crossings(env, rng, duration)
    return env


def _ensure_mdp_ego(env) -> None:
    """Make the ego an MDPVehicle (the racetrack scenario creates a continuous-action one)."""
    ego = env.vehicle
    if isinstance(ego, MDPVehicle):
        return
    new = MDPVehicle(env.road, ego.position, ego.heading, max(ego.speed, 9.0))
    env.road.vehicles[env.road.vehicles.index(ego)] = new
    env.controlled_vehicles = [new]


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


@dataclass
class TrafficRecord:
    """A simulated sequence in the world frame.

    ego_xy: (T, 2) m; ego_yaw: (T,) rad; ego_speed: (T,) m/s; ego_accel: (T, 2) m/s^2 the
    ego's acceleration along its heading and to its left (the body pitches and rolls with
    it, scene.py); actions: (T,) int64 meta-action
    ids, action t applied between frames t and t+1 (the last is IDLE); agents: per frame, the
    list of other road users; obstacles: static highway-env objects (world boxes); lanes: the
    road network's lanes (highway-env objects, in its mirrored plane); crossings: the
    pedestrian crossings, world frame (`Crossing.world`: kerb points a, b, width, walkers).
    """

    ego_xy: np.ndarray
    ego_yaw: np.ndarray
    ego_speed: np.ndarray
    ego_accel: np.ndarray
    actions: np.ndarray
    agents: list[list[AgentState]]
    obstacles: list[AgentState]
    lanes: list
    crashed: bool
    off_road: bool
    crossings: list[dict]


def simulate(
    scenario: Scenario, seed: int, frames: int, frame_rate: float, simulation_rate: float
) -> TrafficRecord:
    """Run highway-env for `frames` frames at `frame_rate` Hz, integrating at `simulation_rate`.

    The same (scenario, seed) gives the same record. Vehicles farther than 250 m from the ego,
    and crashed ones, are removed as the sequence runs (`_stays`).
    """
    rng = np.random.default_rng([seed, 7919])
    substeps = round(simulation_rate / frame_rate)
    if substeps < 1 or abs(substeps * frame_rate - simulation_rate) > 1e-9:
        raise ValueError(
            f"simulation_rate ({simulation_rate} Hz) must be a multiple of frame_rate "
            f"({frame_rate} Hz)"
        )
    with _restored_class_constants():
        env = make_env(scenario, seed, rng, simulation_rate, frames / frame_rate)
        return _run(env, scenario, rng, frames, substeps, 1.0 / simulation_rate)


def _acceleration(vehicle) -> tuple[float, float]:
    """The vehicle's acceleration now (m/s^2): along its heading, and to its left in our
    frame (v * yaw rate; highway-env's bicycle model turns at v sin(beta) / (L / 2) rad/s,
    beta = atan(tan(steering) / 2), and its left is our right)."""
    action = getattr(vehicle, "action", None) or {}
    beta = np.arctan(0.5 * np.tan(action.get("steering", 0.0)))
    yaw_rate = vehicle.speed * np.sin(beta) / (vehicle.LENGTH / 2)
    return float(action.get("acceleration", 0.0)), -float(vehicle.speed * yaw_rate)


def _stays(vehicle, ego) -> bool:
    """Whether another vehicle stays in the scene: within 250 m of the ego (farther ones cannot
    be seen and cost simulation time), and not crashed. highway-env's drivers follow no rules
    at junctions and now and then collide; their wrecks would stand in the junction, or drift
    onto the sidewalk among the pedestrians, for the rest of the sequence, which nuScenes
    never shows, so they leave the scene instead."""
    return not vehicle.crashed and np.linalg.norm(vehicle.position - ego.position) < 250.0


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
    ego_xy, ego_yaw, ego_speed, ego_accel, actions, agents = [], [], [], [], [], []
    crashed = off_road = False
    for t in range(frames):
        for v in road.vehicles:
            if not hasattr(v, "wm_id"):
                next_id = assign_body(v, scenario, rng, next_id)
        ego_xy.append(mirror_xy(ego.position))
        ego_yaw.append(-float(ego.heading))
        ego_speed.append(float(ego.speed))
        ego_accel.append(_acceleration(ego))
        agents.append([a for v in road.vehicles if v is not ego for a in agent_states(v)])
        crashed |= bool(ego.crashed)
        off_road |= _off_road(ego)
        crossings.update(road, env.wm_crossings, t * substeps * dt)
        last = t == frames - 1
        action = "IDLE" if last else choose_action(ego, road, rng, scenario.lane_changes, cruise)
        actions.append(ACTION_ID[action])
        if t == frames - 1:
            break
        ego.act(action)  # set the new target lane / speed, as env.step does on its first substep
        for k in range(substeps):
            crossings.update(road, env.wm_crossings, (t * substeps + k) * dt)
            road.act()
            road.step(dt)
        if scenario.name == "intersection":  # what IntersectionEnv.step does after simulating
            env._clear_vehicles()
            env._spawn_vehicle(spawn_probability=env.config["spawn_probability"])
        road.vehicles = [v for v in road.vehicles if v is ego or _stays(v, ego)]
    obstacles = [
        AgentState(
            -1, CLASS_ID["barrier"], *mirror_xy(o.position), -o.heading, o.LENGTH, o.WIDTH, 0.8
        )
        for o in road.objects
        if not getattr(o, "wm_line", False)
    ]
    lanes = road_lanes(road.network)
    return TrafficRecord(
        ego_xy=np.array(ego_xy),
        ego_yaw=np.array(ego_yaw),
        ego_speed=np.array(ego_speed),
        ego_accel=np.array(ego_accel),
        actions=np.array(actions, dtype=np.int64),
        agents=agents,
        obstacles=obstacles,
        lanes=lanes,
        crashed=crashed,
        off_road=off_road,
        crossings=[c.world() for c in env.wm_crossings],
    )
