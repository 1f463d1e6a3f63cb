"""Town traffic: more vehicles both ways at town speeds, and a traffic light.

The light is an invisible stop line (a highway-env `Obstacle` that nothing collides with) put
on the road while the light is red: highway-env's IDM drivers brake for the nearest vehicle or
object ahead in their lane, so a queue forms behind the line and releases when it goes.
"""

from __future__ import annotations

import numpy as np
from highway_env.vehicle import behavior
from highway_env.vehicle.objects import Obstacle


def town_traffic(env, rng, count: tuple[int, int], speed: tuple[float, float]) -> None:
    """Slow every vehicle down to town speeds and add more, ahead and behind the ego on its
    lane and on the lane coming the other way, at least 12 m apart; nobody overtakes."""
    road, ego = env.road, env.vehicle
    _from, _to, lane_id = ego.lane_index
    lanes = [(_from, _to, lane_id)]
    if _from in road.network.graph.get(_to, {}):
        lanes.append((_to, _from, 0))
    for v in road.vehicles:
        if v is not ego:
            v.target_speed = v.speed = float(rng.uniform(*speed))
            v.enable_lane_change = False
    s_ego = road.network.get_lane(ego.lane_index).local_coordinates(ego.position)[0]
    for _ in range(int(rng.integers(*count))):
        index = lanes[int(rng.integers(len(lanes)))]
        lane = road.network.get_lane(index)
        s = float(rng.uniform(max(s_ego - 100.0, 5.0), s_ego + 250.0))
        if index != ego.lane_index:  # the other way: its s runs backwards
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


def place_signal(env, signal, rng) -> dict:
    """An invisible stop line across the ego's road `distance` ahead (one obstacle per lane
    direction, which drivers brake for while it is on the road) and its phase timing."""
    road, ego = env.road, env.vehicle
    _from, _to, lane_id = ego.lane_index
    lane = road.network.get_lane(ego.lane_index)
    s = lane.local_coordinates(ego.position)[0] + float(rng.uniform(*signal.distance))
    lines = [Obstacle(road, lane.position(s, 0.0), lane.heading_at(s))]
    if _from in road.network.graph.get(_to, {}):
        back = road.network.get_lane((_to, _from, 0))
        s_back = back.local_coordinates(lane.position(s + 12.0, 0.0))[0]
        lines.append(Obstacle(road, back.position(s_back, 0.0), back.heading_at(s_back)))
    for line in lines:
        line.collidable = line.solid = False
        line.LENGTH = 0.5
    red, green = float(rng.uniform(*signal.red)), float(rng.uniform(*signal.green))
    return {"lines": lines, "red": red, "cycle": red + green, "phase": rng.uniform(0, red + green)}


def update_signal(road, signal: dict | None, time: float) -> None:
    """Put the stop lines on the road while the light is red, take them off when green."""
    if signal is None:
        return
    red = (time + signal["phase"]) % signal["cycle"] < signal["red"]
    road.objects = [o for o in road.objects if all(o is not x for x in signal["lines"])]
    if red:
        road.objects.extend(signal["lines"])
