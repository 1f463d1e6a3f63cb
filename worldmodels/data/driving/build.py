"""Build the static world of a sequence, in order: roads (and, in towns, side streets),
crossings, the style's surroundings, highway-env's static objects, then the ground's heights.

A pedestrian crossing (crossings.py) keeps its ends clear while the surroundings are built
(nobody parks on it, no tree, pole, bench or building stands where people walk to it), and
where a parking lane meets it the sidewalk comes out to the carriageway's edge (a kerb
extension, as at most marked crossings), so that pedestrians wait at the traffic's edge.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving import terrain
from worldmodels.data.driving.edges import Edge, find_edges
from worldmodels.data.driving.lanes import LaneSamples
from worldmodels.data.driving.sidestreets import side_streets
from worldmodels.data.driving.surroundings import BUILDERS
from worldmodels.data.driving.world import (
    OTHER_FLAT,
    PAVED,
    POND,
    RESERVED,
    ROAD,
    SIDEWALK,
    TERRAIN,
    WorldMap,
)
from worldmodels.occ3d import FREE

CLEAR_BEYOND = 8.0  # m beyond the carriageway kept clear at a crossing's ends ...
CLEAR_MARGIN = 2.0  # ... and this much on either side of its strip
EXTENSION = 3.0  # m: a kerb extension reaches over a parking lane up to this far out


def paint_roads(world: WorldMap, lanes: list[LaneSamples]) -> None:
    """Driveable surface under every lane: points every half cell across each lane sample
    (lanes are sampled every half cell along their length)."""
    for lane in lanes:
        offsets = np.arange(-lane.width.max() / 2, lane.width.max() / 2 + 1e-9, world.cell / 2)
        points = lane.centre[:, None, :] + offsets[None, :, None] * lane.left[:, None, :]
        world.paint_ground(points, ROAD, over=(TERRAIN, SIDEWALK, OTHER_FLAT))


def finish_ground(world: WorldMap, edges: list[Edge]) -> None:
    """The ground's height per cell (terrain.py): relief, camber to the gutters, kerbs,
    bumps in the open land, ponds below it."""
    centres = world.cell_centres(*np.indices(world.ground.shape))  # xy of every cell
    z = world.relief.height(centres)
    gutter = terrain.gutter_drop(world.ground.shape, world.index, edges)
    g = world.ground
    z = np.where(g == ROAD, z - gutter, z)
    z = np.where(g == SIDEWALK, z + terrain.KERB, z)
    z = np.where(g == TERRAIN, z + world.bumps.height(centres), z)
    z = np.where(g == POND, z - terrain.POND_DEPTH, z)
    world.ground[g == POND] = OTHER_FLAT
    world.ground[g == PAVED] = ROAD
    world.ground_z = z.astype(np.float32)


def crossing_cells(world: WorldMap, crossing: dict, beyond: float, margin: float):
    """Cells (i, j) of a crossing's strip, grown by `beyond` m past both kerb points and by
    `margin` m on either side."""
    a, b = np.asarray(crossing["a"]), np.asarray(crossing["b"])
    across = b - a
    yaw = float(np.arctan2(across[1], across[0]))
    length = float(np.linalg.norm(across)) + 2 * beyond
    return world.box_cells((a + b) / 2, yaw, length, crossing["width"] + 2 * margin)


def reserve_crossings(world: WorldMap, crossings: list[dict]) -> None:
    """Keep every crossing's ends clear of solids while the surroundings are built."""
    for crossing in crossings:
        i, j = crossing_cells(world, crossing, CLEAR_BEYOND, CLEAR_MARGIN)
        free = world.obj_class[i, j] == FREE
        world.obj_class[i[free], j[free]] = RESERVED


def open_crossings(world: WorldMap, crossings: list[dict], carriageway: np.ndarray) -> None:
    """Lift the reservations, and extend the sidewalk over parking lanes (road that is not
    carriageway, (I, J) bool) at every crossing."""
    world.obj_class[world.obj_class == RESERVED] = FREE
    for crossing in crossings:
        i, j = crossing_cells(world, crossing, EXTENSION, 1.0)
        kerb = (world.ground[i, j] == ROAD) & ~carriageway[i, j]
        world.ground[i[kerb], j[kerb]] = SIDEWALK


def build_world(
    lanes: list[LaneSamples],
    obstacles,
    style: str,
    box_min,
    box_max,
    cell,
    rng,
    crossings: list[dict] = (),
) -> WorldMap:
    """The static world over the world box [box_min, box_max] (2,) m at `cell` m per cell;
    crossings: the record's pedestrian crossings (world frame)."""
    if style not in BUILDERS:
        raise ValueError(f"unknown world style {style!r}; expected one of {sorted(BUILDERS)}")
    relief, bumps = terrain.make_relief(style, rng)
    world = WorldMap.empty(np.asarray(box_min), np.asarray(box_max), cell, relief, bumps)
    paint_roads(world, lanes)
    if style == "urban":  # the town's other streets join the simulated roads
        lanes = list(lanes) + side_streets(world, find_edges(world, lanes), crossings, rng)
        paint_roads(world, lanes)
    carriageway = world.ground == ROAD
    edges = find_edges(world, lanes)
    reserve_crossings(world, crossings)
    BUILDERS[style](world, edges, rng)
    open_crossings(world, crossings, carriageway)
    for o in obstacles:  # highway-env's static objects (the merge lane's end block)
        i, j = world.box_cells(np.array([o.x, o.y]), o.yaw, o.length, o.width)
        world.put(i, j, o.class_id, 0.0, o.height)
    finish_ground(world, edges)
    return world
