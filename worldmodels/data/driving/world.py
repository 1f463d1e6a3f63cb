"""The static world around a sequence: a world-frame 2.5D raster built procedurally from a seed.

Each cell of the raster (a square of `cell` metres) holds
- a ground class: driveable_surface, sidewalk, terrain or other_flat, a flat surface at z = 0;
- at most one solid interval [bottom, top) (m, world z) with a class: a building, a wall,
  a guard rail, a pole, a tree (trunk cells span [0, top), crown cells [crown_bottom, top)).
Roads come from highway-env's lanes; the rest (sidewalks, rails, walls, poles, cones,
buildings, trees, bushes, ponds) is placed along the road edges and in the open land, with
sizes and spacings drawn from the sequence's random generator. Heights are multiples of
`HEIGHT_STEP` (0.8 m) so that every surface lies on a voxel boundary (see config.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving.config import HEIGHT_STEP
from worldmodels.data.driving.traffic import LaneSamples
from worldmodels.occ3d import CLASS_ID, FREE

ROAD = CLASS_ID["driveable_surface"]
SIDEWALK = CLASS_ID["sidewalk"]
TERRAIN = CLASS_ID["terrain"]
OTHER_FLAT = CLASS_ID["other_flat"]
MANMADE = CLASS_ID["manmade"]
VEGETATION = CLASS_ID["vegetation"]
BARRIER = CLASS_ID["barrier"]
CONE = CLASS_ID["traffic_cone"]
OTHERS = CLASS_ID["others"]
BICYCLE = CLASS_ID["bicycle"]
CONSTRUCTION = CLASS_ID["construction_vehicle"]


def steps(rng: np.random.Generator, low: int, high: int) -> float:
    """A height in metres: a whole number of HEIGHT_STEP between low and high (inclusive)."""
    return HEIGHT_STEP * int(rng.integers(low, high + 1))


@dataclass
class WorldMap:
    """World-frame raster, indexed [i, j] with i along x and j along y.

    origin: (2,) world xy (m) of the corner of cell (0, 0); cell: edge (m);
    ground: (I, J) uint8 class; obj_class: (I, J) uint8 (FREE = no solid);
    obj_bottom, obj_top: (I, J) float32 world z (m) of the solid interval, (+inf, -inf) if none.
    """

    origin: np.ndarray
    cell: float
    ground: np.ndarray
    obj_class: np.ndarray
    obj_bottom: np.ndarray
    obj_top: np.ndarray

    @classmethod
    def empty(cls, box_min: np.ndarray, box_max: np.ndarray, cell: float) -> WorldMap:
        shape = tuple(np.ceil((box_max - box_min) / cell).astype(int))
        return cls(
            origin=np.asarray(box_min, dtype=np.float64),
            cell=cell,
            ground=np.full(shape, TERRAIN, dtype=np.uint8),
            obj_class=np.full(shape, FREE, dtype=np.uint8),
            obj_bottom=np.full(shape, np.inf, dtype=np.float32),
            obj_top=np.full(shape, -np.inf, dtype=np.float32),
        )

    def index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell indices (i, j) of world points xy (..., 2) and whether they lie in the map."""
        ij = np.floor((xy - self.origin) / self.cell).astype(np.int64)
        i, j = ij[..., 0], ij[..., 1]
        inside = (i >= 0) & (j >= 0) & (i < self.ground.shape[0]) & (j < self.ground.shape[1])
        return np.where(inside, i, 0), np.where(inside, j, 0), inside

    def ground_at(self, xy: np.ndarray, outside: int = TERRAIN) -> np.ndarray:
        i, j, inside = self.index(xy)
        return np.where(inside, self.ground[i, j], outside)

    def has_object_at(self, xy: np.ndarray) -> np.ndarray:
        i, j, inside = self.index(xy)
        return inside & (self.obj_class[i, j] != FREE)

    def paint_ground(self, xy: np.ndarray, cls: int, over: tuple[int, ...]) -> None:
        """Set the ground class of the cells holding points xy (..., 2), where it is in `over`."""
        i, j, inside = self.index(xy)
        i, j = i[inside], j[inside]
        keep = np.isin(self.ground[i, j], over)
        self.ground[i[keep], j[keep]] = cls

    def box_cells(self, centre, yaw: float, length: float, width: float):
        """Cells whose centres lie in an oriented rectangle (at least the centre's cell)."""
        half = 0.5 * np.hypot(length, width) + self.cell
        i0, j0, _ = self.index(np.asarray(centre) - half)
        i1, j1, _ = self.index(np.asarray(centre) + half)
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
        xy = self.origin + (np.stack([ii, jj], axis=-1) + 0.5) * self.cell - centre
        along = xy[..., 0] * np.cos(yaw) + xy[..., 1] * np.sin(yaw)
        across = -xy[..., 0] * np.sin(yaw) + xy[..., 1] * np.cos(yaw)
        inside = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
        ci, cj, cin = self.index(np.asarray(centre, dtype=np.float64))
        i, j = np.append(ii[inside], ci), np.append(jj[inside], cj)
        ok = (i >= 0) & (j >= 0) & (i < self.ground.shape[0]) & (j < self.ground.shape[1])
        return i[ok], j[ok]

    def disc_cells(self, centre, radius: float):
        """Cells whose centres lie within `radius` of `centre` (at least the centre's cell)."""
        i, j = self.box_cells(centre, 0.0, 2 * radius, 2 * radius)
        xy = self.origin + (np.stack([i, j], axis=-1) + 0.5) * self.cell - centre
        near = np.hypot(xy[:, 0], xy[:, 1]) <= max(radius, self.cell)
        return i[near], j[near]

    def clear(self, i, j, allowed_ground: tuple[int, ...]) -> bool:
        """True if every cell (i, j) has no solid and an allowed ground class."""
        return bool(
            np.all(np.isin(self.ground[i, j], allowed_ground))
            and np.all(self.obj_class[i, j] == FREE)
        )

    def put(self, i, j, cls: int, bottom: float, top: float, union: bool = False) -> None:
        """Write a solid [bottom, top) into cells; `union` merges with a solid of the same class
        (overlapping tree crowns) and leaves other solids untouched."""
        if union:
            same = self.obj_class[i, j] == cls
            free = self.obj_class[i, j] == FREE
            i, j = i[same | free], j[same | free]
            self.obj_bottom[i, j] = np.minimum(self.obj_bottom[i, j], bottom)
            self.obj_top[i, j] = np.maximum(self.obj_top[i, j], top)
        else:
            self.obj_bottom[i, j] = bottom
            self.obj_top[i, j] = top
        self.obj_class[i, j] = cls


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


def paint_roads(world: WorldMap, lanes: list[LaneSamples]) -> None:
    """Driveable surface under every lane: points every half cell across each lane sample
    (lanes are sampled every half cell along their length)."""
    for lane in lanes:
        offsets = np.arange(-lane.width.max() / 2, lane.width.max() / 2 + 1e-9, world.cell / 2)
        points = lane.centre[:, None, :] + offsets[None, :, None] * lane.left[:, None, :]
        world.paint_ground(points, ROAD, over=(TERRAIN, SIDEWALK, OTHER_FLAT))


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
            for run in _runs(is_edge):
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


def _runs(mask: np.ndarray) -> list[slice]:
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
    world.put(i[ok], j[ok], cls, 0.0, height)


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
    world.put(i, j, cls, bottom, top)
    return True


def place_tree(world, centre, rng, ground_ok, crown=(1.2, 2.2)) -> bool:
    """A tree, 4-8 m tall: a 0.4 m trunk from the ground to the top where the ground class is
    in `ground_ok`, and a crown disc (radius drawn from `crown`, m) from 1.6 or 2.4 m up to the
    top. Crowns do not reach over the road, where trucks would drive through them."""
    radius = float(rng.uniform(*crown))
    ti, tj = world.box_cells(centre, 0.0, 0.4, 0.4)
    if not world.clear(ti, tj, ground_ok):
        return False
    top = steps(rng, 5, 10)
    crown_bottom = steps(rng, 2, 3)
    ci, cj = world.disc_cells(centre, radius)
    keep = world.ground[ci, cj] != ROAD
    world.put(ci[keep], cj[keep], VEGETATION, crown_bottom, top, union=True)
    world.put(ti, tj, VEGETATION, 0.0, top)
    return True


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
            world.put(i, j, VEGETATION, 0.0, steps(rng, 1, 2), union=True)


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
            world.ground[i, j] = OTHER_FLAT


def _edge_frame(edge: Edge, k: int, offset: float):
    """World point `offset` m outside edge point k, and the road heading there."""
    return edge.point[k] + offset * edge.outward[k], float(edge.heading[k])


def build_urban(world: WorldMap, edges: list[Edge], rng) -> None:
    """Sidewalks, street trees, lamp posts, benches, bicycles, cones, buildings, parks."""
    walk = float(rng.uniform(2.5, 4.5))
    for edge in edges:
        paint_band(world, edge, 0.0, walk, SIDEWALK, over=(TERRAIN, OTHER_FLAT))
    for edge in edges:
        for k in along(edge, rng, (9.0, 16.0)):
            if rng.random() < 0.75:
                place_tree(world, _edge_frame(edge, k, 1.0)[0], rng, (SIDEWALK,), (1.2, 1.9))
        for k in along(edge, rng, (20.0, 35.0)):
            centre, yaw = _edge_frame(edge, k, 0.4)
            place_box(world, centre, yaw, 0.3, 0.3, MANMADE, 0.0, 7.2, (SIDEWALK,))
        for k in along(edge, rng, (15.0, 40.0)):
            centre, yaw = _edge_frame(edge, k, walk - 0.6)
            kind = rng.random()
            if kind < 0.5:  # bench or bin
                place_box(world, centre, yaw, 1.6, 0.6, OTHERS, 0.0, 0.8, (SIDEWALK,))
            elif kind < 0.8:  # parked bicycle
                place_box(world, centre, yaw, 1.8, 0.6, BICYCLE, 0.0, 0.8, (SIDEWALK,))
        if rng.random() < 0.3:  # a short row of cones at the kerb
            for k in along(edge, rng, (2.0, 3.0))[: int(rng.integers(3, 8))]:
                centre, yaw = _edge_frame(edge, k, 0.35)
                place_box(world, centre, yaw, 0.4, 0.4, CONE, 0.0, 0.8, (SIDEWALK,))
    for edge in edges:
        _buildings(world, edge, rng, walk + float(rng.uniform(0.0, 3.0)), (3.2, 16.8))
    _construction_sites(world, edges, rng)
    plant_open_land(world, rng, density=0.25, tree_share=0.6)


def _buildings(world, edge: Edge, rng, setback, height, share: float = 1.0) -> None:
    """Buildings along an edge, `setback` m from it: frontages of 10-30 m with 0-8 m gaps, a
    `share` of the slots built. None on the inside of tight bends (a roundabout's island)."""
    s = float(rng.uniform(0, 8))
    length = len(edge.point) * edge.step
    low, high = round(height[0] / HEIGHT_STEP), round(height[1] / HEIGHT_STEP)
    while s < length:
        front = float(rng.uniform(10, 30))
        depth = float(rng.uniform(10, 25))
        k = min(int((s + front / 2) / edge.step), len(edge.point) - 1)
        if edge.bend[k] > -1 / 25 and rng.random() < share:
            centre, yaw = _edge_frame(edge, k, setback + depth / 2)
            top = steps(rng, low, high)
            place_box(world, centre, yaw, front, depth, MANMADE, 0.0, top, (TERRAIN,), 0.4)
        s += front + float(rng.uniform(0, 8))


def _construction_sites(world, edges, rng) -> None:
    """Now and then a parked construction vehicle with cones, behind an edge."""
    for edge in edges:
        if rng.random() > 0.15 or len(edge.point) < 10:
            continue
        k = int(rng.integers(len(edge.point)))
        centre, yaw = _edge_frame(edge, k, float(rng.uniform(6, 10)))
        if place_box(world, centre, yaw, 6.5, 2.6, CONSTRUCTION, 0.0, 3.2, (TERRAIN,), 1.0):
            for dx in (-4.5, 4.5):
                cone = centre + dx * np.array([np.cos(yaw), np.sin(yaw)])
                place_box(world, cone, yaw, 0.4, 0.4, CONE, 0.0, 0.8, (TERRAIN,))


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
            solid_band(world, edge, wall, wall + 0.4, MANMADE, steps(rng, 4, 6), keep)
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
            for run in _runs(outside):
                part = Edge(
                    edge.point[run], edge.outward[run], edge.heading[run], edge.bend[run], edge.step
                )
                paint_band(world, part, 0.0, float(runoff.max()), OTHER_FLAT, over=(TERRAIN,))
        for width in np.unique(runoff):
            keep = runoff == width
            solid_band(world, edge, width + 0.5, width + 1.3, BARRIER, 0.8, keep)
        _buildings(world, edge, rng, float(rng.uniform(10, 16)), (4.8, 8.0))
    plant_open_land(world, rng, density=0.4, tree_share=0.7)


BUILDERS = {"urban": build_urban, "highway": build_highway, "racetrack": build_racetrack}


def build_world(
    lanes: list[LaneSamples], obstacles, style: str, box_min, box_max, cell, rng
) -> WorldMap:
    """The static world over the world box [box_min, box_max] (2,) m at `cell` m per cell."""
    if style not in BUILDERS:
        raise ValueError(f"unknown world style {style!r}; expected one of {sorted(BUILDERS)}")
    world = WorldMap.empty(np.asarray(box_min), np.asarray(box_max), cell)
    paint_roads(world, lanes)
    edges = find_edges(world, lanes)
    BUILDERS[style](world, edges, rng)
    for o in obstacles:  # highway-env's static objects (the merge lane's end block)
        i, j = world.box_cells(np.array([o.x, o.y]), o.yaw, o.length, o.width)
        world.put(i, j, o.class_id, 0.0, o.height)
    return world
