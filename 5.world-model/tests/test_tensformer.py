"""The TENSFormer: causality by perturbation, KV-cache generation, motion control and
planning, the loss, and the refusals of bad input. Tiny sizes: scales (1, 2, 4), L = 21."""

import pytest
import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer
from occupancy_tokenizer.scene import SceneTokenizer, SceneTokenizerConfig
from world_model.generate import decode_frames, generate, generate_no_cache, top_k_filter
from world_model.scale_inputs import teacher_forced_logits
from world_model.tens_loss import future_cross_entropy, tensformer_loss
from world_model.tensformer import TENSFormer, TENSFormerConfig

SCALES, K, E = (1, 2, 4), 16, 4
L = 21
EGO = EgoMotionTokenizer(low=(0.0, -1.0, -0.3), high=(8.0, 1.0, 0.3), bins=(3, 3, 3))
M = EGO.vocab_size  # 27
T, CONTEXT = 5, 2


def tiny_tokenizer() -> SceneTokenizer:
    torch.manual_seed(0)
    config = SceneTokenizerConfig(
        grid=(8, 8, 2), channels=8, channel_mults=(1, 2), latent_dim=E, codebook_size=K,
        quantizer="multiscale", scales=SCALES,
    )  # fmt: skip
    return SceneTokenizer(config).eval()


def tiny_model(quantizer, seed: int = 0, **sizes) -> TENSFormer:
    torch.manual_seed(seed)
    sizes = {"max_frames": T, "context": CONTEXT, "dim": 32, "depth": 2, "heads": 4} | sizes
    return TENSFormer(TENSFormerConfig.matching(quantizer, EGO, **sizes)).eval()


def sharp_model(quantizer, seed: int = 0) -> TENSFormer:
    """A tiny model whose outputs depend strongly on every input. At init (embeddings of std
    0.02, codes of size 1/K) every frame looks alike to it and the motion head's argmax is
    the same token everywhere, so a test that reads the wrong frame could pass by chance."""
    model = tiny_model(quantizer, seed)
    with torch.no_grad():
        for emb in (model.motion_emb, model.slot_emb, model.scale_emb, model.frame_emb):
            emb.weight.normal_(0, 1.0)
        for linear in (model.scale_in, model.prev_in):  # f_hat is ~1/K: bring it to ~1
            linear.weight.mul_(K)
        for head in (model.scene_head, model.motion_head):
            head.weight.mul_(5)
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def quantizer(tokenizer):
    return tokenizer.quantizer


def random_clip(B: int = 3, frames: int = T, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(K, (B, frames, L), generator=g)  # (B, T, L)
    return ids, torch.randint(M, (B, frames - 1), generator=g)  # motions m_1 .. m_{T-1}


def test_config_from_the_tokenizers(quantizer):
    c = tiny_model(quantizer).config
    assert (c.scales, c.codebook_size, c.code_dim, c.motion_vocab) == (SCALES, K, E, 27)


def test_no_position_sees_its_own_scale_or_later(quantizer):
    """Changing frame t's scale-k ids, every finer scale of frame t, and all later frames,
    never changes the logits at frame t's blocks <= k nor anything of earlier frames."""
    model = tiny_model(quantizer)
    ids, motions = random_clip()
    lay = model.layout
    with torch.no_grad():
        scene, motion = teacher_forced_logits(model, quantizer, ids, motions)
        for t in range(T):
            for k in range(lay.num_blocks):
                other = ids.clone()
                first = lay.block_starts[k]
                other[:, t, first:] = (ids[:, t, first:] + 1 + t) % K  # scale k and finer
                other[:, t + 1 :] = torch.randint(K, other[:, t + 1 :].shape)  # later frames
                scene2, motion2 = teacher_forced_logits(model, quantizer, other, motions)
                end = first + lay.block_sizes[k]  # frame t's slots up to block k's last
                assert torch.allclose(scene2[:, :t], scene[:, :t], atol=1e-5), (t, k)
                assert torch.allclose(scene2[:, t, :end], scene[:, t, :end], atol=1e-5), (t, k)
                assert torch.allclose(motion2[:, :t], motion[:, :t], atol=1e-5), (t, k)
                seen = t * L + end  # the first position that may see the change
                if seen < T * L:  # and the change is seen there (the test is not vacuous)
                    change = scene2.flatten(1, 2)[:, seen:] - scene.flatten(1, 2)[:, seen:]
                    assert change.abs().max() > 1e-4, (t, k)


def test_a_motion_token_conditions_only_its_frame_and_later(quantizer):
    model = tiny_model(quantizer)
    ids, motions = random_clip()
    for t in range(1, T):  # motions[:, t - 1] is m_t, read by frame t's motion slot
        other = motions.clone()
        other[:, t - 1] = (motions[:, t - 1] + 1) % M
        with torch.no_grad():
            scene, motion = teacher_forced_logits(model, quantizer, ids, motions)
            scene2, motion2 = teacher_forced_logits(model, quantizer, ids, other)
        assert torch.allclose(scene2[:, :t], scene[:, :t], atol=1e-5)
        assert torch.allclose(motion2[:, :t], motion[:, :t], atol=1e-5)  # m_t is never seen
        assert (scene2[:, t, 0] - scene[:, t, 0]).abs().max() > 1e-4  # it sets scale 1


@pytest.mark.parametrize("given", [False, True])
def test_kv_cache_generation_equals_no_cache(quantizer, given):
    model = sharp_model(quantizer)
    ids, motions = random_clip()
    past_ids, past_motions = ids[:, :3], motions[:, :2]  # 3 past frames >= context
    future = motions[:, 2:] if given else None
    kw = {"temperature": 1.0, "top_k": 8, "top_p": 0.9}
    cached = generate(model, quantizer, past_ids, past_motions, future, future_frames=2,
                      generator=torch.Generator().manual_seed(5), **kw)  # fmt: skip
    plain = generate_no_cache(model, quantizer, past_ids, past_motions, future, future_frames=2,
                              generator=torch.Generator().manual_seed(5), **kw)  # fmt: skip
    assert cached.ids.shape == (3, 2, L) and cached.motions.shape == (3, 2)
    assert torch.equal(cached.ids, plain.ids)
    assert torch.equal(cached.motions, plain.motions)
    assert cached.ids.unique().numel() > 3  # really sampled: not one repeated code


def test_given_motions_are_used_and_planned_ones_come_from_the_head(quantizer):
    model = sharp_model(quantizer)
    ids, motions = random_clip()
    past_ids, past_motions = ids[:, :CONTEXT], motions[:, : CONTEXT - 1]
    given = torch.tensor([[3, 20, 7], [0, 26, 13], [9, 9, 1]])
    out = generate(model, quantizer, past_ids, past_motions, given, temperature=0)
    assert torch.equal(out.motions, given)
    planned = generate(model, quantizer, past_ids, past_motions, None, temperature=0)
    # greedy planning: m_t = argmax of the head at frame t-1, on the clip it generated
    clip = torch.cat([past_ids, planned.ids], dim=1)  # (B, T, L)
    all_motions = torch.cat([past_motions, planned.motions], dim=1)  # (B, T - 1)
    _, motion_logits = teacher_forced_logits(model, quantizer, clip, all_motions)
    assert torch.equal(planned.motions, motion_logits[:, CONTEXT - 1 : -1].argmax(-1))
    assert planned.motions.unique().numel() > 1  # not one token the head prefers everywhere
    # and the logits it drew from are the head's at frame t-1, numerically
    drawn_from = []
    hook = model.motion_head.register_forward_hook(lambda m, i, out: drawn_from.append(out))
    generate(model, quantizer, past_ids, past_motions, None, temperature=0)
    hook.remove()
    drawn_from = torch.stack(drawn_from[:-1], dim=1)  # (B, T_f, M); the last: m_T, unused
    assert torch.allclose(drawn_from, motion_logits[:, CONTEXT - 1 : -1], atol=1e-4)
    seeds = [torch.Generator().manual_seed(s) for s in range(3)]
    sampled = [generate(model, quantizer, past_ids, past_motions, generator=g) for g in seeds]
    sampled = [rollout.motions for rollout in sampled]
    assert not all(torch.equal(sampled[0], s) for s in sampled[1:])  # drawn, not fixed


def test_changing_a_given_motion_changes_that_frame_and_not_earlier_ones(quantizer):
    model = sharp_model(quantizer)
    ids, motions = random_clip()
    past_ids, past_motions = ids[:, :CONTEXT], motions[:, : CONTEXT - 1]
    given = torch.tensor([[3, 20, 7], [0, 26, 13], [9, 9, 1]])
    other = given.clone()
    other[:, 1] = (given[:, 1] + 13) % M
    a = generate(model, quantizer, past_ids, past_motions, given, temperature=0)
    b = generate(model, quantizer, past_ids, past_motions, other, temperature=0)
    assert torch.equal(a.ids[:, 0], b.ids[:, 0])  # frame before the change: identical
    assert (a.ids[:, 1] != b.ids[:, 1]).any(dim=1).all()  # every sample's changed frame differs


def test_loss_scores_future_frames_only(quantizer):
    model = tiny_model(quantizer)
    ids, motions = random_clip()
    loss, metrics = tensformer_loss(model, quantizer, ids, motions)
    assert torch.isfinite(loss)
    assert {"scene_ce", "motion_ce", "scene_accuracy", "scene_ce_s4"} <= set(metrics)
    scene, motion = teacher_forced_logits(model, quantizer, ids, motions)
    other_ids, other_motions = ids.clone(), motions.clone()
    other_ids[:, :CONTEXT] = (ids[:, :CONTEXT] + 5) % K  # past targets (logits kept)
    other_motions[:, : CONTEXT - 1] = (motions[:, : CONTEXT - 1] + 5) % M  # m_1 .. m_{context-1}
    same, _ = future_cross_entropy(model, scene, motion, other_ids, other_motions)
    assert torch.equal(same, loss)
    other_ids[:, CONTEXT, 3] = (ids[:, CONTEXT, 3] + 1) % K  # a future target does count
    other_motions[:, CONTEXT - 1] = (motions[:, CONTEXT - 1] + 1) % M
    changed, _ = future_cross_entropy(model, scene, motion, other_ids, other_motions)
    assert changed != loss


def test_loss_overfits_a_tiny_batch_and_leaves_the_tokenizer_alone(quantizer):
    model = tiny_model(quantizer).train()
    ids, motions = random_clip(B=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _ = tensformer_loss(model, quantizer, ids, motions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses  # 3.05 -> 0.46 when written
    assert all(p.grad is None for p in quantizer.parameters())  # the tokenizer is frozen


def test_decode_frames_decodes_each_frame(tokenizer):
    ids, _ = random_clip(B=2, frames=3)
    grids = decode_frames(tokenizer, ids)
    assert grids.shape == (2, 3, 8, 8, 2)
    assert torch.equal(grids[1, 2], tokenizer.decode(ids[1, 2][None])[0])


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0]])
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[True, False, True, False]]
    assert torch.equal(top_k_filter(logits, 0), logits)


# ----- bad input -------------------------------------------------------------------------


def test_scales_must_start_at_one():
    with pytest.raises(ValueError, match="starting at 1"):
        TENSFormerConfig(scales=(2, 4), codebook_size=K, code_dim=E, motion_vocab=M)


def test_short_context_is_refused(quantizer):
    model = tiny_model(quantizer, context=3)
    ids, motions = random_clip()
    with pytest.raises(ValueError, match="context=3"):
        generate(model, quantizer, ids[:, :2], motions[:, :1], motions[:, 1:3])
    with pytest.raises(ValueError, match="context=3"):
        tensformer_loss(model, quantizer, ids[:, :3], motions[:, :2])  # nothing to score


def test_wrong_ids_and_motions_are_refused(quantizer):
    model = tiny_model(quantizer)
    ids, motions = random_clip()
    with pytest.raises(ValueError, match="L=21"):
        tensformer_loss(model, quantizer, ids[:, :, :20], motions)
    with pytest.raises(ValueError, match="L=21"):
        generate(model, quantizer, ids[:, :2, :20], motions[:, :1])
    with pytest.raises(ValueError, match=r"lie in \[0, 16\)"):
        tensformer_loss(model, quantizer, ids + K, motions)
    with pytest.raises(ValueError, match=r"motions.*lie in \[0, 27\)"):
        tensformer_loss(model, quantizer, ids, motions + M)
    with pytest.raises(ValueError, match=r"future_motions.*lie in \[0, 27\)"):
        generate(model, quantizer, ids[:, :2], motions[:, :1], motions[:, 1:4] + M)
    with pytest.raises(ValueError, match=r"motions.*\(3, 4\)"):
        tensformer_loss(model, quantizer, ids, motions[:, :3])
    with pytest.raises(ValueError, match="max_frames=5"):
        generate(model, quantizer, ids[:, :2], motions[:, :1], future_frames=4)
    other = tiny_tokenizer().quantizer
    other.scales = (1, 2)  # a tokenizer the model was not made for
    with pytest.raises(ValueError, match="the model expects"):
        tensformer_loss(model, other, ids, motions)
