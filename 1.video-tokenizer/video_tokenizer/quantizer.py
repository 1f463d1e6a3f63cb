"""What every quantizer returns, and what every quantizer has.

A quantizer maps continuous latents z (..., E) to the nearest point of a finite codebook of K
codes. FSQ's codebook is an implicit grid, VQ's a learned table; later chapters add a
multi-scale residual quantizer (VAR) and a VQ with k-means restarts (CoPilot4D). They are
interchangeable because they share one return type and one protocol: a model calls
`quantizer(z)` and reads `.codes`, `.indices` and `.aux_loss`, whatever the quantizer is.

Shapes: "..." any leading axes, E code dims, K codebook size.
"""

from typing import NamedTuple, Protocol

import torch


class Quantized(NamedTuple):
    """What `quantizer(z)` returns for latents z (..., E)."""

    codes: torch.Tensor  # (..., E) in z's dtype: the chosen codes, straight-through gradient
    indices: torch.Tensor  # (...) int64 in [0, K): which code each latent became
    aux_loss: torch.Tensor  # () float32: loss to add to the task loss (VQ's codebook and
    # commitment terms; 0 for FSQ, which has nothing to learn)


class Quantizer(Protocol):
    """The interface a model relies on; FSQ and VectorQuantizer implement it."""

    @property
    def codebook_size(self) -> int:
        """K, the number of distinct indices."""
        ...

    @property
    def dim(self) -> int:
        """E, the width of a code."""
        ...

    def __call__(self, z: torch.Tensor) -> Quantized:
        """Latents z (..., E) -> Quantized(codes (..., E), indices (...), aux_loss ())."""
        ...

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Int64 indices (...) -> codes (..., E), the same codes `__call__` returns for them."""
        ...
