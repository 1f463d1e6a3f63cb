"""OccSora's trajectory-conditioned diffusion transformer: a DiT with adaLN-Zero.

The network eps_theta(x_t, t, trajectory) of `noise_schedule.py`: it reads a noisy latent clip
(B, C, T, H, W) (OccSora: the 4D tokenizer's continuous latent, 128 x 4 x 25 x 25, scaled by
1/10) and predicts the noise in it, the same shape.

    tokens  x = Patchify(x_t) + pos          p x p cells of one latent frame -> one token
    c       = TimeMLP(sinusoid(t)) + TrajMLP(trajectory)            (B, D), one per clip
    block   (shift, scale, gate) x 2 = W_c silu(c)                  W_c zero at init
            x = x + gate_a * Attn(norm(x) * (1 + scale_a) + shift_a)
            x = x + gate_m * MLP (norm(x) * (1 + scale_m) + shift_m)
    final   out = W_o (norm(x) * (1 + scale) + shift)                W_o zero at init

adaLN-Zero (Peebles & Xie 2023): the norms have no gain or bias of their own; the condition c
regresses them per clip, and the gates start at zero, so every block starts as the identity
and the model as eps = 0; training then opens each residual branch from zero, which the DiT
paper found to train best of their conditioning schemes. Attention (full, over the L = T*N
tokens of the clip) and the MLP (SwiGLU) are chapter 1's.

The condition is the ego trajectory of the clip as per-frame motions (dx, dy, dyaw), each read
in the previous ego frame (chapter 3's `relative_motion`), flattened and embedded by an MLP,
then ADDED to the timestep embedding, as OccSora adds its trajectory embedding.

Condition dropout (a departure: OccSora's code never drops the trajectory, so it cannot use
classifier-free guidance): in training, with probability `cond_drop` per clip, the
trajectory's embedding is replaced by a learned null embedding; `drop=` forces it (True per
clip), `trajectory=None` drops it for the whole batch, and in eval mode nothing is dropped at
random. `eps_fn` then gives `noise_schedule.guided`'s callback for any guidance weight.

Shapes: B batch, C channels of the latent, T latent frames, H, W latent height, width,
p patch size (latent cells), h, w token grid (H/p, W/p), N tokens per frame (h*w),
L flattened sequence length (T*N), D model width.
"""

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from video_tokenizer.transformer import Attention, SwiGLU

from world_model.noise_schedule import EpsFn, guided
from worldmodels.config import at_least, derived, require


@dataclass
class DiTConfig:
    """Sizes of the DiT; the defaults are OccSora's (28 blocks, width 256, 16 heads, MLP 4)."""

    channels: int = derived(128, "the 4D tokenizer's code dims")  # C
    traj_len: int = 32  # motions (dx, dy, dyaw) per clip: the trajectory is (B, traj_len, 3)
    patch: int = 1  # p: OccSora embeds every latent cell (2500 tokens for 4 x 25 x 25)
    dim: int = 256  # D
    depth: int = 28
    heads: int = 16
    mlp_ratio: float = 4.0
    freq_dim: int = 256  # sinusoid features of the timestep, before its MLP
    cond_drop: float = 0.1  # P(trajectory -> null) per training clip; 0 = OccSora (no CFG)

    def __post_init__(self):
        at_least(self, 1, "channels", "traj_len", "patch", "depth", "heads")
        at_least(self, 6, "dim", note="split over the t, y, x position codes")
        require(self, "dim", self.dim % 2 == 0, "an even number")
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        at_least(self, 2, "freq_dim")
        require(self, "freq_dim", self.freq_dim % 2 == 0, "an even number")
        require(self, "cond_drop", 0 <= self.cond_drop <= 1, "a probability in [0, 1]")


# ------------------------------------------------------------------------------ embeddings


def sinusoid(values: torch.Tensor, width: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(n,) numbers -> (n, width) features [cos(v w_i), sin(v w_i)], w_i = max_period^(-2i/width)
    (the transformer's position code, applied to a timestep or a coordinate)."""
    half = width // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device) / half)
    angles = values.float()[:, None] * freqs[None]  # (n, width/2)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def position_code(T: int, h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed (T*h*w, D) code of each token's (t, y, x), the three sinusoids side by side
    (D = d_t + 2 d_s). A departure: OccSora codes the flattened index 1-D, which puts the cell
    below a token h positions away; here grid neighbours get near codes on every axis."""
    d_s = 2 * (dim // 6)  # even widths for y and x, the rest (also even) for t
    t, y, x = torch.meshgrid(
        *(torch.arange(n, device=device) for n in (T, h, w)), indexing="ij"
    )  # each (T, h, w)
    parts = [sinusoid(t.flatten(), dim - 2 * d_s), sinusoid(y.flatten(), d_s)]
    return torch.cat(parts + [sinusoid(x.flatten(), d_s)], dim=-1)  # (L, D)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, L, p*p*C): each frame's p x p cells as one token, frame by frame,
    row by row (token t*N + y*w + x holds cells [y*p, (y+1)*p) x [x*p, (x+1)*p) of frame t)."""
    return rearrange(x, "b c t (h p1) (w p2) -> b (t h w) (p1 p2 c)", p1=p, p2=p)


def unpatchify(tokens: torch.Tensor, T: int, h: int, p: int) -> torch.Tensor:
    """(B, L, p*p*C) -> (B, C, T, H, W), the inverse of `patchify`."""
    return rearrange(tokens, "b (t h w) (p1 p2 c) -> b c t (h p1) (w p2)", t=T, h=h, p1=p, p2=p)


def mlp(width_in: int, dim: int) -> nn.Sequential:
    """Linear -> SiLU -> Linear, DiT's embedder of a timestep (and here of a trajectory)."""
    return nn.Sequential(nn.Linear(width_in, dim), nn.SiLU(), nn.Linear(dim, dim))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, L, D) * (1 + scale) + shift, with shift, scale (B, D) per clip."""
    return x * (1 + scale[:, None]) + shift[:, None]


def zero_linear(width_in: int, width_out: int) -> nn.Linear:
    """A Linear with zero weight and bias: the 'Zero' of adaLN-Zero."""
    linear = nn.Linear(width_in, width_out)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


# ------------------------------------------------------------------------------ the network


class DiTBlock(nn.Module):
    """Full attention and MLP over (B, L, D), each branch modulated and gated by c (B, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)  # c gives the affine
        self.attn = Attention(dim, heads)
        self.mlp = SwiGLU(dim, int(2 * mlp_ratio * dim / 3))  # 2/3 width: 3 matrices, not 2
        self.ada = nn.Sequential(nn.SiLU(), zero_linear(dim, 6 * dim))  # W_c: zero at init

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.ada(c).chunk(6, dim=-1)
        x = x + gate_a[:, None] * self.attn(modulate(self.norm(x), shift_a, scale_a))  # (B, L, D)
        return x + gate_m[:, None] * self.mlp(modulate(self.norm(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) from c, then a zero-initialised linear to the p*p*C values of a
    token's patch: the model predicts eps = 0 until it learns otherwise."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), zero_linear(dim, 2 * dim))
        self.out = zero_linear(dim, out)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.out(modulate(self.norm(x), shift, scale))  # (B, L, p*p*C)


class DiT(nn.Module):
    """eps_theta(x_t, t, trajectory): (B, C, T, H, W) -> (B, C, T, H, W)."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        c = self.config = config
        D, patch_values = c.dim, c.patch * c.patch * c.channels
        # A Linear on flattened p x p patches: a conv with kernel = stride = p (a departure:
        # OccSora patchifies with two 3D convs).
        self.patch_in = nn.Linear(patch_values, D)
        self.time_mlp = mlp(c.freq_dim, D)
        self.traj_mlp = mlp(c.traj_len * 3, D)
        self.null_traj = nn.Parameter(torch.randn(D) * 0.02)  # what a dropped trajectory reads
        self.blocks = nn.ModuleList(DiTBlock(D, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.final = FinalLayer(D, patch_values)

    def condition(self, t, trajectory=None, drop=None) -> torch.Tensor:
        """c = TimeMLP(sinusoid(t)) + trajectory embedding (B, D); the trajectory's is the null
        embedding where dropped: all of the batch when trajectory is None, where `drop` (B,)
        is True, and at random with P = cond_drop per clip in training mode."""
        B = t.shape[0]
        c = self.time_mlp(sinusoid(t, self.config.freq_dim))  # (B, D)
        if trajectory is None:
            return c + self.null_traj  # (B, D): unconditional
        self.check_trajectory(trajectory, B)
        traj = self.traj_mlp(rearrange(trajectory.to(c.dtype), "b n m -> b (n m)"))  # (B, D)
        dropped = self.dropped(B, drop, c.device)  # (B,) bool
        traj = torch.where(dropped[:, None], self.null_traj.to(traj.dtype), traj)
        return c + traj

    def dropped(self, B: int, drop, device) -> torch.Tensor:
        """Which clips read the null embedding: forced ones, or random ones in training."""
        forced = torch.zeros(B, dtype=torch.bool, device=device)
        if drop is not None:
            forced = torch.as_tensor(drop, device=device).expand(B).bool()
        if self.training and self.config.cond_drop > 0:
            forced = forced | (torch.rand(B, device=device) < self.config.cond_drop)
        return forced

    def check_trajectory(self, trajectory: torch.Tensor, B: int) -> None:
        expected = (B, self.config.traj_len, 3)
        if tuple(trajectory.shape) != expected:
            raise ValueError(
                f"trajectory {tuple(trajectory.shape)}: expected {expected}, (dx, dy, dyaw) per "
                f"frame (DiTConfig.traj_len={self.config.traj_len})"
            )

    def forward(self, x_t, t, trajectory=None, drop=None) -> torch.Tensor:
        """x_t (B, C, T, H, W), t (B,) 0-based diffusion steps, trajectory (B, traj_len, 3) or
        None (unconditional), drop (B,) bool or None -> predicted eps (B, C, T, H, W)."""
        B, C, T, H, W = x_t.shape
        p = self.config.patch
        if C != self.config.channels or H % p or W % p:
            raise ValueError(f"latent {tuple(x_t.shape)}: expected {self.config.channels} "
                             f"channels and a grid divisible by patch={p}")  # fmt: skip
        h, w = H // p, W // p
        x = self.patch_in(patchify(x_t, p))  # (B, L, D)
        x = x + position_code(T, h, w, self.config.dim, x.device)  # (B, L, D)
        c = self.condition(t, trajectory, drop)  # (B, D)
        for block in self.blocks:
            x = block(x, c)  # (B, L, D)
        return unpatchify(self.final(x, c), T, h, p)  # (B, C, T, H, W)


def eps_fn(model: DiT, trajectory: torch.Tensor, guidance: float = 1.0) -> EpsFn:
    """The sampler's callback for a trajectory (B, traj_len, 3): eps_uncond + w (eps_cond -
    eps_uncond) with w = guidance (1: the conditional model alone; needs cond_drop > 0 in
    training to mean anything else). Call it on a model in eval mode."""
    cond = lambda x, t: model(x, t, trajectory)
    uncond = lambda x, t: model(x, t, None)
    return guided(cond, uncond, guidance)
