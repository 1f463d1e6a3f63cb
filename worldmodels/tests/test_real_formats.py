"""Real-format loaders, tested on files written byte for byte in each format."""

import numpy as np
import pytest

from worldmodels.data.real_formats import (
    REAL_LIDAR_DIR,
    REAL_LIDAR_FILES,
    load_kitti_bin,
    load_kitti_poses,
    load_nuscenes_pcd_bin,
    load_occ3d_labels,
    load_ouster_npz,
    load_real_lidar,
    save_kitti_bin,
    save_nuscenes_pcd_bin,
    save_occ3d_labels,
)

# ---------------------------------------------------------------- Occ3D-nuScenes labels.npz


def occ3d_arrays(shape=(200, 200, 16)):
    rng = np.random.default_rng(0)
    return {
        "semantics": rng.integers(0, 18, shape, dtype=np.uint8),
        "mask_lidar": rng.integers(0, 2, shape, dtype=np.uint8),
        "mask_camera": rng.integers(0, 2, shape, dtype=np.uint8),
    }


def test_occ3d_labels_load_the_exact_format(tmp_path):
    arrays = occ3d_arrays()
    np.savez_compressed(tmp_path / "labels.npz", **arrays)  # as Occ3D ships it
    frame = load_occ3d_labels(tmp_path / "labels.npz")
    assert frame.semantics.dtype == np.uint8 and frame.semantics.shape == (200, 200, 16)
    assert np.array_equal(frame.semantics, arrays["semantics"])
    assert frame.mask_camera.dtype == np.bool_
    assert np.array_equal(frame.mask_camera, arrays["mask_camera"] == 1)
    assert np.array_equal(frame.mask_lidar, arrays["mask_lidar"] == 1)


def test_occ3d_save_round_trip_and_other_grids(tmp_path):
    arrays = occ3d_arrays((8, 6, 4))
    path = save_occ3d_labels(tmp_path / "scene" / "labels.npz", **arrays)
    with np.load(path) as archive:
        assert sorted(archive.files) == ["mask_camera", "mask_lidar", "semantics"]
        assert all(archive[key].dtype == np.uint8 for key in archive.files)
    frame = load_occ3d_labels(path, grid=None)
    assert np.array_equal(frame.semantics, arrays["semantics"])
    with pytest.raises(ValueError, match=r"expected \(200, 200, 16\)"):
        load_occ3d_labels(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("mask_camera"), "missing key 'mask_camera'"),
        (lambda a: a.update(semantics=a["semantics"].astype(np.int64)), "expected uint8"),
        (lambda a: a.update(mask_lidar=a["mask_lidar"][:, :, :8]), "shape"),
        (lambda a: a["semantics"].__setitem__((0, 0, 0), 18), "class id 18"),
        (lambda a: a["mask_camera"].__setitem__((0, 0, 0), 2), "0/1"),
    ],
    ids=["missing-key", "dtype", "shape", "class-range", "mask-values"],
)
def test_occ3d_bad_files_name_the_file_and_the_expectation(tmp_path, change, message):
    arrays = occ3d_arrays()
    change(arrays)
    path = tmp_path / "labels.npz"
    np.savez_compressed(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        load_occ3d_labels(path)
    assert str(path) in str(error.value)


def test_occ3d_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_occ3d_labels(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz: not a readable .npz"):
        load_occ3d_labels(tmp_path / "text.npz")


# ---------------------------------------------------------------- KITTI and nuScenes .bin


def test_kitti_bin_reads_x_y_z_reflectance(tmp_path):
    rows = np.array([[1.0, 2.0, 3.0, 0.25], [-4.0, 5.5, -1.0, 1.0]], dtype=np.float32)
    rows.tofile(tmp_path / "000000.bin")  # KITTI: raw little-endian float32, no header
    scan = load_kitti_bin(tmp_path / "000000.bin")
    assert scan.points.dtype == np.float32 and scan.points.shape == (2, 3)
    assert np.array_equal(scan.points, rows[:, :3])
    assert np.array_equal(scan.intensity, rows[:, 3])
    assert scan.ring is None and np.array_equal(scan.pose, np.eye(4))
    again = load_kitti_bin(save_kitti_bin(tmp_path / "copy.bin", scan.points, scan.intensity))
    assert np.array_equal(again.points, scan.points)


def test_kitti_bin_with_a_partial_row_is_rejected(tmp_path):
    np.zeros(9, dtype=np.float32).tofile(tmp_path / "cut.bin")  # 36 bytes, not 16 k
    with pytest.raises(ValueError, match=r"cut.bin: 36 bytes is not a multiple of 16"):
        load_kitti_bin(tmp_path / "cut.bin")
    with pytest.raises(FileNotFoundError):
        load_kitti_bin(tmp_path / "absent.bin")


def test_nuscenes_pcd_bin_reads_five_columns_and_rotates(tmp_path):
    rows = np.array([[1.0, 0.0, 0.5, 12.0, 3.0], [0.0, 2.0, -1.0, 255.0, 31.0]], np.float32)
    rows.tofile(tmp_path / "sweep.pcd.bin")
    scan = load_nuscenes_pcd_bin(tmp_path / "sweep.pcd.bin")
    assert np.array_equal(scan.points, rows[:, :3]) and "x right" in scan.frame
    assert scan.ring.tolist() == [3, 31] and scan.ring.dtype == np.int64
    assert np.array_equal(scan.intensity, [12.0, 255.0])
    turned = load_nuscenes_pcd_bin(tmp_path / "sweep.pcd.bin", forward_left_up=True)
    # (1, 0) is to the right in nuScenes -> y = -1; (0, 2) is ahead -> x = 2.
    assert np.allclose(turned.points, [[0.0, -1.0, 0.5], [2.0, 0.0, -1.0]])
    path = save_nuscenes_pcd_bin(tmp_path / "copy.pcd.bin", scan.points, scan.intensity, scan.ring)
    assert path.read_bytes() == (tmp_path / "sweep.pcd.bin").read_bytes()


def test_nuscenes_pcd_bin_bad_files(tmp_path):
    np.zeros((3, 4), np.float32).tofile(tmp_path / "kitti_like.bin")  # 48 bytes
    with pytest.raises(ValueError, match="48 bytes is not a multiple of 20"):
        load_nuscenes_pcd_bin(tmp_path / "kitti_like.bin")
    np.array([[0, 0, 0, 1, 2.5]], np.float32).tofile(tmp_path / "ring.bin")
    with pytest.raises(ValueError, match="ring.bin: column 5 must hold whole ring"):
        load_nuscenes_pcd_bin(tmp_path / "ring.bin")


# ---------------------------------------------------------------- Ouster scans, KITTI poses


def ouster_arrays(points=5):
    rng = np.random.default_rng(1)
    return {
        "n_frames": np.int64(1),
        "beams": np.int64(8),
        "columns": np.int64(16),
        "sensor": np.str_("OS-0-8"),
        "points_0": rng.normal(size=(points, 3)).astype(np.float32),
        "ring_0": rng.integers(0, 8, points, dtype=np.uint8),
        "reflectivity_0": rng.uniform(0, 255, points).astype(np.float32),
        "pose_0": np.eye(4),
    }


def test_ouster_npz_synthetic(tmp_path):
    arrays = ouster_arrays()
    np.savez_compressed(tmp_path / "scan.npz", **arrays)
    recording = load_ouster_npz(tmp_path / "scan.npz")
    assert (recording.sensor, recording.beams, recording.columns, len(recording)) == (
        "OS-0-8", 8, 16, 1)  # fmt: skip
    scan = recording[0]
    assert np.array_equal(scan.points, arrays["points_0"])
    assert np.array_equal(scan.ring, arrays["ring_0"]) and scan.ring.dtype == np.int64
    assert np.array_equal(scan.intensity, arrays["reflectivity_0"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("ring_0"), "missing key 'ring_0'"),
        (lambda a: a.update(points_0=np.zeros((5, 4), np.float32)), r"expected \('N', 3\)"),
        (lambda a: a.update(ring_0=np.zeros(4, np.uint8)), r"expected \(5,\)"),
        (lambda a: a.update(points_0=np.zeros((5, 3))), "expected float32"),
        (lambda a: a.update(ring_0=np.full(5, 8, np.uint8)), "beams = 8"),
    ],
    ids=["missing-key", "points-shape", "ring-length", "points-dtype", "ring-range"],
)
def test_ouster_npz_bad_files(tmp_path, change, message):
    arrays = ouster_arrays()
    change(arrays)
    np.savez_compressed(tmp_path / "scan.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_ouster_npz(tmp_path / "scan.npz")


def test_shipped_real_scans_load_with_their_license():
    assert (REAL_LIDAR_DIR / "LICENSE-ouster-sdk.txt").is_file()
    assert "BSD 3-Clause" in (REAL_LIDAR_DIR / "LICENSE-ouster-sdk.txt").read_text()
    for name, frames, beams in [("os1-128", 3, 128), ("os1-32", 1, 32), ("os0-8", 10, 8)]:
        recording = load_real_lidar(name)
        assert len(recording) == frames and recording.beams == beams
        for scan in recording.scans:
            assert scan.points.dtype == np.float32 and scan.points.shape[1] == 3
            assert scan.ring.max() < beams and len(scan.intensity) == len(scan)
            depth = np.linalg.norm(scan.points, axis=1)
            assert depth.min() > 0.3  # only real returns (range > 0) were kept
            # A street scan: most returns lie within 40 m and within a few metres of
            # the sensor's height.
            assert np.median(depth) < 40 and np.median(np.abs(scan.points[:, 2])) < 5
    assert set(REAL_LIDAR_FILES) == {"os1-128", "os1-32", "os0-8"}
    with pytest.raises(ValueError, match="unknown real LiDAR recording"):
        load_real_lidar("hdl-64")


def test_kitti_poses(tmp_path):
    poses = load_kitti_poses(REAL_LIDAR_DIR / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt")
    assert poses.shape == (3, 4, 4) and poses.dtype == np.float64
    assert np.allclose(poses[0], np.eye(4))
    assert np.allclose(poses[:, 3], [0, 0, 0, 1])
    rotations = poses[:, :3, :3]
    assert np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-6)
    # 10 Hz frames of a slow drive: about 0.25 m per frame along x.
    assert 0.2 < poses[1, 0, 3] < 0.3
    (tmp_path / "bad.txt").write_text("1 0 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(ValueError, match="bad.txt: rows have 11 numbers, expected 12"):
        load_kitti_poses(tmp_path / "bad.txt")
