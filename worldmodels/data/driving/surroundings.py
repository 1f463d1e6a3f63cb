"""What stands along the roads: the three world styles' builders, and parked cars.

- urban: a parking lane on many kerbs with parked cars, 2.5-4.5 m sidewalks, street trees,
  lamp posts, benches, parked bicycles, kerb cones, buildings behind the sidewalk (none on
  the inside of tight bends, e.g. a roundabout's island), construction sites, parks;
- highway: guard rails, lamp posts, noise walls, roadworks cones, warehouses, ponds, woods;
- racetrack: gravel run-off outside the bends, tyre barriers, grandstands.
Heights are metres above the local ground (world.put turns them into world z).
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.edges import (
    Edge,
    along,
    paint_band,
    place_box,
    place_tree,
    runs,
    solid_band,
    stretches,
)
from worldmodels.data.driving.lanes import AgentState
from worldmodels.data.driving.world import (
    BARRIER,
    BICYCLE,
    CONE,
    CONSTRUCTION,
    MANMADE,
    OTHER_FLAT,
    OTHERS,
    PAVED,
    POND,
    ROAD,
    SIDEWALK,
    TERRAIN,
    VEGETATION,
    WorldMap,
    height,
)
from worldmodels.occ3d import CLASS_ID, FREE

CAR = CLASS_ID["car"]
PARKED_ID = 200_000  # parked cars' track ids start here
PARKING = (2.2, 2.6)  # m, width of a parking lane outside the kerb-side lane


def plant_open_land(world: WorldMap, rng, density: float, tree_share: float) -> None:
    """Trees and bushes scattered over the terrain, `density` per 100 m^2, clear of roads."""
    area = world.ground.size * world.cell**2
    count = rng.poisson(density * area / 100.0)
    size = np.array(world.ground.shape) * world.cell
    for centre in world.origin + rng.random((count, 2)) * size:
        radius = float(rng.uniform(0.8, 2.5))
        i, j = world.disc_cells(centre, radius + 1.5)
        if not world.clear(i, j, (TERRAIN,)):
            continue
        if rng.random() < tree_share:
            place_tree(world, centre, rng, (TERRAIN,), crown=(1.5, 3.0))
        else:
            i, j = world.disc_cells(centre, radius)
            world.put(i, j, VEGETATION, 0.0, height(rng, 0.6, 1.8), union=True)


def plant_woods(world: WorldMap, rng, density: float) -> None:
    """Small woods: clusters of 5-25 trees, `density` clusters per 100 m^2, clear of roads."""
    area = world.ground.size * world.cell**2
    size = np.array(world.ground.shape) * world.cell
    for _ in range(rng.poisson(density * area / 100.0)):
        centre = world.origin + rng.random(2) * size
        spread = float(rng.uniform(6, 16))
        for spot in centre + rng.normal(0, spread, (int(rng.integers(5, 26)), 2)):
            i, j = world.disc_cells(spot, 3.5)  # open land, other trees' crowns allowed
            on_land = np.all(world.ground[i, j] == TERRAIN)
            if on_land and np.all(np.isin(world.obj_class[i, j], (FREE, VEGETATION))):
                place_tree(world, spot, rng, (TERRAIN,), crown=(2.0, 3.5))


def dig_ponds(world: WorldMap, rng, count: float) -> None:
    """A few ponds (other_flat) in the open land, away from everything."""
    size = np.array(world.ground.shape) * world.cell
    for _ in range(rng.poisson(count)):
        centre = world.origin + rng.random(2) * size
        radius = float(rng.uniform(6, 14))
        i, j = world.disc_cells(centre, radius + 4)
        if world.clear(i, j, (TERRAIN,)):
            i, j = world.disc_cells(centre, radius)
            world.ground[i, j] = POND  # other_flat, below the land (finish_ground)


def _edge_frame(edge: Edge, k: int, offset: float):
    """World point `offset` m outside edge point k, and the road heading there."""
    return edge.point[k] + offset * edge.outward[k], float(edge.heading[k])


def build_urban(world: WorldMap, edges: list[Edge], rng) -> None:
    """Parked cars, sidewalks, street trees, lamp posts, benches, bicycles, cones,
    buildings, parks."""
    walk = float(rng.uniform(2.5, 4.5))
    kerbs = park_cars(world, edges, rng, share=0.7)  # sidewalk offset per edge
    for edge, kerb in zip(edges, kerbs, strict=True):
        paint_band(world, edge, kerb, kerb + walk, SIDEWALK, over=(TERRAIN, OTHER_FLAT))
    for edge, kerb in zip(edges, kerbs, strict=True):
        for k in along(edge, rng, (6.0, 12.0)):
            if rng.random() < 0.85:
                spot = _edge_frame(edge, k, kerb + 1.0)[0]
                place_tree(world, spot, rng, (SIDEWALK,), (1.2, 1.9))
        for k in along(edge, rng, (20.0, 35.0)):
            centre, yaw = _edge_frame(edge, k, kerb + 0.4)
            place_box(world, centre, yaw, 0.3, 0.3, MANMADE, 0.0, 7.2, (SIDEWALK,))
        for k in along(edge, rng, (15.0, 40.0)):
            centre, yaw = _edge_frame(edge, k, kerb + walk - 0.6)
            kind = rng.random()
            if kind < 0.5:  # bench or bin
                place_box(world, centre, yaw, 1.6, 0.6, OTHERS, 0.0, 0.9, (SIDEWALK,))
            elif kind < 0.8:  # parked bicycle
                place_box(world, centre, yaw, 1.8, 0.6, BICYCLE, 0.0, 1.1, (SIDEWALK,))
        if rng.random() < 0.3:  # a short row of cones at the kerb
            for k in along(edge, rng, (2.0, 3.0))[: int(rng.integers(3, 8))]:
                centre, yaw = _edge_frame(edge, k, kerb + 0.35)
                place_box(world, centre, yaw, 0.4, 0.4, CONE, 0.0, 0.7, (SIDEWALK,))
    gardens = []
    for edge, kerb in zip(edges, kerbs, strict=True):
        # Forecourts, driveways and car parks in front of and between the buildings: paved.
        keep = stretches(edge, rng, 0.6, (15.0, 60.0))
        depth = kerb + walk + float(rng.uniform(8.0, 25.0))
        part = Edge(
            edge.point[keep], edge.outward[keep], edge.heading[keep], edge.bend[keep], edge.step
        )
        paint_band(world, part, kerb + walk, depth, PAVED, over=(TERRAIN,))
        gardens.append((edge, ~keep, kerb + walk, depth))
        _construction_site(world, edge, kerb + walk, rng)
        setback = kerb + walk + float(rng.uniform(0.0, 3.0))
        _buildings(world, edge, rng, setback, (3.5, 18.0))
    for garden in gardens:
        _front_gardens(world, *garden, rng)
    plant_open_land(world, rng, density=0.5, tree_share=0.7)


def _front_gardens(world, edge: Edge, keep, near: float, far: float, rng) -> None:
    """Hedges and shrubs in the unpaved land between the sidewalk and the buildings."""
    for k in along(edge, rng, (3.0, 7.0)):
        if keep[k] and rng.random() < 0.7:
            spot = _edge_frame(edge, k, float(rng.uniform(near + 1.0, far)))[0]
            if rng.random() < 0.4:
                place_tree(world, spot, rng, (TERRAIN,), (1.5, 2.5))
            else:
                i, j = world.disc_cells(spot, float(rng.uniform(0.8, 1.8)))
                if world.clear(i, j, (TERRAIN,)):
                    world.put(i, j, VEGETATION, 0.0, height(rng, 0.8, 2.0), union=True)


def _buildings(world, edge: Edge, rng, setback, heights, share: float = 1.0) -> None:
    """Buildings along an edge, `setback` m from it (a number, or (E,) per edge point):
    frontages of 10-30 m with 0-8 m gaps, a `share` of the slots built. None on the inside of
    tight bends (a roundabout's island)."""
    setback = np.broadcast_to(np.asarray(setback, dtype=np.float64), (len(edge.point),))
    s = float(rng.uniform(0, 8))
    length = len(edge.point) * edge.step
    while s < length:
        front = float(rng.uniform(10, 30))
        depth = float(rng.uniform(10, 25))
        k = min(int((s + front / 2) / edge.step), len(edge.point) - 1)
        if edge.bend[k] > -1 / 25 and rng.random() < share:
            offset = setback[k] + float(rng.uniform(0.0, 4.0)) + depth / 2  # facades differ
            centre, yaw = _edge_frame(edge, k, offset)
            top = float(rng.uniform(*heights))
            place_box(world, centre, yaw, front, depth, MANMADE, 0.0, top, (TERRAIN, PAVED), 0.4)
        s += front + float(rng.uniform(0, 8))


def _construction_site(world, edge: Edge, setback: float, rng) -> None:
    """Now and then (15% of the edges) a parked construction vehicle with a cone at each end,
    `setback` m or more behind the edge (on open or paved land, before the buildings)."""
    if rng.random() > 0.15 or len(edge.point) < 10:
        return
    k = int(rng.integers(len(edge.point)))
    centre, yaw = _edge_frame(edge, k, setback + float(rng.uniform(2.5, 6.0)))
    land = (TERRAIN, PAVED)
    if place_box(world, centre, yaw, 6.5, 2.6, CONSTRUCTION, 0.0, 3.2, land, 1.0):
        for dx in (-4.5, 4.5):
            cone = centre + dx * np.array([np.cos(yaw), np.sin(yaw)])
            place_box(world, cone, yaw, 0.4, 0.4, CONE, 0.0, 0.8, land)


def build_highway(world: WorldMap, edges: list[Edge], rng) -> None:
    """Guard rails, lamp posts, noise walls, roadworks cones, fields, woods, warehouses."""
    for edge in edges:
        rail = float(rng.uniform(0.8, 1.6))
        if rng.random() < 0.85:
            solid_band(world, edge, rail, rail + 0.4, BARRIER, 0.8)
        for k in along(edge, rng, (35.0, 60.0)):
            centre, yaw = _edge_frame(edge, k, rail + 0.9)
            place_box(world, centre, yaw, 0.3, 0.3, MANMADE, 0.0, 8.0, (TERRAIN,))
        if rng.random() < 0.5:
            wall = float(rng.uniform(4.0, 8.0))
            keep = stretches(edge, rng, 0.5, (60.0, 200.0))
            solid_band(world, edge, wall, wall + 0.4, MANMADE, height(rng, 3.0, 5.0), keep)
        if rng.random() < 0.3:
            for k in along(edge, rng, (3.0, 4.0))[: int(rng.integers(6, 14))]:
                centre, yaw = _edge_frame(edge, k, 0.35)
                place_box(world, centre, yaw, 0.4, 0.4, CONE, 0.0, 0.8, (TERRAIN,))
    for edge in edges:
        _buildings(world, edge, rng, float(rng.uniform(20, 40)), (4.8, 9.6), share=0.2)
    dig_ponds(world, rng, 0.5)
    plant_woods(world, rng, density=0.004)
    plant_open_land(world, rng, density=0.4, tree_share=0.5)


def build_racetrack(world: WorldMap, edges: list[Edge], rng) -> None:
    """Gravel run-off outside bends, tyre barriers, grandstands, trees."""
    for edge in edges:
        runoff = np.where(np.abs(edge.bend) > 1 / 60, float(rng.uniform(4, 8)), 1.5)
        outside = edge.bend > 1 / 60
        if outside.any():
            for run in runs(outside):
                part = Edge(
                    edge.point[run], edge.outward[run], edge.heading[run], edge.bend[run], edge.step
                )
                paint_band(world, part, 0.0, float(runoff.max()), OTHER_FLAT, over=(TERRAIN,))
        for width in np.unique(runoff):
            keep = runoff == width
            solid_band(world, edge, width + 0.5, width + 1.3, BARRIER, 0.8, keep)
        _buildings(world, edge, rng, float(rng.uniform(10, 16)), (4.8, 8.0))
    plant_open_land(world, rng, density=0.4, tree_share=0.7)


def park_cars(world: WorldMap, edges: list[Edge], rng, share: float) -> list[float]:
    """A parking lane (driveable surface, 2.2-2.6 m) outside a `share` of the road edges, with
    cars parked along it nose to tail (5.5-8 m apart, 75-95% of the slots taken); straight
    stretches only, nobody parks in a junction's corner. The cars become static agents
    (`world.parked`). Returns, per edge, where the sidewalk starts (m from the edge)."""
    width = float(rng.uniform(*PARKING))
    kerbs = []
    for edge in edges:
        if rng.random() > share or len(edge.point) * edge.step < 15.0:
            kerbs.append(0.0)
            continue
        kerbs.append(width)
        paint_band(world, edge, 0.0, width, ROAD, over=(TERRAIN, OTHER_FLAT))
        straight = np.abs(edge.bend) < 1 / 40
        taken = float(rng.uniform(0.75, 0.95))
        for k in along(edge, rng, (5.5, 8.0)):
            if not straight[k] or rng.random() > taken:
                continue
            length, car_width = float(rng.uniform(4.0, 5.0)), float(rng.uniform(1.75, 1.95))
            centre = edge.point[k] + edge.outward[k] * (width / 2 + float(rng.normal(0, 0.1)))
            yaw = float(edge.heading[k]) + float(rng.normal(0, 0.03))
            i, j = world.box_cells(centre, yaw, length + 0.6, car_width)
            if len(i) == 0 or not world.clear(i, j, (ROAD,)) or _near_parked(world, centre):
                continue
            cid = PARKED_ID + len(world.parked)
            tall = float(rng.uniform(1.45, 1.75))
            world.parked.append(AgentState(cid, CAR, *centre, yaw, length, car_width, tall))
    return kerbs


def _near_parked(world: WorldMap, centre) -> bool:
    return any(np.hypot(a.x - centre[0], a.y - centre[1]) < 5.0 for a in world.parked)


BUILDERS = {"urban": build_urban, "highway": build_highway, "racetrack": build_racetrack}
