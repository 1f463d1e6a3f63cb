"""Forecasting with the TENSFormer: frame by frame in time, scale by scale in space.

    prefill: the context frames in one pass (the full mask), filling a KV cache; frames after
             them are not there yet, so the cache holds exactly what the mask would allow
    for each future frame t:
        m_t    = the given future motion (control), or drawn from the motion head on the
                 mean of frame t-1's last block (planning)
        f_hat  = 0
        for k = 1..n:                      (one pass over the s_k^2 positions of block k)
            input_k = E_m[m_t] (k = 1) or W_in down(f_hat, s_k) (k >= 2)
                      + W_prev down(f_hat^{t-1}, s_k)
            ids_k  ~ sampler(scene_head(outputs of block k))        (s_k^2 tokens in parallel)
            f_hat  = f_hat + phi_k(up(codebook[ids_k]))              (`quantizer.add_scale`)
        f_hat^t = f_hat: what frame t+1 reads as its previous frame

The sampler reads logits only: temperature, then top-k, then top-p (chapter 2's
`sample_from_logits`, `top_p_filter`; top-k is here). Scene and motion tokens are drawn with
the same settings (top-k capped at the vocabulary). `generate_no_cache` recomputes the whole
teacher-forced pass for every block (unknown finer scales zero-filled: the mask hides them):
the same draws in the same order, so the same ids for the same generator state; the tests
compare the two. Decoding ids to occupancy is the scene tokenizer's (`decode_frames`).

Shapes: B batch, T_p past frames, T_f future frames, L flattened sequence length of one frame
(its tokens), E code dims, K codebook size, "vocab" the ego-motion tokens' vocabulary, h = w = s_n.
"""

from typing import NamedTuple

import torch
from dynamics_model.kv_cache import KVCache
from dynamics_model.sampling import sample_from_logits
from einops import rearrange

from world_model.scale_inputs import (
    check_ids,
    check_motions,
    check_quantizer,
    previous_frame_input,
    teacher_forced_inputs,
    teacher_forced_logits,
    with_start,
)
from world_model.tensformer import TENSFormer


class Rollout(NamedTuple):
    ids: torch.Tensor  # (B, T_f, L) int64, each frame as chapter 3's `join_ids` lays it out
    motions: torch.Tensor  # (B, T_f) int64, m_t of each future frame (given or drawn)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the top_k largest logits of each row (..., K), the rest -inf; 0 = keep all."""
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if top_k == 0 or top_k >= logits.shape[-1]:
        return logits
    kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_tokens(logits, temperature=1.0, top_k=0, top_p=1.0, generator=None) -> torch.Tensor:
    """Logits (..., K) -> ids (...): top-k, then temperature and top-p (0 = greedy)."""
    return sample_from_logits(top_k_filter(logits, top_k), temperature, top_p, generator)


def _check_request(model, quantizer, past_ids, past_motions, future_motions, future_frames):
    """Checks the arguments of `generate`; returns T_f."""
    check_quantizer(model, quantizer)
    check_ids(model, past_ids, "past_ids")
    B, T_p, _ = past_ids.shape
    c = model.config
    if T_p < c.context:
        raise ValueError(
            f"past_ids holds {T_p} frames; the model forecasts after context={c.context} "
            f"past frames (it is never trained to predict earlier frames)"
        )
    check_motions(model, past_motions, (B, T_p - 1), "past_motions (m_1 .. m_{T_p-1})")
    if future_motions is not None:
        T_f = future_motions.shape[1] if future_frames is None else future_frames
        check_motions(model, future_motions, (B, T_f), "future_motions (B, T_f)")
    else:
        T_f = c.max_frames - T_p if future_frames is None else future_frames
    if T_f < 1 or T_p + T_f > c.max_frames:
        raise ValueError(
            f"{T_p} past + {T_f} future frames: need >= 1 future frame and at most "
            f"max_frames={c.max_frames} in all"
        )
    return T_f


@torch.no_grad()
def generate(
    model: TENSFormer, quantizer, past_ids, past_motions, future_motions=None,
    future_frames=None, temperature=1.0, top_k=0, top_p=1.0, generator=None,
) -> Rollout:  # fmt: skip
    """Forecast T_f frames after past_ids (B, T_p, L) with past_motions (B, T_p - 1) =
    m_1 .. m_{T_p-1}, using a KV cache. future_motions (B, T_f): given (control); None:
    drawn from the motion head (planning), T_f = future_frames or max_frames - T_p."""
    T_f = _check_request(model, quantizer, past_ids, past_motions, future_motions, future_frames)
    B, T_p, L = past_ids.shape
    lay, c, param = model.layout, model.config, model.scene_head.weight
    draw = lambda logits: sample_tokens(logits, temperature, top_k, top_p, generator)  # noqa: E731
    cache = KVCache(c.depth, B, c.heads, (T_p + T_f) * L, c.dim // c.heads, param.device,
                    param.dtype)  # fmt: skip
    same_BTlE, prev_BTLE = teacher_forced_inputs(quantizer, past_ids)
    content = model.content(with_start(model, past_motions), same_BTlE, prev_BTLE)
    h = model.hidden(content, 0, cache)  # (B, T_p * L, D): prefill
    motion_logits = model.motion_logits(h[:, -lay.block_sizes[-1] :])  # (B, vocab): m_{T_p}
    prev_BEhw = quantizer.ids_to_latent(quantizer.split_ids(past_ids[:, -1]))  # f_hat^{T_p-1}
    frames, motions = [], []
    for j in range(T_f):
        m_B = draw(motion_logits) if future_motions is None else future_motions[:, j].long()
        ids_BL, prev_BEhw, last_BsD = _next_frame(model, quantizer, cache, m_B, prev_BEhw, draw)
        motion_logits = model.motion_logits(last_BsD)  # frame t's last block -> m_{t+1}
        frames.append(ids_BL)
        motions.append(m_B)
    return Rollout(torch.stack(frames, dim=1), torch.stack(motions, dim=1))


def _next_frame(model: TENSFormer, quantizer, cache: KVCache, m_B, prev_BEhw, draw):
    """Frame t scale by scale after the cache: motion m_B (B,), the previous frame's f_hat
    (B, E, h, w). Returns ids (B, L), the frame's f_hat, the outputs of its last block."""
    lay = model.layout
    prev_BLE = previous_frame_input(quantizer, prev_BEhw)  # (B, L, E)
    f_hat_BEhw = torch.zeros_like(prev_BEhw)
    ids_per_block = []
    for k, side in enumerate(lay.scales):
        if k == 0:
            first = m_B  # (B,): the motion slot
        else:  # f_hat through scale k-1, at scale k's size
            first = rearrange(quantizer.next_scale_input(f_hat_BEhw, k), "b e h w -> b (h w) e")
        content = model.block_content(k, first, prev_BLE[:, lay.block_slice(k)])
        h_BsD = model.hidden(content, cache.length, cache)  # (B, s_k^2, D)
        ids_Bs = draw(model.scene_head(h_BsD))  # (B, s_k^2), drawn in parallel
        ids_Bhw = rearrange(ids_Bs, "b (h w) -> b h w", h=side)
        f_hat_BEhw = quantizer.add_scale(f_hat_BEhw, ids_Bhw, k)  # through scale k
        ids_per_block.append(ids_Bs)
    return torch.cat(ids_per_block, dim=1), f_hat_BEhw, h_BsD


@torch.no_grad()
def generate_no_cache(
    model: TENSFormer, quantizer, past_ids, past_motions, future_motions=None,
    future_frames=None, temperature=1.0, top_k=0, top_p=1.0, generator=None,
) -> Rollout:  # fmt: skip
    """As `generate`, recomputing the whole teacher-forced pass for every block (slow,
    simple): its twin, kept uncached on purpose; the tests compare the two."""
    T_f = _check_request(model, quantizer, past_ids, past_motions, future_motions, future_frames)
    B, T_p, L = past_ids.shape
    lay = model.layout
    draw = lambda logits: sample_tokens(logits, temperature, top_k, top_p, generator)  # noqa: E731
    ids_BTL, motions_Bt = past_ids.long(), past_motions.long()
    for j in range(T_f):
        t = T_p + j
        if future_motions is None:
            _, motion_logits = teacher_forced_logits(model, quantizer, ids_BTL, motions_Bt, False)
            m_B = draw(motion_logits[:, t - 1])  # frame t-1's head predicts m_t
        else:
            m_B = future_motions[:, j].long()
        motions_Bt = torch.cat([motions_Bt, m_B[:, None]], dim=1)  # (B, t)
        frame_B1L = ids_BTL.new_zeros(B, 1, L)  # scales not drawn yet: 0, hidden by the mask
        for k in range(lay.num_blocks):
            clip = torch.cat([ids_BTL, frame_B1L], dim=1)  # (B, t + 1, L)
            scene_logits, _ = teacher_forced_logits(model, quantizer, clip, motions_Bt, False)
            frame_B1L[:, 0, lay.block_slice(k)] = draw(scene_logits[:, t, lay.block_slice(k)])
        ids_BTL = torch.cat([ids_BTL, frame_B1L], dim=1)
    return Rollout(ids_BTL[:, T_p:], motions_Bt[:, T_p - 1 :])


def decode_frames(tokenizer, ids_BTL: torch.Tensor) -> torch.Tensor:
    """Ids (B, T, L) -> class ids (B, T, X, Y, Z) with chapter 3's multiscale `SceneTokenizer`."""
    grids = tokenizer.decode(rearrange(ids_BTL, "b t l -> (b t) l"))  # (B*T, X, Y, Z)
    return rearrange(grids, "(b t) x y z -> b t x y z", b=ids_BTL.shape[0])
