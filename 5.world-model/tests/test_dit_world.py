"""The DiT world model (OccSora's trajectory-conditioned diffusion over the 4D latent): the clips
are cut as documented and cached, the latent scale is the train latents' 1 / std, the clean
past reaches the network at every step (and only zeros when dropped), the forecaster keeps the
contract and repeats with its seed, the trajectory steers it, generation from a trajectory
alone runs, train.py --kind=dit trains (with an EMA too), validate.py scores it beside a
TENSFormer, bad input is refused. Tiny sizes: a 4 x 4 x 4 latent of 4 dims (16 codes) per
8-frame clip, a DiT 24 wide and 2 deep at patch 1 (2 x 64 tokens)."""

import json
from pathlib import Path

import pytest
import torch
from occupancy_tokenizer.ego import EgoMotionTokenizer, relative_motion
from safetensors.torch import load_file
from world_model import latent_clips
from world_model.dit import DiT
from world_model.dit_forecast import (
    dit_forecaster,
    dit_rollout,
    generate_from_trajectory,
)
from world_model.dit_world import (
    DiTEvaluator,
    DiTWorldConfig,
    code_latents,
    dit_config_matching,
    dit_loss,
)
from world_model.latent_clips import (
    LatentClips,
    clip_trajectory,
    fit_latent_scale,
    normalised_motions,
    past_clip,
    target_clip,
)
from world_model.noise_schedule import NoiseSchedule
from world_model.synthetic import synthetic_windows
from world_model.training import load_frozen_tokenizer

from worldmodels import testing
from worldmodels.checkpoint import load_model
from worldmodels.config import ConfigError
from worldmodels.runlog import read_log

from .test_dit import lively
from .test_train_script import tiny

CHAPTER = Path(__file__).resolve().parent.parent
EGO = EgoMotionTokenizer(low=(0.0, -1.0, -0.3), high=(2.0, 1.0, 0.3), bins=(3, 3, 3))
T, E = 4, 4  # latent frames, code dims


@pytest.fixture(scope="module")
def tokenizer(make_fourd_tokenizer):
    return make_fourd_tokenizer()


@pytest.fixture(scope="module")
def train_clips(tokenizer, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return LatentClips.from_windows(synthetic_windows("train"), tokenizer, EGO, cache_dir=cache,
                                    progress=False)  # fmt: skip


def model_for(tokenizer, seed: int = 0, scale: float = 2.0, **sizes) -> DiT:
    """A tiny DiT whose zero-initialised layers are drawn at random (at init it predicts eps = 0
    whatever it reads, so no dependence on the past or the trajectory could show)."""
    torch.manual_seed(seed)
    sizes = dict(dim=24, depth=2, heads=4, patch=1, freq_dim=16) | sizes
    return lively(DiT(dit_config_matching(tokenizer, scale, **sizes))).eval()


def spy_inputs(model, monkeypatch) -> list:
    """Record every call's (x, trajectory) as the network receives them."""
    calls, forward = [], model.forward

    def spy(x, t, trajectory=None, drop=None):
        calls.append((x.clone(), None if trajectory is None else trajectory.clone()))
        return forward(x, t, trajectory, drop)

    monkeypatch.setattr(model, "forward", spy)
    return calls


def test_the_config_is_derived_from_the_4d_tokenizer(tokenizer):
    config = dit_config_matching(tokenizer, 3.0, dim=24, depth=2, heads=4)
    assert (config.channels, config.traj_len, config.latent_shape) == (4, 7, (4, 4, 4))
    assert (config.codebook_size, config.latent_scale) == (16, 3.0)
    assert (config.schedule.kind, config.schedule.num_steps) == ("linear", 1000)  # OccSora's
    with pytest.raises(ConfigError, match="patch"):
        DiTWorldConfig(latent_shape=(4, 16, 16), patch=3)
    with pytest.raises(ConfigError, match="past_drop"):
        DiTWorldConfig(past_drop=1.0)


def test_clips_are_cut_cached_and_scaled_as_documented(tokenizer, train_clips, tmp_path,
                                                       monkeypatch):  # fmt: skip
    """Past clip: the first past frame held in front of the 5 past; target clip: the last 2
    past frames and the 6 future; the ids are those of a fresh encoding, read back from the
    cache unchanged; the trajectory is the target clip's normalised motions; the scale is
    1 / std of the training target code vectors."""
    windows = synthetic_windows("train")
    w = windows.batch([4])
    clip = past_clip(w.past, 8)
    assert torch.equal(clip[:, :4], w.past[:, :1].expand(-1, 4, -1, -1, -1))
    assert torch.equal(clip[:, 3:], w.past)
    target = target_clip(w.past, w.future, 8)
    assert torch.equal(target[:, :2], w.past[:, 3:]) and torch.equal(target[:, 2:], w.future)
    item = train_clips[4]
    assert torch.equal(item["past"], tokenizer.encode(clip)[0])
    assert torch.equal(item["target"], tokenizer.encode(target)[0])
    poses = torch.cat([w.past_poses[:, 3:], w.future_poses], 1)  # (1, 8, 4, 4)
    motions = normalised_motions(relative_motion(poses), EGO)
    torch.testing.assert_close(item["trajectory"], motions[0])
    torch.testing.assert_close(clip_trajectory(w.past_poses, w.future_poses, 8, EGO), motions)
    assert len(train_clips) == len(windows) and item["trajectory"].shape == (7, 3)
    again = LatentClips.from_windows(windows, tokenizer, EGO, cache_dir=tmp_path, progress=False)
    cached = list(tmp_path.rglob("fourd-train-*.safetensors"))
    assert len(cached) == 1 and load_file(cached[0])["target"].dtype == torch.int16
    monkeypatch.setattr(latent_clips, "encode_clips", None)  # a second encoding would fail
    reread = LatentClips.from_windows(windows, tokenizer, EGO, cache_dir=tmp_path, progress=False)
    monkeypatch.undo()
    assert torch.equal(reread.target, again.target) and torch.equal(again.past, train_clips.past)
    codebook = tokenizer.quantizer.codebook.weight
    codes = codebook[train_clips.target]  # (n, T, h, w, E)
    scale = fit_latent_scale(train_clips, codebook)
    assert scale == pytest.approx(1 / codes.double().std(unbiased=False).item(), rel=1e-6)
    val = LatentClips.from_windows(synthetic_windows("val"), tokenizer, EGO, picks=[0, 8],
                                   cache_dir=tmp_path, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="training split only"):
        fit_latent_scale(val, codebook)


def test_the_clean_past_reaches_the_network_at_every_step(tokenizer, monkeypatch):
    """Every DDIM call sees [past latent exactly, x_t]; the first call's target part is the
    starting noise; the network's answer depends on the past (it is read, not just carried)."""
    model = model_for(tokenizer)
    window = synthetic_windows("val").batch([0, 1])
    calls = spy_inputs(model, monkeypatch)
    steps = 3
    dit_rollout(model, tokenizer, EGO, window.past, window.past_poses, window.future_poses,
                steps=steps, seed=5)  # fmt: skip
    ids = tokenizer.encode(past_clip(window.past, 8))
    past = code_latents(tokenizer.quantizer.codebook.weight, ids, 2.0)  # (B, E, T, h, w)
    assert len(calls) == steps
    for x, _ in calls:
        assert x.shape == (2, E, 2 * T, 4, 4)
        assert torch.equal(x[:, :, :T], past)  # the clean past, not noised, at every step
    noise = torch.randn(past.shape, generator=torch.Generator().manual_seed(5))
    assert torch.equal(calls[0][0][:, :, T:], noise)
    monkeypatch.undo()
    x_t, t = torch.randn(2, E, T, 4, 4), torch.tensor([500, 20])
    with torch.no_grad():
        given = model(torch.cat([past, x_t], 2), t)[:, :, T:]
        other = model(torch.cat([past.flip(0), x_t], 2), t)[:, :, T:]
    assert not torch.allclose(given, other, atol=1e-4)


def test_the_loss_feeds_the_past_or_zeros(tokenizer, train_clips, monkeypatch):
    """In the loss the past reaches the network clean, or as zeros for the clips `past_drop`
    drops (the no-past model of generation from a trajectory)."""
    model = model_for(tokenizer)
    batch = train_clips.batch(range(8))
    codebook = tokenizer.quantizer.codebook.weight
    past = code_latents(codebook, batch["past"], 2.0)
    calls = spy_inputs(model, monkeypatch)
    schedule = NoiseSchedule.linear(1000)
    generator = torch.Generator().manual_seed(0)
    loss, metrics = dit_loss(model, batch, codebook, schedule, generator, past_drop=0.5)
    [(x, trajectory)] = calls
    fed = x[:, :, :T]
    dropped = (fed == 0).flatten(1).all(1)  # (B,)
    assert dropped.any() and not dropped.all()  # some of each among 8 clips
    assert torch.equal(fed[~dropped], past[~dropped])
    assert torch.equal(trajectory, batch["trajectory"])
    assert loss > 0 and metrics["eps_mse"] == loss.detach()


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_the_forecaster_keeps_the_contract_and_the_trajectory_steers_it(tokenizer, monkeypatch,
                                                                         guidance):  # fmt: skip
    """(B, 6, X, Y, Z) uint8 on the CPU; the same seed, the same forecast, another seed another;
    `steps` network calls (twice that with guidance, the second of each pair without the
    trajectory); another trajectory (the ego stopped) changes the forecast."""
    model = model_for(tokenizer)
    window = synthetic_windows("val").batch([0, 1])
    args = (window.past, window.past_poses, window.future_poses)
    forecast = dit_forecaster(model, tokenizer, EGO, steps=4, guidance=guidance, seed=3)
    out = forecast(*args)
    assert out.dtype == torch.uint8 and out.device.type == "cpu"
    assert out.shape == window.future.shape  # (B, 6, X, Y, Z)
    assert torch.equal(out, forecast(*args))
    other = dit_forecaster(model, tokenizer, EGO, steps=4, guidance=guidance, seed=4)
    assert not torch.equal(out, other(*args))
    stopped = window.past_poses[:, -1:].expand(-1, 6, -1, -1)  # the ego stands still
    latent = dit_rollout(model, tokenizer, EGO, *args, steps=4, guidance=guidance, seed=3)
    moved = dit_rollout(model, tokenizer, EGO, window.past, window.past_poses, stopped, steps=4,
                        guidance=guidance, seed=3)  # fmt: skip
    assert (latent - moved).abs().max() > 1e-3
    calls = spy_inputs(model, monkeypatch)
    dit_rollout(model, tokenizer, EGO, *args, steps=4, guidance=guidance, seed=3)
    assert len(calls) == 4 * (2 if guidance else 1)
    if guidance:
        assert all((traj is None) == (k % 2 == 1) for k, (_, traj) in enumerate(calls))


def test_generation_from_a_trajectory_alone(tokenizer, monkeypatch):
    model = model_for(tokenizer)
    poses = synthetic_windows("val").batch([0]).future_poses[:, :1].expand(-1, 8, -1, -1)
    calls = spy_inputs(model, monkeypatch)
    clip = generate_from_trajectory(model, tokenizer, EGO, poses, steps=2, guidance=1.0)
    assert clip.shape == (1, 8, 8, 8, 4) and clip.dtype == torch.uint8
    assert len(calls) == 4 and all((x[:, :, :T] == 0).all() for x, _ in calls)  # no past


def test_the_evaluation_is_the_same_every_time(tokenizer, train_clips):
    codebook = tokenizer.quantizer.codebook.weight
    evaluate = DiTEvaluator(train_clips, codebook, NoiseSchedule.linear(1000), count=3,
                            batch_size=2, prefix="train")  # fmt: skip
    model = model_for(tokenizer)
    first = evaluate(model)
    assert set(first) == {"train_eps_mse", "train_eps_mse_no_trajectory"}
    assert first == evaluate(model) and first["train_eps_mse"] > 0
    assert first["train_eps_mse"] != first["train_eps_mse_no_trajectory"]


def dit_argv(tokenizer_dir, fourd_dir, tmp_path) -> list[str]:
    return [*tiny(tokenizer_dir, tmp_path), "--kind=dit", f"--data.fourd_tokenizer={fourd_dir}",
            "--dit.dim=24", "--dit.depth=2", "--dit.heads=4", "--dit.patch=1",
            "--dit.freq_dim=16"]  # fmt: skip


@pytest.mark.parametrize("ema", [False, True])
def test_train_script_trains_the_dit(tiny_tokenizer_dir, tiny_fourd_tokenizer_dir, tmp_path, ema):
    out = tmp_path / "run"
    argv = [*dit_argv(tiny_tokenizer_dir, tiny_fourd_tokenizer_dir, tmp_path), "--steps=4",
            "--eval_every=4", "--checkpoint_every=4", f"--out_dir={out}",
            *(["--ema_decay=0.9"] if ema else [])]  # fmt: skip
    result = testing.load_script(CHAPTER, "train").main(argv)
    losses = [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert losses and all(0 < x < 10 for x in losses)
    assert result["step"] == 4 and result["eval/val_eps_mse"] > 0
    step = out / "checkpoints" / "step_000004"
    section = json.loads((step / "config.json").read_text())["dit"]
    assert (section["channels"], section["traj_len"], section["latent_shape"]) == (4, 7, [4, 4, 4])
    model, config, _ = load_model(step, DiTWorldConfig, DiT, section="dit")
    assert model.config.schedule.num_steps == 1000
    tokenizer = load_frozen_tokenizer(str(tiny_fourd_tokenizer_dir), kind="4d")
    train = LatentClips.from_windows(synthetic_windows("train"), tokenizer, EGO, progress=False,
                                     cache_dir=tmp_path / "cache")  # fmt: skip
    codebook = tokenizer.quantizer.codebook.weight
    assert config.latent_scale == pytest.approx(fit_latent_scale(train, codebook))  # train only
    assert (step / "ema.safetensors").exists() == ema


def test_validate_scores_the_dit_beside_a_tensformer(tiny_tokenizer_dir, tiny_fourd_tokenizer_dir,
                                                     tmp_path):  # fmt: skip
    train = testing.load_script(CHAPTER, "train")
    tens, dit = tmp_path / "tens", tmp_path / "dit"
    short = ["--steps=2", "--eval_every=0", "--checkpoint_every=2"]
    train.main([*tiny(tiny_tokenizer_dir, tmp_path), *short, f"--out_dir={tens}"])
    train.main([*dit_argv(tiny_tokenizer_dir, tiny_fourd_tokenizer_dir, tmp_path), *short,
                "--ema_decay=0.5", f"--out_dir={dit}"])  # fmt: skip
    validate = testing.load_script(CHAPTER, "validate")
    results = validate.main([str(tens), str(dit), "--splits=val", "--samples=10", "--results=",
                             "--device=cpu", "--dit_steps=2", "--guidance=1.5"])  # fmt: skip
    record, both = results[str(dit)], results[str(tens)]
    assert record["kind"] == "dit" and record["weights"] == "ema"
    assert record["sampling"] == {"steps": 2, "guidance": 1.5, "seed": 0}
    for key in ("val_dit_minus_tensformer_mean_mIoU_occ3d_ci_low",
                "val_dit_minus_dit_stop_mean_mIoU_occ3d", "val_ceiling_dit_mean_IoU_occ3d",
                "val_dit_minus_warp_last_1s_mIoU_occ3d"):  # fmt: skip
        assert record[key] == both[key], key  # one benchmark pass scored both runs
    assert record["dit_ms_per_frame_batch1"] > 0
    run = validate.load_world_model(dit, torch.device("cpu"), validate.Options(dit_steps=2))
    average = load_file(run.step_dir / "ema.safetensors")  # what was scored: the EMA weights
    assert run.averaged and set(average) <= set(run.model.state_dict())
    assert all(torch.equal(run.model.state_dict()[k], v) for k, v in average.items())
    assert not all(
        torch.equal(v, load_file(run.step_dir / "model.safetensors")[k]) for k, v in average.items()
    )  # (and they differ from the trained ones)


def test_bad_input_is_refused(tokenizer, make_scene_tokenizer, tiny_tokenizer_dir,
                              tiny_scene_tokenizer_dir, tmp_path):  # fmt: skip
    with pytest.raises(ValueError, match="the DiT world model needs chapter 3's 4D"):
        load_frozen_tokenizer(str(tiny_scene_tokenizer_dir), kind="4d")
    train = testing.load_script(CHAPTER, "train")
    with pytest.raises(ValueError, match="'scene' tokenizer; the DiT world model needs chapter"):
        train.main(["--kind=dit", "--data.preset=synthetic", "--device=cpu",
                    f"--data.fourd_tokenizer={tiny_scene_tokenizer_dir}",
                    f"--out_dir={tmp_path / 'run'}"])  # fmt: skip
    model = model_for(tokenizer)
    with pytest.raises(ValueError, match="not chapter 3's 4D tokenizer"):
        dit_forecaster(model, make_scene_tokenizer(), EGO)
    with pytest.raises(ValueError, match="not chapter 3's 4D tokenizer"):
        dit_config_matching(make_scene_tokenizer(), 1.0)
    wider = DiT(DiTWorldConfig(channels=8, traj_len=7, latent_shape=(4, 4, 4), codebook_size=16,
                               dim=24, depth=1, heads=4, freq_dim=16))  # fmt: skip
    with pytest.raises(ValueError, match="the model expects"):
        dit_forecaster(wider, tokenizer, EGO)  # 8 code dims: another tokenizer's model
    window = synthetic_windows("val").batch([0])
    forecast = dit_forecaster(model, tokenizer, EGO, steps=2)
    with pytest.raises(ValueError, match="needs 6 future frames"):
        forecast(window.past, window.past_poses, window.future_poses[:, :5])
    with pytest.raises(ValueError, match=">= 2 past ones"):
        forecast(window.past[:, 4:], window.past_poses[:, 4:], window.future_poses)
    with pytest.raises(ValueError, match="guidance >= 0"):
        dit_forecaster(model, tokenizer, EGO, guidance=-1.0)
