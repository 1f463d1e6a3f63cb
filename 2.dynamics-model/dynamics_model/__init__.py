"""Chapter 2: action-conditioned dynamics on tokens (Genie's LAM and MaskGIT, an AR GPT)."""

from dynamics_model.ar import ARConfig, ARDynamics
from dynamics_model.kv_cache import KVCache
from dynamics_model.lam import LatentActionConfig, LatentActionModel
from dynamics_model.maskgit import (
    DecodeTrace,
    MaskGITConfig,
    MaskGITDynamics,
    num_masked,
    random_mask,
)
from dynamics_model.maskgit_decode import Decoded, mask_schedule, maskgit_decode
from dynamics_model.rollout import NextFramePredictor, rollout, rollout_model
from dynamics_model.sampling import SampleConfig, sample_from_logits, top_p_filter

__all__ = [
    "ARConfig",
    "ARDynamics",
    "DecodeTrace",
    "Decoded",
    "KVCache",
    "LatentActionConfig",
    "LatentActionModel",
    "MaskGITConfig",
    "MaskGITDynamics",
    "NextFramePredictor",
    "SampleConfig",
    "mask_schedule",
    "maskgit_decode",
    "num_masked",
    "random_mask",
    "rollout",
    "rollout_model",
    "sample_from_logits",
    "top_p_filter",
]
