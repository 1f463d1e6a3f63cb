"""Frame grids and GIFs: shapes, pixel placement, value ranges, GIFs read back with Pillow."""

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from worldmodels.viz.frames import frame_grid, save_gif, show_frames, side_by_side_gif

matplotlib.use("Agg")


def ramp_clip(steps=3, height=4, width=5, channels=3):
    """(T, C, H, W) float32 whose frame t is uniformly t / 10 (distinct, known values)."""
    values = torch.arange(steps, dtype=torch.float32).view(steps, 1, 1, 1) / 10
    return values.expand(steps, channels, height, width).clone()


def gif_frames(path):
    with Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append((np.asarray(gif.convert("RGB")), gif.info.get("duration")))
        return frames


def test_frame_grid_layout():
    clip = ramp_clip()
    grid = frame_grid([clip, 1 - clip], pad=2, pad_value=1.0)
    # (R (H + pad) + pad, T (W + pad) + pad, 3) = (2 * 6 + 2, 3 * 7 + 2, 3)
    assert grid.shape == (14, 23, 3) and grid.dtype == np.float32
    assert 0.0 <= grid.min() and grid.max() <= 1.0
    # row 1, frame 2 starts at (pad + 1 * (H + pad), pad + 2 * (W + pad)) = (8, 16)
    np.testing.assert_allclose(grid[8:12, 16:21], 0.8, atol=1 / 255)
    np.testing.assert_allclose(grid[2:6, 9:14], 0.1, atol=1 / 255)
    assert (grid[:2] == 1.0).all() and (grid[:, 7:9] == 1.0).all()  # separators


def test_frame_grid_accepts_uint8_grey_numpy_and_short_rows():
    clip = ramp_clip()
    as_uint8 = (clip.numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(frame_grid([clip]), frame_grid([as_uint8]))
    grey = frame_grid([clip[:, :1]])
    np.testing.assert_array_equal(grey, frame_grid([clip]))  # C = 1 repeated to RGB
    short = frame_grid([clip, clip[:1]], pad=1, pad_value=0.5)
    assert short.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert (short[6:10, 7:] == 0.5).all()  # missing frames of the short row stay blank
    clipped = frame_grid([clip * 4 - 1])  # values outside [0, 1] are clipped
    assert clipped.min() == 0.0 and clipped.max() == 1.0


def test_frame_grid_errors():
    with pytest.raises(ValueError, match="share the frame size"):
        frame_grid([ramp_clip(height=4), ramp_clip(height=6)])
    with pytest.raises(ValueError, match=r"\(T, C, H, W\) with C = 1 or 3"):
        frame_grid([torch.zeros(2, 4, 4)])
    with pytest.raises(ValueError, match="at least one row"):
        frame_grid([])


def test_show_frames_labels_rows():
    ax = show_frames([ramp_clip(), ramp_clip()], labels=["original", "reconstruction"])
    assert [label.get_text() for label in ax.get_yticklabels()] == ["original", "reconstruction"]
    assert ax.get_images()[0].get_array().shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    with pytest.raises(ValueError, match="got 1 labels for 2 rows"):
        show_frames([ramp_clip(), ramp_clip()], labels=["one"])


def test_save_gif_reads_back(tmp_path):
    clip = ramp_clip(steps=4, height=6, width=8)
    path = save_gif(clip, tmp_path / "sub" / "clip.gif", fps=5, scale=3)
    frames = gif_frames(path)
    assert len(frames) == 4
    for t, (image, duration) in enumerate(frames):
        assert image.shape == (18, 24, 3)
        assert duration == 200  # ms = 1000 / fps
        assert abs(int(image[9, 12, 0]) - round(255 * t / 10)) <= 2
    assert [p.name for p in path.parent.iterdir()] == ["clip.gif"]  # no temporary file left


def test_save_gif_from_list_of_images(tmp_path):
    images = [np.full((4, 4, 3), 40 * t, dtype=np.uint8) for t in range(3)]
    frames = gif_frames(save_gif(images, tmp_path / "list.gif"))
    assert [int(image[0, 0, 1]) for image, _ in frames] == [0, 40, 80]
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "empty.gif")


def test_side_by_side_gif(tmp_path):
    real = ramp_clip(steps=3, height=4, width=5)
    generated = 1 - real
    frames = gif_frames(side_by_side_gif(real, generated, tmp_path / "both.gif", scale=2))
    assert len(frames) == 3
    image = frames[1][0]
    assert image.shape == (8, 2 * (5 + 1 + 5), 3)  # scale * (W + pad + W)
    assert abs(int(image[0, 0, 0]) - round(255 * 0.1)) <= 2  # real on the left
    assert abs(int(image[0, -1, 0]) - round(255 * 0.9)) <= 2  # generated on the right
    assert image[0, 10:12].min() == 255  # the white bar between them
    with pytest.raises(ValueError, match="same"):
        side_by_side_gif(real, generated[:2], tmp_path / "bad.gif")
