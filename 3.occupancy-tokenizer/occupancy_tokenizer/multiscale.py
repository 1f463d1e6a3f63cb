"""VAR's multi-scale residual quantizer (Tian et al. 2024), the tokenizer of next-scale
prediction (OccTENS's scene tokens).

A latent f (B, E, h, w) is tokenized n times, coarse to fine, at sides s_1 < ... < s_n = h
(n scales, say 1, 2, 4, 8, 16), with one shared codebook. Each scale quantizes what the
coarser scales left unexplained:

    rest_0 = f,  f_hat_0 = 0
    for k = 1..n:
        ids_k    = nearest code to area_down(rest_{k-1}, s_k)           (B, s_k, s_k)
        c_k      = phi_k( up( codebook[ids_k], h ) )                     (B, E, h, w)
        f_hat_k  = f_hat_{k-1} + c_k,    rest_k = rest_{k-1} - c_k      (residual after phi)

so f_hat_n = sum_k c_k, and a generator can predict scale 1 (one token), then scale 2 given
scale 1, ... (chapter 5): the next-scale prediction VAR is named for.

- Down: area averaging (VAR). Up: bicubic (VAR's choice, the default; `upsample="bilinear"`
  is the alternative). Both are skipped at the last scale, which is the latent's own size.
- phi_k(x) = (1 - r) x + r Conv3x3(x), r = 0.5: the blend lets a coarse code paint a smooth,
  learned shape rather than a flat bicubic blob, while keeping most of the code itself. As in
  VAR, `num_phi` = 4 convs are shared by all scales: scale k uses the one whose tick in
  linspace(1/(3 m), 1 - 1/(3 m), m) is nearest (k - 1) / (n - 1) (m = num_phi).
- Lookup: plain L2, or `using_znorm=True`: cosine similarity, the nearest *direction*,
  argmax_j  rest/|rest| . e_j/|e_j|. As in VAR the code then added is the codebook row e_j itself,
  not its unit vector: the residual shrinks scale by scale, and unit-norm codes could not
  follow it down. Cosine lookup is scale-free, so a coarse scale's large residual and a fine
  scale's small one reach the same codes; with L2 the few codes nearest a large coarse
  residual win everything there (the collapse reproductions report at the coarsest scales).
  The default is L2, VAR's default; the chapter's runs compare the two on codebook usage.
- Loss (VAR): the mean over scales of  beta ||sg(f_hat_k) - f||^2 + ||f_hat_k - sg(f)||^2,
  beta = 0.25; the decoder gets f_hat_n with the straight-through gradient of f.

Does the residual shrink? Not always. Each scale subtracts its nearest code whatever it is,
so a codebook with no code near zero can make |rest_k| > |rest_{k-1}| (a tiny residual minus a
big code). If the codebook holds 0 and phi is the identity (r = 0), the last scale cannot grow it
(0 is a candidate at every position); with nearest upsampling and scales dividing h every
scale would be an orthogonal projection and could not either; bicubic and a learned phi
void the proof. The tests check the no-growth property with r = 0 and a zero code, and show
the counterexample.

Token ids: `Quantized.indices` is the flat concatenation (B, L) over scales, coarse to fine,
row-major in each scale (L = sum_k s_k^2: the sequence a next-scale transformer reads);
`split_ids` gives the per-scale list ids_per_scale [(B, s_k, s_k)], `join_ids` the flat
tensor back, `indices_to_codes` (the Quantizer protocol's) f_hat from the flat ids.
`Quantized.codes` is f_hat (B, E, h, w), channels first, as the 3x3 convs of phi want it.

Shapes: B batch, E code dims, K codebook size, h, w token-grid height and width, L flattened
sequence length.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from video_tokenizer.quantizer import Quantized

UPSAMPLE_MODES = ("bicubic", "bilinear")


class Phi(nn.Module):
    """phi(x) = (1 - r) x + r Conv3x3(x) on (B, E, h, w); r = 0 is the identity."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        self.ratio = ratio
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ratio == 0:
            return x
        return (1 - self.ratio) * x + self.ratio * self.conv(x)  # (B, E, h, w)


class MultiScaleQuantizer(nn.Module):
    """f (B, E, h, w) -> Quantized(f_hat (B, E, h, w), ids (B, L), aux_loss ())."""

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        scales: tuple[int, ...],
        phi_ratio: float = 0.5,
        num_phi: int = 4,
        beta: float = 0.25,
        using_znorm: bool = False,
        upsample: str = "bicubic",
    ):
        super().__init__()
        scales = tuple(int(s) for s in scales)
        if not scales or scales[0] < 1 or any(a >= b for a, b in zip(scales, scales[1:])):
            raise ValueError(f"scales must be increasing sides >= 1, got {scales}")
        if not 0 <= phi_ratio <= 1 or num_phi < 1 or codebook_size < 1 or dim < 1:
            raise ValueError(
                "need 0 <= phi_ratio <= 1, num_phi >= 1, codebook_size >= 1, dim >= 1, got "
                f"{phi_ratio}, {num_phi}, {codebook_size}, {dim}"
            )
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample={upsample!r}: expected one of {UPSAMPLE_MODES}")
        self.scales = scales
        self.beta = beta
        self.using_znorm = using_znorm
        self.upsample = upsample
        self.codebook = nn.Embedding(codebook_size, dim)  # (K, E), shared by every scale
        nn.init.uniform_(self.codebook.weight, -1 / codebook_size, 1 / codebook_size)
        self.phis = nn.ModuleList(Phi(dim, phi_ratio) for _ in range(num_phi))
        m = num_phi  # VAR's ticks: linspace(1/(3m), 1 - 1/(3m), m)
        self.register_buffer(
            "phi_ticks",
            torch.linspace(1 / (3 * m), 1 - 1 / (3 * m), m, dtype=torch.float64),  # numpy's
            persistent=False,
        )

    # codebook_size and dim: the Quantizer protocol's members, as chapter 1's VectorQuantizer
    # has them (the same two properties on purpose: a drop-in quantizer)
    @property
    def codebook_size(self) -> int:
        """K, the number of codes (one codebook for all scales)."""
        return self.codebook.num_embeddings

    @property
    def dim(self) -> int:
        """E, the width of a code."""
        return self.codebook.embedding_dim

    @property
    def tokens_per_frame(self) -> int:
        """L = sum_k s_k^2, the token ids of one frame over all scales."""
        return sum(s * s for s in self.scales)

    def phi(self, k: int) -> Phi:
        """The shared phi of scale k (0-based): the one whose tick is nearest k / (n - 1)."""
        where = k / max(len(self.scales) - 1, 1)
        return self.phis[int((self.phi_ticks - where).abs().argmin())]

    # -- the pieces of one scale ---------------------------------------------------------

    def lookup(self, r_BEhw: torch.Tensor) -> torch.Tensor:
        """Nearest code of each position of r (B, E, s_k, s_k) -> ids (B, s_k, s_k) int64."""
        r_NE = rearrange(r_BEhw, "b e h w -> (b h w) e").float()  # (n, E)
        e_KE = self.codebook.weight.detach().float()  # (K, E)
        if self.using_znorm:  # argmax_j of the cosine of r and e_j
            score = F.normalize(r_NE, dim=-1) @ F.normalize(e_KE, dim=-1).T  # (n, K)
        else:  # argmin_j ||r - e_j||^2 = argmax_j (2 r.e_j - ||e_j||^2)
            score = 2 * r_NE @ e_KE.T - e_KE.pow(2).sum(-1)  # (n, K)
        B, _, h, w = r_BEhw.shape
        return rearrange(score.argmax(-1), "(b h w) -> b h w", b=B, h=h)  # (B, s_k, s_k)

    def down(self, x_BEhw: torch.Tensor, side: int) -> torch.Tensor:
        """Area-average (B, E, h, w) to (B, E, side, side); identity at full size."""
        if x_BEhw.shape[-1] == side and x_BEhw.shape[-2] == side:
            return x_BEhw
        return F.interpolate(x_BEhw, size=(side, side), mode="area")

    def up(self, x_BEhw: torch.Tensor, side: int) -> torch.Tensor:
        """Upsample (B, E, s_k, s_k) to (B, E, side, side) (bicubic or bilinear)."""
        if x_BEhw.shape[-1] == side:
            return x_BEhw
        return F.interpolate(x_BEhw, size=(side, side), mode=self.upsample, align_corners=False)

    def contribution(self, ids_Bhw: torch.Tensor, k: int, side: int) -> torch.Tensor:
        """c_k = phi_k(up(codebook[ids_k], side)): scale k's share of f_hat (B, E, side, side)."""
        if ids_Bhw.shape[-2:] != (self.scales[k], self.scales[k]):
            raise ValueError(
                f"scale {k} has {self.scales[k]}x{self.scales[k]} ids, "
                f"got shape {tuple(ids_Bhw.shape)}"
            )
        codes = rearrange(self.codebook(ids_Bhw), "b h w e -> b e h w")  # (B, E, s_k, s_k)
        return self.phi(k)(self.up(codes, side))  # (B, E, side, side)

    def check_latent(self, f_BEhw: torch.Tensor) -> int:
        """The latent's side h (= w = s_n), after checking (B, E, h, w)."""
        if f_BEhw.dim() != 4 or f_BEhw.shape[1] != self.dim:
            raise ValueError(f"expected a latent (B, {self.dim}, h, w), got {tuple(f_BEhw.shape)}")
        side = f_BEhw.shape[-1]
        if f_BEhw.shape[-2] != side or side != self.scales[-1]:
            raise ValueError(
                f"latent {tuple(f_BEhw.shape)} must be square with side = the last scale "
                f"{self.scales[-1]} (scales {self.scales})"
            )
        return side

    # -- encoding ------------------------------------------------------------------------

    def encode_scales(self, f_BEhw: torch.Tensor) -> tuple[list, list]:
        """f -> (ids_per_scale [(B, s_k, s_k)], contributions [c_k (B, E, h, w)]).

        sum_k c_k is f_hat; c_k carries gradients to the codebook and phi, none to f.
        """
        side = self.check_latent(f_BEhw)
        rest = f_BEhw.detach().float()  # rest_0 = f (B, E, h, w)
        ids_per_scale, contributions = [], []
        for k, s in enumerate(self.scales):
            ids_k = self.lookup(self.down(rest, s))  # (B, s_k, s_k)
            c_k = self.contribution(ids_k, k, side)  # (B, E, h, w)
            rest = rest - c_k.detach()  # rest_k = rest_{k-1} - c_k
            ids_per_scale.append(ids_k)
            contributions.append(c_k)
        return ids_per_scale, contributions

    def forward(self, f_BEhw: torch.Tensor) -> Quantized:
        """f (B, E, h, w) -> Quantized(f_hat (B, E, h, w), ids (B, L), VAR's loss ())."""
        with torch.autocast(f_BEhw.device.type, enabled=False):  # distances in float32
            f = f_BEhw.float()
            ids_per_scale, contributions = self.encode_scales(f)
            f_hat = torch.zeros_like(f)
            loss = f.new_zeros(())
            for c_k in contributions:
                f_hat = f_hat + c_k  # f_hat_k = sum_{j<=k} c_j
                # beta ||sg(f_hat_k) - f||^2 + ||f_hat_k - sg(f)||^2
                loss = loss + self.beta * F.mse_loss(f_hat.detach(), f)
                loss = loss + F.mse_loss(f_hat, f.detach())
            loss = loss / len(self.scales)
            f_hat = f + (f_hat - f).detach()  # straight-through: value f_hat, gradient df
        return Quantized(f_hat.to(f_BEhw.dtype), self.join_ids(ids_per_scale), loss)

    # -- what a next-scale generator calls (chapter 5) ------------------------------------

    def split_ids(self, ids_BL: torch.Tensor) -> list[torch.Tensor]:
        """Flat ids (B, L) -> ids_per_scale [(B, s_k, s_k)], coarse to fine."""
        if ids_BL.dim() != 2 or ids_BL.shape[1] != self.tokens_per_frame:
            raise ValueError(
                f"expected ids (B, {self.tokens_per_frame}) for scales {self.scales}, "
                f"got {tuple(ids_BL.shape)}"
            )
        chunks = ids_BL.split([s * s for s in self.scales], dim=1)  # [(B, s_k^2)]
        return [rearrange(c, "b (h w) -> b h w", h=s) for c, s in zip(chunks, self.scales)]

    def join_ids(self, ids_per_scale: list[torch.Tensor]) -> torch.Tensor:
        """ids_per_scale [(B, s_k, s_k)] -> flat ids (B, L), row-major within each scale."""
        return torch.cat([rearrange(i, "b h w -> b (h w)") for i in ids_per_scale], dim=1)

    def add_scale(self, f_hat_BEhw: torch.Tensor, ids_Bhw: torch.Tensor, k: int) -> torch.Tensor:
        """f_hat_k = f_hat_{k-1} + c_k: add sampled ids of scale k (0-based) to f_hat."""
        return f_hat_BEhw + self.contribution(ids_Bhw, k, f_hat_BEhw.shape[-1])

    def next_scale_input(self, f_hat_BEhw: torch.Tensor, k: int) -> torch.Tensor:
        """What scale k's positions see: f_hat through scale k-1, area-down to (B, E, s_k, s_k)."""
        return self.down(f_hat_BEhw, self.scales[k])

    def ids_to_latent(self, ids_per_scale: list[torch.Tensor]) -> torch.Tensor:
        """ids_per_scale [(B, s_k, s_k)] -> f_hat (B, E, h, w) = sum_k c_k (decode from it)."""
        if len(ids_per_scale) != len(self.scales):
            raise ValueError(f"expected {len(self.scales)} scales, got {len(ids_per_scale)}")
        first = ids_per_scale[0]
        side = self.scales[-1]
        f_hat = self.codebook.weight.new_zeros(first.shape[0], self.dim, side, side)
        for k, ids_k in enumerate(ids_per_scale):
            f_hat = self.add_scale(f_hat, ids_k, k)  # (B, E, h, w)
        return f_hat

    def indices_to_codes(self, ids_BL: torch.Tensor) -> torch.Tensor:
        """Flat ids (B, L) -> f_hat (B, E, h, w): the Quantizer protocol's decoding step."""
        return self.ids_to_latent(self.split_ids(ids_BL))

    def teacher_forcing_input(self, ids_per_scale: list[torch.Tensor]) -> list[torch.Tensor]:
        """Inputs of scales 2..n [(B, E, s_k, s_k)]: f_hat through scale k-1, at scale k's size.

        Scale 1 has no input from the tokenizer (VAR feeds it a start token); the outputs at
        scale k's positions predict ids_per_scale[k] (no one-position shift).
        """
        side = self.scales[-1]
        f_hat = self.codebook.weight.new_zeros(ids_per_scale[0].shape[0], self.dim, side, side)
        inputs = []
        for k in range(1, len(self.scales)):
            f_hat = self.add_scale(f_hat, ids_per_scale[k - 1], k - 1)  # through scale k-1
            inputs.append(self.next_scale_input(f_hat, k))  # (B, E, s_k, s_k)
        return inputs
