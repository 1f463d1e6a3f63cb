"""Finite Scalar Quantization (Mentzer et al. 2023, "FSQ: VQ-VAE Made Simple").

VQ keeps a codebook of K learned vectors and snaps each latent to its nearest one, which
needs a commitment loss, and in practice EMA updates and dead-code restarts, to keep the
codebook in use. FSQ has no codebook to learn. Each of the E latent channels is squashed
into a bounded range and rounded to one of L_i evenly spaced values; the code is the tuple
of E rounded values, so the codebook is the implicit grid

    K = prod_i L_i            e.g. levels (8, 5, 5, 5) -> 1000 codes, close to VQ's 1024.

Every grid point is reachable by construction and rounding has no parameters, so there is no
codebook to collapse and no auxiliary loss. Gradients pass through the rounding with the
straight-through estimator.

Levels of 5 or more per channel are what the paper uses. L = 2 is accepted but lopsided
here: the centring shift below puts its only rounding boundary at z = -3.8, far from 0.

Shapes: E = len(levels) code channels, K codebook size, "..." any leading axes.
"""

import math

import torch
from torch import nn

from video_tokenizer.quantizer import Quantized


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity in the backward pass (straight-through).

    x + (round(x) - x).detach() equals round(x) in value, but its derivative with respect to
    x is 1, since the detached term is a constant to autograd.
    """
    return x + (x.round() - x).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer with `levels[i]` values on channel i: z (..., E) -> codes in
    [-1, 1] (..., E) and int64 indices (...) in [0, K)."""

    def __init__(self, levels: tuple[int, ...], eps: float = 1e-3):
        super().__init__()
        if len(levels) == 0 or any(int(L) < 2 for L in levels):
            raise ValueError(f"FSQ levels must be a non-empty tuple of ints >= 2, got {levels}")
        self.levels = tuple(int(L) for L in levels)
        self.eps = eps
        L = torch.tensor(self.levels, dtype=torch.float32)  # (E,)
        # Mixed-radix place values: basis_i = prod_{j<i} L_j, e.g. (8, 5, 5) -> (1, 8, 40),
        # so index = sum_i digit_i * basis_i, like digits of a number in base (8, 5, 5).
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1]), dim=0)  # (E,) int64
        # Buffers, not parameters: they move with .to(device) but are never trained, and
        # persistent=False keeps them out of the checkpoint (they follow from `levels`).
        self.register_buffer("_levels", L, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        """E, the number of code channels."""
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        """K = prod_i L_i."""
        return math.prod(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash z (..., E) so that rounding channel i gives exactly L_i integers.

        Odd L (say 5): half = 2; tanh(z) * half lies in (-2, 2) and rounds to
        {-2, -1, 0, 1, 2}: five values, symmetric about 0.
        Even L (say 4): a symmetric range would round to an odd count, so the range is
        shifted down by half a step, offset = 0.5: tanh(.) * 1.5 - 0.5 lies in (-2, 1) and
        rounds to {-2, -1, 0, 1}: four values. The shift atanh(offset / half) inside tanh
        makes z = 0 map to bound 0, the middle of a level, not a rounding boundary.
        half is widened by (1 + eps) so that offset / half < 1 even for L = 2 (atanh(1) is
        infinite); the overshoot eps cannot reach another level, which is 0.5 further away.
        """
        half = (self._levels - 1) / 2 * (1 + self.eps)  # (E,)
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)  # (E,): 0.5 for even L
        shift = torch.atanh(offset / half)  # (E,)
        return torch.tanh(z + shift) * half - offset  # (..., E)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (..., E) in [-1, 1]: L_i evenly spaced values per channel, STE gradient."""
        rounded = round_ste(self.bound(z))  # (..., E): integers, e.g. {-2, -1, 0, 1} for L=4
        # Undo the even offset, {-1.5, -0.5, 0.5, 1.5}, and divide by centre = (L-1)/2 so that
        # every channel spans [-1, 1] exactly: L=4 -> {-1, -1/3, 1/3, 1}, L=5 -> {-1, -1/2, ..., 1}.
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)  # (E,)
        centre = (self._levels - 1) / 2  # (E,)
        return (rounded + offset) / centre  # (..., E)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (..., E) on the grid -> int64 indices (...) in [0, K)."""
        # Digit d_i in {0, ..., L_i - 1}: the inverse of code = (d - centre) / centre.
        centre = (self._levels - 1) / 2  # (E,)
        digits = (codes.float() * centre + centre).round().long()  # (..., E)
        return (digits * self._basis).sum(dim=-1)  # (...): sum_i d_i * prod_{j<i} L_j

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Int64 indices (...) in [0, K) -> float32 codes (..., E) in [-1, 1]."""
        # d_i = floor(index / prod_{j<i} L_j) mod L_i, reading off one mixed-radix digit each.
        digits = (indices[..., None] // self._basis) % self._levels.long()  # (..., E)
        centre = (self._levels - 1) / 2  # (E,)
        # code = (d - centre) / centre: the same exact numerator and divisor as `quantize`,
        # so decoding an index gives bit for bit the code the forward pass produced.
        return (digits - centre) / centre  # (..., E) float32

    def implicit_codebook(self) -> torch.Tensor:
        """All K codes as a (K, E) float32 tensor, row k being the code of index k."""
        return self.indices_to_codes(torch.arange(self.codebook_size, device=self._basis.device))

    def forward(self, z: torch.Tensor) -> Quantized:
        """z (..., E) -> Quantized(codes (..., E) in z's dtype, indices (...) int64, 0 loss)."""
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"FSQ with levels {self.levels} expects {self.dim} channels, got {z.shape[-1]}"
            )
        # In float32 even under bf16 autocast: bf16 has 8 bits of mantissa, too few to place
        # tanh(z) * half reliably on the right side of a rounding boundary.
        codes = self.quantize(z.float())  # (..., E)
        indices = self.codes_to_indices(codes)  # (...)
        no_aux_loss = z.new_zeros((), dtype=torch.float32)  # nothing to learn, nothing to add
        return Quantized(codes.to(z.dtype), indices, no_aux_loss)
