"""The scenarios: a highway-env environment, the look of its surroundings, its traffic mix.

Urban scenes are the default mix, as in nuScenes (Boston and Singapore streets):
- street: highway-env's two-way road (one lane each way, or two on `wide` of the streets)
  filled with town traffic at 7-13 m/s, cyclists, parked cars along it (surroundings.py) and
  a traffic light with a pedestrian crossing, whose red phase stops the traffic (`Signal`):
  queues, stop-and-go, people crossing;
- intersection: highway-env's four-way junction, where vehicles yield and queue, with a
  zebra crossing on every arm (`zebras`) where drivers stop for pedestrians;
- roundabout (held out).
Highway, merge, exit and racetrack remain, as a minority.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worldmodels.occ3d import CLASS_ID


@dataclass(frozen=True)
class Signal:
    """A traffic light with a pedestrian crossing on the ego's road, `distance` m ahead of the
    ego's start (range), red for `red` s and green for `green` s (ranges), starting at a
    random phase (crossings.py)."""

    distance: tuple[float, float] = (25.0, 90.0)
    red: tuple[float, float] = (12.0, 30.0)
    green: tuple[float, float] = (12.0, 30.0)


@dataclass(frozen=True)
class Scenario:
    """A highway-env environment plus the look of its surroundings.

    style: "highway" (guard rails, noise walls, fields), "urban" (parking lanes, sidewalks,
    buildings, pedestrians) or "racetrack" (tyre barriers, gravel, grandstands).
    lane_changes: whether the ego may change lanes there.
    traffic_mix: P(truck), P(bus), P(semi), P(motorbike), P(bicycle) for each new vehicle.
    town_traffic: (count range, speed range m/s) of extra vehicles put on the ego's road,
    both ways, or None. wide: the share of sequences whose street has two lanes each way.
    signal: a traffic light (and crossing) on the ego's road, or None. zebras: a pedestrian
    crossing on every arm of an intersection.
    """

    name: str
    env_id: str
    style: str
    lane_changes: bool
    config: Callable[[np.random.Generator], dict]
    traffic_mix: tuple[float, float, float, float, float]
    ego_speeds: tuple[float, ...] | None = None  # target speeds (m/s); None: highway-env's
    town_traffic: tuple[tuple[int, int], tuple[float, float]] | None = None
    signal: Signal | None = None
    wide: float = 0.0
    zebras: bool = False


HIGHWAY_SPEEDS = (10.0, 15.0, 20.0, 25.0, 30.0)  # m/s, the ego's target speeds on highways
TOWN_SPEEDS = (0.0, 4.0, 8.0, 11.0, 14.0)  # m/s, in towns (0: it can stop and queue)

SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "street",
            "two-way-v0",
            "urban",
            False,
            lambda rng: {},
            (0.04, 0.04, 0.0, 0.04, 0.10),
            TOWN_SPEEDS,
            town_traffic=((14, 26), (7.0, 13.0)),
            signal=Signal(),
            wide=0.6,
        ),
        Scenario(
            "intersection",
            "intersection-v0",
            "urban",
            False,
            lambda rng: {
                "spawn_probability": float(rng.uniform(0.6, 0.9)),
                "initial_vehicle_count": int(rng.integers(10, 20)),
            },
            (0.06, 0.06, 0.0, 0.05, 0.05),
            (0.0, 3.0, 6.0, 9.0),
            zebras=True,
        ),
        Scenario(
            "roundabout",
            "roundabout-v0",
            "urban",
            True,
            lambda rng: {},
            (0.06, 0.06, 0.0, 0.05, 0.05),
            (0.0, 4.0, 8.0, 12.0, 15.0),
        ),
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
            (0.08, 0.02, 0.05, 0.03, 0.0),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "merge",
            "merge-v0",
            "highway",
            True,
            lambda rng: {},
            (0.1, 0.0, 0.05, 0.03, 0.0),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "exit",
            "exit-v0",
            "highway",
            True,
            lambda rng: {"vehicles_count": int(rng.integers(12, 20))},
            (0.08, 0.03, 0.05, 0.03, 0.0),
            HIGHWAY_SPEEDS,
        ),
        Scenario(
            "racetrack",
            "racetrack-v0",
            "racetrack",
            True,
            lambda rng: {"other_vehicles": int(rng.integers(4, 9))},
            (0.0, 0.0, 0.0, 0.15, 0.0),
            (6.0, 9.0, 12.0, 15.0),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown driving scenario {name!r}; expected one of {sorted(SCENARIOS)}")
    return SCENARIOS[name]


# Vehicle bodies: (class name, length range m, width m, height m). A semi is a 6 m tractor
# ("truck") pulling a 10.5 m "trailer". A bicycle is ridden (class bicycle, rider included).
BODY = {
    "car": ("car", (4.0, 5.0), 1.9, 1.6),
    "truck": ("truck", (7.0, 9.5), 2.4, 3.2),
    "bus": ("bus", (10.5, 12.0), 2.5, 3.2),
    "semi": ("truck", (16.5, 16.5), 2.5, 4.0),
    "motorbike": ("motorcycle", (2.0, 2.2), 0.8, 1.5),
    "bicycle": ("bicycle", (1.7, 1.9), 0.7, 1.8),
}
SEMI_TRACTOR = 6.0  # m, front part of a semi; the rest is the trailer
BICYCLE_SPEED = (3.5, 6.5)  # m/s, a cyclist's target speed
CLASS_OF = {kind: CLASS_ID[body[0]] for kind, body in BODY.items()}
