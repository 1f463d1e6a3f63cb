"""Chapter 2: action-conditioned dynamics on tokens (Genie's LAM and MaskGIT, an AR GPT)."""

from dynamics_model.ar import ARConfig, ARDynamics, KVCache
from dynamics_model.lam import LatentActionConfig, LatentActionModel
from dynamics_model.maskgit import (
    DecodeTrace,
    MaskGITConfig,
    MaskGITDynamics,
    mask_schedule,
    num_masked,
    random_mask,
)
from dynamics_model.sampling import sample_from_logits, top_p_filter

__all__ = [
    "ARConfig",
    "ARDynamics",
    "DecodeTrace",
    "KVCache",
    "LatentActionConfig",
    "LatentActionModel",
    "MaskGITConfig",
    "MaskGITDynamics",
    "mask_schedule",
    "num_masked",
    "random_mask",
    "sample_from_logits",
    "top_p_filter",
]
