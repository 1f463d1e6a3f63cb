"""Loaders for the real driving formats, for readers who have the datasets.

| format | file | content |
|---|---|---|
| Occ3D-nuScenes | `labels.npz` | `semantics`, `mask_lidar`, `mask_camera`: (200, 200, 16) uint8 |
| KITTI velodyne | `*.bin` | N x 4 float32: x, y, z (m), reflectance (0-1) |
| nuScenes LiDAR | `*.pcd.bin` | N x 5 float32: x, y, z (m), intensity (0-255), ring index |
| Ouster street scans | `*.npz` | the real scans shipped in `worldmodels/data/real_lidar/` |
| KITTI odometry poses | `poses.txt` | one 3 x 4 row-major matrix per line |

Every loader checks what it reads (size, keys, dtype, shape, value range) and raises
FileNotFoundError / ValueError naming the file and what was expected. The `save_*`
functions write the same formats (for tests, and for exporting generated data).

Frames: KITTI velodyne and the Ouster scans use x forward, y left, z up (metres, origin
at the sensor). nuScenes' LIDAR_TOP frame is x RIGHT, y FORWARD, z up; pass
`forward_left_up=True` to rotate it into x forward, y left.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from einops import rearrange

from worldmodels.occ3d import FREE, PAPER_GRID

REAL_LIDAR_DIR = Path(__file__).resolve().parent / "real_lidar"
# Short names of the shipped Ouster scans (see real_lidar/README.md).
REAL_LIDAR_FILES = {
    "os1-128": "OS-1-128_v2.3.0_1024x10_lb_n3.npz",  # 128 beams x 1024, 3 frames, ~107k pts
    "os1-32": "OS-1-32-G_v2.1.1_1024x10.npz",  # 32 beams x 1024, 1 frame, ~27k pts
    "os0-8": "osf_fw_3.2_10scans.npz",  # 8 beams x 2048, 10 frames, ~6k pts
}
FORWARD_LEFT_UP = "x forward, y left, z up"


# ----------------------------------------------------------------------------------------
# Shared checks
# ----------------------------------------------------------------------------------------


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def _open_npz(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from error


def _member(archive, path: Path, key: str) -> np.ndarray:
    """archive[key]: a member is read (and decompressed) only now, so damage inside it
    surfaces here, not at np.load; name the file and the member."""
    try:
        return archive[key]
    except Exception as error:  # zipfile.BadZipFile (CRC), zlib.error, ValueError, EOFError
        raise ValueError(
            f"{path}: member '{key}' is corrupt ({type(error).__name__}: {error})"
        ) from error


def _require(archive, path: Path, key: str, dtypes: tuple, shape: tuple | None) -> np.ndarray:
    """archive[key] with a dtype in `dtypes` and the given shape (None entries = any)."""
    if key not in archive.files:
        raise ValueError(f"{path}: missing key '{key}' (keys present: {sorted(archive.files)})")
    array = _member(archive, path, key)
    if array.dtype not in dtypes:
        names = " or ".join(str(np.dtype(d)) for d in dtypes)
        raise ValueError(f"{path}: '{key}' has dtype {array.dtype}, expected {names}")
    if shape is not None and (
        array.ndim != len(shape)
        or any(
            want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
        )
    ):
        expected = tuple("N" if s is None else s for s in shape)
        raise ValueError(f"{path}: '{key}' has shape {array.shape}, expected {expected}")
    return array


def _write_atomic(path, write) -> Path:
    """Call write(temp_path) and rename the result into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        write(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------------------
# Occ3D-nuScenes labels.npz
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occ3DFrame:
    """One Occ3D-nuScenes frame, in the ego frame (x forward, y left, z up).

    semantics: (X, Y, Z) uint8 class ids 0-17 (17 = free), `occ3d.CLASS_NAMES` order;
        voxel [i, j, k] covers x in [-40 + 0.4 i, -40 + 0.4 (i + 1)) m, likewise y, and
        z in [-1 + 0.4 k, ...) m for the paper grid.
    mask_lidar: (X, Y, Z) bool, voxel observed by LiDAR rays.
    mask_camera: (X, Y, Z) bool, voxel visible in a camera: Occ3D's evaluation mask.
    """

    semantics: np.ndarray
    mask_lidar: np.ndarray
    mask_camera: np.ndarray


def load_occ3d_labels(path, grid: tuple[int, int, int] | None = PAPER_GRID) -> Occ3DFrame:
    """Read an Occ3D-nuScenes `labels.npz`; grid: the expected (X, Y, Z), None for any."""
    path = _existing(path)
    expected = grid if grid is not None else (None, None, None)
    with _open_npz(path) as archive:
        semantics = _require(archive, path, "semantics", (np.uint8,), expected)
        grid_shape = semantics.shape
        masks = {
            key: _require(archive, path, key, (np.uint8, np.bool_), grid_shape)
            for key in ("mask_lidar", "mask_camera")
        }
    if semantics.max(initial=0) > FREE:
        raise ValueError(
            f"{path}: 'semantics' holds class id {semantics.max()}, expected ids 0-{FREE}"
        )
    for key, mask in masks.items():
        if mask.dtype == np.uint8 and mask.max(initial=0) > 1:
            raise ValueError(f"{path}: '{key}' holds {mask.max()}, expected 0/1 values")
    return Occ3DFrame(
        semantics=semantics,
        mask_lidar=masks["mask_lidar"].astype(bool),
        mask_camera=masks["mask_camera"].astype(bool),
    )


def save_occ3d_labels(path, semantics, mask_lidar, mask_camera) -> Path:
    """Write a `labels.npz` exactly as Occ3D-nuScenes ships it (compressed, uint8 arrays)."""
    arrays = {
        "semantics": np.asarray(semantics).astype(np.uint8),
        "mask_lidar": np.asarray(mask_lidar).astype(np.uint8),
        "mask_camera": np.asarray(mask_camera).astype(np.uint8),
    }
    shapes = {key: value.shape for key, value in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays["semantics"].ndim != 3:
        raise ValueError(f"semantics and masks must share one (X, Y, Z) shape, got {shapes}")

    def write(temp_name):
        with open(temp_name, "wb") as file:  # a file object: savez adds no ".npz" suffix
            np.savez_compressed(file, **arrays)

    return _write_atomic(path, write)


# ----------------------------------------------------------------------------------------
# LiDAR sweeps: KITTI .bin, nuScenes .pcd.bin, Ouster .npz
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LidarScan:
    """One LiDAR sweep.

    points: (P, 3) float32, metres, in the sensor frame described by `frame`; the sensor
        origin is (0, 0, 0), so ray directions are points / |points| and depths |points|.
    intensity: (P,) float32; KITTI reflectance in [0, 1], nuScenes intensity 0-255,
        Ouster calibrated reflectivity 0-255.
    ring: (P,) int64 beam index (nuScenes: laser ring 0-31; Ouster: 0 = top beam),
        or None where the format has none (KITTI).
    pose: (4, 4) float64 sensor-to-world transform (world_p = pose @ p); identity where
        the file stores none.
    frame: the axes of `points`, e.g. "x forward, y left, z up".
    """

    points: np.ndarray
    intensity: np.ndarray
    ring: np.ndarray | None
    pose: np.ndarray
    frame: str = FORWARD_LEFT_UP

    def __len__(self) -> int:
        return len(self.points)


def _read_float_rows(path, columns: int, layout: str) -> np.ndarray:
    """A headerless binary file of float32 rows: (N, columns)."""
    path = _existing(path)
    row_bytes = 4 * columns
    size = path.stat().st_size
    if size % row_bytes:
        raise ValueError(
            f"{path}: {size} bytes is not a multiple of {row_bytes}; expected N x {columns} "
            f"float32 ({layout})"
        )
    rows = rearrange(np.fromfile(path, dtype="<f4"), "(n c) -> n c", c=columns)  # (N, C)
    if not np.isfinite(rows).all():
        raise ValueError(f"{path}: holds NaN or infinite values; expected finite float32")
    return rows


def load_kitti_bin(path) -> LidarScan:
    """KITTI velodyne `.bin`: N x 4 float32 (x, y, z metres, reflectance 0-1), Velodyne
    HDL-64E frame x forward, y left, z up. No ring index, no pose (identity)."""
    rows = _read_float_rows(path, 4, "x, y, z, reflectance")
    return LidarScan(
        points=np.ascontiguousarray(rows[:, :3]),
        intensity=np.ascontiguousarray(rows[:, 3]),
        ring=None,
        pose=np.eye(4),
    )


def save_kitti_bin(path, points, reflectance) -> Path:
    """Write (P, 3) points and (P,) reflectance as a KITTI velodyne `.bin`."""
    rows = np.column_stack([np.asarray(points, np.float32), np.asarray(reflectance, np.float32)])
    if rows.shape[1] != 4:
        raise ValueError(f"expected (P, 3) points and (P,) reflectance, got rows {rows.shape}")
    return _write_atomic(path, lambda name: rows.astype("<f4").tofile(name))


def load_nuscenes_pcd_bin(path, forward_left_up: bool = False) -> LidarScan:
    """nuScenes `.pcd.bin`: N x 5 float32 (x, y, z metres, intensity 0-255, ring index).

    nuScenes' LIDAR_TOP frame is x right, y forward, z up, returned as stored unless
    forward_left_up: then rotated by +90 deg about z into x forward, y left, z up
    ((x', y') = (y, -x)). No pose (identity; nuScenes keeps poses in its tables).
    """
    rows = _read_float_rows(path, 5, "x, y, z, intensity, ring index")
    ring = rows[:, 4]
    if (ring < 0).any() or (ring != np.round(ring)).any():
        raise ValueError(f"{path}: column 5 must hold whole ring indices >= 0")
    points = np.ascontiguousarray(rows[:, :3])
    frame = "x right, y forward, z up (nuScenes LIDAR_TOP)"
    if forward_left_up:
        points = np.column_stack([points[:, 1], -points[:, 0], points[:, 2]])
        frame = FORWARD_LEFT_UP
    return LidarScan(
        points=points.astype(np.float32),
        intensity=np.ascontiguousarray(rows[:, 3]),
        ring=ring.astype(np.int64),
        pose=np.eye(4),
        frame=frame,
    )


def save_nuscenes_pcd_bin(path, points, intensity, ring) -> Path:
    """Write (P, 3) points, (P,) intensity and (P,) ring index as a nuScenes `.pcd.bin`."""
    columns = [np.asarray(points, np.float32), np.asarray(intensity, np.float32)]
    rows = np.column_stack([*columns, np.asarray(ring, np.float32)])
    if rows.shape[1] != 5:
        raise ValueError(f"expected (P, 3) points, (P,) intensity and ring, got rows {rows.shape}")
    return _write_atomic(path, lambda name: rows.astype("<f4").tofile(name))


@dataclass(frozen=True)
class OusterRecording:
    """Consecutive sweeps of one Ouster sensor (10 Hz), each a `LidarScan` in the sensor
    frame (x forward, y left, z up) with ring (0 = top beam) and reflectivity as intensity.

    sensor: model name, e.g. "OS-1-128"; beams x columns: the sensor's native range image
    size (use them with `viz.driving.range_image(..., rings=scan.ring)`).
    """

    sensor: str
    beams: int
    columns: int
    scans: tuple[LidarScan, ...]

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> LidarScan:
        return self.scans[index]


def load_ouster_npz(path) -> OusterRecording:
    """Read one of the real Ouster scan files (format in real_lidar/README.md)."""
    path = _existing(path)
    with _open_npz(path) as archive:
        header = {
            key: _require(archive, path, key, (np.int64, np.int32), ())
            for key in ("n_frames", "beams", "columns")
        }
        sensor = _member(archive, path, "sensor") if "sensor" in archive.files else None
        if sensor is None or sensor.dtype.kind != "U":
            raise ValueError(f"{path}: expected a string 'sensor' entry (the sensor model)")
        sensor = str(sensor)
        beams, columns = int(header["beams"]), int(header["columns"])
        scans = []
        for index in range(int(header["n_frames"])):
            points = _require(archive, path, f"points_{index}", (np.float32,), (None, 3))
            count = len(points)
            ring = _require(archive, path, f"ring_{index}", (np.uint8,), (count,))
            reflectivity = _require(archive, path, f"reflectivity_{index}", (np.float32,), (count,))
            pose = _require(archive, path, f"pose_{index}", (np.float64,), (4, 4))
            if ring.max(initial=0) >= beams:
                raise ValueError(f"{path}: ring_{index} reaches {ring.max()}, beams = {beams}")
            scans.append(LidarScan(points, reflectivity, ring.astype(np.int64), pose))
    return OusterRecording(sensor, beams, columns, tuple(scans))


def load_real_lidar(name: str = "os1-32") -> OusterRecording:
    """One of the shipped real Ouster recordings by short name: "os1-128" (3 frames,
    ~107k points each), "os1-32" (1 frame, ~27k) or "os0-8" (10 frames, ~6k)."""
    if name not in REAL_LIDAR_FILES:
        raise ValueError(
            f"unknown real LiDAR recording {name!r}; choose from {list(REAL_LIDAR_FILES)}"
        )
    return load_ouster_npz(REAL_LIDAR_DIR / REAL_LIDAR_FILES[name])


def load_kitti_poses(path) -> np.ndarray:
    """KITTI odometry poses: one 3 x 4 row-major matrix (12 numbers) per line.

    Returns (T, 4, 4) float64 transforms of frame t into the first frame's coordinates
    (world_p = pose @ p), with the [0, 0, 0, 1] row added.

    These are the poses of the LEFT CAMERA (cam0: x right, y down, z forward), not of the
    velodyne. To place velodyne points, first take them into the camera frame with `Tr`
    from the sequence's calib.txt (velodyne -> cam0, 3 x 4): world_p = pose @ Tr @ p_velo,
    or, in the velodyne's own axes, inv(Tr) @ pose @ Tr (Tr padded to 4 x 4).
    """
    path = _existing(path)
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not a table of numbers ({error})") from error
    if values.shape[1] != 12 or len(values) == 0:
        raise ValueError(f"{path}: rows have {values.shape[1]} numbers, expected 12 (3 x 4)")
    poses = np.tile(np.eye(4), (len(values), 1, 1))
    poses[:, :3, :] = rearrange(values, "t (r c) -> t r c", r=3, c=4)  # (T, 3, 4)
    return poses
