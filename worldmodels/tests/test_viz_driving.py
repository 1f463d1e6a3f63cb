"""Driving pictures: palette mapping, orientation, range-image geometry, GIF frames."""

import math
import time

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from worldmodels.occ3d import CLASS_ID, FREE, PALETTE  # noqa: E402
from worldmodels.viz.driving import (  # noqa: E402
    bev_classes,
    bev_semantic_image,
    plot_bev,
    plot_points_bev,
    plot_range_image,
    plot_voxels_3d,
    range_image,
    sequence_gif,
    surface_voxels,
    trajectory_in_frame,
)

CAR, ROAD, SIDEWALK = CLASS_ID["car"], CLASS_ID["driveable_surface"], CLASS_ID["sidewalk"]
MANMADE, VEGETATION = CLASS_ID["manmade"], CLASS_ID["vegetation"]


def hand_grid() -> np.ndarray:
    """X=3, Y=2, Z=3 grid with four columns of known top classes."""
    grid = np.full((3, 2, 3), FREE, dtype=np.uint8)
    grid[2, 0, 0], grid[2, 0, 1] = ROAD, CAR  # front-right column: car above road
    grid[0, 0, 0], grid[0, 0, 2] = SIDEWALK, VEGETATION  # back-right: vegetation on top
    grid[1, 1, 0] = MANMADE  # middle-left: only manmade, at the bottom
    return grid  # column (0, 1), (1, 0), (2, 1) stay free


def test_bev_top_class_and_orientation():
    grid = hand_grid()
    top = bev_classes(grid)
    assert top.tolist() == [[VEGETATION, FREE], [FREE, MANMADE], [CAR, FREE]]
    image = bev_semantic_image(grid)
    assert image.shape == (3, 2, 3) and image.dtype == np.uint8
    # x forward = up: row 0 is x = 2; y left = left: column 0 is y = 1.
    assert tuple(image[0, 1]) == PALETTE[CAR]  # (x=2, y=0)
    assert tuple(image[0, 0]) == (255, 255, 255)  # (x=2, y=1) free
    assert tuple(image[1, 0]) == PALETTE[MANMADE]  # (x=1, y=1)
    assert tuple(image[2, 1]) == PALETTE[VEGETATION]  # (x=0, y=0)
    assert tuple(image[2, 0]) == (255, 255, 255)  # (x=0, y=1) free


def test_bev_accepts_torch_and_rejects_bad_grids():
    grid = hand_grid()
    assert np.array_equal(bev_semantic_image(torch.from_numpy(grid)), bev_semantic_image(grid))
    with pytest.raises(ValueError, match="integer class ids"):
        bev_semantic_image(grid.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[0, 17\]"):
        bev_semantic_image(np.full((2, 2, 2), 18))
    with pytest.raises(ValueError, match="3 dims"):
        bev_semantic_image(grid[..., 0])


def test_plot_bev_legend_lists_present_or_all_classes():
    fig, ax = plt.subplots()
    plot_bev(ax, hand_grid(), extent=(-1.2, 1.2, -0.8, 0.8))
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == [f"{c} {n}" for c, n in [(4, "car"), (15, "manmade"), (16, "vegetation")]]
    left, right = ax.get_xlim()
    assert left > right  # +y on the left
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_bev(ax, hand_grid(), legend="all")
    assert len(ax.get_legend().get_texts()) == 17  # every occupied class, free excluded
    plt.close(fig)


def test_surface_voxels_skip_hidden_interior():
    grid = np.full((5, 5, 5), FREE)
    grid[1:4, 1:4, 1:4] = CAR  # solid 3x3x3 block: only its centre is hidden
    surface = surface_voxels(grid)
    assert len(surface) == 26
    assert [2, 2, 2] not in surface.tolist()
    grid[:] = CAR  # a full grid: everything on the boundary is visible
    assert len(surface_voxels(grid)) == 5**3 - 3**3


def test_plot_voxels_3d_paper_grid_is_fast():
    grid = np.full((200, 200, 16), FREE, dtype=np.uint8)
    grid[:, :, 2] = ROAD
    grid[100:180, 20:40, 3:12] = MANMADE
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    start = time.perf_counter()
    artist = plot_voxels_3d(ax, grid, voxel_size=0.4, origin=(-40, -40, -1), max_points=20_000)
    fig.canvas.draw()
    assert time.perf_counter() - start < 10.0
    assert len(artist.get_offsets()) == 20_000  # thinned to max_points
    plt.close(fig)


def test_plot_points_bev_colours_by_label_and_orients():
    points = np.array([[10.0, 5.0, 0.0], [-3.0, -2.0, 1.0]], dtype=np.float32)
    fig, ax = plt.subplots()
    artist = plot_points_bev(ax, points, labels=np.array([CAR, VEGETATION]), ego=False)
    assert np.allclose(artist.get_facecolors()[:, :3], np.array([PALETTE[CAR], PALETTE[16]]) / 255)
    assert np.allclose(artist.get_offsets(), [[5.0, 10.0], [-2.0, -3.0]])  # (y, x)
    left, right = ax.get_xlim()
    assert left > right
    with pytest.raises(ValueError, match="labels has 1 entries for 2 points"):
        plot_points_bev(ax, points, labels=np.array([CAR]))
    plt.close(fig)


def test_range_image_places_points_at_row_and_column():
    def direction(azimuth_deg, elevation_deg, depth):
        a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
        return [depth * math.cos(e) * math.cos(a), depth * math.cos(e) * math.sin(a),
                depth * math.sin(e)]  # fmt: skip

    points = np.array(
        [
            direction(0.5, 0.5, 10.0),  # forward, just above the horizon
            direction(0.5, 0.5, 4.0),  # same pixel, nearer: must win
            direction(90.5, 5.5, 7.0),  # left, 5.5 deg up
            direction(-90.5, -9.5, 3.0),  # right, near the bottom of the fov
            direction(0.5, 15.0, 9.0),  # above the fov: dropped
        ]
    )
    # 20 beams over [-10, 10] deg -> 1 deg rows; 360 columns -> 1 deg columns.
    depth = range_image(points, beams=20, columns=360, fov_up=10.0, fov_down=-10.0)
    assert depth.shape == (20, 360) and depth.dtype == np.float32
    # row = floor((10 - elevation) / 20 * 20); column = floor((1 - azimuth/180) / 2 * 360)
    assert depth[9, 179] == pytest.approx(4.0)  # elevation 0.5 -> row 9; azimuth 0.5 -> 179
    assert depth[4, 89] == pytest.approx(7.0)  # left is left of centre
    assert depth[19, 270] == pytest.approx(3.0)
    assert np.count_nonzero(depth) == 3
    rings = range_image(points[:1], beams=20, columns=360, rings=np.array([3]))
    assert rings[3, 179] == pytest.approx(10.0)
    fig, ax = plt.subplots()
    plot_range_image(ax, depth, colorbar=True)
    plt.close(fig)
    with pytest.raises(ValueError, match="fov_up and fov_down"):
        range_image(points, beams=20, columns=360)


def test_trajectory_in_frame_turns_into_ego_frame():
    quarter_turn = np.array([[0.0, -1, 0, 0], [1, 0, 0, 5], [0, 0, 1, 0], [0, 0, 0, 1]])
    poses = np.stack([np.eye(4), quarter_turn])  # ego 1 stands at world (0, 5), facing +y
    track = trajectory_in_frame(poses, 1)
    assert np.allclose(track, [[-5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # ego 0 is straight behind


def test_sequence_gif_writes_one_frame_per_step(tmp_path):
    steps = 3
    grids = np.stack([hand_grid()] * steps)
    poses = np.tile(np.eye(4), (steps, 1, 1))
    poses[:, 0, 3] = [0.0, 0.4, 0.8]
    path = sequence_gif(grids, poses, tmp_path / "out" / "drive.gif", fps=2,
                        extent=(-1.2, 1.2, -0.8, 0.8), dpi=40)  # fmt: skip
    with Image.open(path) as gif:
        assert gif.n_frames == steps
        assert gif.info["duration"] == 500
    assert sorted(p.name for p in path.parent.iterdir()) == ["drive.gif"]  # no temp left
    with pytest.raises(ValueError, match=r"ego_poses must be \(3, 4, 4\)"):
        sequence_gif(grids, poses[:2], tmp_path / "bad.gif")
