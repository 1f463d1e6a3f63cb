"""Chapter 1's bad inputs stop at start-up with the key (or the file) named."""

import av
import numpy as np
import pytest
from video_tokenizer.config import PRESETS
from video_tokenizer.data import build_datasets

from worldmodels.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("arg", "named"),
    [
        ("--patch=0", "patch"),
        ("--heads=0", "heads"),
        ("--dim=0", "dim"),
        ("--mlp_ratio=0", "mlp_ratio"),
        ("--encoder_depth=0", "encoder_depth"),
        ("--eval_clips=0", "eval_clips"),
        ("--clip_len=0", "clip_len"),
        ("--source=webcam", "source"),
        ("--batch_size=0", "batch_size"),
        ("--log_every=0", "log_every"),
    ],
)
def test_config_values(arg, named):
    with pytest.raises((ConfigError, ValueError), match=rf"{named}\b.*0|{named}.*webcam"):
        parse_config(PRESETS, [arg])


def test_a_video_folder_of_one_clip_is_not_its_own_validation_set(tmp_path):
    with av.open(str(tmp_path / "one.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(4):  # 4 frames: exactly one clip of 4
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    config, _ = parse_config(PRESETS, ["--source=folder", f"--folder={tmp_path}"])
    with pytest.raises(ValueError, match=rf"{tmp_path} gives 1 clip .* at least 2"):
        build_datasets(config)
