"""The plain VQ-VAE quantizer (van den Oord et al. 2017), kept plain on purpose.

A codebook of K learned vectors e_k in R^E; each latent z is replaced by its nearest one,

    k* = argmin_k ||z - e_k||^2,        z_q = e_{k*}.

argmin has no gradient, so two tricks make it trainable:
  - straight-through: the decoder gets z + sg[z_q - z] (value z_q, gradient as if identity),
    so the encoder learns from the reconstruction loss as if there were no quantizer;
  - an auxiliary loss moves codes and latents towards each other,

    loss = ||sg[z] - z_q||^2  +  beta * ||z - sg[z_q]||^2
           codebook term:          commitment term:
           pull the chosen code    keep the encoder near its code,
           onto the latent         beta = 0.25 as in the paper

(sg = stop-gradient). No EMA updates, no dead-code restarts: codes that are never chosen
never receive a gradient and stay dead. That is the codebook collapse the notebook shows,
and the reason FSQ exists (chapter 2's latent action model, which Genie built on a VQ,
uses FSQ for the same reason).

Shapes: K codebook size, E code dims, "..." any leading axes, L their flattened length.
"""

import torch
import torch.nn.functional as F
from einops import pack, unpack
from torch import nn

from video_tokenizer.quantizer import Quantized


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantizer: z (..., E) -> Quantized(z_q (..., E), indices (...), loss)."""

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25):
        super().__init__()
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"need codebook_size >= 1 and dim >= 1, got {codebook_size}, {dim}")
        self.beta = beta
        self.codebook = nn.Embedding(codebook_size, dim)  # (K, E): the weight is the codebook
        # Uniform in [-1/K, 1/K], the usual VQ-VAE init: all codes start near the origin,
        # inside the cloud of latents, so each latent's nearest code is decided by direction
        # and many codes get picked. Codes drawn at the latents' own scale or larger (try
        # N(0, 1)) mostly start far from every latent, and one or two codes take everything.
        nn.init.uniform_(self.codebook.weight, -1 / codebook_size, 1 / codebook_size)

    @property
    def codebook_size(self) -> int:
        """K, the number of codes."""
        return self.codebook.num_embeddings

    @property
    def dim(self) -> int:
        """E, the width of a code."""
        return self.codebook.embedding_dim

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Int64 indices (...) -> codes (..., E)."""
        return self.codebook(indices)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index (...) of the code nearest to each z (..., E) in L2."""
        flat, packed_shape = pack([z], "* e")  # (L, E)
        codebook = self.codebook.weight  # (K, E)
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, without building an (L, K, E) tensor;
        # ||z||^2 is the same for every k, so it does not change the argmin and is skipped.
        distances = codebook.pow(2).sum(-1) - 2 * flat @ codebook.T  # (L, K)
        [indices] = unpack(distances.argmin(dim=-1), packed_shape, "*")  # (...)
        return indices

    def forward(self, z: torch.Tensor) -> Quantized:
        """z (..., E) -> Quantized(z_q (..., E) in z's dtype, indices (...) int64, loss ())."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"VectorQuantizer expects {self.dim} channels, got {z.shape[-1]}")
        # In float32 even under autocast: distances are differences of large sums, and in
        # bf16 near-ties would pick the wrong code.
        with torch.autocast(z.device.type, enabled=False):
            z32 = z.float()  # (..., E)
            indices = self.nearest(z32.detach())  # (...)
            z_q = self.indices_to_codes(indices)  # (..., E): gradient reaches the codebook
            codebook_loss = F.mse_loss(z_q, z32.detach())  # ||sg[z] - e||^2: moves codes
            commitment_loss = F.mse_loss(z32, z_q.detach())  # ||z - sg[e]||^2: moves encoder
            loss = codebook_loss + self.beta * commitment_loss
            z_q = z32 + (z_q - z32).detach()  # straight-through: value z_q, gradient dz
        return Quantized(z_q.to(z.dtype), indices, loss)
