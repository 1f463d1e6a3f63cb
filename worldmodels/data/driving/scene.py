"""One frame in the ego frame: a fine column raster of the world, and its voxelisation.

The raster is what the LiDAR sees: square columns of `fine_cell` metres around the ego, each
with a ground class (the road plane z = ROAD_Z_EGO) and at most one solid interval
[bottom, top) with a class, taken from the static world map (nearest cell) and from the agents'
boxes drawn on top. Its columns nest exactly in the voxel grid's columns (`subdivision` per
voxel edge), so the voxelisation below is exact:

    voxel (x, y, k) is occupied  <=>  some raster column inside voxel column (x, y) has solid
                                      overlapping level k by more than SOLID_EPS (or k is
                                      below the road surface),

and its class is the most frequent class among those columns (ties: the smaller class id).
Heights are whole multiples of 0.8 m, so solids begin and end on level faces; but they are
stored as float32 (0.8 m - 0.2 m = 0.6000000119 m), and the SOLID_EPS margin keeps such
rounding from filling one more level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from einops import rearrange

from worldmodels.data.driving.config import ROAD_Z_EGO, Preset
from worldmodels.data.driving.traffic import AgentState
from worldmodels.data.driving.world import OTHER_FLAT, ROAD, SIDEWALK, TERRAIN, WorldMap
from worldmodels.occ3d import FREE

GROUND_CLASSES = (ROAD, SIDEWALK, TERRAIN, OTHER_FLAT)
SOLID_EPS = 1e-3  # m, overlaps of a solid with a voxel level thinner than this do not count


@dataclass
class EgoRaster:
    """Ego-frame column raster over [-half, half]^2 m, indexed [i, j] with i along x.

    ground: (M, M) uint8; obj_class: (M, M) uint8 (FREE = none);
    bottom, top: (M, M) float32, ego-frame z (m) of the solid, (+inf, -inf) where none.
    """

    cell: float
    half: float
    ground: np.ndarray
    obj_class: np.ndarray
    bottom: np.ndarray
    top: np.ndarray


def rotation(yaw: float) -> np.ndarray:
    """(2, 2) rotation by yaw (rad), counter-clockwise."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


def ego_pose(xy: np.ndarray, yaw: float) -> np.ndarray:
    """(4, 4) float64 world-from-ego transform: p_world = pose @ p_ego (homogeneous)."""
    pose = np.eye(4)
    pose[:2, :2] = rotation(yaw)
    pose[:2, 3] = xy
    pose[2, 3] = -ROAD_Z_EGO  # the ego origin is above the road (world z = 0)
    return pose


def column_centres(half: float, cell: float) -> np.ndarray:
    """(M,) centre coordinates (m) of raster columns along one axis."""
    count = round(2 * half / cell)
    return -half + (np.arange(count) + 0.5) * cell


def ego_raster(
    world: WorldMap, xy: np.ndarray, yaw: float, agents: list[AgentState], preset: Preset
) -> EgoRaster:
    """Resample the world map around the ego (nearest cell) and draw the agents' boxes."""
    half, cell = preset.raster_half_extent, preset.fine_cell
    centres = column_centres(half, cell)
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), axis=-1)  # (M, M, 2) ego xy
    world_xy = grid @ rotation(yaw).T + xy  # p_world = R(yaw) p_ego + t
    i, j, inside = world.index(world_xy)
    solid = inside & (world.obj_class[i, j] != FREE)
    raster = EgoRaster(
        cell=cell,
        half=half,
        ground=np.where(inside, world.ground[i, j], TERRAIN).astype(np.uint8),
        obj_class=np.where(solid, world.obj_class[i, j], FREE).astype(np.uint8),
        bottom=np.where(solid, world.obj_bottom[i, j] + ROAD_Z_EGO, np.inf).astype(np.float32),
        top=np.where(solid, world.obj_top[i, j] + ROAD_Z_EGO, -np.inf).astype(np.float32),
    )
    for agent in agents:
        draw_box(raster, agent, xy, yaw)
    return raster


def agent_box_ego(agent: AgentState, xy: np.ndarray, yaw: float) -> np.ndarray:
    """(7,) float64 box in the ego frame: centre x, y, z (m), length, width, height (m), yaw."""
    centre = rotation(-yaw) @ (np.array([agent.x, agent.y]) - xy)
    heading = (agent.yaw - yaw + np.pi) % (2 * np.pi) - np.pi
    z = ROAD_Z_EGO + agent.height / 2
    return np.array([*centre, z, agent.length, agent.width, agent.height, heading])


def draw_box(raster: EgoRaster, agent: AgentState, xy: np.ndarray, yaw: float) -> None:
    """Write an agent's box (standing on the road) into the raster columns it covers."""
    x, y, _, length, width, height, heading = agent_box_ego(agent, xy, yaw)
    reach = 0.5 * np.hypot(length, width)
    if abs(x) > raster.half + reach or abs(y) > raster.half + reach:
        return
    count = raster.ground.shape[0]
    lo = np.floor((np.array([x, y]) - reach + raster.half) / raster.cell).astype(int).clip(0, count)
    hi = np.ceil((np.array([x, y]) + reach + raster.half) / raster.cell).astype(int).clip(0, count)
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
    cx = -raster.half + (ii + 0.5) * raster.cell - x
    cy = -raster.half + (jj + 0.5) * raster.cell - y
    along = cx * np.cos(heading) + cy * np.sin(heading)
    across = -cx * np.sin(heading) + cy * np.cos(heading)
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
    ii, jj = ii[inside], jj[inside]
    raster.obj_class[ii, jj] = agent.class_id
    raster.bottom[ii, jj] = ROAD_Z_EGO
    raster.top[ii, jj] = ROAD_Z_EGO + height


@dataclass
class Voxels:
    """The voxelised frame: semantics (X, Y, Z) uint8 with FREE for empty voxels, and the same
    occupancy as a bit mask per voxel column, bits (X, Y) int64 (bit k set: level k occupied)."""

    semantics: np.ndarray
    bits: np.ndarray


def grid_block(raster_array: np.ndarray, preset: Preset) -> np.ndarray:
    """The raster columns under the voxel grid, grouped per voxel column: (X, r, Y, r)."""
    grid, r = preset.grid, preset.subdivision
    offset = round((preset.raster_half_extent - grid.half_extent[0]) / preset.fine_cell)
    X, Y, _ = grid.size
    block = raster_array[offset : offset + X * r, offset : offset + Y * r]
    return rearrange(block, "(X ra) (Y rb) -> X Y (ra rb)", ra=r, rb=r)


def voxelize(raster: EgoRaster, preset: Preset) -> Voxels:
    """Semantic occupancy (X, Y, Z) uint8 of the raster, by the rule in the module docstring."""
    grid = preset.grid
    X, Y, Z = grid.size
    levels = grid.ground_levels
    semantics = np.full((X, Y, Z), FREE, dtype=np.uint8)
    ground = grid_block(raster.ground, preset)  # (X, Y, r*r)
    semantics[:, :, :levels] = _mode(ground, GROUND_CLASSES)[:, :, None]

    classes = grid_block(raster.obj_class, preset)  # (X, Y, r*r)
    bottom = grid_block(raster.bottom, preset)[..., None]  # (X, Y, r*r, 1)
    top = grid_block(raster.top, preset)[..., None]
    level_low = grid.z_range[0] + np.arange(levels, Z) * grid.voxel_z  # (Z - levels,)
    level_high = level_low + grid.voxel_z
    overlap = (bottom < level_high - SOLID_EPS) & (top > level_low + SOLID_EPS)  # (X,Y,r*r,Zo)
    present = [c for c in np.unique(classes) if c != FREE]
    if present:
        counts = np.stack(
            [((classes == c)[..., None] & overlap).sum(axis=2) for c in present]
        )  # (C, X, Y, Zo)
        best = np.array(present, dtype=np.uint8)[counts.argmax(axis=0)]
        semantics[:, :, levels:] = np.where(counts.max(axis=0) > 0, best, FREE)
    occupied = semantics != FREE
    bits = (occupied.astype(np.int64) << np.arange(Z)).sum(axis=-1)
    return Voxels(semantics=semantics, bits=bits)


def _mode(values: np.ndarray, candidates: tuple[int, ...]) -> np.ndarray:
    """Most frequent of `candidates` along the last axis (ties: the first listed)."""
    counts = np.stack([(values == c).sum(axis=-1) for c in candidates])
    return np.array(candidates, dtype=np.uint8)[counts.argmax(axis=0)]
