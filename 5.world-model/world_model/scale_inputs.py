"""From token ids to what the TENSFormer's positions read: the frozen quantizer's side.

For a clip of flat ids (B, T, L) (chapter 3's `join_ids` per frame, coarse to fine) and motion
tokens (B, T - 1) (m_1 .. m_{T-1}: `EgoMotionTokenizer.encode(relative_motion(poses))`):

    same_BTlE[:, t]  = [down(f_hat_{k-1}^t, s_k) for k = 2..n], flattened     (B, T, L - 1, E)
    prev_BTLE[:, t]  = [down(f_hat^{t-1},   s_k) for k = 1..n], flattened     (B, T, L, E)
    motions_BT       = [START, m_1, ..., m_{T-1}]                             (B, T)

f_hat_{k-1}^t is frame t's reconstruction through scale k-1 (chapter 3's
`teacher_forcing_input`), f_hat^{t-1} the previous frame's full reconstruction (`ids_to_latent`;
zeros before frame 0). The quantizer is the scene tokenizer's, frozen: no gradient reaches it.
The checks here raise ValueError saying what was expected.

Shapes: B batch, T frames, L flattened sequence length of one frame (its tokens), l = L - 1,
E code dims, h = w = s_n the latent side.
"""

import torch
from einops import rearrange

from world_model.tensformer import TENSFormer


def check_quantizer(model: TENSFormer, quantizer) -> None:
    """The quantizer must be the one the model's config was made from."""
    c = model.config
    got = (tuple(quantizer.scales), quantizer.codebook_size, quantizer.dim)
    if got != (c.scales, c.codebook_size, c.code_dim):
        raise ValueError(
            f"the quantizer has (scales, codebook_size, dim) = {got}, the model expects "
            f"{(c.scales, c.codebook_size, c.code_dim)}"
        )


def check_ids(model: TENSFormer, ids_BTL: torch.Tensor, name: str = "ids") -> None:
    L, K = model.layout.tokens_per_frame, model.config.codebook_size
    if ids_BTL.dim() != 3 or ids_BTL.shape[2] != L:
        raise ValueError(
            f"{name} must be (B, T, L={L}) for scales {model.config.scales} "
            f"(L = sum of s_k^2 tokens a frame), got {tuple(ids_BTL.shape)}"
        )
    _check_range(ids_BTL, K, name)


def check_motions(model: TENSFormer, motions: torch.Tensor, shape: tuple, name: str) -> None:
    if tuple(motions.shape) != tuple(shape):
        raise ValueError(f"{name} must be {tuple(shape)} motion tokens, got {tuple(motions.shape)}")
    _check_range(motions, model.config.motion_vocab, name)


def _check_range(tokens: torch.Tensor, size: int, name: str) -> None:
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"{name} must be integer tokens, got {tokens.dtype}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= size):
        raise ValueError(
            f"{name} must lie in [0, {size}), found [{int(tokens.min())}, {int(tokens.max())}]"
        )


def check_clip(model: TENSFormer, quantizer, ids_BTL, motions_Bt) -> None:
    """A training clip: ids (B, T, L), T in (context, max_frames]; motions (B, T - 1)."""
    check_quantizer(model, quantizer)
    check_ids(model, ids_BTL)
    B, T, _ = ids_BTL.shape
    c = model.config
    if not c.context < T <= c.max_frames:
        raise ValueError(
            f"a clip needs context={c.context} frames and at least one more, at most "
            f"max_frames={c.max_frames}; got T={T}"
        )
    check_motions(model, motions_Bt, (B, T - 1), "motions (m_1 .. m_{T-1})")


def with_start(model: TENSFormer, motions_Bt: torch.Tensor) -> torch.Tensor:
    """(B, T - 1) motions m_1 .. m_{T-1} -> (B, T): START (no previous frame) for frame 0."""
    start = motions_Bt.new_full((motions_Bt.shape[0], 1), model.start_motion)
    return torch.cat([start, motions_Bt.long()], dim=1)


def previous_frame_input(quantizer, f_hat_BEhw: torch.Tensor) -> torch.Tensor:
    """A frame's full f_hat (B, E, h, w) -> what the next frame's positions read of it:
    area-down to every s_k, flattened coarse to fine (B, L, E)."""
    downs = [quantizer.down(f_hat_BEhw, s) for s in quantizer.scales]  # [(B, E, s_k, s_k)]
    return torch.cat([rearrange(x, "b e h w -> b (h w) e") for x in downs], dim=1)


@torch.no_grad()
def teacher_forced_inputs(quantizer, ids_BTL: torch.Tensor):
    """Ids (B, T, L) -> (same_BTlE, prev_BTLE), the layout of the module docstring."""
    B, T, _ = ids_BTL.shape
    per_scale = quantizer.split_ids(rearrange(ids_BTL, "b t l -> (b t) l"))  # [(BT, s_k, s_k)]
    inputs = quantizer.teacher_forcing_input(per_scale)  # k = 2..n: [(BT, E, s_k, s_k)]
    flat = [rearrange(x, "n e h w -> n (h w) e") for x in inputs]  # [(BT, s_k^2, E)]
    same = torch.cat(flat, dim=1)  # (BT, L - 1, E)
    full = rearrange(quantizer.ids_to_latent(per_scale), "(b t) e h w -> b t e h w", b=B)
    prev = torch.cat([torch.zeros_like(full[:, :1]), full[:, :-1]], dim=1)  # frame t-1's f_hat
    prev = previous_frame_input(quantizer, rearrange(prev, "b t e h w -> (b t) e h w"))
    return (
        rearrange(same, "(b t) l e -> b t l e", b=B),  # (B, T, L - 1, E)
        rearrange(prev, "(b t) l e -> b t l e", b=B),  # (B, T, L, E)
    )


def teacher_forced_logits(model: TENSFormer, quantizer, ids_BTL, motions_Bt, check=True):
    """Ids (B, T, L), motions (B, T - 1) -> (scene logits (B, T, L, K), motion logits
    (B, T, M)); motion_logits[:, t] predicts m_{t+1}. `check=False` skips the clip-length
    check (generation's no-cache twin runs on partial clips)."""
    if check:
        check_clip(model, quantizer, ids_BTL, motions_Bt)
    same_BTlE, prev_BTLE = teacher_forced_inputs(quantizer, ids_BTL)
    return model(with_start(model, motions_Bt), same_BTlE, prev_BTLE)
