"""What the sensors saw over a sequence: the world cells in sight of the LiDAR from some frame.

Occ3D builds its labels from LiDAR sweeps accumulated over a whole scene: what was never in
sight (the land behind a row of buildings, the buildings' roofs, the inside of a block) is
not labelled. Here, in plan view: from the sensor's position at every frame, rays every
`cell` of arc at the LiDAR's range go out until the first cell whose solid spans the
sensor's height (a wall, a trunk, a low crown); the cells up to and including that one are
seen. Low solids (rails, cars, benches) do not hide what is behind them.
"""

from __future__ import annotations

import numpy as np

from worldmodels.data.driving.world import WorldMap


def seen_from_path(world: WorldMap, ego_xy: np.ndarray, reach: float, height: float):
    """(I, J) bool: cells in sight from the sensor (`height` m above the ground) at any of
    the ego positions ego_xy (T, 2), within `reach` m."""
    seen = np.zeros(world.ground.shape, dtype=bool)
    step = world.cell
    angles = np.arange(0.0, 2 * np.pi, step / reach)  # (A,) one cell apart at the far end
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (A, 2)
    distances = np.arange(step / 2, reach, step)  # (S,)
    for xy in ego_xy:
        sensor_z = float(world.ground_height_at(xy)) + height
        points = xy + distances[None, :, None] * directions[:, None, :]  # (A, S, 2)
        i, j, inside = world.index(points)
        blocked = (world.obj_bottom[i, j] < sensor_z) & (world.obj_top[i, j] > sensor_z)
        blocked |= ~inside
        first = np.where(blocked.any(axis=1), blocked.argmax(axis=1), len(distances))
        visible = (np.arange(len(distances))[None, :] <= first[:, None]) & inside
        seen[i[visible], j[visible]] = True
    return seen
