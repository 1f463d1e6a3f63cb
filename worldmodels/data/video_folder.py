"""A folder of your own video files (mp4, avi, mkv, webm, mov, ...) as clips, via PyAV.

Every video is decoded once, when the dataset is built, centre-cropped to a square,
area-downsampled to `size` x `size` and kept in memory as uint8 (size^2 * 3 bytes per
frame: 12 KiB at 64 px, so an hour at 30 fps is 1.3 GB; use `frame_stride` to keep fewer).
Decoding up front makes every item cheap (a slice), reports an unreadable file at once
rather than mid-training, and gives exact frame counts (container headers often guess).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from tqdm.auto import tqdm

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")


def find_videos(root: Path) -> list[Path]:
    """Every file under `root` (recursively) whose suffix is a video extension, sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS
    )


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop a PIL image to a square, resize to (size, size, 3) uint8 RGB.

    Downsampling uses the box filter (each output pixel = mean of the pixels it covers);
    upsampling, bicubic.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.convert("RGB").crop((left, top, left + side, top + side))
    resample = Image.Resampling.BOX if side >= size else Image.Resampling.BICUBIC
    return np.asarray(square.resize((size, size), resample))


def decode_video(path: Path, size: int, frame_stride: int = 1) -> np.ndarray:
    """All frames of the first video stream of `path`, every `frame_stride`-th one kept,
    as (T, size, size, 3) uint8. Raises ValueError naming the file if PyAV cannot decode it."""
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            for t, frame in enumerate(container.decode(video=0)):
                if t % frame_stride == 0:
                    frames.append(square_resize(frame.to_image(), size))
    except (av.FFmpegError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"PyAV cannot decode video file {path}: {error}") from error
    if not frames:
        raise ValueError(f"PyAV decoded no frames from video file {path}")
    return np.stack(frames)


class VideoFolder(torch.utils.data.Dataset):
    """Clips of `clip_len` consecutive (kept) frames, each inside one video of `root`.

    Item: dict(
        frames=(T, C, H, W) float32 in [0, 1] (C = 3 RGB, H = W = size),
        video=int, index into `video_paths`,
    )
    There is no "actions" key: plain videos carry none (AtariClips and MovingSprites have
    one). `frame_stride` keeps every k-th decoded frame (a 30 fps video with stride 2 gives
    15 fps clips); `clip_stride` is the step between the first frames of two clips.
    Every video must hold at least `clip_len` kept frames.
    """

    def __init__(
        self,
        root: str | Path,
        clip_len: int,
        size: int = 64,
        frame_stride: int = 1,
        clip_stride: int = 1,
        progress: bool = False,
    ):
        if clip_len < 1 or size < 1 or frame_stride < 1 or clip_stride < 1:
            raise ValueError(
                "clip_len, size, frame_stride and clip_stride must be >= 1, got "
                f"{clip_len}, {size}, {frame_stride}, {clip_stride}"
            )
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"video folder {self.root} does not exist (or is not a folder)")
        self.video_paths = find_videos(self.root)
        if not self.video_paths:
            raise ValueError(
                f"video folder {self.root} holds no video files (looked for "
                f"{', '.join(VIDEO_EXTENSIONS)})"
            )
        self.clip_len, self.size, self.clip_stride = clip_len, size, clip_stride
        paths = tqdm(self.video_paths, desc="Decoding videos", unit="video", disable=not progress)
        self._frames = [self._decode(path, frame_stride) for path in paths]
        self.video_lengths = [len(frames) for frames in self._frames]
        self._index = np.concatenate(
            [
                np.stack([np.full(len(starts), v), starts], axis=1)
                for v, length in enumerate(self.video_lengths)
                for starts in [np.arange(0, length - clip_len + 1, clip_stride)]
            ]
        )

    def _decode(self, path: Path, frame_stride: int) -> np.ndarray:
        frames = decode_video(path, self.size, frame_stride)  # (T, H, W, 3) uint8
        if len(frames) < self.clip_len:
            stride = f" (every {frame_stride}th frame kept)" if frame_stride > 1 else ""
            raise ValueError(
                f"video {path} has {len(frames)} frames{stride}, fewer than clip_len="
                f"{self.clip_len}; lower clip_len or remove the video"
            )
        return np.ascontiguousarray(rearrange(frames, "t h w c -> t c h w"))

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        video, start = (int(v) for v in self._index[i])
        frames = self._frames[video][start : start + self.clip_len]  # (T, C, H, W) uint8
        return {
            "frames": torch.from_numpy(frames.astype(np.float32) / np.float32(255)),
            "video": video,
        }

    @property
    def video_names(self) -> Sequence[str]:
        return [str(path.relative_to(self.root)) for path in self.video_paths]
