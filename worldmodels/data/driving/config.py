"""Settings of the driving-world engine: voxel grid, LiDAR, sequences, and the named presets.

Frames (all right-handed, metres):
- world: highway-env's road plane mirrored in y (highway-env's y axis points to the driver's
  right, like screen pixels; ours points left), z up; the ground has relief (terrain.py),
  around z = 0.
- ego: x forward, y left, z up; origin on the road surface under the centre of the ego's
  footprint (`EGO_ORIGIN_HEIGHT` = 0; nuScenes puts it under the rear axle), tilted with the
  road's slope there and with the body's pitch and roll (scene.py). The road surface near the
  ego is the plane z = 0, which lies inside a voxel level of every preset (levels start at
  -1 + 0.4 k or -1 + 0.8 k): the ground is one layer, not a face between two.
- sensor (LiDAR): the ego frame shifted up to the sensor, (0, 0, `sensor_height`) in ego.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from worldmodels.occ3d import PAPER_GRID, PAPER_RANGE_Z, PAPER_VOXEL_SIZE

EGO_ORIGIN_HEIGHT = 0.0  # m, ego origin above the road surface (on it, as nuScenes)
ROAD_Z_EGO = -EGO_ORIGIN_HEIGHT  # m, the road surface under the ego, in the ego frame


@dataclass(frozen=True)
class GridConfig:
    """The ego-frame voxel grid: `semantics[x, y, z]`, centred on the ego in x and y.

    size: (X, Y, Z) voxels. voxel_xy: edge in x and y (m). z_range: (bottom, top) in m.
    """

    size: tuple[int, int, int]
    voxel_xy: float
    z_range: tuple[float, float] = PAPER_RANGE_Z

    @property
    def voxel_z(self) -> float:
        return (self.z_range[1] - self.z_range[0]) / self.size[2]

    @property
    def half_extent(self) -> tuple[float, float]:
        """Half the grid's extent in x and y (m): the grid spans [-hx, hx] x [-hy, hy]."""
        return self.size[0] * self.voxel_xy / 2, self.size[1] * self.voxel_xy / 2

    @property
    def road_level(self) -> int:
        """The z level that holds the road surface under the ego (z = ROAD_Z_EGO)."""
        return int(np.floor((ROAD_Z_EGO - self.z_range[0]) / self.voxel_z))


@dataclass(frozen=True)
class LidarConfig:
    """A spinning LiDAR: `beams` rows evenly spaced from `elevation_up` down to
    `elevation_down` (degrees), `azimuths` columns over 360 degrees, returns up to
    `max_range` (m) with Gaussian range noise `noise_std` (m).

    Column order (the range image's, and `worldmodels.viz.range_image`'s): column w looks at
    azimuth phi_w = 180 - (w + 1/2) * 360 / azimuths degrees from +x towards +y, so the image
    runs behind, left, forward (the middle), right, behind, as seen from the sensor; half a
    step off the axes, so no ray runs exactly along the grid's planes.

    Dropout is structured as real returns are: a return is lost with probability
        p = dropout + dropout_range * (range / max_range)^2 + dropout_grazing * (1 - |cos i|)^8
    where i is the angle between the ray and the surface normal (grazing hits on far road
    and along walls fade; a wall seen head-on almost always returns).
    caster: "exact" (the first surface along the ray) or "voxel" (the older voxel-consistent
    rule: a ray that grazes a partly filled voxel stops in it; see caster.py).
    """

    beams: int = 32
    elevation_up: float = 10.67  # Velodyne HDL-32E (nuScenes): +10.67 .. -30.67 degrees
    elevation_down: float = -30.67
    azimuths: int = 1080
    max_range: float = 70.0
    noise_std: float = 0.02
    dropout: float = 0.01
    dropout_range: float = 0.1
    dropout_grazing: float = 0.5
    sensor_height: float = 1.84  # m above the ego origin (the road): nuScenes' HDL-32E
    caster: str = "exact"

    def __post_init__(self):
        if self.caster not in ("exact", "voxel"):
            raise ValueError(f"caster must be 'exact' or 'voxel', got {self.caster!r}")

    def elevations(self) -> np.ndarray:
        """(beams,) float64 elevation angles in radians, top beam first."""
        return np.deg2rad(np.linspace(self.elevation_up, self.elevation_down, self.beams))

    def azimuth_angles(self) -> np.ndarray:
        """(azimuths,) float64 azimuth of each column in radians from +x, counter-clockwise:
        from just under +pi (behind, seen from the left) down to just over -pi."""
        return np.pi - (np.arange(self.azimuths) + 0.5) * (2 * np.pi / self.azimuths)

    def ray_directions(self) -> np.ndarray:
        """(H, W, 3) float64 unit ray directions in the sensor frame, H = beams (rows, top
        first), W = azimuth columns: the range image's layout. Components
        below 1e-12 (cos 90 deg = 6e-17) are exactly 0, so such rays run inside a column."""
        elevation = self.elevations()[:, None]
        azimuth = self.azimuth_angles()[None, :]
        dirs = np.stack(
            [
                np.cos(elevation) * np.cos(azimuth),
                np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation) * np.ones_like(azimuth),
            ],
            axis=-1,
        )
        return np.where(np.abs(dirs) < 1e-12, 0.0, dirs)

    def sensor_to_ego(self) -> np.ndarray:
        """(4, 4) float64: the sensor frame is the ego frame lifted by `sensor_height`."""
        transform = np.eye(4)
        transform[2, 3] = self.sensor_height
        return transform


KITTI_HDL64 = LidarConfig(
    beams=64, elevation_up=2.0, elevation_down=-24.9, azimuths=2048, max_range=80.0
)


@dataclass(frozen=True)
class DatasetConfig:
    """How many sequences of which scenarios, and how they split.

    Train and val use the same scenario kinds with disjoint seeds; `heldout_scenario` appears
    only in the "heldout" split, for generalisation checks. Scenario k gets
    round(weights[k] * per_scenario) sequences per split: the default mix is urban, like
    nuScenes (streets and intersections), with highways and a racetrack as a minority.
    """

    scenarios: tuple[str, ...] = ("street", "intersection", "highway", "merge", "racetrack")
    weights: tuple[float, ...] = (2.0, 1.5, 0.5, 0.3, 0.4)
    heldout_scenario: str = "roundabout"
    train_per_scenario: int = 16
    val_per_scenario: int = 10
    heldout_sequences: int = 10
    frames: int = 32
    frame_rate: float = 2.0  # Hz, Occ3D's keyframe rate
    simulation_rate: float = 10.0  # Hz, highway-env's integration rate

    def __post_init__(self):
        if len(self.weights) != len(self.scenarios):
            raise ValueError(
                f"{len(self.weights)} weights for {len(self.scenarios)} scenarios {self.scenarios}"
            )

    def count(self, scenario: str, per_scenario: int) -> int:
        """Sequences of `scenario` in a split with `per_scenario` sequences per unit weight."""
        return round(self.weights[self.scenarios.index(scenario)] * per_scenario)


@dataclass(frozen=True)
class Preset:
    """Everything that determines the bytes of a generated dataset."""

    name: str
    grid: GridConfig
    lidar: LidarConfig
    data: DatasetConfig
    fine_cell: float  # m, column size of the world raster the LiDAR is cast against
    max_boxes: int = 128  # boxes per frame a DrivingSequences item is padded to

    @property
    def subdivision(self) -> int:
        """Fine columns per voxel edge (the fine raster nests exactly in the voxel grid)."""
        return round(self.grid.voxel_xy / self.fine_cell)

    @property
    def raster_half_extent(self) -> float:
        """Half-size (m) of the ego-centred fine raster: the LiDAR range, rounded up to whole
        voxels beyond the grid so that voxel columns stay aligned with raster blocks."""
        half_x = self.grid.half_extent[0]
        extra = np.ceil(max(self.lidar.max_range - half_x, 0.0) / self.grid.voxel_xy)
        return half_x + float(extra) * self.grid.voxel_xy

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Short hash of every setting: a dataset folder is only reused when it matches."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(f"{ENGINE_VERSION}:{text}".encode()).hexdigest()[:16]


ENGINE_VERSION = 3  # bump when the engine's output changes for the same settings

PRESETS = {
    # 64 x 64 x 16 over +-32 m at 1 m x 1 m x 0.4 m: the CPU size chapters 3-5 train on, with
    # Occ3D's 0.4 m levels (0.8 m levels let the ground's camber, kerbs and relief hide inside
    # one level, so copying the last frame was easier than on Occ3D).
    "debug": Preset(
        name="debug",
        grid=GridConfig(size=(64, 64, 16), voxel_xy=1.0),
        lidar=LidarConfig(azimuths=360, max_range=50.0),
        data=DatasetConfig(),
        fine_cell=0.25,
    ),
    # 100 x 100 x 8 over Occ3D's +-40 m at 0.8 m: the paper's area at a CPU-friendly size.
    "small": Preset(
        name="small",
        grid=GridConfig(size=(100, 100, 8), voxel_xy=0.8),
        lidar=LidarConfig(azimuths=720, max_range=60.0),
        data=DatasetConfig(train_per_scenario=40, val_per_scenario=10, heldout_sequences=20),
        fine_cell=0.2,
    ),
    # Occ3D-nuScenes: 200 x 200 x 16 over +-40 m x [-1, 5.4] m at 0.4 m; HDL-32E-like LiDAR.
    "paper": Preset(
        name="paper",
        grid=GridConfig(size=PAPER_GRID, voxel_xy=PAPER_VOXEL_SIZE),
        lidar=LidarConfig(azimuths=1080, max_range=70.0),
        data=DatasetConfig(
            train_per_scenario=60, val_per_scenario=10, heldout_sequences=40, frames=40
        ),
        fine_cell=0.2,
        max_boxes=192,
    ),
}


def get_preset(preset: str | Preset) -> Preset:
    """Look a preset up by name (or pass a Preset through); unknown names raise ValueError."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown driving preset {preset!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[preset]
