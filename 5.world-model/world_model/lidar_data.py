"""LiDAR forecasting's data: chapter 4's sweeps as token clips, CoPilot4D's task.

The 4D-Occ protocol at 2 Hz (nuScenes): 2 sweeps in -> 2 out (1 s), 6 in -> 6 out (3 s).
One clip of 12 consecutive frames serves both: frames 0-5 are the past, 6-11 the future, and
protocol (p, f) reads frames 6 - p .. 6 + f - 1 (the last p past frames, the first f future
ones), so the 1 s and the 3 s forecasts of a window end the past at the same frame and their
future frames at 1 s coincide:

    frame        0   1   2   3   4   5 | 6   7   8   9   10  11
    1 s (2, 2)                   p   p | f   f
    3 s (6, 6)   p   p   p   p   p   p | f   f   f   f   f   f

Each sweep becomes tokens through chapter 4's frozen tokenizer (`pretrained/debug`: 16 x 16
tokens of 256 codes over +-40 m), encoded ONCE from its measured (noisy) returns, as the
tokenizer was trained, and cached like the occupancy tokens (`token_data`): under

    <cache>/<tokenizer digest>/lidar-<split>-<data digest>.safetensors

The ego-motion tokens are those of the occupancy models (`token_data.fit_motion_tokenizer`,
fit on the training split's poses only). The splits are the driving world's (train / val:
disjoint sequences of the same scenarios; heldout: the roundabout), the same sequences and
frames the occupancy splits hold; chapter 4's tests check they share nothing.

Shapes: T frames, N tokens per frame (h*w), h, w token-grid height and width, n a count local
to one function (here: frames of a sequence).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
from lidar_tokenizer.model import LidarTokenizer
from lidar_tokenizer.pretrained import load_tokenizer as load_lidar_tokenizer  # noqa: F401
from lidar_tokenizer.sweeps import metres, points_of, returns, stored
from lidar_tokenizer.synthetic import synthetic_street
from occupancy_tokenizer.ego import EgoMotionTokenizer
from safetensors.torch import load_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from world_model.token_data import (
    DEFAULT_CACHE,
    _save_atomic,
    sequence_motions,
    tokenizer_digest,
)
from worldmodels.data.driving.sweeps import LidarSplit, read_lidar_split

LIDAR_PAST = LIDAR_FUTURE = 6
LIDAR_CLIP = LIDAR_PAST + LIDAR_FUTURE  # 12 frames
PROTOCOLS = {"1s": (2, 2), "3s": (6, 6)}  # 4D-Occ at 2 Hz: (past, future) frames
SYNTHETIC_STREETS = {"train": (0, 4), "val": (100, 2), "heldout": (200, 2)}  # first seed, count
SYNTHETIC_LENGTH = 14  # frames of a synthetic street: 3 windows of 12


def protocol_frames(past: int, future: int) -> slice:
    """The clip frames protocol (past, future) reads: the last `past` of the 6 past frames and
    the first `future` of the 6 future ones."""
    if not (1 <= past <= LIDAR_PAST and 1 <= future <= LIDAR_FUTURE):
        raise ValueError(f"a protocol reads 1..{LIDAR_PAST} past and 1..{LIDAR_FUTURE} future "
                         f"frames, got ({past}, {future})")  # fmt: skip
    return slice(LIDAR_PAST - past, LIDAR_PAST + future)


def synthetic_streets(split: str) -> LidarSplit:
    """Chapter 4's synthetic streets (boxes by a road, ray-cast), 14 frames each: tests only."""
    first, count = SYNTHETIC_STREETS[split]
    seeds = range(first, first + count)
    streets = [synthetic_street(seed, SYNTHETIC_LENGTH) for seed in seeds]
    return LidarSplit([("synthetic", seed) for seed in seeds], streets[0][3],
                      [stored(s[0]) for s in streets], [stored(s[1]) for s in streets],
                      [s[2] for s in streets])  # fmt: skip


def lidar_sweeps(split: str, preset: str = "debug", root: str = "") -> LidarSplit:
    """The sweeps of a split of the driving preset (the shared reader chapter 4's
    `LidarSweeps` uses too), or synthetic streets."""
    if preset == "synthetic":
        return synthetic_streets(split)
    return read_lidar_split(split, preset, root or None)


class SplitPoses(NamedTuple):
    """What `token_data.fit_motion_tokenizer` reads of a split: its name and its poses."""

    split: str
    poses: list  # per sequence (n, 4, 4) world-from-ego


def sweeps_digest(sweeps: LidarSplit) -> str:
    """blake2b of every sequence's stored ranges (noisy and clean) and poses, in order."""
    h = hashlib.blake2b(digest_size=16)
    for ranges, clean, poses in zip(sweeps.ranges, sweeps.clean, sweeps.poses):
        h.update(len(ranges).to_bytes(8, "little"))
        for part in (ranges, clean, poses.numpy()):
            h.update(part.tobytes())
    return h.hexdigest()


def measured_points(sweeps: LidarSplit, k: int, t: int) -> torch.Tensor:
    """Frame t of sequence k as the tokenizer reads it: its measured returns (P, 3) m."""
    return points_of(returns(metres(sweeps.ranges[k][t]), sweeps.dirs))


@torch.no_grad()
def cached_lidar_ids(tokenizer: LidarTokenizer, sweeps: LidarSplit, split: str,
                     cache_dir: str | Path = "", batch_size: int = 16, progress: bool = True
                     ) -> list[torch.Tensor]:  # fmt: skip
    """Per sequence, its frames' token ids (n, N) int64, encoded once and cached."""
    root = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    name = f"lidar-{split}-{sweeps_digest(sweeps)}.safetensors"
    file = root / tokenizer_digest(tokenizer)[:16] / name
    if file.exists():
        tensors = load_file(file)
        return [tensors[f"seq_{k:05d}"].long() for k in range(len(sweeps.ranges))]
    device = next(tokenizer.parameters()).device
    ids = []
    with tqdm(total=len(sweeps), desc=f"tokenising {split} sweeps (once)", unit="sweep",
              disable=not progress) as bar:  # fmt: skip
        for k, ranges in enumerate(sweeps.ranges):
            rows = []
            for first in range(0, len(ranges), batch_size):
                frames = range(first, min(first + batch_size, len(ranges)))
                points = [measured_points(sweeps, k, t).to(device) for t in frames]
                rows.append(tokenizer.encode(points).flatten(1).cpu())  # (b, N)
                bar.update(len(points))
            ids.append(torch.cat(rows))
    _save_atomic(file, {f"seq_{k:05d}": seq.to(torch.int16) for k, seq in enumerate(ids)})
    return ids


class LidarClips(Dataset):
    """Every 12-frame window of a split (every `stride`-th start) as LiDAR tokens: item i is
    {"ids": (12, N) int64, "motions": (11,) int64} of window `starts[i]` = (sequence, first
    frame). `split` and `poses` let `token_data.fit_motion_tokenizer` read it as it reads the
    occupancy windows (the training split only)."""

    def __init__(self, split: str, sweeps: LidarSplit, ids: list[torch.Tensor],
                 motion_tokenizer: EgoMotionTokenizer, stride: int = 1):  # fmt: skip
        if len(ids) != len(sweeps.ranges):
            raise ValueError(f"need ids for each of {len(sweeps.ranges)} sequences, got {len(ids)}")
        self.split, self.sweeps, self.ids = split, sweeps, ids
        self.poses = sweeps.poses  # (n, 4, 4) world-from-ego per sequence
        self.motions = [motion_tokenizer.encode(m) for m in sequence_motions(self)]  # (n - 1,)
        self.starts = [(k, s) for k, seq in enumerate(ids)
                       for s in range(0, len(seq) - LIDAR_CLIP + 1, stride)]  # fmt: skip
        if not self.starts:
            raise ValueError(f"no {split} sequence has the {LIDAR_CLIP} frames a clip needs")

    @property
    def sequences(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k, s = self.starts[i]
        return {"ids": self.ids[k][s : s + LIDAR_CLIP].long(),  # (12, N)
                "motions": self.motions[k][s : s + LIDAR_CLIP - 1].long()}  # (11,)  # fmt: skip

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """The clips at `indices` stacked: ids (B, 12, N), motions (B, 11)."""
        items = [self[i] for i in indices]
        return {key: torch.stack([item[key] for item in items]) for key in ("ids", "motions")}
