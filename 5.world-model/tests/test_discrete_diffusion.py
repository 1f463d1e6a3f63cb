"""CoPilot4D's discrete diffusion without a network: Algorithm 1's corruption, the objective
mix, the label-smoothed loss, Algorithm 2's sampler and classifier-free guidance."""

import math

import pytest
import torch
import torch.nn.functional as F
from dynamics_model.maskgit_decode import gumbel_noise
from world_model.discrete_diffusion import (
    ETA,
    FUTURE,
    JOINT,
    NO_PAST,
    OBJECTIVE_PROBS,
    corrupt,
    draw_objectives,
    guided_logits,
    guided_logits_fn,
    sample,
    smoothed_cross_entropy,
    still_masked,
    training_inputs,
)

K = 8  # codes; id K is MASK


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_ids(B, T, N, seed=0):
    return torch.randint(0, K, (B, T, N), generator=gen(seed))


# ----- Algorithm 1 ----------------------------------------------------------------------------


@pytest.mark.parametrize("per_sample", [False, True])
def test_corruption_masks_ceil_gamma_of_the_corrupted_tokens_and_noises_some_of_the_rest(
    per_sample,
):
    B, T, N = 400, 3, 10
    ids = random_ids(B, T, N)
    if per_sample:  # a different selector per sample, some samples with one frame corrupted
        frames = torch.rand(B, T, generator=gen(1)) < 0.6
        frames[:, 2] = True  # at least one corrupted frame each
    else:
        frames = torch.tensor([False, True, True])
    c = corrupt(ids, frames, K, gen(2))
    sel = torch.broadcast_to(frames, (B, T))[..., None].expand(B, T, N)  # (B, T, N)
    assert torch.equal(c.loss_mask, sel) and torch.equal(c.targets, ids)
    assert not (c.masked & ~sel).any() and not (c.noised & ~sel).any()  # clean frames: clean
    assert not (c.masked & c.noised).any()
    assert torch.equal(c.inputs[~sel], ids[~sel])
    for b in range(B):
        n_c = int(sel[b].sum())
        m = int(c.masked[b].sum())
        assert m == math.ceil(float(c.mask_ratio[b]) * n_c)
        u0 = math.acos(float(c.mask_ratio[b])) * 2 / math.pi  # gamma(u0) = cos(pi/2 u0)
        assert 0 <= u0 <= 1
        assert 0 <= float(c.noise_share[b]) <= ETA
        noised = int(c.noised[b].sum())
        assert noised == math.floor(float(c.noise_share[b]) * (n_c - m))
        assert noised <= ETA * (n_c - m)
    assert (c.inputs[c.masked] == K).all()
    assert (c.inputs[c.noised] < K).all() and (c.inputs[c.noised] >= 0).all()
    untouched = ~c.masked & ~c.noised
    assert torch.equal(c.inputs[untouched], ids[untouched])
    # the draws: E[gamma(U)] = 2/pi; E[u1 eta] = eta/2; noised codes are uniform, so only
    # 1/K of them equal the clean id
    assert abs(c.mask_ratio.mean().item() - 2 / math.pi) < 0.04
    assert abs(c.noise_share.mean().item() - ETA / 2) < 0.015
    changed = (c.inputs[c.noised] != ids[c.noised]).float().mean().item()
    assert abs(changed - (K - 1) / K) < 0.08


def test_corruption_picks_positions_uniformly():
    B, T, N = 3000, 2, 6
    c = corrupt(random_ids(B, T, N), torch.tensor([False, True]), K, gen(0))
    rate = c.masked[:, 1].float().mean(0)  # (N,) how often each position is masked
    assert (rate - rate.mean()).abs().max() < 0.03  # not "the first m"
    noise_rate = c.noised[:, 1].float().mean(0)  # (N,)
    assert (noise_rate - noise_rate.mean()).abs().max() < 0.015


def test_corruption_is_reproducible_from_the_seed():
    ids, frames = random_ids(4, 3, 16), torch.tensor([True, True, False])
    a, b, c = (corrupt(ids, frames, K, gen(s)) for s in (5, 5, 6))
    for field in ("inputs", "masked", "noised", "mask_ratio", "noise_share"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.inputs, c.inputs)


# ----- the objective mix ------------------------------------------------------------------------


def test_objective_frequencies_follow_the_probabilities():
    o = draw_objectives(20_000, frames=4, past=2, generator=gen(0))
    freq = torch.bincount(o.kind, minlength=3).float() / 20_000
    assert torch.allclose(freq, torch.tensor(OBJECTIVE_PROBS), atol=0.015)
    o2 = draw_objectives(500, 4, 2, gen(0), probs=(0.0, 0.0, 1.0))
    assert (o2.kind == NO_PAST).all()


def test_objectives_corrupt_and_hide_the_right_frames():
    B, T, N, past = 600, 4, 5, 2
    ids = random_ids(B, T, N)
    o, c = training_inputs(ids, past, K, gen(3))
    future = torch.tensor([False, False, True, True])
    for kind in (FUTURE, JOINT, NO_PAST):
        assert (o.kind == kind).any()
    f, j, u = o.kind == FUTURE, o.kind == JOINT, o.kind == NO_PAST
    assert (o.corrupt[f] == future).all() and (o.corrupt[u] == future).all()
    assert o.corrupt[j].all()
    assert torch.equal(o.past_visible, ~u)
    # FUTURE: the past is the clean ids, unscored; JOINT: the past is corrupted and scored
    assert torch.equal(c.inputs[f][:, :past], ids[f][:, :past])
    assert c.loss_mask[j][:, :past].all() and not c.loss_mask[f][:, :past].any()
    # NO_PAST really hides the past: every token MASK, not scored; the future still corrupted
    assert (c.inputs[u][:, :past] == K).all()
    assert not c.loss_mask[u][:, :past].any() and c.loss_mask[u][:, past:].all()
    assert torch.equal(o.hidden, ~o.past_visible[:, None] & ~future)


# ----- the loss -------------------------------------------------------------------------------


def test_label_smoothed_cross_entropy_matches_a_hand_computation():
    logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, 0.0, 9.0], [3.0, -1.0, 0.0]]])  # (1, 3, 3)
    targets = torch.tensor([[1, 0, 2]])
    loss_mask = torch.tensor([[True, False, True]])  # position 1 (a big loss) is not scored
    e, k = 0.1, 3

    def by_hand(z, y):
        log_p = [zi - math.log(sum(math.exp(v) for v in z)) for zi in z]
        return -(1 - e) * log_p[y] - e / k * sum(log_p)

    expected = (by_hand([1.0, 2.0, 0.5], 1) + by_hand([3.0, -1.0, 0.0], 2)) / 2
    got = smoothed_cross_entropy(logits, targets, loss_mask)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert smoothed_cross_entropy(logits, targets, torch.zeros_like(loss_mask)).item() == 0.0
    plain = smoothed_cross_entropy(logits, targets, loss_mask, smoothing=0.0)
    assert plain.item() == pytest.approx(F.cross_entropy(logits[0][[0, 2]], targets[0][[0, 2]]))


# ----- Algorithm 2 ----------------------------------------------------------------------------


def table_logits_fn(B, L, seed=0, calls=None):
    """logits_fn returning a fixed random table (B, L, K) whatever it is given; records inputs."""
    table = torch.randn(B, L, K, generator=gen(seed)) * 2

    def fn(ids):
        if calls is not None:
            calls.append(ids.clone())
        return table.view(*ids.shape, K)

    return fn


def masked_after(s: int, steps: int, n: int, schedule: str) -> int:
    """By hand: how many of n positions are still MASK after step s (0 after the last)."""
    if schedule == "maskgit":  # ceil(gamma((s+1)/S) n)
        return math.ceil(math.cos(math.pi / 2 * (s + 1) / steps) * n - 1e-9)
    return n - math.ceil(math.cos(math.pi / 2 * (steps - 1 - s) / steps) * n - 1e-9)


@pytest.mark.parametrize("schedule, revise", [("copilot4d", True), ("maskgit", False)])
def test_sample_fills_everything_keeps_fixed_and_follows_the_schedule(schedule, revise):
    B, T, N, steps = 3, 3, 8, 5
    init = random_ids(B, T, N)
    fixed = torch.zeros(B, T, N, dtype=torch.bool)
    fixed[:, 0] = True  # a clean past frame
    fixed[1, 1, :3] = True  # sample 1 generates fewer positions: per-sample counts
    calls = []
    out = sample(table_logits_fn(B, T * N, calls=calls), init, fixed, steps, mask_id=K,
                 generator=gen(0), schedule=schedule, revise=revise)  # fmt: skip
    assert len(calls) == steps
    assert torch.equal(out.ids[fixed], init[fixed]) and (out.ids < K).all()
    assert (out.decided_at_step[fixed] == -1).all() and (out.decided_at_step[~fixed] >= 0).all()
    n_gen = (~fixed).flatten(1).sum(1)  # (B,)
    for s in range(steps):
        expected = [masked_after(s, steps, int(n), schedule) for n in n_gen]
        got = (out.decided_at_step.flatten(1) > s).sum(1)
        assert got.tolist() == expected
        if s + 1 < steps:  # what the model sees at step s+1: exactly those still MASK
            assert (calls[s + 1] == K).flatten(1).sum(1).tolist() == expected
    for s in range(1, steps):  # a decided token is never re-masked (nor changed, unless revised)
        decided = calls[s] != K
        assert (out.decided_at_step[decided] < s).all()
        assert revise or torch.equal(calls[s][decided], out.ids[decided])
    assert (calls[0][~fixed] == K).all() and torch.equal(calls[0][fixed], init[fixed])


def test_sample_schedules_by_hand():
    n = torch.tensor([4, 5])
    # maskgit: ceil(cos(pi/2 (s+1)/3) 4) = 4, 2 (cos(pi/3) is 0.5000000000000001), 0
    assert [still_masked(s, 3, n, "maskgit")[0].item() for s in range(3)] == [4, 2, 0]
    # copilot4d, the note's literal reading: keep ceil(cos(pi/2 k/4) 5) = 2, 4, 5, 5
    assert [still_masked(s, 4, n)[1].item() for s in range(4)] == [3, 1, 0, 0]  # the default


def test_sample_keeps_the_most_confident_first():
    L, steps = 8, 2
    strength = torch.tensor([0.5, 4.0, 1.0, 3.0, 0.1, 2.0, 6.0, 0.2])  # (L,) how peaked
    logits = torch.zeros(1, L, K)
    logits[0, torch.arange(L), torch.arange(L) % K] = strength

    out = sample(lambda ids: logits, torch.zeros(1, L, dtype=torch.long),
                 torch.zeros(1, L, dtype=torch.bool), steps, temperature=0.0, mask_id=K,
                 code_temperature=0.0, schedule="maskgit")  # fmt: skip
    assert L - math.ceil(math.cos(math.pi / 4) * L) == 2  # kept after step 0
    assert set(torch.nonzero(out.decided_at_step[0] == 0).flatten().tolist()) == {6, 1}
    assert torch.equal(out.ids[0], torch.arange(L) % K)  # argmax codes


def test_sample_confidence_noise_is_gumbel_times_k_over_steps():
    """l = log p(x~0) + temperature * Gumbel * k/S at step s, k = S-1-s: with argmax codes
    (no draws) the first draws of the generator are step 0's Gumbel noise, scaled by 1/2."""
    B, L, steps, t = 64, 16, 2, 1.0
    logits = torch.randn(B, L, K, generator=gen(3))
    g = gumbel_noise((B, L), gen(7), "cpu")  # (B, L)
    log_p = logits.log_softmax(-1).amax(-1)  # (B, L): log p of the argmax code
    kept = L - math.ceil(math.cos(math.pi / 2 / steps) * L)
    assert kept == 4

    def top(scores):  # (B, L) bool: the `kept` best of each row
        return torch.zeros(B, L, dtype=torch.bool).scatter(1, scores.topk(kept).indices, True)

    out = sample(lambda ids: logits, torch.zeros(B, L, dtype=torch.long),
                 torch.zeros(B, L, dtype=torch.bool), steps, temperature=t, generator=gen(7),
                 mask_id=K, code_temperature=0.0, schedule="maskgit")  # fmt: skip
    first = out.decided_at_step == 0  # (B, L)
    assert torch.equal(first, top(log_p + t * 1 / 2 * g))
    assert not torch.equal(first, top(log_p)) and not torch.equal(first, top(log_p + t * g))


def test_sample_revise_rewrites_decided_tokens_with_the_last_sample():
    B, L, steps = 2, 6, 3
    step = [0]

    def fn(ids):  # step s: every position certain of code s
        logits = torch.full((B, L, K), -1e4)
        logits[..., step[0]] = 0.0
        step[0] += 1
        return logits

    kw = dict(mask_id=K, code_temperature=0.0)
    init, free = torch.zeros(B, L, dtype=torch.long), torch.zeros(B, L, dtype=torch.bool)
    kept = sample(fn, init, free, steps, generator=gen(0), revise=False, **kw)
    assert torch.equal(kept.ids, kept.decided_at_step)  # each keeps its step's code
    step[0] = 0
    revised = sample(fn, init, free, steps, generator=gen(0), revise=True, **kw)
    assert (revised.ids == steps - 1).all()
    assert torch.equal(revised.decided_at_step, kept.decided_at_step)


def test_sample_is_reproducible_from_the_seed():
    B, T, N = 2, 2, 16
    init, fixed = random_ids(B, T, N), torch.tensor([True, False])[:, None]  # (T, 1)
    fn = table_logits_fn(B, T * N, seed=4)
    a, b, c = (sample(fn, init, fixed, 4, mask_id=K, generator=gen(s)) for s in (1, 1, 2))
    assert torch.equal(a.ids, b.ids) and torch.equal(a.decided_at_step, b.decided_at_step)
    assert not torch.equal(a.ids, c.ids)
    assert torch.equal(a.ids[:, 0], init[:, 0])


# ----- classifier-free guidance -----------------------------------------------------------------


def test_guidance():
    cond, uncond = torch.randn(2, 5, K, generator=gen(0)), torch.randn(2, 5, K, generator=gen(1))
    assert torch.equal(guided_logits(cond, uncond, 0.0), cond)
    assert torch.allclose(guided_logits(cond, uncond, 1.0), 2 * cond - uncond)
    called = []
    fn = guided_logits_fn(lambda ids: cond, lambda ids: called.append(1) or uncond, 0.0)
    assert torch.equal(fn(None), cond) and not called  # w = 0 never runs the second branch
    fn = guided_logits_fn(lambda ids: cond, lambda ids: uncond, 2.0)
    assert torch.allclose(fn(None), 3 * cond - 2 * uncond)
