"""The static world around a sequence: a world-frame 2.5D raster built procedurally from a seed.

Each cell of the raster (a square of `cell` metres) holds
- a ground class (driveable_surface, sidewalk, terrain or other_flat) and the ground's height
  `ground_z` (world z, m): relief, camber and kerbs from terrain.py;
- at most one solid interval [bottom, top) (world z, m) with a class: a building, a wall,
  a guard rail, a pole, a tree (trunk cells from below the ground to the top, crown cells
  from the crown's bottom to the top).
Roads come from highway-env's lanes; the rest (sidewalks, parking lanes, rails, walls, poles,
cones, buildings, trees, bushes, ponds) is placed along the road edges and in the open land
by surroundings.py, with sizes and spacings drawn from the sequence's random generator.
Builders give heights above the local ground; `put` turns them into world z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving import terrain
from worldmodels.data.driving.lanes import LaneSamples
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
POND = 200  # ground codes used while building: other_flat below the land, ...
PAVED = 201  # ... paved land off the road (forecourts, car parks): driveable surface


def height(rng: np.random.Generator, low: float, high: float) -> float:
    """A height in metres, uniform in [low, high]."""
    return float(rng.uniform(low, high))


@dataclass
class WorldMap:
    """World-frame raster, indexed [i, j] with i along x and j along y.

    origin: (2,) world xy (m) of the corner of cell (0, 0); cell: edge (m);
    ground: (I, J) uint8 class; ground_z: (I, J) float32 world z of the ground surface (m),
    set by `finish_ground`; obj_class: (I, J) uint8 (FREE = no solid);
    obj_bottom, obj_top: (I, J) float32 world z (m) of the solid interval, (+inf, -inf) if none;
    relief, bumps: the ground's long waves and the terrain's short ones (terrain.py);
    parked: static agents (parked cars) placed with the world.
    """

    origin: np.ndarray
    cell: float
    ground: np.ndarray
    obj_class: np.ndarray
    obj_bottom: np.ndarray
    obj_top: np.ndarray
    relief: terrain.Waves
    bumps: terrain.Waves
    ground_z: np.ndarray | None = None
    parked: list | None = None
    seen: np.ndarray | None = None  # bool per cell: in the sensors' sight (observed.py)

    @classmethod
    def empty(
        cls, box_min: np.ndarray, box_max: np.ndarray, cell: float, relief=None, bumps=None
    ) -> WorldMap:
        shape = tuple(np.ceil((box_max - box_min) / cell).astype(int))
        return cls(
            origin=np.asarray(box_min, dtype=np.float64),
            cell=cell,
            ground=np.full(shape, TERRAIN, dtype=np.uint8),
            obj_class=np.full(shape, FREE, dtype=np.uint8),
            obj_bottom=np.full(shape, np.inf, dtype=np.float32),
            obj_top=np.full(shape, -np.inf, dtype=np.float32),
            relief=relief or terrain.Waves.flat(),
            bumps=bumps or terrain.Waves.flat(),
            parked=[],
        )

    def cell_centres(self, i, j) -> np.ndarray:
        """(..., 2) world xy of the centres of cells (i, j)."""
        return self.origin + (np.stack([i, j], axis=-1) + 0.5) * self.cell

    def ground_height_at(self, xy: np.ndarray) -> np.ndarray:
        """World z of the ground at points xy (..., 2) (the relief outside the map)."""
        i, j, inside = self.index(xy)
        return np.where(inside, self.ground_z[i, j], self.relief.height(xy))

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

    def put(
        self, i, j, cls: int, bottom: float, top: float, union: bool = False, base=None
    ) -> None:
        """Write a solid [bottom, top) into cells, heights in m above `base` (world z; default
        the relief of each cell); a solid standing on the ground (bottom 0) reaches FOOTING
        below its base. `union` merges with a solid of the same class (overlapping tree
        crowns) and leaves other solids untouched."""
        if base is None:
            base = self.relief.height(self.cell_centres(i, j))
        bottom = base + (bottom if bottom > 0 else -terrain.FOOTING)
        top = base + top
        if union:
            keep = (self.obj_class[i, j] == cls) | (self.obj_class[i, j] == FREE)
            i, j = i[keep], j[keep]
            if np.ndim(bottom):  # per-cell heights follow the cells kept
                bottom, top = bottom[keep], top[keep]
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


def build_world(
    lanes: list[LaneSamples], obstacles, style: str, box_min, box_max, cell, rng
) -> WorldMap:
    """The static world over the world box [box_min, box_max] (2,) m at `cell` m per cell."""
    from worldmodels.data.driving.surroundings import BUILDERS  # they build on this module

    if style not in BUILDERS:
        raise ValueError(f"unknown world style {style!r}; expected one of {sorted(BUILDERS)}")
    relief, bumps = terrain.make_relief(style, rng)
    world = WorldMap.empty(np.asarray(box_min), np.asarray(box_max), cell, relief, bumps)
    paint_roads(world, lanes)
    edges = find_edges(world, lanes)
    BUILDERS[style](world, edges, rng)
    for o in obstacles:  # highway-env's static objects (the merge lane's end block)
        i, j = world.box_cells(np.array([o.x, o.y]), o.yaw, o.length, o.width)
        world.put(i, j, o.class_id, 0.0, o.height)
    finish_ground(world, edges)
    return world
