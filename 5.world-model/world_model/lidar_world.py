"""CoPilot4D's own task: the MaskGIT world model on LiDAR tokens (`--kind=lidar-maskgit`).

The network is `maskgit_world.MaskGITWorld`, unchanged: ids (B, T, N) of chapter 4's tokens,
the ego-motion token of each frame added to its tokens, chapter 1's spatio-temporal blocks,
logits over the K codes. Only the clips differ. CoPilot4D trains one model per protocol;
this one learns both 4D-Occ protocols (2 -> 2 frames for 1 s, 6 -> 6 for 3 s) at once: every
training batch draws one protocol, cuts its frames out of the 12-frame clip
(`lidar_data.protocol_frames`) and applies Algorithm 1 with that many past frames:

    protocol ~ uniform{(2, 2), (6, 6)}                       one per batch (global RNG)
    ids, motions = clip[6 - p : 6 + f], motions[6 - p : 6 + f - 1]
    loss = maskgit_loss(model, ids, motions, context = p)    FUTURE / JOINT / NO_PAST mix

The learned time embedding is indexed by clip position: a 2 -> 2 clip reads rows 0-3, a
6 -> 6 clip rows 0-11, so the model knows the protocol from the clip's length.

The evaluation (`LidarMaskGITEvaluator`) reports, for each protocol, the cross-entropy and
accuracy on the masked future tokens of a fixed, seeded corruption (the FUTURE objective
only) on fixed val clips: `val_scene_ce_1s`, `val_scene_accuracy_3s`, ...

Shapes: B batch, T frames, N tokens per frame (h*w), K codebook size.
"""

from __future__ import annotations

import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer
from torch import nn

from world_model.lidar_data import LIDAR_CLIP, PROTOCOLS, LidarClips, protocol_frames
from world_model.maskgit_world import FUTURE_ONLY, MaskGITWorldConfig, maskgit_loss

SMALLEST_PAST = min(past for past, _ in PROTOCOLS.values())  # 2: the config's context


def lidar_config_matching(tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
                          **sizes) -> MaskGITWorldConfig:  # fmt: skip
    """The MaskGIT config of chapter 4's tokenizer (codes, token grid) and the motion bins:
    12 frames, and a context of 2 (the fewest past frames a protocol gives)."""
    context = sizes.pop("context", SMALLEST_PAST)
    if context != SMALLEST_PAST:
        raise ValueError(
            f"lidar.context must be {SMALLEST_PAST}, the fewest past frames of the protocols "
            f"{PROTOCOLS}; each batch sets its own, got {context}"
        )
    return MaskGITWorldConfig(
        codebook_size=tokenizer.codebook_size, token_grid=tuple(tokenizer.token_grid),
        motion_vocab=motion_tokenizer.vocab_size, max_frames=LIDAR_CLIP, context=SMALLEST_PAST,
        **sizes,
    )  # fmt: skip


def protocol_clip(batch: dict, name: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A batch of 12-frame clips cut to protocol `name`: ids (B, p + f, N), motions
    (B, p + f - 1) (the motions INTO frames 1 .. p + f - 1 of the cut clip), p."""
    past, future = PROTOCOLS[name]
    frames = protocol_frames(past, future)
    motions = slice(frames.start, frames.stop - 1)  # m into frames start+1 .. stop-1
    return batch["ids"][:, frames], batch["motions"][:, motions], past


def make_lidar_loss(protocols=tuple(PROTOCOLS)):
    """The trainer's `loss_fn(model, batch)`: one protocol per batch, drawn uniformly."""

    def loss_fn(model, batch: dict):
        name = protocols[int(torch.randint(len(protocols), ()))]
        ids, motions, past = protocol_clip(batch, name)
        return maskgit_loss(model, ids, motions, context=past)

    return loss_fn


class LidarMaskGITEvaluator:
    """`evaluate(model, step) -> {"val_scene_ce_1s", "val_scene_accuracy_1s", ..._3s}` on
    `count` fixed, evenly spaced val clips: each protocol's FUTURE objective, its corruption
    drawn from a generator seeded with `seed` at every call."""

    KEYS = ("scene_ce", "scene_accuracy")

    def __init__(self, clips: LidarClips, count: int = 8, batch_size: int = 2,
                 prefix: str = "val", seed: int = 0):  # fmt: skip
        if len(clips) == 0:
            raise ValueError(f"no {prefix} clips to evaluate on")
        picks = torch.linspace(0, len(clips) - 1, min(count, len(clips))).round().long()
        self.indices = picks.unique().tolist()
        self.clips, self.batch_size, self.prefix, self.seed = clips, batch_size, prefix, seed

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int = 0) -> dict[str, float]:
        device = next(model.parameters()).device
        out = {}
        for name in PROTOCOLS:
            generator = torch.Generator(device).manual_seed(self.seed)
            sums = dict.fromkeys(self.KEYS, 0.0)
            for first in range(0, len(self.indices), self.batch_size):
                chunk = self.indices[first : first + self.batch_size]
                batch = {k: v.to(device) for k, v in self.clips.batch(chunk).items()}
                ids, motions, past = protocol_clip(batch, name)
                _, metrics = maskgit_loss(model, ids, motions, generator, FUTURE_ONLY, past)
                for key in self.KEYS:
                    sums[key] += float(metrics[key]) * len(chunk)
            out |= {f"{self.prefix}_{k}_{name}": v / len(self.indices) for k, v in sums.items()}
        return out
