"""The TENSFormer as a benchmark forecaster: grids and poses in, grids out.

    forecaster = tensformer_forecaster(model, tokenizer, motion_tokenizer, temperature=1.0)
    future = forecaster(past, past_poses, future_poses)     # (B, 6, X, Y, Z) uint8, CPU

What one call does (`baselines.Forecaster`'s contract):

    ids_BTL      = tokenizer.encode(past frames)                          (B, T_p, L)
    m_1..m_{T-1} = motion_tokenizer.encode(relative_motion([past_poses, future_poses]))
    past motions = m_1 .. m_{T_p-1};  future motions = m_{T_p} .. m_{T_p+T_f-1}
    rollout      = generate(model, quantizer, ids, past motions,
                            future motions (control) | None (plan: the model draws them))
    future       = tokenizer.decode(rollout ids)                          (B, T_f, X, Y, Z)

With `plan=False` the given future poses steer the forecast (what the benchmark scores: a
world model conditioned on the trajectory). With `plan=True` they only set how many frames
to forecast; the model draws its own motion tokens. Each call draws from a generator seeded
with `seed`, so the same inputs give the same forecast.

Shapes: B batch, T_p past frames, T_f future frames, L flattened sequence length of one
frame (its tokens), X, Y, Z voxel-grid sizes.
"""

from __future__ import annotations

import torch
from einops import rearrange
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from torch import nn

from world_model.baselines import Forecaster
from world_model.generate import Rollout, decode_frames, generate
from world_model.scale_inputs import check_quantizer
from world_model.tensformer import TENSFormer


def check_motion_tokenizer(model: TENSFormer, motion_tokenizer: EgoMotionTokenizer) -> None:
    """The motion tokenizer must have the vocabulary the model was built for."""
    if motion_tokenizer.vocab_size != model.config.motion_vocab:
        raise ValueError(
            f"the motion tokenizer has {motion_tokenizer.vocab_size} tokens (bins "
            f"{motion_tokenizer.bins}), the model expects {model.config.motion_vocab}: use "
            "the bins saved with the model's run"
        )


def tensformer_rollout(
    model: TENSFormer, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    past, past_poses, future_poses, temperature: float = 1.0, top_k: int = 0,
    top_p: float = 1.0, seed: int = 0, plan: bool = False,
) -> Rollout:  # fmt: skip
    """The forecast's tokens: Rollout(ids (B, T_f, L), motions (B, T_f)) from past grids
    (B, T_p, X, Y, Z) and poses; the future poses steer it (plan=False) or only set T_f
    (plan=True: the motions are the model's own, what the planning score reads)."""
    device = model.scene_head.weight.device
    B, T_p = past.shape[:2]
    T_f = future_poses.shape[1]
    frames = rearrange(past, "b t x y z -> (b t) x y z").to(device)
    ids_BTL = rearrange(tokenizer.encode(frames), "(b t) l -> b t l", b=B)  # (B, T_p, L)
    poses = torch.cat([past_poses, future_poses], dim=1)  # (B, T_p + T_f, 4, 4)
    motions = motion_tokenizer.encode(relative_motion(poses)).to(device)  # (B, T - 1)
    past_m, future_m = motions[:, : T_p - 1], motions[:, T_p - 1 :]  # (B, T_p-1), (B, T_f)
    generator = torch.Generator(device).manual_seed(seed)
    return generate(
        model, tokenizer.quantizer, ids_BTL, past_m, None if plan else future_m,
        future_frames=T_f, temperature=temperature, top_k=top_k, top_p=top_p,
        generator=generator,
    )  # fmt: skip


def tensformer_forecaster(
    model: TENSFormer, tokenizer: nn.Module, motion_tokenizer: EgoMotionTokenizer,
    temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
    plan: bool = False,
) -> Forecaster:  # fmt: skip
    """A `Forecaster` (past (B, T_p, X, Y, Z), past_poses (B, T_p, 4, 4), future_poses
    (B, T_f, 4, 4)) -> (B, T_f, X, Y, Z) uint8 on the CPU, from a trained TENSFormer, the
    multi-scale scene tokenizer it was trained on and the motion bins of its run."""
    check_quantizer(model, tokenizer.quantizer)
    check_motion_tokenizer(model, motion_tokenizer)
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, plan=plan)

    @torch.no_grad()
    def forecast(past, past_poses, future_poses):
        rollout = tensformer_rollout(model, tokenizer, motion_tokenizer, past, past_poses,
                                     future_poses, **sampling)  # fmt: skip
        return decode_frames(tokenizer, rollout.ids).to(torch.uint8).cpu()  # (B, T_f, X, Y, Z)

    return forecast
