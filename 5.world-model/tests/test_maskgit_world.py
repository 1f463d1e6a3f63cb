"""The MaskGIT world model (CoPilot4D's discrete diffusion over single-scale scene tokens): the
loss scores what Algorithm 1 says and nothing else, no masked id leaks into the logits, frame
t's motion token conditions frame t, the forecaster keeps the past fixed and the contract,
train.py --kind=maskgit runs, validate.py scores it beside a TENSFormer, bad input is refused.
Tiny sizes: a 4 x 4 token grid (N = 16), 16 codes, 27 motion tokens, 11-frame clips."""

import json
from pathlib import Path

import pytest
import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from world_model.discrete_diffusion import smoothed_cross_entropy, training_inputs
from world_model.maskgit_forecast import maskgit_forecaster, maskgit_rollout
from world_model.maskgit_world import (
    MaskGITEvaluator,
    MaskGITWorld,
    MaskGITWorldConfig,
    maskgit_config_matching,
    maskgit_loss,
)
from world_model.synthetic import synthetic_windows
from world_model.token_data import CLIP_FRAMES, TokenClips
from world_model.training import load_frozen_tokenizer
from world_model.windows import PAST_FRAMES

from worldmodels import testing
from worldmodels.checkpoint import load_model
from worldmodels.config import ConfigError
from worldmodels.runlog import read_log

from .test_train_script import tiny

CHAPTER = Path(__file__).resolve().parent.parent
EGO = EgoMotionTokenizer(low=(0.0, -1.0, -0.3), high=(2.0, 1.0, 0.3), bins=(3, 3, 3))
K, N = 16, 16  # codes (id 16 is MASK), tokens a frame


@pytest.fixture(scope="module")
def tokenizer(make_scene_tokenizer):
    return make_scene_tokenizer()


def sharp_model(tokenizer, seed: int = 0, **sizes) -> MaskGITWorld:
    """A tiny untrained model whose outputs depend strongly on its inputs (at init, embeddings
    of std 0.02 make every token and every motion look alike to it)."""
    torch.manual_seed(seed)
    sizes = dict(dim=32, depth=2, heads=4) | sizes
    model = MaskGITWorld(maskgit_config_matching(tokenizer, EGO, **sizes)).eval()
    with torch.no_grad():
        for emb in (model.token_emb, model.motion_emb):
            emb.weight.normal_(0, 1.0)
        model.position.time.normal_(0, 1.0)
        model.head.weight.mul_(5)
    return model


def random_clip(B: int = 2, seed: int = 1):
    """ids (B, T, N) and motions (B, T - 1), as TokenClips.batch gives them."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(K, (B, CLIP_FRAMES, N), generator=g)
    return ids, torch.randint(EGO.vocab_size, (B, CLIP_FRAMES - 1), generator=g)


def spy_logits(model, monkeypatch) -> list:
    """Record every call's (ids, logits); the logits keep their gradient."""
    calls, forward = [], model.forward

    def spy(ids, motions):
        logits = forward(ids, motions)
        if logits.requires_grad:
            logits.retain_grad()
        calls.append((ids.clone(), logits))
        return logits

    monkeypatch.setattr(model, "forward", spy)
    return calls


def gen(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_config_is_derived_from_the_tokenizers(tokenizer):
    config = maskgit_config_matching(tokenizer, EGO, dim=32, depth=2, heads=4)
    assert (config.codebook_size, config.token_grid, config.motion_vocab) == (16, (4, 4), 27)
    assert (config.max_frames, config.context, config.causal_time) == (CLIP_FRAMES, 5, False)
    model = MaskGITWorld(config)
    assert (model.mask_id, model.start_motion) == (16, 27)
    assert model.token_emb.num_embeddings == 17 and model.motion_emb.num_embeddings == 28
    with pytest.raises(ConfigError, match="objective_probs"):
        MaskGITWorldConfig(objective_probs=(1.0, -0.5, 0.0))
    with pytest.raises(ConfigError, match="max_frames"):
        MaskGITWorldConfig(context=11)


def test_the_future_objective_never_scores_the_clean_past(tokenizer, monkeypatch):
    """d loss / d logits is 0 at every past position under FUTURE (and NO_PAST), non-zero at
    every future one (masked, noised and untouched alike); JOINT scores the past too. The
    loss is the label-smoothed CE over the future frames against the clean ids."""
    model = sharp_model(tokenizer)
    ids, motions = random_clip(B=3)
    calls = spy_logits(model, monkeypatch)
    for probs, past_scored in (((1, 0, 0), False), ((0, 0, 1), False), ((0, 1, 0), True)):
        calls.clear()
        loss, _ = maskgit_loss(model, ids, motions, gen(), probs)
        loss.backward()
        [(_, logits)] = calls
        scored = logits.grad.abs().sum(-1) > 0  # (B, T, N)
        assert scored[:, PAST_FRAMES:].all()
        assert scored[:, :PAST_FRAMES].all() if past_scored else not scored[:, :PAST_FRAMES].any()
        if not past_scored:
            future = ids[:, PAST_FRAMES:]  # (B, 6, N): every future position, scored
            everywhere = torch.ones_like(future, dtype=torch.bool)
            expected = smoothed_cross_entropy(logits[:, PAST_FRAMES:], future, everywhere)
            torch.testing.assert_close(loss, expected)


def test_no_logit_depends_on_the_true_id_of_a_masked_position(tokenizer, monkeypatch):
    """Every id the network is given as MASK (masked by Algorithm 1, or a NO_PAST clip's hidden
    past) is changed in the clean clip: with the same corruption draws, every logit stays.
    Changing one unmasked id of a corrupted frame does change them (the check can see)."""
    model = sharp_model(tokenizer)
    ids, motions = random_clip(B=6)
    probs = (1.0, 1.0, 1.0)  # every objective, some of each among 6 clips
    _, x = training_inputs(ids, PAST_FRAMES, K, gen(), probs)
    fed_mask = x.inputs == K  # (B, T, N)
    assert fed_mask[:, :PAST_FRAMES].any() and fed_mask[:, PAST_FRAMES:].any()
    shift = 1 + torch.randint(K - 1, ids.shape, generator=gen(3))  # 1 .. K-1: another id
    changed = torch.where(fed_mask, (ids + shift) % K, ids)
    assert (changed != ids)[fed_mask].all()
    calls = spy_logits(model, monkeypatch)
    with torch.no_grad():
        for clip in (ids, changed):
            maskgit_loss(model, clip, motions, gen(), probs)
    assert torch.equal(calls[0][0], calls[1][0])  # the same inputs ...
    assert torch.equal(calls[0][1], calls[1][1])  # ... so the same logits everywhere
    b, t, n = (~fed_mask & x.loss_mask & ~x.noised).nonzero()[0].tolist()  # a visible token
    moved = ids.clone()
    moved[b, t, n] = (ids[b, t, n] + 1) % K
    with torch.no_grad():
        maskgit_loss(model, moved, motions, gen(), probs)
    assert not torch.equal(calls[0][1], calls[2][1])


@pytest.mark.parametrize("causal_time", [False, True])
def test_the_motion_token_of_frame_t_conditions_frame_t(tokenizer, causal_time):
    """m_t (motions[:, t - 1]) changes frame t's logits; with causal time (which lets the
    check see where the motion enters) no earlier frame's. Frame 0 reads START."""
    model = sharp_model(tokenizer, causal_time=causal_time)
    ids, motions = random_clip()
    ids[:, PAST_FRAMES:] = model.mask_id  # the forecast's input: the future all MASK
    t = 7
    other = motions.clone()
    other[:, t - 1] = (motions[:, t - 1] + 13) % EGO.vocab_size
    with torch.no_grad():
        given, moved = model(ids, motions), model(ids, other)
    differs = (given - moved).abs().amax(dim=(0, 2, 3)) > 1e-4  # (T,): per frame
    assert differs[t]
    if causal_time:
        assert not differs[:t].any()
        with torch.no_grad():  # START: frame 0 does not read m_1
            m1 = motions.clone()
            m1[:, 0] = (motions[:, 0] + 1) % EGO.vocab_size
            torch.testing.assert_close(model(ids, m1)[:, 0], given[:, 0])


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_the_forecaster_keeps_the_past_fixed_and_the_contract(tokenizer, monkeypatch, guidance):
    """Every network call sees the encoded past (the unconditional branch: all MASK) and the
    future poses' motion tokens; `steps` calls (twice that with guidance); the first sees
    the future all MASK, the result has none. 6 frames of class ids, uint8 on the CPU,
    the same for the same seed."""
    window = synthetic_windows("val").batch([0, 1])
    model = sharp_model(tokenizer)
    steps = 4
    calls, forward = [], model.forward

    def spy(ids, motions):
        calls.append((ids.clone(), motions.clone()))
        return forward(ids, motions)

    monkeypatch.setattr(model, "forward", spy)
    args = (window.past, window.past_poses, window.future_poses)
    tokens = maskgit_rollout(model, tokenizer, EGO, *args, steps=steps, guidance=guidance)
    with torch.no_grad():
        past_ids = tokenizer.encode(window.past.flatten(0, 1)).reshape(2, PAST_FRAMES, N)
    motions = EGO.encode(relative_motion(torch.cat([window.past_poses, window.future_poses], 1)))
    assert len(calls) == steps * (2 if guidance else 1)
    for k, (ids, m) in enumerate(calls):
        assert torch.equal(m, motions)
        unconditional = guidance and k % 2 == 1
        past = torch.full_like(past_ids, K) if unconditional else past_ids
        assert torch.equal(ids[:, :PAST_FRAMES], past)
    assert (calls[0][0][:, PAST_FRAMES:] == K).all()
    assert tokens.shape == (2, 6, 4, 4) and 0 <= tokens.min() and tokens.max() < K
    forecast = maskgit_forecaster(model, tokenizer, EGO, steps=steps, guidance=guidance, seed=3)
    out = forecast(*args)
    assert out.dtype == torch.uint8 and out.device.type == "cpu"
    assert out.shape == window.future.shape  # (B, 6, X, Y, Z)
    assert torch.equal(out, forecast(*args))
    other_seed = maskgit_rollout(model, tokenizer, EGO, *args, steps=steps, guidance=guidance,
                                 seed=4)  # fmt: skip
    assert not torch.equal(other_seed, tokens)  # seed 0 above: the seed is what repeats


def test_the_evaluation_draws_the_same_masks_every_time(tokenizer, tmp_path):
    clips = TokenClips.from_windows(synthetic_windows("val"), tokenizer, EGO, tmp_path,
                                    progress=False)  # fmt: skip
    evaluate = MaskGITEvaluator(clips, count=3, batch_size=2)
    model = sharp_model(tokenizer)
    first = evaluate(model)
    assert set(first) == {"val_scene_ce", "val_scene_accuracy", "val_smoothed_ce"}
    assert first == evaluate(model) and 0 <= first["val_scene_accuracy"] <= 1


def maskgit_argv(tokenizer_dir, scene_dir, tmp_path) -> list[str]:
    return [*tiny(tokenizer_dir, tmp_path), "--kind=maskgit",
            f"--data.single_scale_tokenizer={scene_dir}", "--maskgit.dim=32",
            "--maskgit.depth=2", "--maskgit.heads=4"]  # fmt: skip


def test_train_script_trains_maskgit(tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tmp_path):
    out = tmp_path / "run"
    argv = [*maskgit_argv(tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tmp_path),
            "--steps=6", "--eval_every=6", "--checkpoint_every=6", f"--out_dir={out}"]  # fmt: skip
    result = testing.load_script(CHAPTER, "train").main(argv)
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses and all(0 < x < 10 for x in losses)
    assert result["step"] == 6 and 0 <= result["eval/val_scene_accuracy"] <= 1
    step = out / "checkpoints" / "step_000006"
    section = json.loads((step / "config.json").read_text())["maskgit"]
    assert (section["codebook_size"], section["token_grid"], section["motion_vocab"]) == (
        16, [4, 4], 27)  # fmt: skip
    model, _, _ = load_model(step, MaskGITWorldConfig, MaskGITWorld, section="maskgit")
    assert model.num_tokens == 16 and (out / "motion_tokenizer.json").exists()


def test_validate_scores_maskgit_beside_a_tensformer(tiny_tokenizer_dir, tiny_scene_tokenizer_dir,
                                                    tmp_path):  # fmt: skip
    train = testing.load_script(CHAPTER, "train")
    tens, mask = tmp_path / "tens", tmp_path / "maskgit"
    short = ["--steps=2", "--eval_every=0", "--checkpoint_every=2"]
    train.main([*tiny(tiny_tokenizer_dir, tmp_path), *short, f"--out_dir={tens}"])
    train.main([*maskgit_argv(tiny_tokenizer_dir, tiny_scene_tokenizer_dir, tmp_path), *short,
                f"--out_dir={mask}"])  # fmt: skip
    validate = testing.load_script(CHAPTER, "validate")
    results = validate.main([str(tens), str(mask), "--splits=val", "--samples=10", "--results=",
                             "--device=cpu", "--maskgit_steps=3", "--guidance=1.5"])  # fmt: skip
    record, both = results[str(mask)], results[str(tens)]
    assert record["kind"] == "maskgit" and record["sampling"]["guidance"] == 1.5
    assert not any(k.startswith("val_plan_maskgit") for k in record)  # no motion head, no plan
    for key in ("val_maskgit_minus_tensformer_mean_mIoU_occ3d_ci_low",
                "val_maskgit_minus_maskgit_stop_mean_mIoU_occ3d",
                "val_ceiling_maskgit_mean_IoU_occ3d",
                "val_maskgit_minus_warp_last_1s_mIoU_occ3d"):  # fmt: skip
        assert record[key] == both[key], key  # one benchmark pass scored both runs
    assert record["maskgit_ms_per_frame_batch1"] > 0
    args = validate.Options(maskgit_steps=3, guidance=1.5)  # what validate's forecaster runs
    run = validate.load_world_model(mask, torch.device("cpu"), args)
    calls = []
    run.model.register_forward_hook(lambda module, inputs, out: calls.append(inputs[0]))
    window = synthetic_windows("val").batch([0])
    run.forecaster(window.past, window.past_poses, window.future_poses)
    assert len(calls) == 2 * 3  # 3 steps, each the conditional and the unconditional branch
    assert (calls[1][:, :PAST_FRAMES] == run.model.mask_id).all()


def test_bad_input_is_refused(tokenizer, tiny_tokenizer_dir, tmp_path):
    with pytest.raises(ValueError, match="the MaskGIT world model needs chapter 3's single-scale"):
        load_frozen_tokenizer(str(tiny_tokenizer_dir), kind="scene",
                              reader="the MaskGIT world model")  # fmt: skip
    train = testing.load_script(CHAPTER, "train")
    with pytest.raises(ValueError, match="'multiscale' tokenizer; the MaskGIT world model needs"):
        train.main(["--kind=maskgit", "--data.preset=synthetic", "--device=cpu",
                    f"--data.single_scale_tokenizer={tiny_tokenizer_dir}",
                    f"--out_dir={tmp_path / 'run'}"])  # fmt: skip
    window = synthetic_windows("val").batch([0])
    model = sharp_model(tokenizer)
    forecast = maskgit_forecaster(model, tokenizer, EGO, steps=2)
    with pytest.raises(ValueError, match="need >= context=5 past frames"):
        forecast(window.past[:, 1:], window.past_poses[:, 1:], window.future_poses)
    with pytest.raises(ValueError, match="at most max_frames=11"):
        forecast(window.past, window.past_poses, torch.cat([window.future_poses] * 2, 1))
    with pytest.raises(ValueError, match="the motion tokenizer has 8 tokens"):
        maskgit_forecaster(model, tokenizer, EgoMotionTokenizer((0, -1, -1), (1, 1, 1), (2, 2, 2)))
    with pytest.raises(ValueError, match="ids must be"):
        model(torch.zeros(1, 12, N, dtype=torch.long), torch.zeros(1, 11, dtype=torch.long))
