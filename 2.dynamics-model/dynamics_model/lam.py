"""Genie's latent action model (LAM): learn a game's controls from video alone.

Internet videos have no action labels. Genie (Bruce et al. 2024) recovers them: a model that
must predict frame t+1 from frames <= t gets a tiny hint about the transition t -> t+1, one
of only |codebook| = 8 discrete codes. Everything that is predictable from the past (the
background, drifting objects) does not need the hint; the hint is only worth spending on
what the past does not determine, which in a game is mostly what the player did. So the
codes become actions, learned without a single label.

    encoder:  frames x_1..x_T --PatchEmbed + ST-transformer (causal in time)--> z (T, N, D)
              c_t = PatchEmbed'(x_{t+1} - x_t)                 (N, D), zero where nothing moved
              h_t^n = MLP([z_t^n ; z_{t+1}^n ; c_t^n])          per position n
              a_t = VQ( W sum_n softmax_n(s(h_t^n)) h_t^n )    one of 8 codes per t -> t+1
    decoder:  frames x_1..x_{T-1} --PatchEmbed + ST-transformer (causal)-->  x̂_2..x̂_T,
              with the code a_t (projected to D) added to every token of frame t
    loss:     mean ||x̂_{t+1} - x_{t+1}||^2  +  VQ loss (codebook + beta * commitment)

The bottleneck is what makes this work: 8 codes carry 3 bits per transition, far too few to
describe the next frame, just enough to say which way the player moved. The decoder sees
the true past frames, so it never needs the code for anything else.

Departure from Genie, and why. Genie's LAM encoder is an ST-transformer over the past and
the next frame, and the paper does not say how its outputs become one vector per
transition. Here the first version mean-pooled every frame's tokens and compared the two
means, and it never learned: on MovingSprites (32x32, a 4-pixel player among 64 tokens)
every clip went to the same code, NMI(latent, true action) ~ 0. The player's move changes
one or two tokens; the mean over all tokens dilutes it by ~1/N under the features of the
static background, and the encoder has no gradient signal to find it before the decoder
learns to do without the hint. So the action is read where the change is: position by
position, from both frames' features and from the embedded pixel difference (exactly zero on
a static background), and pooled with learned attention weights, which can put all the
weight on the tokens that moved. The ST-transformer stays, so the action can still use
the past (e.g. to tell the player's move from a sprite's predictable drift).

After training only the encoder is kept to label videos with latent actions (the dynamics
model is then trained on them); `decode_with_actions` shows what each code does.

Shapes: B batch, T frames, C channels, H, W pixels, N tokens per frame, D width,
E latent-action code width.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn
from video_tokenizer.patches import PatchEmbed, PixelShuffleHead, check_frame_size
from video_tokenizer.position import SpatioTemporalPosition
from video_tokenizer.transformer import SpatioTemporalTransformer
from video_tokenizer.vq import VectorQuantizer


@dataclass
class LatentActionConfig:
    """Size of the latent action model (Genie: 8 codes of width 32, patch 16, 20+20 layers)."""

    image_size: tuple[int, int] = (64, 64)  # (H, W) pixels
    channels: int = 3  # C
    patch: int = 8  # p
    max_frames: int = 16  # longest clip the positional table covers
    dim: int = 128  # D
    encoder_depth: int = 4
    decoder_depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    num_latent_actions: int = 8  # codebook size: the number of distinct latent actions
    action_dim: int = 32  # E, width of a latent action code
    beta: float = 0.25  # VQ commitment weight
    restart_below: float = 0.03  # restart a code whose running usage share falls below this
    usage_decay: float = 0.99  # running usage share: u <- decay * u + (1 - decay) * share


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
        self.to_action = nn.Sequential(
            nn.Linear(D, config.action_dim),
            # unit scale per channel, like the N(0, 1) codebook: on a small-scale latent the
            # code of smallest norm would be nearest to every input, and the others die
            nn.RMSNorm(config.action_dim, elementwise_affine=False),
        )
        self.quantizer = VectorQuantizer(config.num_latent_actions, config.action_dim, config.beta)
        # decoder: past frames + latent action -> next frame
        self.decoder_embed = PatchEmbed(C, p, D)
        self.decoder_position = SpatioTemporalPosition(config.max_frames, N, D)
        self.action_to_dim = nn.Linear(config.action_dim, D)
        self.decoder = SpatioTemporalTransformer(
            D, config.decoder_depth, config.heads, config.mlp_ratio, causal_time=True
        )
        self.head = PixelShuffleHead(D, C, p)
        # running share of latents assigned to each code (sums to ~1), for dead-code restarts
        K = config.num_latent_actions
        self.register_buffer("code_usage", torch.full((K,), 1.0 / K))

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
        return self.to_action(pooled)  # (B, T-1, E)

    def decode(self, frames_past: torch.Tensor, action_codes: torch.Tensor) -> torch.Tensor:
        """Predict x_{t+1} for every frame x_t of frames_past (B, T, C, H, W), given the
        code of the action taken at t, action_codes (B, T, E). Returns (B, T, C, H, W)."""
        self._check_frames(frames_past, min_frames=1)
        x = self.decoder_position(self.decoder_embed(frames_past))  # (B, T, N, D)
        action = self.action_to_dim(action_codes)  # (B, T, D)
        x = x + rearrange(action, "b t d -> b t 1 d")  # the same hint on every token of t
        x = self.decoder(x)  # (B, T, N, D): frame t sees frames <= t and actions <= t
        return self.head(x, *self.grid)  # (B, T, C, H, W)

    @torch.no_grad()
    def restart_dead_codes(self, latents: torch.Tensor) -> int:
        """Track code usage on a batch of latents (..., E); restart the codes left unused.

        The plain VQ gives gradient only to codes that get chosen, so a code that loses
        every latent early stays dead, and with 8 codes the LAM easily collapses to one or
        two. As in Jukebox and CoPilot4D, a code whose running usage share
        u_k <- decay * u_k + (1 - decay) * share_k drops below `restart_below` is moved
        onto a random latent of the batch, where it is sure to be chosen. Returns how many
        codes were restarted.
        """
        flat = rearrange(latents.detach().float(), "... e -> (...) e")  # (M, E)
        K = self.config.num_latent_actions
        share = torch.bincount(self.quantizer.nearest(flat), minlength=K) / flat.shape[0]  # (K,)
        decay = self.config.usage_decay
        self.code_usage.mul_(decay).add_((1 - decay) * share)
        dead = (self.code_usage < self.config.restart_below).nonzero()[:, 0]  # (num_dead,)
        if len(dead) == 0:
            return 0
        picks = torch.randint(flat.shape[0], (len(dead),), device=flat.device)
        self.quantizer.codebook.weight[dead] = flat[picks]
        self.code_usage[dead] = 1.0 / K  # a fresh start, not restarted again at once
        return len(dead)

    def forward(self, frames: torch.Tensor):
        """frames (B, T, C, H, W) -> (recon_next (B, T-1, C, H, W) predicting frames[:, 1:],
        action_ids (B, T-1) int64, aux_loss: the VQ loss, a scalar).

        In training mode, dead codes are restarted first (see `restart_dead_codes`).
        """
        z = self.encode_actions(frames)  # (B, T-1, E)
        if self.training and self.config.restart_below > 0:
            self.restart_dead_codes(z)
        codes, action_ids, aux_loss = self.quantizer(z)  # (B, T-1, E), (B, T-1), ()
        recon_next = self.decode(frames[:, :-1], codes)  # (B, T-1, C, H, W)
        return recon_next, action_ids, aux_loss

    def loss(self, frames: torch.Tensor):
        """Training loss = MSE(x̂_{t+1}, x_{t+1}) + VQ loss. Returns (loss, metrics) with
        metrics {"mse", "vq", "codes_used": distinct latent actions in the batch}."""
        recon_next, action_ids, aux_loss = self(frames)
        mse = F.mse_loss(recon_next, frames[:, 1:])
        metrics = {
            "mse": mse.item(),
            "vq": aux_loss.item(),
            "codes_used": action_ids.unique().numel(),
        }
        return mse + aux_loss, metrics

    @torch.no_grad()
    def infer_actions(self, frames: torch.Tensor) -> torch.Tensor:
        """The latent action of each transition: frames (B, T, C, H, W) -> (B, T-1) int64."""
        return self.quantizer.nearest(self.encode_actions(frames))

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
