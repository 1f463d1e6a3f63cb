"""Road edges, and the tools the surroundings' builders place things with along them.

An edge is a run of lane samples whose side borders something that is not road; builders
paint bands of ground and stand solids at distances outside it, at random spacings along
it, or scatter boxes and trees where the ground is clear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving.lanes import LaneSamples
from worldmodels.data.driving.world import ROAD, VEGETATION, WorldMap, height
from worldmodels.occ3d import FREE


@dataclass
class Edge:
    """A road edge: points on it (E, 2) m, the unit normal pointing away from the road (E, 2),
    the road direction (E,) rad, the signed curvature towards the outside (E,) 1/m, and the
    spacing of consecutive points (m)."""

    point: np.ndarray
    outward: np.ndarray
    heading: np.ndarray
    bend: np.ndarray
    step: float


def find_edges(world: WorldMap, lanes: list[LaneSamples]) -> list[Edge]:
    """Runs of lane samples whose side (left or right) borders something that is not road."""
    edges = []
    for lane in lanes:
        bend = np.gradient(np.unwrap(lane.heading)) / lane.step  # 1/m, positive: turning left
        for side in (1.0, -1.0):
            outward = side * lane.left
            point = lane.centre + outward * (lane.width[:, None] / 2)
            probe = point + outward * 0.6
            is_edge = world.ground_at(probe) != ROAD
            for run in runs(is_edge):
                edges.append(
                    Edge(
                        point=point[run],
                        outward=outward[run],
                        heading=lane.heading[run],
                        bend=-side * bend[run],  # > 0: the edge is on the outside of the bend
                        step=lane.step,
                    )
                )
    return edges


def runs(mask: np.ndarray) -> list[slice]:
    """Slices of consecutive True values of a 1-D boolean array."""
    padded = np.concatenate([[False], mask, [False]])
    changes = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [slice(a, b) for a, b in zip(changes[::2], changes[1::2], strict=True)]


def paint_band(world: WorldMap, edge: Edge, near: float, far: float, cls: int, over) -> None:
    """Ground class on the strip from `near` to `far` metres outside an edge."""
    offsets = np.arange(near, far + 1e-9, world.cell / 2)
    points = edge.point[:, None, :] + offsets[None, :, None] * edge.outward[:, None, :]
    world.paint_ground(points, cls, over=over)


def solid_band(world: WorldMap, edge: Edge, near, far, cls, height, keep=None) -> None:
    """A solid strip (guard rail, wall, tyre barrier) from `near` to `far` m outside an edge,
    on cells that are not road; keep: (E,) bool, which edge points get it."""
    sel = slice(None) if keep is None else keep
    offsets = np.arange(near, far + 1e-9, world.cell / 2)
    points = edge.point[sel, None, :] + offsets[None, :, None] * edge.outward[sel, None, :]
    i, j, inside = world.index(points)
    i, j = i[inside], j[inside]
    ok = (world.ground[i, j] != ROAD) & (world.obj_class[i, j] == FREE)
    world.put(i[ok], j[ok], cls, 0.0, height)  # follows the relief cell by cell


def along(edge: Edge, rng: np.random.Generator, spacing: tuple[float, float]) -> np.ndarray:
    """Indices of edge points spaced by random distances drawn from `spacing` (m)."""
    length = len(edge.point) * edge.step
    positions, s = [], float(rng.uniform(0, spacing[1]))
    while s < length:
        positions.append(int(s / edge.step))
        s += float(rng.uniform(*spacing))
    return np.array(positions, dtype=np.int64)


def stretches(edge: Edge, rng, probability: float, length: tuple[float, float]) -> np.ndarray:
    """(E,) bool: random stretches of the edge, covering about `probability` of it."""
    keep = np.zeros(len(edge.point), dtype=bool)
    s = 0
    while s < len(keep):
        run = int(rng.uniform(*length) / edge.step)
        keep[s : s + run] = rng.random() < probability
        s += run
    return keep


def place_box(world, centre, yaw, length, width, cls, bottom, top, ground_ok, margin=0.0):
    """Place a solid box if its footprint (grown by `margin`) is clear; returns success."""
    i, j = world.box_cells(centre, yaw, length + 2 * margin, width + 2 * margin)
    if len(i) == 0 or not world.clear(i, j, ground_ok):
        return False
    i, j = world.box_cells(centre, yaw, length, width)
    base = float(world.relief.height(world.cell_centres(i, j)).mean())  # a flat roof
    world.put(i, j, cls, bottom, top, base=base)
    return True


def place_tree(world, centre, rng, ground_ok, crown=(1.2, 2.2)) -> bool:
    """A tree, 4-8 m tall: a 0.4 m trunk from the ground to the top where the ground class is
    in `ground_ok`, and a crown disc (radius drawn from `crown`, m) from 1.6-2.6 m up to the
    top. Crowns do not reach over the road, where trucks would drive through them."""
    radius = float(rng.uniform(*crown))
    ti, tj = world.box_cells(centre, 0.0, 0.4, 0.4)
    if not world.clear(ti, tj, ground_ok):
        return False
    top = height(rng, 4.0, 8.0)
    crown_bottom = height(rng, 1.6, 2.6)
    base = float(world.relief.height(np.asarray(centre, dtype=np.float64)))
    ci, cj = world.disc_cells(centre, radius)
    keep = world.ground[ci, cj] != ROAD
    world.put(ci[keep], cj[keep], VEGETATION, crown_bottom, top, union=True, base=base)
    world.put(ti, tj, VEGETATION, 0.0, top, base=base)
    return True
