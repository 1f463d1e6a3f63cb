"""One frame in the ego frame: a fine column raster of the world around the ego.

The raster is what the LiDAR sees and what the voxels are made from: square columns of
`fine_cell` metres around the ego, each with a ground class and height (the ground is solid
below it) and at most one solid interval [bottom, top) with a class, taken from the static
world map (nearest cell) and from the agents' boxes drawn on top. Its columns nest exactly in
the voxel grid's columns (`subdivision` per voxel edge); voxels.py turns it into labels.

The ego frame follows the car's body: its origin is on the ground under the ego, and it is
tilted with the relief's slope there, and further as the body pitches when the car brakes or
accelerates (nose down by PITCH per m/s^2 of braking) and rolls out of a turn (ROLL per m/s^2
of lateral acceleration, which is clipped at LATERAL_MAX): the LiDAR is bolted to the body,
and Occ3D's grid is the ego's. Heights are taken in that tilted frame with the small-angle
approximation z_ego = z_world - (z_e + g . (p - e)), g the slope at the ego e plus the body's
tilt as a slope (at most a few percent: positions off by under 0.1%), and verticals stay
vertical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.data.driving.config import Preset
from worldmodels.data.driving.lanes import AgentState
from worldmodels.data.driving.world import TERRAIN, WorldMap
from worldmodels.occ3d import FREE

AGENT_SINK = 0.1  # m, an agent's box reaches this far below the ground at its centre
PITCH = np.deg2rad(0.2)  # rad of body pitch per m/s^2 (about 2 degrees per g, a sedan's)
ROLL = np.deg2rad(0.5)  # rad of body roll per m/s^2 of lateral acceleration (5 degrees per g)
LATERAL_MAX = 5.0  # m/s^2: highway-env's kinematic turns can exceed what tyres hold


@dataclass
class EgoRaster:
    """Ego-frame column raster over [-half, half]^2 m, indexed [i, j] with i along x.

    ground: (M, M) uint8 class; ground_z: (M, M) float32 ego-frame z (m) of the ground
    surface (solid below it); obj_class: (M, M) uint8 (FREE = none);
    bottom, top: (M, M) float32, ego-frame z (m) of the solid, (+inf, -inf) where none;
    observed: (M, M) bool, in the sensors' sight at some frame of the sequence (observed.py).
    """

    cell: float
    half: float
    ground: np.ndarray
    ground_z: np.ndarray
    obj_class: np.ndarray
    bottom: np.ndarray
    top: np.ndarray
    observed: np.ndarray | None = None

    def ground_at(self, x: float, y: float) -> float:
        """Ego-frame ground height (m) in the column holding ego point (x, y)."""
        count = self.ground.shape[0]
        i, j = (int(np.clip((v + self.half) // self.cell, 0, count - 1)) for v in (x, y))
        return float(self.ground_z[i, j])


def rotation(yaw: float) -> np.ndarray:
    """(2, 2) rotation by yaw (rad), counter-clockwise."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class EgoPlace:
    """Where the ego stands: world xy (m), yaw (rad), ground z (m) and slope (2,) there."""

    xy: np.ndarray
    yaw: float
    z: float
    slope: np.ndarray

    @classmethod
    def on(cls, world: WorldMap, xy: np.ndarray, yaw: float, accel=(0.0, 0.0)) -> EgoPlace:
        """The ego at world xy (2,) heading yaw, with acceleration `accel` (along, left) m/s^2:
        slope = g_relief + PITCH * a_along * forward + ROLL * a_left * left. Braking
        (a_along < 0) dips the nose as a downhill grade would, so the road ahead rises in the
        ego frame; a left turn rolls the body out to the right, its left side up."""
        xy = np.asarray(xy, dtype=np.float64)
        z = float(world.ground_height_at(xy))
        along, left = float(accel[0]), float(np.clip(accel[1], -LATERAL_MAX, LATERAL_MAX))
        forward = np.array([np.cos(yaw), np.sin(yaw)])
        leftward = np.array([-np.sin(yaw), np.cos(yaw)])
        tilt = PITCH * along * forward + ROLL * left * leftward
        return cls(xy, float(yaw), z, world.relief.gradient(xy) + tilt)

    def height(self, world_xy: np.ndarray, world_z: np.ndarray) -> np.ndarray:
        """Ego-frame z of world points: z - (z_e + g . (p - e)) (small-angle tilt)."""
        return world_z - (self.z + (world_xy - self.xy) @ self.slope)


def ego_pose(place: EgoPlace) -> np.ndarray:
    """(4, 4) float64 world-from-ego transform: p_world = pose @ p_ego (homogeneous); the z
    axis is the ground's normal at the ego, x the heading projected onto that plane."""
    normal = np.array([-place.slope[0], -place.slope[1], 1.0])
    normal /= np.linalg.norm(normal)
    forward = np.array([np.cos(place.yaw), np.sin(place.yaw), 0.0])
    x_axis = forward - (forward @ normal) * normal
    x_axis /= np.linalg.norm(x_axis)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x_axis, np.cross(normal, x_axis), normal], axis=1)
    pose[:2, 3] = place.xy
    pose[2, 3] = place.z
    return pose


def column_centres(half: float, cell: float) -> np.ndarray:
    """(M,) centre coordinates (m) of raster columns along one axis."""
    count = round(2 * half / cell)
    return -half + (np.arange(count) + 0.5) * cell


def ego_raster(
    world: WorldMap, place: EgoPlace, agents: list[AgentState], preset: Preset
) -> tuple[EgoRaster, np.ndarray]:
    """Resample the world map around the ego (nearest cell) and draw the agents' boxes.
    Returns the raster and the agents' ego-frame boxes (N, 7) (see agent_box_ego)."""
    half, cell = preset.raster_half_extent, preset.fine_cell
    centres = column_centres(half, cell)
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), axis=-1)  # (M, M, 2) ego xy
    world_xy = grid @ rotation(place.yaw).T + place.xy  # p_world = R(yaw) p_ego + t
    i, j, inside = world.index(world_xy)
    solid = inside & (world.obj_class[i, j] != FREE)
    ground_z = world.ground_z[i, j]
    if not inside.all():  # beyond the world map: the bare relief
        ground_z = np.where(inside, ground_z, 0.0)
        ground_z[~inside] = world.relief.height(world_xy[~inside])
    to_ego = lambda z: place.height(world_xy, z).astype(np.float32)  # noqa: E731
    raster = EgoRaster(
        cell=cell,
        half=half,
        ground=np.where(inside, world.ground[i, j], TERRAIN).astype(np.uint8),
        ground_z=to_ego(ground_z),
        obj_class=np.where(solid, world.obj_class[i, j], FREE).astype(np.uint8),
        bottom=np.where(solid, to_ego(world.obj_bottom[i, j]), np.inf).astype(np.float32),
        top=np.where(solid, to_ego(world.obj_top[i, j]), -np.inf).astype(np.float32),
        observed=inside & world.seen[i, j] if world.seen is not None else inside,
    )
    boxes = [agent_box_ego(a, place, raster) for a in agents]
    for agent, box in zip(agents, boxes, strict=True):
        draw_box(raster, agent.class_id, box)
    return raster, np.array(boxes).reshape(-1, 7)


def agent_box_ego(agent: AgentState, place: EgoPlace, raster: EgoRaster) -> np.ndarray:
    """(7,) float64 box in the ego frame: centre x, y, z (m), length, width, height (m), yaw.
    The box stands on the ground at its centre."""
    centre = rotation(-place.yaw) @ (np.array([agent.x, agent.y]) - place.xy)
    heading = (agent.yaw - place.yaw + np.pi) % (2 * np.pi) - np.pi
    z = raster.ground_at(*centre) + agent.height / 2
    return np.array([*centre, z, agent.length, agent.width, agent.height, heading])


def draw_box(raster: EgoRaster, class_id: int, box: np.ndarray) -> None:
    """Write an agent's box (from AGENT_SINK under its base up to its top) into the raster
    columns it covers."""
    x, y, z, length, width, height, heading = box
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
    raster.obj_class[ii, jj] = class_id
    raster.bottom[ii, jj] = z - height / 2 - AGENT_SINK
    raster.top[ii, jj] = z + height / 2
