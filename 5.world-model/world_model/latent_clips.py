"""The DiT's training clips: each forecasting window as two clips of chapter 3's 4D tokenizer.

The 4D tokenizer reads clips of its own length T_c (4d-debug-t2: T_c = 8 frames -> T = 4
latent frames of h x w = 16 x 16 codes, temporal compression 2). A window is 5 past + 6
future frames, so the DiT sees it as two clips (`past_clip`, `target_clip`):

    past clip    p_0 .. p_0, p_0, p_1, p_2, p_3, p_4      the 5 past frames, the first held
                                                          still in front to fill T_c frames
    target clip  p_{5-(T_c-6)} .. p_4, f_0 .. f_5         the last T_c - 6 past frames, then
                                                          the 6 future (T_c = 8: p_3, p_4, f_*)

Why two clips and not one clip whose first latent frame is "the past": the tokenizer's
encoder is not causal in time (kernel-4 temporal convs and axial attention along T), so every
latent frame of [p_3, p_4, f_0 .. f_5] depends on the future frames; a forecaster could never
compute it (on 48 training windows, the target clip's first latent frame and the past clip's
last, both mostly p_3 and p_4, share only 12% of their codes). The past clip is made from
the past alone, at training and forecasting alike.

What is stored: the code ids of both clips, (T, h, w) each (post-quantization codes are
codebook rows, so the ids are exact and 16x smaller than the vectors), encoded ONCE and cached
as token_data.py caches frame tokens,

    <cache>/<tokenizer digest>/fourd-<split>-<data digest>-<clip digest>.safetensors

clip digest = blake2b of the layout, T_c and the window starts encoded. The training split
encodes every window; another split only the `count` evenly spaced windows that the
evaluation reads (about 0.08 s a window, both clips, on one CPU thread with 4d-debug-t2:
2.3 minutes for the 1,650 windows of the debug training split).

The trajectory of a window is the target clip's ego motions (T_c - 1 of them: (dx, dy, dyaw)
of frame t in frame t-1, chapter 3's `relative_motion`), each component mapped to [-1, 1]
over the range the motion bins were fit on the TRAINING poses (`normalised_motions`).

Shapes: B batch, T frames or latent frames (said), T_c frames of a 4D tokenizer's clip, X, Y,
Z voxel-grid sizes, h, w token-grid height and width, E code dims, K codebook size, n windows
encoded (a count).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from einops import repeat
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from world_model.token_data import DEFAULT_CACHE, _save_atomic, data_digest, tokenizer_digest
from world_model.windows import FUTURE_FRAMES, PAST_FRAMES, ForecastWindows

LAYOUT = "v1 past front-padded; target = last T_c-6 past + 6 future"  # in the cache key


def check_layout(past_frames: int, future_frames: int, frames: int) -> None:
    """The target clip of T_c frames holds the 6 future frames, the T_c - 6 past ones before."""
    if future_frames != FUTURE_FRAMES or not 0 <= frames - future_frames <= past_frames:
        raise ValueError(
            f"{past_frames} past + {future_frames} future frames in clips of the 4D tokenizer's "
            f"{frames}: the DiT forecasts the {FUTURE_FRAMES} future frames inside one clip "
            f"that starts with the last {frames - FUTURE_FRAMES} past frames, so it needs "
            f"{FUTURE_FRAMES} future frames and >= {max(frames - FUTURE_FRAMES, 1)} past ones"
        )


def past_clip(past: torch.Tensor, frames: int) -> torch.Tensor:
    """Past frames (B, T, ...) -> the past clip (B, T_c, ...): the first frame repeated in
    front (or the last T_c frames when T > T_c)."""
    T = past.shape[1]
    if T >= frames:
        return past[:, T - frames :]
    front = repeat(past[:, :1], "b 1 ... -> b n ...", n=frames - T)  # n = T_c - T copies
    return torch.cat([front, past], dim=1)


def target_clip(past: torch.Tensor, future: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T_p, ...), (B, T_f, ...) -> the target clip (B, T_c, ...): the last T_c - T_f past
    frames, then the future (grids and poses alike)."""
    check_layout(past.shape[1], future.shape[1], frames)
    return torch.cat([past[:, past.shape[1] - (frames - future.shape[1]) :], future], dim=1)


def normalised_motions(motions: torch.Tensor, motion_tokenizer: EgoMotionTokenizer):
    """(dx, dy, dyaw) (..., 3) -> each component mapped to [-1, 1] over the train-fit range of
    the motion bins: (m - mid) / half, mid = (low + high) / 2, half = (high - low) / 2."""
    low = torch.tensor(motion_tokenizer.low, dtype=torch.float32, device=motions.device)
    high = torch.tensor(motion_tokenizer.high, dtype=torch.float32, device=motions.device)
    return (motions.float() - (low + high) / 2) / ((high - low) / 2)  # (..., 3)


def clip_trajectory(past_poses: torch.Tensor, future_poses: torch.Tensor, frames: int,
                    motion_tokenizer: EgoMotionTokenizer) -> torch.Tensor:  # fmt: skip
    """Poses (B, T_p, 4, 4), (B, T_f, 4, 4) -> the target clip's normalised motions
    (B, T_c - 1, 3) float32: the DiT's trajectory condition."""
    poses = target_clip(past_poses, future_poses, frames)  # (B, T_c, 4, 4)
    return normalised_motions(relative_motion(poses), motion_tokenizer)  # (B, T_c - 1, 3)


@torch.no_grad()
def encode_clips(tokenizer: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Clips (B, T_c, X, Y, Z) -> code ids (B, T, h, w) int64 on the CPU (T latent frames)."""
    device = next(tokenizer.parameters()).device
    return tokenizer.encode(clips.to(device)).cpu()


def clip_digest(windows: ForecastWindows, picks: list[int], frames: int) -> str:
    h = hashlib.blake2b(f"{LAYOUT} T_c={frames}".encode(), digest_size=8)
    h.update(torch.tensor([windows.starts[i] for i in picks]).numpy().tobytes())
    return h.hexdigest()


def cached_clip_ids(tokenizer: nn.Module, windows: ForecastWindows, picks: list[int],
                    cache_dir: str | Path = "", batch_size: int = 16, progress: bool = True
                    ) -> dict[str, torch.Tensor]:  # fmt: skip
    """{"past", "target"}: code ids (n, T, h, w) int64 of the windows at `picks`, read from
    the cache, or encoded once (with a progress bar) and written there atomically."""
    T_c = tokenizer.config.frames
    root = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    name = f"fourd-{windows.split}-{data_digest(windows)}-{clip_digest(windows, picks, T_c)}"
    file = root / tokenizer_digest(tokenizer)[:16] / f"{name}.safetensors"
    if file.exists():
        return {key: ids.long() for key, ids in load_file(file).items()}
    out = {"past": [], "target": []}
    with tqdm(total=len(picks), desc=f"4D-encoding {windows.split} windows (once)",
              unit="window", disable=not progress) as bar:  # fmt: skip
        for first in range(0, len(picks), batch_size):
            w = windows.batch(picks[first : first + batch_size])
            out["past"].append(encode_clips(tokenizer, past_clip(w.past, T_c)))
            out["target"].append(encode_clips(tokenizer, target_clip(w.past, w.future, T_c)))
            bar.update(len(w.past))
    ids = {key: torch.cat(parts) for key, parts in out.items()}  # (n, T, h, w) each
    dtype = torch.int16 if tokenizer.codebook_size <= 2**15 else torch.int32
    _save_atomic(file, {key: v.to(dtype) for key, v in ids.items()})
    return ids


def evenly_spaced(total: int, count: int) -> list[int]:
    """`count` indices spread evenly over range(total) (all of them when count >= total)."""
    return torch.linspace(0, total - 1, min(count, total)).round().long().unique().tolist()


class LatentClips(Dataset):
    """Windows of a split as the DiT reads them: item i is {"past": (T, h, w) int64,
    "target": (T, h, w) int64 code ids, "trajectory": (T_c - 1, 3) float32} of window
    `windows.starts[picks[i]]`."""

    def __init__(self, windows: ForecastWindows, picks: list[int], ids: dict[str, torch.Tensor],
                 trajectory: torch.Tensor):  # fmt: skip
        n = len(picks)
        if ids["past"].shape[0] != n or ids["target"].shape[0] != n or len(trajectory) != n:
            raise ValueError(f"need past and target ids and a trajectory for each of {n} windows")
        self.windows, self.picks, self.split = windows, picks, windows.split
        self.past, self.target, self.trajectory = ids["past"], ids["target"], trajectory

    @classmethod
    def from_windows(cls, windows: ForecastWindows, tokenizer: nn.Module,
                     motion_tokenizer: EgoMotionTokenizer, picks: list[int] | None = None,
                     cache_dir: str | Path = "", batch_size: int = 16, progress: bool = True
                     ) -> LatentClips:  # fmt: skip
        """Every window of `windows` (or those at `picks`): ids from the (cached) frozen 4D
        tokenizer, trajectories normalised by the (train-fit) motion bins' range."""
        picks = list(range(len(windows))) if picks is None else list(picks)
        T_c = tokenizer.config.frames
        check_layout(PAST_FRAMES, FUTURE_FRAMES, T_c)
        ids = cached_clip_ids(tokenizer, windows, picks, cache_dir, batch_size, progress)
        poses = torch.stack([windows.poses[k][s : s + PAST_FRAMES + FUTURE_FRAMES]
                             for k, s in (windows.starts[i] for i in picks)])  # fmt: skip
        past_poses, future_poses = poses[:, :PAST_FRAMES], poses[:, PAST_FRAMES:]
        return cls(windows, picks, ids, clip_trajectory(past_poses, future_poses, T_c,
                                                        motion_tokenizer))  # fmt: skip

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"past": self.past[i], "target": self.target[i], "trajectory": self.trajectory[i]}

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """The clips at `indices` stacked: past, target (B, T, h, w), trajectory
        (B, T_c - 1, 3)."""
        indices = torch.as_tensor(list(indices), dtype=torch.long)
        return {"past": self.past[indices], "target": self.target[indices],
                "trajectory": self.trajectory[indices]}  # fmt: skip


def fit_latent_scale(train: LatentClips, codebook: torch.Tensor) -> float:
    """1 / std of every element of the training split's target-clip code vectors (any other
    split is refused), exact from the code counts: std^2 = E[c^2] - E[c]^2 over the n * T *
    h * w * E elements."""
    if train.split != "train":
        raise ValueError(f"the latent scale is fit on the training split only, got {train.split!r}")
    codes = codebook.detach().double().cpu()  # (K, E)
    counts = torch.bincount(train.target.flatten(), minlength=len(codes)).double()  # (K,)
    elements = counts.sum() * codes.shape[1]
    mean = counts @ codes.sum(1) / elements  # E[c]
    var = counts @ codes.pow(2).sum(1) / elements - mean**2  # E[c^2] - E[c]^2
    if not var > 1e-12:
        raise ValueError("the training latents are constant (one code?): no scale fits them")
    return float(var.rsqrt())
