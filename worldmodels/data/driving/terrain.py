"""Ground heights: terrain relief, road grades and camber, kerbs.

Real streets are not one plane: roads climb and fall with the land (grades of a few percent),
fall off towards their gutters (camber) so that water drains, sidewalks stand a kerb above
the road, and open land is uneven. Occ3D's ground therefore crosses voxel levels, and a
copy of the last frame does not match the ground for free. Heights here:

    relief(x, y) = sum_n a_n sin(k_n . (x, y) + phi_n)      long waves: road grades, hills
    road         = relief - camber * max(0, gutter - d)     d: distance in from the road edge
    sidewalk     = relief + kerb
    terrain      = relief + bumps(x, y)                      short waves, a few decimetres
    other_flat   = relief (gravel) or relief - 0.3 m (a pond's surface)

Solids stand on the relief: a box (building, bench) or a tree takes the mean relief of its
footprint as its base and reaches `FOOTING` below it, so uneven ground never leaves a gap under
it; bands that follow an edge (rails, walls) follow the relief cell by cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERB = 0.15  # m, sidewalk above the road
CAMBER = 0.025  # road surface falls this much per metre towards its edge ...
GUTTER = 3.0  # ... over the last GUTTER m of the road
POND_DEPTH = 0.3  # m, a pond's surface below the land
FOOTING = 0.5  # m, how far a standing solid reaches below its base


@dataclass(frozen=True)
class Waves:
    """A sum of plane waves: amplitude (N,) m, wave vectors (N, 2) rad/m, phases (N,) rad."""

    amplitude: np.ndarray
    wave: np.ndarray
    phase: np.ndarray

    @classmethod
    def random(cls, rng, count: int, wavelength: tuple[float, float], amplitude) -> Waves:
        """`count` waves in random directions, wavelengths drawn from `wavelength` (m) and
        amplitudes from `amplitude` (m)."""
        angle = rng.uniform(0, 2 * np.pi, count)
        k = 2 * np.pi / rng.uniform(*wavelength, count)
        wave = k[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        return cls(rng.uniform(*amplitude, count), wave, rng.uniform(0, 2 * np.pi, count))

    @classmethod
    def flat(cls) -> Waves:
        return cls(np.zeros(0), np.zeros((0, 2)), np.zeros(0))

    def height(self, xy: np.ndarray) -> np.ndarray:
        """Heights (...,) m at points xy (..., 2)."""
        angle = np.asarray(xy, dtype=np.float64) @ self.wave.T + self.phase  # (..., N)
        return np.sin(angle) @ self.amplitude

    def gradient(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) slope dz/dx, dz/dy at points xy (..., 2)."""
        angle = np.asarray(xy, dtype=np.float64) @ self.wave.T + self.phase  # (..., N)
        return (np.cos(angle) * self.amplitude) @ self.wave


# Per world style: (count, wavelength range m, amplitude range m) of the long relief waves
# (grades: a * k at most about 4%) and of the terrain's short bumps.
RELIEF = {
    "urban": ((3, (150.0, 400.0), (0.3, 1.2)), (4, (6.0, 20.0), (0.05, 0.15))),
    "highway": ((3, (250.0, 600.0), (0.5, 2.0)), (4, (10.0, 40.0), (0.15, 0.4))),
    "racetrack": ((3, (200.0, 500.0), (0.3, 1.5)), (4, (10.0, 40.0), (0.15, 0.4))),
}


def make_relief(style: str, rng) -> tuple[Waves, Waves]:
    """The long relief and the terrain's short bumps of a world style."""
    (n, wavelength, amplitude), (m, bump_length, bump_amplitude) = RELIEF[style]
    return (
        Waves.random(rng, n, wavelength, amplitude),
        Waves.random(rng, m, bump_length, bump_amplitude),
    )


def gutter_drop(shape, index_fn, edges) -> np.ndarray:
    """(I, J) float32 m: how far the road surface lies below the relief, CAMBER per metre
    over the last GUTTER m before each road edge (0 in the middle of wide roads)."""
    drop = np.zeros(shape, dtype=np.float32)
    offsets = np.arange(0.0, GUTTER, 0.1)
    for edge in edges:
        points = edge.point[:, None, :] - offsets[None, :, None] * edge.outward[:, None, :]
        i, j, inside = index_fn(points)
        value = np.broadcast_to(CAMBER * (GUTTER - offsets), i.shape)
        np.maximum.at(drop, (i[inside], j[inside]), value[inside].astype(np.float32))
    return drop
