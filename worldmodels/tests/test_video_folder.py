"""VideoFolder on tiny real video files written with PyAV (mpeg4) into tmp folders."""

import av
import numpy as np
import pytest
import torch

from worldmodels.data.video_folder import VideoFolder


def write_video(path, num_frames, colour, width=48, height=32, fps=10):
    """A clip whose frame t is `colour` scaled by a brightness ramp (t + 1) / num_frames,
    so frame order can be read back from the mean brightness."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(num_frames):
            level = (t + 1) / num_frames
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = np.round(np.array(colour) * level * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def folder(tmp_path):
    write_video(tmp_path / "a_red.mp4", 10, (1.0, 0.1, 0.1))
    write_video(tmp_path / "nested" / "b_blue.avi", 7, (0.1, 0.1, 1.0))
    (tmp_path / "notes.txt").write_text("not a video")  # ignored: not a video extension
    return tmp_path


def test_items_and_clip_count(folder):
    data = VideoFolder(folder, clip_len=4, size=16)
    assert data.video_names == ["a_red.mp4", "nested/b_blue.avi"]
    assert data.video_lengths == [10, 7]
    assert len(data) == (10 - 4 + 1) + (7 - 4 + 1)
    item = data[0]
    assert set(item) == {"frames", "video"}  # plain videos carry no actions
    assert item["frames"].shape == (4, 3, 16, 16) and item["frames"].dtype == torch.float32
    assert 0.0 <= item["frames"].min() and item["frames"].max() <= 1.0


def test_clips_stay_inside_one_video_in_order(folder):
    data = VideoFolder(folder, clip_len=4, size=16)
    for i in range(len(data)):
        item = data[i]
        mean_rgb = item["frames"].mean(dim=(2, 3))  # (T, 3)
        dominant = mean_rgb.argmax(dim=1)  # red (0) for video 0, blue (2) for video 1
        assert (dominant == (0 if item["video"] == 0 else 2)).all()
        brightness = mean_rgb.max(dim=1).values
        assert (brightness.diff() > 0).all()  # frames come in recorded order
    last = data[len(data) - 1]["frames"].mean(dim=(2, 3)).max(dim=1).values
    assert last[-1] > 0.95  # the clip ending at the last frame of the blue video


def test_frame_stride_and_centre_crop(tmp_path):
    # 64 x 32: a green centre square between two red side bars of 16 px
    path = tmp_path / "wide.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        image = np.zeros((32, 64, 3), dtype=np.uint8)
        image[:, :16, 0] = image[:, 48:, 0] = 255
        image[:, 16:48, 1] = 255
        for _ in range(9):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = VideoFolder(tmp_path, clip_len=2, size=8, frame_stride=2)
    assert data.video_lengths == [5]  # frames 0, 2, 4, 6, 8
    frames = data[0]["frames"]
    assert frames[:, 1].mean() > 0.8 and frames[:, 0].max() < 0.3  # only the green centre


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="video folder .*nowhere does not exist"):
        VideoFolder(tmp_path / "nowhere", clip_len=2)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no videos here")
    with pytest.raises(ValueError, match=rf"video folder {tmp_path} holds no video files.*\.mp4"):
        VideoFolder(tmp_path, clip_len=2)


def test_undecodable_file_is_named(folder):
    (folder / "broken.mp4").write_bytes(b"this is not an mp4 file" * 10)
    with pytest.raises(ValueError, match=r"PyAV cannot decode video file .*broken\.mp4"):
        VideoFolder(folder, clip_len=2, size=16)


def test_clip_longer_than_a_video(folder):
    with pytest.raises(ValueError, match=r"b_blue\.avi has 7 frames, fewer than clip_len=8"):
        VideoFolder(folder, clip_len=8, size=16)
