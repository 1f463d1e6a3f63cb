"""Metrics shared by the chapters; each tested against hand-computed cases."""

from worldmodels.metrics.codebook import (
    CodebookStats,
    code_histogram,
    perplexity_from_histogram,
    usage_from_histogram,
)
from worldmodels.metrics.image import psnr
