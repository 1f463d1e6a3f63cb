"""The static world around a sequence: a world-frame 2.5D raster, the classes it holds.

Each cell of the raster (a square of `cell` metres) holds
- a ground class (driveable_surface, sidewalk, terrain or other_flat) and the ground's height
  `ground_z` (world z, m): relief, camber and kerbs from terrain.py;
- at most one solid interval [bottom, top) (world z, m) with a class: a building, a wall,
  a guard rail, a pole, a tree (trunk cells from below the ground to the top, crown cells
  from the crown's bottom to the top).
build.py builds it from a seed: roads from highway-env's lanes, their crossings, and what
stands along the road edges (edges.py, surroundings.py). Builders give heights above the
local ground; `put` turns them into world z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving import terrain
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
RESERVED = 254  # object code while building: kept clear (a crossing's ends)


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
