"""VQ with CoPilot4D's dead-code restarts: chapter 1's VectorQuantizer plus k-means.

Chapter 1 showed a plain VQ collapse: a code that no latent picks never gets a gradient, so
it stays where it is, unused, forever ("dead"). CoPilot4D keeps its 1024 codes alive by
re-initialising the codebook from recent encoder outputs whenever too many have died:

    bank      a ring buffer of recent latents z (a random sample of each training step's)
    idle[k]   training steps since code k was last picked; k is dead when idle[k] >= N
    restart   when the dead fraction > f (and the last restart is >= M steps ago):
              codebook <- k-means(bank, K), every code, then idle <- 0

k-means puts the K codes where the latents actually are, spread over them in proportion to
their density (Lloyd's step: each centre moves to the mean of the points nearest to it), so
after a restart every code is near some latents and gets picked.

Numbers: CoPilot4D's as read by one reimplementation (the fact sheet marks them unverified):
N = 256 steps, f = 3%, M = 200 steps, bank = 10 K latents, loss 0.25 ||sg[z] - e||^2 +
1.0 ||z - sg[e]||^2. Where the record is silent, chosen here: each step writes
bank_size / 16 randomly chosen latents (so the bank spans the last ~16 steps); k-means
is seeded by k-means++ and runs 10 Lloyd iterations, and an emptied cluster keeps its
previous centre; the optimizer's moments
of the codebook are left as they are. Restarts happen only in training mode; in eval mode
this is chapter 1's VQ. Under DDP the usage counts are summed over ranks and the new
codebook is rank 0's, broadcast, so every rank keeps the same codebook.

Shapes: "..." any leading axes, L their flattened length, E code dims of a quantizer, K
codebook size.
"""

import torch
import torch.distributed as dist
from einops import pack
from video_tokenizer.quantizer import Quantized
from video_tokenizer.vq import VectorQuantizer


def kmeans_plus_plus(points: torch.Tensor, k: int, generator=None) -> torch.Tensor:
    """k-means++ seeding (Arthur and Vassilvitskii 2007): points (L, E) -> k seeds (k, E).

    The first seed is a random point; each next one is drawn with probability proportional
    to d(x)^2, its squared distance to the nearest seed so far, so seeds land in different
    clusters far more often than k uniform draws do (which put two seeds in one cluster and
    none in another, a state Lloyd's iterations rarely undo).
    """
    first = torch.randint(len(points), (1,), generator=generator).item()
    seeds = [points[first]]
    nearest_d2 = (points - points[first]).pow(2).sum(-1)  # (L,): d(x)^2
    for _ in range(k - 1):
        weights = nearest_d2.cpu() if nearest_d2.sum() > 0 else torch.ones(len(points))
        pick = torch.multinomial(weights, 1, generator=generator).item()
        seeds.append(points[pick])
        nearest_d2 = torch.minimum(nearest_d2, (points - points[pick]).pow(2).sum(-1))
    return torch.stack(seeds)  # (k, E)


def kmeans(points: torch.Tensor, k: int, iters: int = 10, generator=None) -> torch.Tensor:
    """Lloyd's k-means: points (L, E), L >= k -> k centres (k, E).

    Seeded by k-means++. Each iteration assigns every point to its nearest centre and moves
    each centre to the mean of its points (c_j = mean{x : nearest(x) = j}); a centre with no
    points stays where it is.
    """
    if len(points) < k:
        raise ValueError(f"k-means with k={k} needs at least k points, got {len(points)}")
    centres = kmeans_plus_plus(points, k, generator)  # (k, E)
    for _ in range(iters):
        # ||x - c||^2 up to ||x||^2, which does not change the argmin
        nearest = (centres.pow(2).sum(-1) - 2 * points @ centres.T).argmin(-1)  # (L,)
        sums = centres.new_zeros(k, points.shape[1]).index_add_(0, nearest, points)  # (k, E)
        counts = torch.bincount(nearest, minlength=k)  # (k,)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def distributed() -> bool:
    """True inside a torch.distributed (DDP) run."""
    return dist.is_available() and dist.is_initialized()


class RestartingVectorQuantizer(VectorQuantizer):
    """Chapter 1's VectorQuantizer whose dead codes are revived by k-means on recent latents:
    z (..., E) -> Quantized(codes (..., E), indices (...), aux_loss ()).

    Counters for usage-over-training plots: `restarts` (how many so far), `dead_fraction()`
    (now), `idle_steps` (K,) and `usage_fraction()` (codes picked within the last
    `dead_after` steps).
    """

    def __init__(
        self,
        codebook_size: int = 1024,
        dim: int = 1024,
        dead_after: int = 256,
        dead_fraction_to_restart: float = 0.03,
        min_steps_between: int = 200,
        bank_size: int | None = None,
        bank_steps: int = 16,
        kmeans_iters: int = 10,
        codebook_weight: float = 0.25,
        commitment_weight: float = 1.0,
    ):
        # chapter 1's loss is ||sg[z] - e||^2 + beta ||z - sg[e]||^2; scaled by
        # codebook_weight with beta = commitment_weight / codebook_weight it is
        # codebook_weight ||sg[z] - e||^2 + commitment_weight ||z - sg[e]||^2
        super().__init__(codebook_size, dim, beta=commitment_weight / codebook_weight)
        self.loss_scale = codebook_weight
        self.dead_after = dead_after
        self.dead_fraction_to_restart = dead_fraction_to_restart
        self.min_steps_between = min_steps_between
        self.kmeans_iters = kmeans_iters
        bank_size = bank_size or 10 * codebook_size
        if bank_size < codebook_size:
            raise ValueError(
                f"bank_size {bank_size} < codebook_size {codebook_size}: "
                "k-means needs at least one latent per code"
            )
        self.bank_insert = max(1, bank_size // bank_steps)  # latents written per step
        # buffers, so they move with .to(device) and are saved in checkpoints
        self.register_buffer("bank", torch.zeros(bank_size, dim))  # (bank, E)
        self.register_buffer("bank_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("bank_next", torch.zeros((), dtype=torch.long))  # ring position
        self.register_buffer("idle_steps", torch.zeros(codebook_size, dtype=torch.long))  # (K,)
        self.register_buffer("steps_since_restart", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def dead_fraction(self) -> float:
        """The fraction of codes unpicked for `dead_after` training steps or more."""
        return (self.idle_steps >= self.dead_after).float().mean().item()

    def usage_fraction(self) -> float:
        """The fraction of codes picked within the last `dead_after` training steps."""
        return 1.0 - self.dead_fraction()

    def forward(self, z: torch.Tensor) -> Quantized:
        """z (..., E) -> Quantized; in training mode, first restart if due, then record."""
        if self.training:
            self.maybe_restart()
        codes, indices, loss = super().forward(z)
        if self.training:
            self.record(z, indices)
        return Quantized(codes, indices, loss * self.loss_scale)

    @torch.no_grad()
    def record(self, z: torch.Tensor, indices: torch.Tensor) -> None:
        """Count which codes this step picked and write a sample of z into the bank."""
        used = torch.bincount(indices.flatten(), minlength=self.codebook_size)  # (K,)
        if distributed():
            dist.all_reduce(used)  # a code picked on any rank is alive
        self.idle_steps.add_(1).masked_fill_(used > 0, 0)
        self.steps_since_restart.add_(1)
        self.write_bank(pack([z.detach().float()], "* e")[0])

    @torch.no_grad()
    def write_bank(self, latents: torch.Tensor) -> None:
        """Write up to `bank_insert` random rows of latents (L, E) at the ring position."""
        n = min(self.bank_insert, len(latents))  # rows written this step
        rows = latents[torch.randperm(len(latents), device=latents.device)[:n]]  # (n, E)
        slots = (self.bank_next + torch.arange(n, device=rows.device)) % len(self.bank)  # (n,)
        self.bank[slots] = rows
        self.bank_next.copy_((self.bank_next + n) % len(self.bank))
        self.bank_filled.clamp_(max=len(self.bank) - n).add_(n)

    def restart_due(self) -> bool:
        """Too many dead codes, the last restart long enough ago, and a full bank."""
        return (
            self.dead_fraction() > self.dead_fraction_to_restart
            and int(self.steps_since_restart) >= self.min_steps_between
            and int(self.bank_filled) == len(self.bank)
        )

    @torch.no_grad()
    def maybe_restart(self) -> bool:
        """Re-initialise the whole codebook by k-means on the bank if due; True if it did."""
        if not self.restart_due():
            return False
        centres = kmeans(self.bank, self.codebook_size, self.kmeans_iters)  # (K, E)
        if distributed():
            dist.broadcast(centres, src=0)  # one codebook on every rank
        self.codebook.weight.copy_(centres.to(self.codebook.weight.dtype))
        self.idle_steps.zero_()
        self.steps_since_restart.zero_()
        self.restarts.add_(1)
        return True
