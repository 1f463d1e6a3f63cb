"""Chapter 5: occupancy world models. The forecasting benchmark (OccWorld's protocol on the
driving world): windows, baselines, scores with intervals, speed; OccTENS's TENSFormer
(temporal next-scale prediction): layout and mask, the network, its loss, its generation; the
autoregressive baseline (chapter 2's GPT over single-scale tokens); CoPilot4D's MaskGIT
discrete diffusion over the same single-scale tokens; and OccSora's trajectory-conditioned
diffusion transformer over the continuous latent of chapter 3's 4D tokenizer."""

from world_model.ar_baseline import (
    ARTeacherForcedEvaluator,
    ar_config_matching,
    ar_forecaster,
    ar_loss,
    ar_rollout,
    make_ar_loss,
)
from world_model.baselines import (
    Codec,
    Forecaster,
    copy_last,
    standard_baselines,
    tokenizer_codec,
    warp_last,
)
from world_model.benchmark import forecast_speed, run_benchmark
from world_model.dit_forecast import (
    dit_forecaster,
    dit_rollout,
    fourd_codec,
    generate_from_trajectory,
    sample_latent,
)
from world_model.dit_world import (
    DiTEvaluator,
    DiTWorldConfig,
    dit_config_matching,
    dit_loss,
    make_dit_loss,
)
from world_model.forecast_scores import DYNAMIC_CLASSES, HORIZONS, METRICS, HorizonCounts
from world_model.forecaster import tensformer_forecaster
from world_model.generate import (
    Rollout,
    decode_frames,
    generate,
    generate_no_cache,
    sample_tokens,
    top_k_filter,
)
from world_model.latent_clips import LatentClips, fit_latent_scale
from world_model.layout import FrameLayout, attention_mask, check_scales
from world_model.maskgit_forecast import maskgit_forecaster, maskgit_rollout, sample_future
from world_model.maskgit_world import (
    MaskGITEvaluator,
    MaskGITWorld,
    MaskGITWorldConfig,
    make_maskgit_loss,
    maskgit_config_matching,
    maskgit_loss,
)
from world_model.scale_inputs import teacher_forced_inputs, teacher_forced_logits
from world_model.tens_loss import future_cross_entropy, tensformer_loss
from world_model.tensformer import TENSFormer, TENSFormerConfig
from world_model.token_data import TokenClips, fit_motion_tokenizer
from world_model.windows import (
    FUTURE_FRAMES,
    PAST_FRAMES,
    ForecastWindows,
    Window,
    load_windows,
    shared_with_training,
)
