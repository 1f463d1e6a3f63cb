"""The TENSFormer's teacher-forced loss: cross-entropy on the future frames only.

For a clip of T frames whose first `context` are the past (inputs, never targets):

    scene  = mean over future frames t >= context and their L tokens j of  -log p(id_{t,j})
    motion = mean over future frames t >= context of  -log p(m_t)   (read at frame t-1's last
             block, so frame context-1's head predicts the first future motion)
    loss   = scene + motion_weight * motion

Every token of every scale weighs the same (VAR's loss), so the finest scale, with most of
the tokens, dominates the scene term. Per-scale cross-entropies are reported beside it.

Shapes: B batch, T frames, L flattened sequence length of one frame (its tokens), K codebook
size; "vocab" the ego-motion tokens' vocabulary.
"""

import torch
import torch.nn.functional as F

from world_model.scale_inputs import teacher_forced_logits
from world_model.tensformer import TENSFormer


def future_cross_entropy(
    model: TENSFormer, scene_logits_BTLK, motion_logits_BTM, ids_BTL, motions_Bt
) -> tuple[torch.Tensor, dict]:
    """Logits of a teacher-forced pass and the clip's targets (ids (B, T, L), motions
    (B, T - 1) = m_1 .. m_{T-1}) -> (loss, metrics). Only frames >= context are scored."""
    c, lay = model.config, model.layout
    logits = scene_logits_BTLK[:, c.context :]  # (B, T_f, L, K)
    targets = ids_BTL[:, c.context :]  # (B, T_f, L)
    ce_BTL = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none")
    ce_BTL = ce_BTL.view(targets.shape)  # (B, T_f, L)
    scene = ce_BTL.mean()
    # motion_logits[:, t - 1] predicts m_t, which is motions_Bt[:, t - 1]
    motion_logits = motion_logits_BTM[:, c.context - 1 : -1]  # (B, T_f, vocab)
    motion_targets = motions_Bt[:, c.context - 1 :]  # (B, T_f)
    motion = F.cross_entropy(motion_logits.flatten(0, 1).float(), motion_targets.flatten())
    loss = scene + c.motion_weight * motion
    metrics = {
        "scene_ce": scene.detach(),
        "motion_ce": motion.detach(),
        "scene_accuracy": (logits.argmax(-1) == targets).float().mean(),
        "motion_accuracy": (motion_logits.argmax(-1) == motion_targets).float().mean(),
    }
    for k, side in enumerate(c.scales):  # the coarse scales are the hard ones to forecast
        metrics[f"scene_ce_s{side}"] = ce_BTL[:, :, lay.block_slice(k)].mean().detach()
    return loss, metrics  # tensors: no sync per step


def tensformer_loss(model: TENSFormer, quantizer, ids_BTL, motions_Bt):
    """One clip batch (ids (B, T, L), motions (B, T - 1)) -> (loss, metrics); the quantizer
    is the frozen scene tokenizer's."""
    scene_logits, motion_logits = teacher_forced_logits(model, quantizer, ids_BTL, motions_Bt)
    return future_cross_entropy(model, scene_logits, motion_logits, ids_BTL, motions_Bt)
