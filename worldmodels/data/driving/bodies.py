"""Vehicle bodies: each new highway-env vehicle gets a kind (car, truck, bus, semi-trailer,
motorcycle, cyclist) from its scenario's traffic mix, a track id and a body size, which
highway-env then simulates with; `agent_states` reads a vehicle out as world-frame boxes.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.lanes import AgentState, mirror_xy
from worldmodels.data.driving.scenarios import BICYCLE_SPEED, BODY, SEMI_TRACTOR, Scenario
from worldmodels.occ3d import CLASS_ID


def assign_body(vehicle, scenario: Scenario, rng: np.random.Generator, next_id: int) -> int:
    """Give a new vehicle an id, a class and a body size (also used by the simulator for its
    gaps and collisions). Long bodies only where there is room, to avoid spawning overlaps."""
    u = rng.random()
    kind = "car"
    for name, p in zip(("truck", "bus", "semi", "motorbike", "bicycle"), scenario.traffic_mix):
        if u < p:
            kind = name
            break
        u -= p
    _, (lo, hi), width, _ = BODY[kind]
    if kind == "bicycle":  # a cyclist rides slowly; the traffic behind queues or passes
        vehicle.target_speed = float(rng.uniform(*BICYCLE_SPEED))
        vehicle.speed = min(vehicle.speed, vehicle.target_speed)
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
    speed = float(vehicle.speed)
    if kind != "semi":
        cls = CLASS_ID[class_name]
        return [AgentState(vehicle.wm_id, cls, *xy, yaw, length, width, height, speed)]
    forward = np.array([np.cos(yaw), np.sin(yaw)])
    trailer = length - SEMI_TRACTOR
    tractor_xy = xy + forward * (length / 2 - SEMI_TRACTOR / 2)
    trailer_xy = xy - forward * (length / 2 - trailer / 2)
    return [
        AgentState(
            vehicle.wm_id, CLASS_ID["truck"], *tractor_xy, yaw, SEMI_TRACTOR, width, 3.2, speed
        ),
        AgentState(
            vehicle.wm_id + 1, CLASS_ID["trailer"], *trailer_xy, yaw, trailer, width, 4.0, speed
        ),
    ]
