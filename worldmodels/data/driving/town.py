"""Town streets: two lanes each way on many of them, and more vehicles at town speeds.

highway-env's two-way road has one lane each way (its second lane in the ego's direction lies
on top of the oncoming one, for overtaking). Many nuScenes streets (Boston's Seaport,
Singapore's one-north) carry two lanes each way, so `widen` moves the oncoming lane aside and
adds a second one beside it; `town_traffic` then fills every lane both ways. The traffic light
and its pedestrian crossing are in crossings.py.
"""

from __future__ import annotations

import numpy as np
from highway_env.road.lane import LineType, StraightLane
from highway_env.vehicle import behavior


def widen(env) -> None:
    """Two lanes each way: the oncoming lanes ("b", "a", 0) and ("b", "a", 1) run one and two
    lane widths beyond the ego direction's lane 0 (highway-env's y grows to the right of a
    driver heading +x, so the oncoming lanes lie at -y). Vehicles already on the oncoming lane
    move with it."""
    road = env.road
    first = road.network.graph["b"]["a"][0]
    width = first.width_at(0.0)
    lanes = []
    for k in (1, 2):
        shift = np.array([0.0, -k * width])
        lanes.append(StraightLane(first.start + shift, first.end + shift, width=width,
                                  line_types=(LineType.NONE, LineType.NONE)))  # fmt: skip
    road.network.graph["b"]["a"] = lanes
    for vehicle in road.vehicles:
        if vehicle.lane_index[:2] == ("b", "a"):
            vehicle.position = vehicle.position + np.array([0.0, -width])
            vehicle.target_lane_index = ("b", "a", 0)
            vehicle.on_state_update()


def street_lanes(road) -> list[tuple]:
    """The lane indices of the two-way road that traffic keeps to, both ways: all four when
    widened, else the ego's ("a", "b", 1) and the oncoming ("b", "a", 0) (highway-env's
    ("a", "b", 0) lies on top of the oncoming lane)."""
    graph = road.network.graph
    if len(graph["b"]["a"]) == 1:
        return [("a", "b", 1), ("b", "a", 0)]
    return [(f, t, k) for f, t in (("a", "b"), ("b", "a")) for k in range(len(graph[f][t]))]


def town_traffic(env, rng, count: tuple[int, int], speed: tuple[float, float]) -> None:
    """Slow every vehicle down to town speeds and add more, ahead and behind the ego on every
    lane both ways (count scaled by the lanes: `count` is for one lane each way), at least
    12 m apart; nobody changes lanes."""
    road, ego = env.road, env.vehicle
    lanes = street_lanes(road)
    for v in road.vehicles:
        if v is not ego:
            v.target_speed = v.speed = float(rng.uniform(*speed))
            v.enable_lane_change = False
    s_ego = road.network.get_lane(ego.lane_index).local_coordinates(ego.position)[0]
    for _ in range(int(rng.integers(*count) * len(lanes) / 2)):
        index = lanes[int(rng.integers(len(lanes)))]
        lane = road.network.get_lane(index)
        s = float(rng.uniform(max(s_ego - 100.0, 5.0), s_ego + 250.0))
        if index[0] == "b":  # the other way: its s runs backwards
            s = lane.length - s
        position = lane.position(s, 0.0)
        if not 0 < s < lane.length or any(
            np.linalg.norm(v.position - position) < 12.0 for v in road.vehicles
        ):
            continue
        vehicle = behavior.IDMVehicle.make_on_lane(road, index, s, speed=float(rng.uniform(*speed)))
        vehicle.target_speed = vehicle.speed
        vehicle.enable_lane_change = False
        road.vehicles.append(vehicle)
