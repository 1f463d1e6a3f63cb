"""The TENSFormer's training clips: every 11-frame window of a split, as tokens.

A clip is `windows.py`'s window (5 past + 6 future frames, stride 1) seen through the frozen
tokenizers:

    ids      (T, L) int64   chapter 3's multi-scale scene tokens of each frame (`join_ids`
                            layout, coarse to fine), T = 11, L = sum_k s_k^2; or, for the AR
                            baseline, a single-scale tokenizer's h x w grid in raster order,
                            L = N = h*w
    motions  (T - 1,) int64 m_1 .. m_{T-1} = EgoMotionTokenizer.encode(relative_motion(poses))

Each frame is encoded ONCE, on first use, with a progress bar, and cached under

    <cache>/<tokenizer digest>/<split>-<data digest>.safetensors

tokenizer digest = sha256 of the tokenizer's weights, data digest = blake2b of every frame's
hash: another tokenizer or other data can never be served stale tokens. Tokens of a frame
depend on the frame only (the scene tokenizer reads one frame), so a sequence is encoded
frame by frame and clips are cut from it on demand.

The ego-motion bins are fit on the TRAINING split's poses only (`fit_motion_tokenizer`
refuses any other split): held out means held out, and val is encoded with train's bins
(motions outside their range fall into the end bins).

Shapes: T frames, L flattened sequence length of one frame (its tokens), N tokens per frame
(h*w), h, w token-grid height and width, n frames of a split (a count), X, Y, Z voxel-grid
sizes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from world_model.windows import FUTURE_FRAMES, PAST_FRAMES, ForecastWindows

CLIP_FRAMES = PAST_FRAMES + FUTURE_FRAMES  # 11
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / "data" / "tokens" / "world_model"
CACHE_VERSION = 1  # bump when the cache layout or the tokenisation changes


def tokenizer_digest(tokenizer: nn.Module) -> str:
    """sha256 of the tokenizer's weights (names, shapes, dtypes and bytes), hex."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_digest(windows: ForecastWindows) -> str:
    """blake2b of every frame's hash of every sequence, in order (and the sequence lengths)."""
    h = hashlib.blake2b(digest_size=16)
    for hashes in windows.frame_hashes():
        h.update(len(hashes).to_bytes(8, "little") + hashes.tobytes())
    return h.hexdigest()


@torch.no_grad()
def encode_frames(tokenizer: nn.Module, frames: torch.Tensor, batch_size: int = 16,
                  bar: tqdm | None = None) -> torch.Tensor:  # fmt: skip
    """Class ids (n, X, Y, Z) -> token ids (n, L) int64 on the CPU, `batch_size` frames at a
    time on the tokenizer's device (a single-scale tokenizer's (n, h, w) grid in raster
    order: L = N = h*w)."""
    device = next(tokenizer.parameters()).device
    out = []
    for chunk in frames.split(batch_size):
        out.append(tokenizer.encode(chunk.to(device)).flatten(1).cpu())  # (n, L)
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(out)


def cached_sequence_ids(
    tokenizer: nn.Module, windows: ForecastWindows, cache_dir: str | Path = "",
    batch_size: int = 16, progress: bool = True,
) -> list[torch.Tensor]:  # fmt: skip
    """Per sequence, its frames' token ids (T, L) int64: read from the cache, or encoded once
    (with a progress bar) and written there atomically."""
    root = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    file = (
        root
        / tokenizer_digest(tokenizer)[:16]
        / f"{windows.split}-{data_digest(windows)}.safetensors"
    )
    if file.exists():
        tensors = load_file(file)
        return [tensors[f"seq_{k:05d}"].long() for k in range(windows.sequences)]
    total = sum(len(occ) for occ in windows.occupancy)
    with tqdm(total=total, desc=f"tokenising {windows.split} frames (once)", unit="frame",
              disable=not progress) as bar:  # fmt: skip
        ids = [encode_frames(tokenizer, occ, batch_size, bar) for occ in windows.occupancy]
    dtype = torch.int16 if tokenizer.quantizer.codebook_size <= 2**15 else torch.int32
    _save_atomic(file, {f"seq_{k:05d}": seq.to(dtype) for k, seq in enumerate(ids)})
    return ids


def _save_atomic(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors to a temporary file beside `path`, then rename it into place (readers never
    see half a file; two processes writing the same tokens both succeed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sequence_motions(windows: ForecastWindows) -> list[torch.Tensor]:
    """Per sequence, (T - 1, 3) float32 motions (dx, dy, dyaw) of frame t in frame t-1."""
    return [relative_motion(poses) for poses in windows.poses]


def fit_motion_tokenizer(train: ForecastWindows, bins=(32, 16, 32), coverage: float = 1.0
                         ) -> EgoMotionTokenizer:  # fmt: skip
    """Ego-motion bins from the TRAINING split's motions only (any other split is refused)."""
    if train.split != "train":
        raise ValueError(
            f"the ego-motion tokenizer is fit on the training split only, got split "
            f"{train.split!r}: held-out poses must not shape the bins"
        )
    motions = torch.cat(sequence_motions(train))  # (n, 3)
    return EgoMotionTokenizer.fit(motions, tuple(bins), coverage)


class TokenClips(Dataset):
    """Every `CLIP_FRAMES`-frame window of a split as tokens: item i is
    {"ids": (T, L) int64, "motions": (T - 1,) int64} of window `windows.starts[i]`."""

    def __init__(self, windows: ForecastWindows, ids: list[torch.Tensor],
                 motions: list[torch.Tensor]):  # fmt: skip
        if len(ids) != windows.sequences or len(motions) != windows.sequences:
            raise ValueError(f"need ids and motions for each of {windows.sequences} sequences")
        for k, (occ, seq, mot) in enumerate(zip(windows.occupancy, ids, motions)):
            if len(seq) != len(occ) or len(mot) != len(occ) - 1:
                raise ValueError(
                    f"sequence {k}: {len(occ)} frames need {len(occ)} rows of ids and "
                    f"{len(occ) - 1} motion tokens, got {len(seq)} and {len(mot)}"
                )
        self.windows, self.ids, self.motions = windows, ids, motions
        self.starts = windows.starts  # [(sequence, first frame)]

    @classmethod
    def from_windows(cls, windows: ForecastWindows, tokenizer: nn.Module,
                     motion_tokenizer: EgoMotionTokenizer, cache_dir: str | Path = "",
                     batch_size: int = 16, progress: bool = True) -> TokenClips:  # fmt: skip
        """Clips of `windows`: scene ids from the (cached) frozen tokenizer, motion tokens with
        the given (train-fit) bins."""
        ids = cached_sequence_ids(tokenizer, windows, cache_dir, batch_size, progress)
        motions = [motion_tokenizer.encode(m) for m in sequence_motions(windows)]
        return cls(windows, ids, motions)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k, s = self.starts[i]
        return {
            "ids": self.ids[k][s : s + CLIP_FRAMES].long(),  # (T, L): frames s .. s + 10
            "motions": self.motions[k][s : s + CLIP_FRAMES - 1].long(),  # (T - 1,): m_{s+1}..
        }

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """The clips at `indices` stacked: ids (B, T, L), motions (B, T - 1)."""
        items = [self[i] for i in indices]
        return {key: torch.stack([item[key] for item in items]) for key in ("ids", "motions")}

    def frames(self, i: int) -> torch.Tensor:
        """The occupancy (T, X, Y, Z) uint8 that clip i's ids encode (for checks and figures)."""
        k, s = self.starts[i]
        return self.windows.occupancy[k][s : s + CLIP_FRAMES]


class ClipEvaluator:
    """`evaluate(model, step) -> {"<prefix>_<key>": mean}` of a teacher-forced
    `loss(model, ids (B, T, L), motions (B, T - 1)) -> (loss, metrics)` on `count` fixed,
    evenly spaced clips of a split (the same clips at every evaluation), each clip weighing
    the same."""

    def __init__(self, loss, keys, clips: TokenClips, count: int = 8, batch_size: int = 2,
                 prefix: str = "val"):  # fmt: skip
        if len(clips) == 0:
            raise ValueError(f"no {prefix} clips to evaluate on")
        picks = torch.linspace(0, len(clips) - 1, min(count, len(clips))).round().long()
        self.indices = picks.unique().tolist()
        self.loss, self.keys, self.clips = loss, tuple(keys), clips
        self.batch_size, self.prefix = batch_size, prefix

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int = 0) -> dict[str, float]:
        device = next(model.parameters()).device
        sums = dict.fromkeys(self.keys, 0.0)
        for first in range(0, len(self.indices), self.batch_size):
            chunk = self.indices[first : first + self.batch_size]
            batch = {k: v.to(device) for k, v in self.clips.batch(chunk).items()}
            _, metrics = self.loss(model, batch["ids"], batch["motions"])
            for key in self.keys:  # per-batch means, weighted by the batch's clip count
                sums[key] += float(metrics[key]) * len(chunk)
        return {f"{self.prefix}_{k}": v / len(self.indices) for k, v in sums.items()}
