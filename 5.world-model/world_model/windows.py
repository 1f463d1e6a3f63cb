"""The forecasting benchmark's windows: 2 s of the past in, the next 3 s out, at 2 Hz.

OccWorld's protocol (wzzheng/OccWorld, `eval_metric_stp3.py` with start/mid/end frames
0 / 5 / 11): a window is 11 consecutive keyframes at 2 Hz; frames 0..4 are the context (the
past 2 s, both ends included: t = -2.0, -1.5, -1.0, -0.5, 0 s) and frames 5..10 the future
to forecast (t = +0.5 ... +3.0 s), one frame at a time. Every window of every sequence is
scored (stride 1), so windows of one sequence overlap and are not independent: intervals
resample whole sequences (`forecast_scores.py`).

    windows = load_windows("val")              # the debug preset's 47 val sequences
    len(windows)                               # 47 * (32 - 11 + 1) = 1034 windows
    for window in windows.batches(8):          # Window of 8 windows, in a fixed order
        window.past.shape                      # (8, 5, 64, 64, 16) uint8 class ids

The driving world stores its frames at `preset.data.frame_rate` (2 Hz in every preset,
Occ3D's keyframe rate); a dataset stored faster is subsampled to 2 Hz (`frame_step`), a
rate that is not a whole multiple of 2 Hz is refused.

Poses are world-from-ego transforms (4, 4), float64 metres, each frame in its own ego frame
(x forward, y left, z up), as `worldmodels.data.driving.dataset` documents.

Shapes: B batch (windows), T time steps (frames: 5 past or 6 future), X, Y, Z voxel-grid
sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from worldmodels.data.driving import DrivingSequences, GridConfig
from worldmodels.data.leakage import duplicate_windows, frame_hashes
from worldmodels.occ3d import NUM_CLASSES

FRAME_RATE = 2.0  # Hz: the benchmark's keyframe rate (Occ3D, OccWorld)
PAST_FRAMES = 5  # frames 0..4: the past 2 s, both ends included
FUTURE_FRAMES = 6  # frames 5..10: the next 3 s
SPLITS = ("train", "val", "heldout")


class Window(NamedTuple):
    """A batch of forecasting windows. The forecaster sees past, past_poses, future_poses;
    future and visible are the answer and its scoring mask."""

    past: torch.Tensor  # (B, T, X, Y, Z) uint8 class ids, T = 5 past frames
    past_poses: torch.Tensor  # (B, T, 4, 4) float64 world-from-ego of the past frames
    future: torch.Tensor  # (B, T, X, Y, Z) uint8 class ids, T = 6 future frames
    future_poses: torch.Tensor  # (B, T, 4, 4) float64: the trajectory to condition on
    visible: torch.Tensor  # (B, T, X, Y, Z) bool: the future frames' visibility masks
    sequence: torch.Tensor  # (B,) int64 index of the window's sequence in its split
    start: torch.Tensor  # (B,) int64 first frame of the window in that sequence


def frame_step(stored_rate: float, rate: float = FRAME_RATE) -> int:
    """Keep every n-th stored frame to get `rate` Hz; n must be a whole number."""
    step = round(stored_rate / rate)
    if step < 1 or abs(step * rate - stored_rate) > 1e-9:
        raise ValueError(
            f"frames stored at {stored_rate} Hz cannot be subsampled to the benchmark's "
            f"{rate} Hz: the stored rate must be a whole multiple of {rate} Hz"
        )
    return step


def _check_sequence(k: int, name: str, occupancy, visibility, poses, grid, length: int):
    where = f"sequence {k} ({name})"
    if occupancy.ndim != 4 or tuple(occupancy.shape[1:]) != tuple(grid.size):
        raise ValueError(f"{where}: occupancy must be (T, X, Y, Z) = (T, {grid.size}), "
                         f"got {tuple(occupancy.shape)}")  # fmt: skip
    if occupancy.is_floating_point() or int(occupancy.max()) >= NUM_CLASSES:
        raise ValueError(f"{where}: occupancy must hold class ids in [0, {NUM_CLASSES - 1}]")
    if visibility.shape != occupancy.shape or poses.shape != (len(occupancy), 4, 4):
        raise ValueError(f"{where}: visibility {tuple(visibility.shape)} must match occupancy "
                         f"{tuple(occupancy.shape)} and poses {tuple(poses.shape)} be "
                         f"({len(occupancy)}, 4, 4)")  # fmt: skip
    if len(occupancy) < length:
        raise ValueError(
            f"{where} has {len(occupancy)} frames at {FRAME_RATE:g} Hz: a window needs "
            f"{PAST_FRAMES} past + {FUTURE_FRAMES} future = {length}"
        )


@dataclass
class ForecastWindows:
    """Every window of `PAST_FRAMES + FUTURE_FRAMES` frames (every `stride` frames) of the
    sequences of one split, held as whole sequences (windows are cut on demand)."""

    occupancy: list[torch.Tensor]  # per sequence (T, X, Y, Z) uint8, at 2 Hz
    visibility: list[torch.Tensor]  # per sequence (T, X, Y, Z) bool
    poses: list[torch.Tensor]  # per sequence (T, 4, 4) float64 world-from-ego
    grid: GridConfig
    names: list[str]  # "<scenario>-<seed>" of each sequence
    split: str = ""
    stride: int = 1

    def __post_init__(self):
        length = PAST_FRAMES + FUTURE_FRAMES
        if not self.occupancy:
            raise ValueError(f"split {self.split!r} holds no sequence")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        for k, arrays in enumerate(zip(self.occupancy, self.visibility, self.poses)):
            _check_sequence(k, self.names[k], *arrays, self.grid, length)
        self.starts = [
            (k, start)
            for k, occ in enumerate(self.occupancy)
            for start in range(0, len(occ) - length + 1, self.stride)
        ]  # [(sequence, first frame)], in a fixed order

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def sequences(self) -> int:
        return len(self.occupancy)

    def batch(self, indices: Sequence[int]) -> Window:
        """The windows at `indices` (into `self.starts`) stacked into one Window."""
        cut = PAST_FRAMES + FUTURE_FRAMES
        rows = [self.starts[i] for i in indices]
        occ = torch.stack([self.occupancy[k][s : s + cut] for k, s in rows])  # (B, T, X, Y, Z)
        vis = torch.stack([self.visibility[k][s : s + cut] for k, s in rows])
        poses = torch.stack([self.poses[k][s : s + cut] for k, s in rows])  # (B, T, 4, 4)
        p = PAST_FRAMES
        return Window(
            past=occ[:, :p], past_poses=poses[:, :p], future=occ[:, p:],
            future_poses=poses[:, p:], visible=vis[:, p:],
            sequence=torch.tensor([k for k, _ in rows]), start=torch.tensor([s for _, s in rows]),
        )  # fmt: skip

    def batches(self, batch_size: int = 8) -> Iterator[Window]:
        """Every window once, in order, `batch_size` at a time (the last batch may be short)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for first in range(0, len(self), batch_size):
            yield self.batch(range(first, min(first + batch_size, len(self))))

    def frame_hashes(self) -> list:
        """Per sequence, (T,) uint64 hashes of its occupancy frames (`worldmodels.data.
        leakage.frame_hashes`), for checks that no held-out frame is a training frame."""
        return [frame_hashes(occ.numpy()) for occ in self.occupancy]

    def describe(self) -> dict:
        """What the windows are: counts, and the protocol's frame numbers."""
        lengths = sorted({len(occ) for occ in self.occupancy})
        return {"split": self.split, "sequences": self.sequences, "windows": len(self),
                "frames_per_sequence": lengths, "frame_rate_hz": FRAME_RATE,
                "past_frames": PAST_FRAMES, "future_frames": FUTURE_FRAMES,
                "stride": self.stride, "grid": tuple(self.grid.size)}  # fmt: skip


def shared_with_training(train: ForecastWindows, held: ForecastWindows, length: int = 1) -> dict:
    """How many `length`-frame runs of `held`'s sequences equal a run of a training sequence
    (`worldmodels.data.leakage.duplicate_windows`): length 1 compares single frames, length
    11 whole windows. Held out means held out: "duplicates" must be 0."""
    return duplicate_windows(train.frame_hashes(), held.frame_hashes(), length)


def load_windows(
    split: str,
    preset: str = "debug",
    stride: int = 1,
    root: str | Path | None = None,
    generate: bool = True,
) -> ForecastWindows:
    """The windows of one split ("train", "val": unseen sequences of the training scenarios,
    "heldout": the roundabout scenario) of a driving preset, made on first use unless
    `generate=False`. Subsampled to 2 Hz if stored faster."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    probe = DrivingSequences(split, 1, preset, root=root, lidar=False, generate=generate)
    longest = max(entry["frames"] for entry in probe.sequences)
    whole = DrivingSequences(split, longest, preset, root=root, stride=longest, lidar=False,
                             generate=False)  # fmt: skip
    if whole.windows != [(k, 0) for k in range(len(whole.sequences))]:
        raise ValueError(f"{split}: sequences of unequal length, which this loader does not read")
    step = frame_step(whole.preset.data.frame_rate)
    items = [whole[k] for k in range(len(whole))]  # item k = sequence k, whole
    return ForecastWindows(
        occupancy=[item["occupancy"][::step] for item in items],
        visibility=[item["visibility"][::step] for item in items],
        poses=[item["ego_pose"][::step] for item in items],
        grid=whole.preset.grid,
        names=[f"{item['scenario']}-{item['seed']:05d}" for item in items],
        split=split,
        stride=stride,
    )
