"""`DrivingSequences`: windows of consecutive frames from the generated driving dataset.

An item is a dict of tensors for `seq_len` consecutive frames (T = seq_len) of one sequence:

    occupancy      (T, X, Y, Z) uint8    Occ3D class per voxel (17 = free), ego frame
    visibility     (T, X, Y, Z) bool     voxel crossed by a returned LiDAR ray (mask_lidar)
    ego_pose       (T, 4, 4)    float64  world-from-ego transform (m); world = the sequence's
                                         ground, z up, its relief around z = 0
    ego_speed      (T,)         float32  m/s
    actions        (T,)         int64    meta-action applied after frame t (0 LANE_LEFT,
                                         1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER)
    lidar_range    (T, H, W)    float32  range image, metres from the sensor, 0 = no return
    lidar_range_clean (T, H, W) float32  the same returns without range noise (the true surface)
    lidar_points   (T, P, 3)    float32  returns in the sensor frame (m), P = H * W; the first
                                         lidar_counts[t] rows are valid, the rest are 0
    lidar_labels   (T, P)       uint8    class of each return, 255 for padding
    lidar_counts   (T,)         int64
    boxes          (T, M, 7)    float32  x, y, z, length, width, height (m), yaw (rad) in the
                                         ego frame, M = preset.max_boxes, nearest first
    box_classes    (T, M)       uint8    Occ3D class, 255 for padding
    box_ids        (T, M)       int64    track id, -1 for padding (parked cars: >= 200000)
    box_speeds     (T, M)       float32  m/s (parked cars 0), 0 for padding
    box_counts     (T,)         int64
    sensor_to_ego  (4, 4)       float32  every ray starts at the sensor origin, which is
                                         sensor_to_ego[:3, 3] in the ego frame
    scenario (str), seed (int), start (int: first frame of the window)

Ray directions of the range image: `preset.lidar.ray_directions()` (H, W, 3);
H = beams (rows, top beam first), W = azimuth columns (column w looks at azimuth
180 - (w + 1/2) 360 / W degrees from +x towards +y: behind, left, forward in the middle,
right, behind; `worldmodels.viz.range_image` uses the same order).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset

from worldmodels.data.driving.config import Preset, get_preset
from worldmodels.data.driving.shards import NO_RETURN, RANGE_UNIT
from worldmodels.data.driving.store import dataset_root, ensure_dataset, load_manifest, read_shard

SPLITS = ("train", "val", "heldout")
LIDAR_KEYS = ("lidar_range", "lidar_range_clean", "lidar_label")
FRAME_KEYS = ("occupancy", "visibility", "ego_pose", "ego_speed", "actions")
BOX_KEYS = ("box_count", "boxes", "box_class", "box_id", "box_speed")


class DrivingSequences(Dataset):
    """Every window of `seq_len` frames (starting every `stride` frames) of the sequences of
    one split ("train", "val" or "heldout"). Makes the dataset on first use unless
    `generate=False`. `lidar=False` skips the LiDAR arrays (faster when only occupancy is
    needed)."""

    def __init__(
        self,
        split: str,
        seq_len: int,
        preset: str | Preset = "debug",
        root: str | Path | None = None,
        stride: int = 1,
        lidar: bool = True,
        generate: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if seq_len < 1 or stride < 1:
            raise ValueError(f"seq_len and stride must be >= 1, got {seq_len}, {stride}")
        self.preset = get_preset(preset)
        folder = ensure_dataset(self.preset, root) if generate else dataset_root(preset, root)
        self.folder = Path(folder)
        manifest = load_manifest(self.folder)
        if manifest["fingerprint"] != self.preset.fingerprint():
            raise ValueError(f"{self.folder} holds another preset's data")
        self.sequences = [s for s in manifest["sequences"] if s["split"] == split]
        self.seq_len, self.lidar = seq_len, lidar
        self.windows = [
            (k, start)
            for k, s in enumerate(self.sequences)
            for start in range(0, s["frames"] - seq_len + 1, stride)
        ]
        if not self.windows:
            raise ValueError(
                f"no window of {seq_len} frames in split {split!r} of {self.folder} "
                f"(sequences have {self.preset.data.frames} frames)"
            )
        directions = rearrange(self.preset.lidar.ray_directions(), "H W xyz -> (H W) xyz")
        self._directions = directions.astype(np.float32)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        k, start = self.windows[index]
        entry = self.sequences[k]
        data = _load(str(self.folder / entry["file"]), self.lidar)
        window = slice(start, start + self.seq_len)
        item = {
            key: torch.from_numpy(np.ascontiguousarray(data[key][window])) for key in FRAME_KEYS
        }
        item.update(self._boxes(data, window))
        if self.lidar:
            ranges = data["lidar_range"][window].astype(np.float32) * np.float32(RANGE_UNIT)
            item.update(self._points(ranges, data["lidar_label"][window]))
            clean = data["lidar_range_clean"][window].astype(np.float32) * np.float32(RANGE_UNIT)
            item["lidar_range_clean"] = torch.from_numpy(np.ascontiguousarray(clean))
        item["sensor_to_ego"] = torch.from_numpy(
            self.preset.lidar.sensor_to_ego().astype(np.float32)
        )
        item.update(scenario=entry["scenario"], seed=entry["seed"], start=start)
        return item

    def _points(self, ranges: np.ndarray, labels: np.ndarray) -> dict:
        T = len(ranges)
        P = ranges[0].size
        points = np.zeros((T, P, 3), dtype=np.float32)
        point_labels = np.full((T, P), NO_RETURN, dtype=np.uint8)
        counts = np.zeros(T, dtype=np.int64)
        for t in range(T):
            flat = rearrange(ranges[t], "H W -> (H W)")
            valid = flat > 0
            n = int(valid.sum())
            points[t, :n] = flat[valid, None] * self._directions[valid]  # p = r * d
            point_labels[t, :n] = rearrange(labels[t], "H W -> (H W)")[valid]
            counts[t] = n
        return {
            "lidar_range": torch.from_numpy(np.ascontiguousarray(ranges)),
            "lidar_points": torch.from_numpy(points),
            "lidar_labels": torch.from_numpy(point_labels),
            "lidar_counts": torch.from_numpy(counts),
        }

    def _boxes(self, data: dict, window: slice) -> dict:
        offsets = np.concatenate([[0], np.cumsum(data["box_count"])])
        frames = range(window.start, window.stop)
        T, M = len(frames), self.preset.max_boxes
        boxes = np.zeros((T, M, 7), dtype=np.float32)
        classes = np.full((T, M), NO_RETURN, dtype=np.uint8)
        ids = np.full((T, M), -1, dtype=np.int64)
        speeds = np.zeros((T, M), dtype=np.float32)
        counts = np.zeros(T, dtype=np.int64)
        for row, t in enumerate(frames):
            part = slice(offsets[t], offsets[t + 1])
            order = np.argsort(np.hypot(*data["boxes"][part, :2].T), kind="stable")[:M]
            n = len(order)
            boxes[row, :n] = data["boxes"][part][order]
            classes[row, :n] = data["box_class"][part][order]
            ids[row, :n] = data["box_id"][part][order]
            speeds[row, :n] = data["box_speed"][part][order]
            counts[row] = n
        return {
            "boxes": torch.from_numpy(boxes),
            "box_classes": torch.from_numpy(classes),
            "box_ids": torch.from_numpy(ids),
            "box_speeds": torch.from_numpy(speeds),
            "box_counts": torch.from_numpy(counts),
        }


@lru_cache(maxsize=4)
def _load(path: str, lidar: bool) -> dict:
    """A shard's arrays, cached: consecutive windows usually come from the same sequence."""
    keys = FRAME_KEYS + BOX_KEYS + (LIDAR_KEYS if lidar else ())
    return read_shard(Path(path), list(keys))
