"""CoPilot4D's discrete diffusion (MaskGIT recast as diffusion), apart from any network.

Frames of N token ids in [0, K); id K is MASK. The network is a callback, logits_fn(ids) ->
logits over the K codes at every position, so the algorithm is testable without one.

Training, their Algorithm 1, on the tokens of the corrupted frames (N_c of them per sample):

    u0 ~ U(0, 1);  mask  m = ceil(gamma(u0) N_c) of them,  gamma(u) = cos(pi/2 u)
    u1 ~ U(0, 1);  noise floor(u1 eta (N_c - m)) of the rest with uniform codes, eta = 0.2
    loss = label-smoothed (0.1) cross-entropy -log p(x0 | x_k) at EVERY token of the
           corrupted frames (masked, noised and untouched alike); clean frames are not scored

The paper note says "cross-entropy on the clean tokens": we read it as the targets being the
clean x0, and score every corrupted-frame position (the note names no positions). The noise
is what makes it diffusion rather than MaskGIT: an unmasked token may be wrong, so a model
scored on all of them learns to tell (and fix) a noised one. Each sample
trains one of three objectives (`draw_objectives`): the future given a clean past, the past
and future denoised jointly, or the future with no past at all (the past frames all MASK),
which is the unconditional branch that classifier-free guidance needs.

Sampling, their Algorithm 2, in S steps over the positions not `fixed` (n of them), as the
paper writes it (the defaults):

    start:   every generated position MASK
    step s:  x~0 ~ p(. | x) at every position;  l = log p(x~0) + Gumbel * temperature * k/S,
             k = S-1-s (the noise anneals linearly to 0); decided and fixed positions get +inf;
             M = ceil(gamma(k/S) n) positions take x~0 (the top M of l, which include every
             decided one: "x_k <- x~0 on the top-M", so a decided token may be revised, as a
             model trained on noised tokens can do); the rest are re-masked

After step s, ceil(gamma((S-1-s)/S) n) = ceil(sin(pi/2 (s+1)/S) n) positions are decided.
MaskGIT (chapter 2) leaves ceil(gamma((s+1)/S) n) masked instead, the count Algorithm 1 masks
at u0 = (s+1)/S, and never rewrites a decided token: `schedule="maskgit", revise=False`. The
paper's rule decides more tokens early (16% after the first of 10 steps, against 1%).

This is chapter 2's `maskgit_decode` with ceil for round, fixed (conditioning) positions and
per-sample counts; it is not wrapped because its signature has neither. guided_logits(cond,
uncond, w) = cond + w (cond - uncond) builds the logits of classifier-free guidance.

Shapes: B batch, T frames, N tokens per frame, K codebook size, L flattened sequence length
(the positions of one sample that `sample` is given).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from dynamics_model.maskgit_decode import gumbel_noise, mask_schedule
from dynamics_model.sampling import sample_from_logits
from einops import rearrange

ETA = 0.2  # the largest share of the unmasked corrupted tokens that is noised
LABEL_SMOOTHING = 0.1
FUTURE, JOINT, NO_PAST = 0, 1, 2  # the objectives: clean past; past and future; no past
OBJECTIVE_PROBS = (0.5, 0.4, 0.1)  # chosen: the paper note gives no split
SCHEDULES = ("maskgit", "copilot4d")
_EPS = 1e-9  # ceil(0.5000000000000001 * 4) must be 2: cos(pi/3) is not exactly 1/2 in floats

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def ceil_count(ratio, n: torch.Tensor) -> torch.Tensor:
    """ceil(ratio * n) as int64 in [0, n], in float64 and forgiving float error (_EPS)."""
    exact = torch.as_tensor(ratio, dtype=torch.float64, device=n.device) * n.double()
    return torch.minimum(torch.ceil(exact - _EPS).clamp(min=0).long(), n)


def _choose(candidates: torch.Tensor, count: torch.Tensor, generator) -> torch.Tensor:
    """Exactly count[b] positions of row b, uniformly among its True candidates: (B, L) bool.

    Uniform scores, non-candidates pushed past every candidate (2 > 1); a position is chosen
    when its rank in the scores is < count (count <= the row's candidates)."""
    scores = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    scores = scores.masked_fill(~candidates, 2.0)  # (B, L)
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, L)
    return rank < count[:, None]


@dataclass
class Corruption:
    """What Algorithm 1 gives the model and the loss. MASK = K."""

    inputs: torch.Tensor  # (B, T, N) int64 in [0, K]: masked -> K, noised -> a random code
    targets: torch.Tensor  # (B, T, N) int64: the clean ids x0
    masked: torch.Tensor  # (B, T, N) bool
    noised: torch.Tensor  # (B, T, N) bool: drawn for noise (the code may equal x0 by chance)
    loss_mask: torch.Tensor  # (B, T, N) bool: every token of the corrupted frames
    mask_ratio: torch.Tensor  # (B,) float64: gamma(u0)
    noise_share: torch.Tensor  # (B,) float64: u1 * eta


def corrupt(
    ids: torch.Tensor,
    frames: torch.Tensor,
    codebook_size: int,
    generator: torch.Generator | None = None,
    eta: float = ETA,
) -> Corruption:
    """Algorithm 1 on ids (B, T, N); frames (B, T) or (T,) bool says which are corrupted."""
    if ids.ndim != 3 or frames.dtype != torch.bool:
        shape = tuple(ids.shape)
        raise ValueError(f"need ids (B, T, N) and bool frames, got {shape}, {frames.dtype}")
    B, T, N = ids.shape
    K, dev = codebook_size, ids.device
    corruptible = rearrange(torch.broadcast_to(frames, (B, T)), "b t -> b t 1").expand(B, T, N)
    corruptible = rearrange(corruptible, "b t n -> b (t n)")  # (B, L)
    n_c = corruptible.sum(dim=1)  # (B,) N_c
    u0 = torch.rand(B, generator=generator, device=dev, dtype=torch.float64)
    ratio = mask_schedule(u0)  # (B,) gamma(u0)
    masked = _choose(corruptible, ceil_count(ratio, n_c), generator)  # ceil(gamma(u0) N_c)
    u1 = torch.rand(B, generator=generator, device=dev, dtype=torch.float64)
    share = u1 * eta  # (B,) in [0, eta)
    remaining = corruptible & ~masked  # (B, L)
    n_noise = torch.floor(share * remaining.sum(dim=1)).long()  # floor: share never > eta
    noised = _choose(remaining, n_noise, generator)  # (B, L)
    codes = torch.randint(0, K, (B, T * N), generator=generator, device=dev)  # uniform noise
    flat = rearrange(ids, "b t n -> b (t n)")
    inputs = torch.where(masked, K, torch.where(noised, codes, flat))  # (B, L)

    def unflat(x):
        return rearrange(x, "b (t n) -> b t n", t=T)

    return Corruption(
        unflat(inputs), ids, unflat(masked), unflat(noised), unflat(corruptible), ratio, share
    )


@dataclass
class Objectives:
    """One training objective per sample, and what it means for the corruption and model."""

    kind: torch.Tensor  # (B,) int64: FUTURE, JOINT or NO_PAST
    corrupt: torch.Tensor  # (B, T) bool: the frames Algorithm 1 corrupts and the loss scores
    past_visible: torch.Tensor  # (B,) bool: False for NO_PAST
    hidden: torch.Tensor  # (B, T) bool: the past frames of NO_PAST samples, fed as all MASK


def draw_objectives(
    batch: int,
    frames: int,
    past: int,
    generator: torch.Generator | None = None,
    probs: tuple[float, float, float] = OBJECTIVE_PROBS,
    device=None,
) -> Objectives:
    """Per sample: FUTURE (corrupt the future, clean past), JOINT (corrupt every frame) or
    NO_PAST (corrupt the future, hide the past), with probabilities `probs`."""
    if not 1 <= past < frames:
        raise ValueError(f"past must be in [1, frames) = [1, {frames}), got {past}")
    if len(probs) != 3 or min(probs) < 0 or sum(probs) <= 0:
        raise ValueError(f"probs must be 3 weights >= 0 (future, joint, no past), got {probs}")
    weights = torch.tensor(probs, dtype=torch.float, device=device)
    kind = torch.multinomial(weights, batch, replacement=True, generator=generator)  # (B,)
    is_past = torch.arange(frames, device=device) < past  # (T,)
    joint = rearrange(kind == JOINT, "b -> b 1")
    corrupt_frames = joint | ~is_past  # (B, T)
    past_visible = kind != NO_PAST  # (B,)
    hidden = is_past & ~rearrange(past_visible, "b -> b 1")  # (B, T)
    return Objectives(kind, corrupt_frames, past_visible, hidden)


def training_inputs(
    ids: torch.Tensor,
    past: int,
    codebook_size: int,
    generator: torch.Generator | None = None,
    probs: tuple[float, float, float] = OBJECTIVE_PROBS,
    eta: float = ETA,
) -> tuple[Objectives, Corruption]:
    """Draw the objectives of ids (B, T, N), corrupt by Algorithm 1, and hide the past of the
    NO_PAST samples (every token MASK, never scored). A network that can also cut its
    temporal attention reads `past_visible`."""
    B, T, _ = ids.shape
    objectives = draw_objectives(B, T, past, generator, probs, ids.device)
    c = corrupt(ids, objectives.corrupt, codebook_size, generator, eta)
    hidden = rearrange(objectives.hidden, "b t -> b t 1")
    return objectives, replace(c, inputs=c.inputs.masked_fill(hidden, codebook_size))


def smoothed_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    loss_mask: torch.Tensor,
    smoothing: float = LABEL_SMOOTHING,
) -> torch.Tensor:
    """Mean over the loss positions of (1 - e)(-log p_y) + e mean_k(-log p_k), e = smoothing.

    logits (..., K), targets and loss_mask (...); 0 when no position is scored."""
    ce = F.cross_entropy(
        rearrange(logits, "... k -> (...) k").float(),
        targets.flatten(),
        reduction="none",
        label_smoothing=smoothing,
    )  # (positions,)
    weight = loss_mask.flatten().float()
    return (ce * weight).sum() / weight.sum().clamp(min=1)  # no host sync


def still_masked(step: int, steps: int, n: torch.Tensor, schedule: str = "copilot4d"):
    """(B,) int64: of n[b] generated positions, how many are masked after step 0..S-1.

    "copilot4d": n - ceil(gamma(k/S) n), k = S-1-s: Algorithm 2's "M = ceil(gamma(k/K) N)"
    positions take x~0 (sin(pi/2 (s+1)/S) of them decided).
    "maskgit": ceil(gamma((s+1)/S) n), as training masks ceil(gamma(u0) N_c) at u0 = (s+1)/S.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step >= steps - 1:
        return torch.zeros_like(n)
    if schedule == "maskgit":
        return ceil_count(mask_schedule((step + 1) / steps), n)
    return n - ceil_count(mask_schedule((steps - 1 - step) / steps), n)


class Sampled(NamedTuple):
    """What `sample` returns."""

    ids: torch.Tensor  # init_ids' shape, int64 in [0, K): nothing masked
    decided_at_step: torch.Tensor  # init_ids' shape, int64: the step that unmasked it; -1 fixed


@torch.no_grad()
def sample(
    logits_fn: LogitsFn,
    init_ids: torch.Tensor,
    fixed: torch.Tensor,
    steps: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    mask_id: int,
    code_temperature: float = 1.0,
    schedule: str = "copilot4d",
    revise: bool = True,
) -> Sampled:
    """Algorithm 2: fill every position of init_ids (B, ...) that `fixed` (broadcastable
    bool) leaves free in `steps` calls of logits_fn(ids (B, ...)) -> (B, ..., K).

    temperature scales the annealed Gumbel noise on the confidences: 1 is the paper's
    Gumbel * k/K, MaskGIT's "choice temperature" (4.5 there), 0 none. code_temperature
    draws the codes (1 = x~0 ~ p, 0 = argmax). `revise` (the paper's "x_k <- x~0 on the
    top-M") writes every step's fresh sample over the decided positions; without it they
    keep their code, as MaskGIT does.
    Fixed positions never change; the same generator state gives the same output.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    shape = init_ids.shape
    fixed = rearrange(torch.broadcast_to(fixed, shape), "b ... -> b (...)")  # (B, L)
    ids = rearrange(init_ids, "b ... -> b (...)").masked_fill(~fixed, mask_id)  # (B, L)
    B, L = ids.shape
    n_gen = (~fixed).sum(dim=1)  # (B,) n
    unmasked = fixed.clone()  # (B, L): fixed or decided
    decided_at_step = torch.full_like(ids, -1)  # (B, L)
    for s in range(steps):
        logits = rearrange(logits_fn(ids.view(shape)), "b ... k -> b (...) k")  # (B, L, K)
        sampled = sample_from_logits(logits, code_temperature, 1.0, generator)  # (B, L)
        log_p = F.log_softmax(logits.float(), dim=-1).gather(-1, sampled[..., None])[..., 0]
        noise_scale = temperature * (steps - 1 - s) / steps  # k/K, k = S-1-s
        confidence = log_p  # (B, L): log p(x~0)
        if noise_scale > 0:
            confidence = log_p + noise_scale * gumbel_noise((B, L), generator, ids.device)
        confidence = confidence.masked_fill(unmasked, math.inf)  # decided and fixed stay
        keep_count = L - still_masked(s, steps, n_gen, schedule)  # (B,)
        rank = confidence.argsort(dim=1, descending=True).argsort(dim=1)  # (B, L)
        keep = rank < keep_count[:, None]  # (B, L), a superset of `unmasked`
        write = keep & ~fixed if revise else keep & ~unmasked
        ids = torch.where(write, sampled, ids)
        decided_at_step = decided_at_step.masked_fill(keep & ~unmasked, s)
        unmasked = keep
    return Sampled(ids.view(shape), decided_at_step.view(shape))


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: cond + w (cond - uncond); w = 0 is the conditional model.

    On logits or log-probabilities alike: they differ by a per-position constant, which
    the softmax ignores."""
    return cond + w * (cond - uncond)


def guided_logits_fn(cond_fn: LogitsFn, uncond_fn: LogitsFn, w: float) -> LogitsFn:
    """A logits_fn for `sample`: both branches on the same ids, guided (w = 0: cond_fn, and
    the unconditional branch is never called)."""
    if w == 0:
        return cond_fn
    return lambda ids: guided_logits(cond_fn(ids), uncond_fn(ids), w)
