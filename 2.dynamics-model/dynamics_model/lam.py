"""Genie's latent action model (LAM): learn a game's controls from video alone.

Internet videos have no action labels. Genie (Bruce et al. 2024) recovers them: a model that
must predict frame t+1 from frames <= t gets a tiny hint about the transition t -> t+1, one
of only 9 discrete codes (Genie: 8). Everything that is predictable from the past (the
background, drifting objects) does not need the hint; the hint is only worth spending on
what the past does not determine, which in a game is mostly what the player did. So the
codes become actions, learned without a single label.

    encoder:  frames x_1..x_T --PatchEmbed + ST-transformer (causal in time)--> z (T, N, D)
              c_t = PatchEmbed'(x_{t+1} - x_t)                 (N, D), zero where nothing moved
              h_t^n = MLP([z_t^n ; z_{t+1}^n ; c_t^n])          per position n
              a_t = FSQ_(3,3)( std_t( W sum_n softmax_n(s(h_t^n)) h_t^n ) )   one of 9 codes
    decoder:  frames x_1..x_{T-1} --PatchEmbed + ST-transformer (causal)--> Δ_1..Δ_{T-1},
              with the code a_t (projected to D) added to every token of frame t;
              x̂_{t+1} = x_t + Δ_t                            (predicts the change)
    loss:     sum ||x̂_{t+1} - x_{t+1}||^2 / sum ||x_t - x_{t+1}||^2
              (the error relative to copying x_t; FSQ has no codebook loss)

The bottleneck is what makes this work: 9 codes carry ~3 bits per transition, far too few to
describe the next frame, just enough to say which way the player moved. The decoder sees
the true past frames, so it never needs the code for anything else.

The decoder predicts the change x_{t+1} - x_t, not the frame (a second departure). Predicting
whole frames, a small decoder spends its capacity on repainting the static screen: an earlier
version of this file did, reconstructed far worse than simply copying x_t, and spent the ~3
bits of the code on whatever reduced that error most (which game, which screen), not on the
player's move; its codes matched the true actions no better than chance. (That version is
gone, so no number is quoted for it.)
With the residual, copying is free from the first step and all that is left to explain is
what moved, part of it predictable from the past and part of it (the player) only from a_t.

Departure from Genie, and why. Genie's LAM encoder is an ST-transformer over the past and
the next frame, and the paper does not say how its outputs become one vector per
transition. Here an earlier version mean-pooled every frame's tokens and compared the two
means, and it never learned: on MovingSprites (32x32, a 4-pixel player among 64 tokens)
every clip went to the same code. The player's move changes
one or two tokens; the mean over all tokens dilutes it by ~1/N under the features of the
static background, and the encoder has no gradient signal to find it before the decoder
learns to do without the hint. So the action is read where the change is: position by
position, from both frames' features and from the embedded pixel difference (exactly zero on
a static background), and pooled with learned attention weights, which can put all the
weight on the tokens that moved. The ST-transformer stays, so the action can still use
the past (e.g. to tell the player's move from a sprite's predictable drift).

The bottleneck is chapter 1's FSQ with levels (3, 3), not Genie's VQ-VAE (a third
departure; an earlier version used a VQ). With a VQ of 8 learned codes the debug LAM
collapsed on Atari: the decoder does not need the hint at first (most of a frame's change
follows from the past),
so the commitment loss, not the reconstruction, shaped the encoder and pulled every latent
onto one code; restarting dead codes revived them for a few dozen steps at a time. FSQ has
no codebook to collapse and no commitment term: 2 channels, each rounded to one of 3
values, so the encoder's only gradient is the decoder's (straight-through): 9 codes.
FSQ alone still let every latent drift into the middle level, so the two channels are
standardised over the batch, per time step, before rounding (`StepwiseStandardize`).

After training only the encoder is kept to label videos with latent actions (the dynamics
model is then trained on them); `decode_with_actions` shows what each code does.

Shapes: B batch, T frames, C channels, H, W pixels, N tokens per frame, D width,
E latent-action code channels (2).
"""

import math
from dataclasses import dataclass

import torch
from einops import rearrange, reduce
from torch import nn
from video_tokenizer.fsq import FSQ
from video_tokenizer.patches import PatchEmbed, PixelShuffleHead, check_frame_size
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.transformer import SpatioTemporalTransformer

from worldmodels.config import at_least, derived, require


@dataclass
class LatentActionConfig:
    """Size of the latent action model (Genie: 8 codes, patch 16, 20+20 layers)."""

    image_size: tuple[int, int] = derived((64, 64), "the tokenizer's frames")  # (H, W) pixels
    channels: int = derived(3, "the tokenizer's frames")  # C
    patch: int = 8  # p
    max_frames: int = derived(16, "data.clip_len")  # longest clip the positions cover
    dim: int = 128  # D
    encoder_depth: int = 4
    decoder_depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    # FSQ levels: prod = 9 latent actions (Genie: 8). Odd levels: with an even L, FSQ shifts
    # z = 0 onto a level's centre, and for L = 2 the rounding boundary is then at z = -3.8,
    # where tanh has no gradient left; every latent stayed on one code.
    action_levels: tuple[int, ...] = (3, 3)

    def __post_init__(self):  # bad sizes stop at start-up with the key and the value
        self.image_size = tuple(self.image_size)
        at_least(self, 1, "channels", "patch", "max_frames", "dim", "heads")
        at_least(self, 1, "encoder_depth", "decoder_depth")
        require(self, "mlp_ratio", self.mlp_ratio > 0, "a number > 0")
        require(self, "heads", self.dim % self.heads == 0, f"a divisor of dim={self.dim}")
        require(self, "image_size", min(self.image_size) >= 1, "sizes >= 1")
        self.action_levels = tuple(self.action_levels)
        require(self, "action_levels", min(self.action_levels, default=0) >= 2, "levels >= 2")

    @property
    def num_latent_actions(self) -> int:
        """The number of distinct latent actions, prod(action_levels)."""
        return math.prod(self.action_levels)


class StepwiseStandardize(nn.Module):
    """(x - mean) / std per channel over the batch, separately at each time step t.

    Why: the FSQ bottleneck rounds each channel to {-1, 0, 1} at tanh(z) = +-0.5, z = +-0.55.
    Unnormalised, the latents shrank into the middle level (weight decay pulls on a projection
    whose output the decoder does not yet use) and every transition got one code (seen with an
    earlier version). Standardised, a channel with any spread lands on all three levels, so the
    codes stay in use and the encoder only decides which transitions share one.
    Why per step: the encoder's output also carries where in the clip a transition sits
    (its temporal position), the same in every clip; standardised over all transitions at
    once, that offset was the largest "spread" and the codes came out one per time step
    (seen with an earlier version). At eval the running statistics are used, like BatchNorm.
    """

    def __init__(self, max_steps: int, channels: int, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(max_steps, channels))
        self.register_buffer("running_var", torch.ones(max_steps, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, E) with T <= max_steps -> standardised (B, T, E)."""
        T = x.shape[1]
        if T > self.running_mean.shape[0]:
            raise ValueError(f"at most {self.running_mean.shape[0]} steps, got {T}")
        if self.training and x.shape[0] > 1:
            mean, var = x.mean(0), x.var(0, unbiased=False)  # (T, E) each
            with torch.no_grad():
                self.running_mean[:T].lerp_(mean.detach().float(), self.momentum)
                self.running_var[:T].lerp_(var.detach().float(), self.momentum)
        else:
            mean, var = self.running_mean[:T], self.running_var[:T]
        return (x - mean) / torch.sqrt(var + self.eps)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set the running statistics to the exact per-step mean and variance of x (B, T, E).

        Why: the running averages trail a moving target. The encoder's outputs drift during
        training while their spread across clips stays tiny (about 0.01 around a mean of
        about 4 in a 300-step notebook run), so a lag of a fraction of the mean is many
        spreads, and at eval every transition fell on one code. Measuring the statistics
        once on a fixed set of training clips after training ("precise BatchNorm", as
        recalibration is known for BatchNorm) removes the lag.
        """
        T = x.shape[1]
        self.running_mean[:T] = x.mean(0).float()
        self.running_var[:T] = x.var(0, unbiased=False).float()


class LatentActionModel(nn.Module):
    """Infers one discrete latent action per transition and decodes the next frame from it."""

    def __init__(self, config: LatentActionConfig):
        super().__init__()
        self.config = config
        H, W = config.image_size
        C, p, D = config.channels, config.patch, config.dim
        check_frame_size(H, W, p)
        self.grid = (H // p, W // p)  # (h, w)
        N = self.grid[0] * self.grid[1]
        # encoder: every frame -> tokens -> one latent action per pair of consecutive frames
        self.encoder_embed = PatchEmbed(C, p, D)
        self.encoder_position = SpatioTemporalPosition(config.max_frames, N, D)
        self.encoder = SpatioTemporalTransformer(
            D, config.encoder_depth, config.heads, config.mlp_ratio, causal_time=True
        )
        # the change x_{t+1} - x_t, patch by patch: exactly zero wherever nothing moved
        self.change_embed = PatchEmbed(C, p, D)
        # per position n: [z_t^n ; z_{t+1}^n ; embed(x_{t+1} - x_t)^n] -> what happened here
        self.token_change = nn.Sequential(
            nn.LayerNorm(3 * D), nn.Linear(3 * D, D), nn.GELU(), nn.Linear(D, D)
        )
        self.change_score = nn.Linear(D, 1)  # how much position n tells about the action
        self.quantizer = FSQ(config.action_levels)  # E channels -> one of prod(levels)
        self.to_action = nn.Linear(D, self.quantizer.dim)
        self.action_norm = StepwiseStandardize(config.max_frames - 1, self.quantizer.dim)
        # decoder: past frames + latent action -> next frame
        self.decoder_embed = PatchEmbed(C, p, D)
        self.decoder_position = SpatioTemporalPosition(config.max_frames, N, D)
        self.action_to_dim = nn.Linear(self.quantizer.dim, D)
        self.decoder = SpatioTemporalTransformer(
            D, config.decoder_depth, config.heads, config.mlp_ratio, causal_time=True
        )
        self.head = PixelShuffleHead(D, C, p)  # paints the change Δ_t, patch by patch
        with torch.no_grad():  # start exactly at "copy x_t": Δ_t = 0, loss 1
            self.head.proj.weight.zero_()
            self.head.proj.bias.zero_()

    def _check_frames(self, frames: torch.Tensor, min_frames: int) -> None:
        H, W = self.config.image_size
        C = self.config.channels
        if frames.ndim != 5 or tuple(frames.shape[2:]) != (C, H, W):
            raise ValueError(f"frames must be (B, T, {C}, {H}, {W}), got {tuple(frames.shape)}")
        if frames.shape[1] < min_frames:
            raise ValueError(f"need at least {min_frames} frames, got {frames.shape[1]}")

    def encode_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, C, H, W) in [0, 1] -> continuous latent actions (B, T-1, E).

        The causal encoder's output at frame t+1 has seen frames <= t+1. The action of
        t -> t+1 is read position by position from z_t, z_{t+1} and the embedded pixel
        change x_{t+1} - x_t, then pooled with attention weights over positions, so that
        the few tokens where something moved are not averaged away by the static rest.
        """
        self._check_frames(frames, min_frames=2)
        z = self.encoder_position(self.encoder_embed(frames))  # (B, T, N, D)
        z = self.encoder(z)  # (B, T, N, D)
        change = self.change_embed(frames[:, 1:] - frames[:, :-1])  # (B, T-1, N, D)
        per_token = torch.cat([z[:, :-1], z[:, 1:], change], dim=-1)  # (B, T-1, N, 3D)
        h = self.token_change(per_token)  # (B, T-1, N, D)
        # attention pooling: a_n = softmax_n(s(h_n)), pooled = sum_n a_n h_n
        weights = torch.softmax(self.change_score(h), dim=2)  # (B, T-1, N, 1)
        pooled = reduce(weights * h, "b t n d -> b t d", "sum")  # (B, T-1, D)
        return self.action_norm(self.to_action(pooled))  # (B, T-1, E)

    @torch.no_grad()
    def calibrate_action_norm(self, frames: torch.Tensor, batch: int = 64) -> None:
        """Measure the action standardisation's statistics on `frames` (B, T, C, H, W),
        e.g. a fixed set of training clips, instead of trusting its running averages (see
        StepwiseStandardize.calibrate). The evaluator calls this before scoring."""
        captured = []
        hook = self.action_norm.register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0])
        )
        try:
            for chunk in frames.split(batch):
                self.encode_actions(chunk)  # its input to action_norm is captured
        finally:
            hook.remove()
        self.action_norm.calibrate(torch.cat(captured))  # (B, T-1, E)

    def decode(self, frames_past: torch.Tensor, action_codes: torch.Tensor) -> torch.Tensor:
        """Predict x_{t+1} = x_t + Δ_t for every frame x_t of frames_past (B, T, C, H, W),
        given the code of the action taken at t, action_codes (B, T, E). Returns
        (B, T, C, H, W)."""
        self._check_frames(frames_past, min_frames=1)
        x = self.decoder_position(self.decoder_embed(frames_past))  # (B, T, N, D)
        action = self.action_to_dim(action_codes)  # (B, T, D)
        x = x + rearrange(action, "b t d -> b t 1 d")  # the same hint on every token of t
        x = self.decoder(x)  # (B, T, N, D): frame t sees frames <= t and actions <= t
        return frames_past + self.head(x, *self.grid)  # (B, T, C, H, W): x_t + Δ_t

    def forward(self, frames: torch.Tensor):
        """frames (B, T, C, H, W) -> (recon_next (B, T-1, C, H, W) predicting frames[:, 1:],
        action_ids (B, T-1) int64)."""
        codes, action_ids, _ = self.quantizer(self.encode_actions(frames))  # (B, T-1, E), ids
        recon_next = self.decode(frames[:, :-1], codes)  # (B, T-1, C, H, W)
        return recon_next, action_ids

    def loss(self, frames: torch.Tensor):
        """Training loss: the unexplained change. Returns (loss, metrics).

            unexplained = sum (x̂_{t+1} - x_{t+1})^2 / sum (x_t - x_{t+1})^2    (over the batch)

        is the error relative to copying the last frame: 1 = no better than copying, 0 =
        perfect. It is the per-pixel MSE rescaled (on Atari the MSE is ~5e-4, as little of a
        frame moves), so that one learning rate fits any frame size and amount of motion.
        metrics {"mse", "unexplained", "codes_used": distinct latent actions in the batch}.
        """
        recon_next, action_ids = self(frames)
        target = frames[:, 1:]
        squared_error = (recon_next - target).square().sum()
        copy_error = (frames[:, :-1] - target).square().sum().clamp_min(1e-8)
        unexplained = squared_error / copy_error
        used = torch.bincount(action_ids.flatten(), minlength=self.config.num_latent_actions) > 0
        metrics = {  # tensors: the trainer reads them once per log line, not once per step
            "mse": squared_error.detach() / target.numel(),
            "unexplained": unexplained.detach(),
            "codes_used": used.sum(),
        }
        return unexplained, metrics

    @torch.no_grad()
    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """The latent action of each transition: frames (B, T, C, H, W) -> (B, T-1) int64."""
        return self.quantizer(self.encode_actions(frames)).indices

    @torch.no_grad()
    def decode_with_actions(
        self, frames_past: torch.Tensor, action_ids: torch.Tensor
    ) -> torch.Tensor:
        """What latent actions do: frames_past (B, T, C, H, W) and chosen action ids (B, T)
        in [0, num_latent_actions) -> predicted next frames (B, T, C, H, W)."""
        if action_ids.shape != frames_past.shape[:2]:
            raise ValueError(
                f"action_ids must be (B, T) = {tuple(frames_past.shape[:2])}, "
                f"got {tuple(action_ids.shape)}"
            )
        if action_ids.min() < 0 or action_ids.max() >= self.config.num_latent_actions:
            raise ValueError(f"action_ids must lie in [0, {self.config.num_latent_actions})")
        codes = self.quantizer.indices_to_codes(action_ids)  # (B, T, E)
        return self.decode(frames_past, codes)  # (B, T, C, H, W)
