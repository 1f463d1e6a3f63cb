"""The autoregressive baseline (chapter 2's GPT over single-scale tokens, motion as actions):
the loss scores the future frames only, the forecaster keeps the benchmark's contract and is
steered by the future poses, train.py --kind=ar runs, and the wrong tokenizer kind is refused.
Tiny sizes: a 4 x 4 token grid (N = 16), 16 codes, 27 motion tokens, 11-frame clips."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from dynamics_model.ar import ARConfig, ARDynamics
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from world_model.ar_baseline import (
    ar_config_matching,
    ar_forecaster,
    ar_loss,
    clip_tokens,
)
from world_model.synthetic import synthetic_windows
from world_model.token_data import CLIP_FRAMES, TokenClips, fit_motion_tokenizer
from world_model.training import load_frozen_tokenizer
from world_model.windows import PAST_FRAMES

from worldmodels import testing
from worldmodels.checkpoint import load_model
from worldmodels.runlog import read_log

CHAPTER = Path(__file__).resolve().parent.parent
EGO = EgoMotionTokenizer(low=(0.0, -1.0, -0.3), high=(2.0, 1.0, 0.3), bins=(3, 3, 3))


@pytest.fixture(scope="module")
def tokenizer(make_scene_tokenizer):
    return make_scene_tokenizer()


def sharp_model(tokenizer, seed: int = 0) -> ARDynamics:
    """A tiny untrained GPT whose outputs depend strongly on its inputs (at init, embeddings
    of std 0.02, every frame and every motion look alike to it)."""
    torch.manual_seed(seed)
    model = ARDynamics(ar_config_matching(tokenizer, EGO, dim=32, depth=2, heads=4)).eval()
    with torch.no_grad():
        for emb in (model.token_emb, model.time_emb, model.slot_emb):
            emb.weight.normal_(0, 1.0)
        model.head.weight.mul_(5)
    return model


def random_clip(model: ARDynamics, B: int = 2, seed: int = 1):
    """ids (B, T, N) and motions (B, T - 1), as TokenClips.batch gives them."""
    g = torch.Generator().manual_seed(seed)
    c = model.config
    ids = torch.randint(c.vocab_size, (B, CLIP_FRAMES, model.num_tokens), generator=g)
    motions = torch.randint(c.num_actions, (B, CLIP_FRAMES - 1), generator=g)
    return ids, motions


def test_the_config_is_derived_from_the_tokenizers(tokenizer):
    config = ar_config_matching(tokenizer, EGO, dim=32, depth=2, heads=4)
    assert (config.vocab_size, config.num_actions) == (16, 27)
    assert (config.token_grid, config.max_frames, config.use_actions) == ((4, 4), 11, True)


def test_the_loss_scores_the_future_frames_only(tokenizer):
    """Against chapter 2's own teacher-forced logits, frame by frame: the mean CE over the
    future frames' tokens (frames >= 5), each given every true token before it."""
    model = sharp_model(tokenizer)
    ids, motions = random_clip(model)
    loss, metrics = ar_loss(model, ids, motions)
    tokens, actions = clip_tokens(model, ids, motions)
    ces, hits = [], []
    with torch.no_grad():
        for t in range(PAST_FRAMES, CLIP_FRAMES):
            logits = model.teacher_forced_logits(tokens[:, : t + 1], actions[:, : t + 1])
            ces.append(F.cross_entropy(logits.flatten(0, 2), tokens[:, t].flatten()))
            hits.append((logits.argmax(-1) == tokens[:, t]).float().mean())
    expected = torch.stack(ces).mean()  # every future frame has N tokens: a mean of means
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metrics["scene_accuracy"], torch.stack(hits).mean())
    with torch.no_grad():
        every_frame, _ = model.next_token_loss(tokens, actions)  # chapter 2's: past scored too
    assert abs(float(every_frame) - float(expected)) > 1e-3  # so the check can tell them apart


def test_a_clip_s_tokens_are_the_tokenizer_s_grid_in_raster_order(tokenizer, tmp_path):
    windows = synthetic_windows("val")
    clips = TokenClips.from_windows(windows, tokenizer, EGO, tmp_path, progress=False)
    ids = clips[0]["ids"]  # (T, N)
    assert ids.shape == (CLIP_FRAMES, 16)
    with torch.no_grad():
        grid = tokenizer.encode(clips.frames(0).long())  # (T, h, w)
    model = sharp_model(tokenizer)
    tokens, actions = clip_tokens(model, ids[None], clips[0]["motions"][None])
    assert torch.equal(tokens[0], grid)
    assert torch.equal(actions[0, :-1], clips[0]["motions"])  # a_t = m_{t+1}


def test_the_forecaster_keeps_the_contract_and_is_seeded(tokenizer):
    window = synthetic_windows("val").batch([0, 1])
    model = sharp_model(tokenizer)
    forecast = ar_forecaster(model, tokenizer, EGO, seed=3)
    out = forecast(window.past, window.past_poses, window.future_poses)
    assert out.dtype == torch.uint8 and out.device.type == "cpu"
    assert out.shape == window.future.shape  # (B, 6, X, Y, Z)
    assert torch.equal(out, forecast(window.past, window.past_poses, window.future_poses))


def test_the_future_poses_are_the_motion_tokens_fed_to_the_model(tokenizer, monkeypatch):
    """Each frame is drawn after all frames so far, with actions m_1 .. m_t (the last one the
    motion into the new frame); moving a future pose changes exactly the motions it enters."""
    window = synthetic_windows("val").batch([0, 1])
    moved = window.future_poses.clone()
    moved[:, 0, 1, 3] += 0.8  # the first future step swerves left: another motion token
    model = sharp_model(tokenizer)
    calls = []
    generate_next = model.generate_next

    def spy(context, actions, *args, **kwargs):
        calls.append((context.shape[1], actions.clone()))
        return generate_next(context, actions, *args, **kwargs)

    monkeypatch.setattr(model, "generate_next", spy)
    forecast = ar_forecaster(model, tokenizer, EGO, seed=3)
    fed = {}
    for name, future_poses in (("given", window.future_poses), ("moved", moved)):
        calls.clear()
        forecast(window.past, window.past_poses, future_poses)
        poses = torch.cat([window.past_poses, future_poses], dim=1)
        motions = EGO.encode(relative_motion(poses))  # (B, 10): m_1 .. m_10
        assert [frames for frames, _ in calls] == list(range(PAST_FRAMES, CLIP_FRAMES))
        for frames, actions in calls:
            assert torch.equal(actions, motions[:, :frames])  # a_{t-1} = m_t: into frame t
        fed[name] = calls[-1][1]  # (B, 10): every motion token the model was given
    changed = (fed["given"] != fed["moved"]).any(0).nonzero().flatten().tolist()
    assert changed == [4, 5]  # m_5 (frame 4 -> 5) and m_6 (5 -> 6): the moved pose's two
    monkeypatch.undo()
    given = forecast(window.past, window.past_poses, window.future_poses)
    assert not torch.equal(given, forecast(window.past, window.past_poses, moved))


def test_train_script_trains_the_ar_baseline(tiny_scene_tokenizer_dir, tmp_path):
    out = tmp_path / "run"
    argv = [
        "--kind=ar", "--data.preset=synthetic",
        f"--data.single_scale_tokenizer={tiny_scene_tokenizer_dir}",
        f"--data.cache={tmp_path / 'cache'}", "--ar.dim=32", "--ar.depth=2", "--ar.heads=4",
        "--bins=3,3,3", "--batch_size=4", "--lr=3e-3", "--warmup_steps=2", "--log_every=2",
        "--eval_clips=4", "--progress=false", "--device=cpu", "--steps=16", "--eval_every=8",
        "--checkpoint_every=8", f"--out_dir={out}",
    ]  # fmt: skip
    result = testing.load_script(CHAPTER, "train").main(argv)
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses[-1] < losses[0], losses
    assert result["step"] == 16 and 0 <= result["eval/val_scene_accuracy"] <= 1
    step = out / "checkpoints" / "step_000016"
    ar = json.loads((step / "config.json").read_text())["ar"]
    assert (ar["vocab_size"], ar["num_actions"], ar["token_grid"]) == (16, 27, [4, 4])
    assert (ar["max_frames"], ar["dim"]) == (CLIP_FRAMES, 32)
    bins = fit_motion_tokenizer(synthetic_windows("train"), (3, 3, 3)).to_dict()  # train only
    assert json.loads((out / "motion_tokenizer.json").read_text()) == bins
    model, _, _ = load_model(step, ARConfig, ARDynamics, section="ar")  # what validate reads
    assert model.num_tokens == 16


def test_the_wrong_tokenizer_kind_is_refused(tiny_tokenizer_dir, tiny_scene_tokenizer_dir,
                                             tmp_path):  # fmt: skip
    with pytest.raises(ValueError, match="the AR baseline needs chapter 3's single-scale"):
        load_frozen_tokenizer(str(tiny_tokenizer_dir), kind="scene")
    with pytest.raises(ValueError, match="the TENSFormer needs chapter 3's multi-scale"):
        load_frozen_tokenizer(str(tiny_scene_tokenizer_dir), kind="multiscale")
    train = testing.load_script(CHAPTER, "train")
    with pytest.raises(ValueError, match="'multiscale' tokenizer; the AR baseline needs"):
        train.main(["--kind=ar", "--data.preset=synthetic", "--device=cpu",
                    f"--data.single_scale_tokenizer={tiny_tokenizer_dir}",
                    f"--out_dir={tmp_path / 'run'}"])  # fmt: skip
