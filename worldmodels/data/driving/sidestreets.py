"""Side streets: the town's other roads, joining the simulated ones at right angles.

highway-env's town roads run for hundreds of metres without a junction, while a nuScenes
street in Boston or Singapore meets a side street every city block. So in urban scenes a
straight road edge gets a side street every `SPACING` m, one lane each way (`WIDTH` m in
all), at right angles, reaching to the edge of the world built; many continue across the
road (a four-way junction), the others are T-junctions. They are painted as lanes before the
road edges are found, so they get kerbs, parking lanes, sidewalks and buildings like any road,
and the main road's sidewalks and buildings stop at their mouths. Nobody drives on them (the
traffic is highway-env's, on its own roads); cars park along them.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.edges import Edge
from worldmodels.data.driving.lanes import LaneSamples
from worldmodels.data.driving.world import ROAD, WorldMap

SPACING = (70.0, 150.0)  # m between side streets along a road edge (a city block)
WIDTH = (6.5, 8.0)  # m, both lanes
ACROSS = 0.6  # share of side streets that continue across the road (four-way junctions)
STRAIGHT = 1 / 300  # 1/m: the edge must be this straight for 15 m around a junction
CLEAR = 18.0  # m from a pedestrian crossing, from another side street and from an edge's end


def side_streets(world: WorldMap, edges: list[Edge], crossings, rng) -> list[LaneSamples]:
    """Side streets along the straight stretches of the road edges (module docstring), as
    lane samples every half cell, each starting 0.5 m inside the road it joins."""
    crossing_points = [(np.asarray(c["a"]) + np.asarray(c["b"])) / 2 for c in crossings]
    mouths: list[np.ndarray] = []
    out = []
    for edge in edges:
        length = len(edge.point) * edge.step
        s = float(rng.uniform(CLEAR, SPACING[1]))
        while s < length - CLEAR:
            k = int(s / edge.step)
            s += float(rng.uniform(*SPACING))
            half = int(15.0 / edge.step)
            if np.any(np.abs(edge.bend[max(k - half, 0) : k + half]) > STRAIGHT):
                continue
            point, outward = edge.point[k], edge.outward[k]
            if any(np.linalg.norm(point - p) < CLEAR for p in crossing_points + mouths):
                continue
            width = float(rng.uniform(*WIDTH))
            out.append(_street(world, point, outward, width))
            mouths.append(point)
            if rng.random() < ACROSS:  # the same street on the far side of the road
                far = _far_side(world, point, outward)
                if far is not None:
                    out.append(_street(world, far, -outward, width))
                    mouths.append(far)
    return out


def _far_side(world: WorldMap, point: np.ndarray, outward: np.ndarray) -> np.ndarray | None:
    """The road's other edge straight across from an edge point (None beyond 40 m)."""
    step = world.cell / 2
    for t in np.arange(step, 40.0, step):
        if world.ground_at((point - (t + step) * outward)[None])[0] != ROAD:
            return point - t * outward
    return None


def _street(world: WorldMap, start: np.ndarray, direction: np.ndarray, width: float):
    """A straight street `width` m wide from 0.5 m inside the road at `start` along
    `direction` (unit) to the edge of the world map."""
    size = np.array(world.ground.shape) * world.cell
    low, high = world.origin, world.origin + size
    with np.errstate(divide="ignore"):
        bounds = np.where(direction > 0, (high - start) / direction, (low - start) / direction)
    reach = float(np.min(np.where(np.isfinite(bounds), bounds, np.inf))) + width
    step = world.cell / 2
    t = np.arange(-0.5, max(reach, 0.0), step)
    centre = start + t[:, None] * direction
    heading = np.full(len(t), float(np.arctan2(direction[1], direction[0])))
    return LaneSamples(centre, heading, np.full(len(t), width), step)
