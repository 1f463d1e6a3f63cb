"""Metrics shared by the chapters; each tested against hand-computed cases."""

from worldmodels.metrics.codebook import (
    CodebookStats,
    code_histogram,
    perplexity_from_histogram,
    usage_from_histogram,
)
from worldmodels.metrics.image import psnr
from worldmodels.metrics.lidar import (  # noqa: F401  (Chamfer, depth L1/AbsRel)
    COPILOT4D_REGION,
    chamfer_distance,
    crop_to_region,
    depth_absrel,
    depth_errors,
    depth_l1,
    nearest_neighbor_distances,
)
from worldmodels.metrics.occupancy import (  # noqa: F401  (Occ3D mIoU / IoU)
    OccupancyMetric,
    OccupancyScores,
    confusion_matrix,
    occupancy_scores,
    scores_from_confusion,
)
from worldmodels.metrics.tokens import (  # noqa: F401  (token CE, baselines, ΔtPSNR, NMI)
    copy_last_frame_accuracy,
    delta_psnr,
    label_cooccurrence,
    normalized_mutual_information,
    token_cross_entropy,
    unigram_cross_entropy,
    unigram_entropy,
)
