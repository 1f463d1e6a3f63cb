"""Held-out scores of chapter 2's dynamics models (MaskGIT and AR), beside baselines.

The question: given the tokens of the past frames and an action, what are the tokens of the
next frame? Evaluation answers it three ways, each beside a baseline that needs no learning:

    teacher-forced CE   -ln p(true tokens of the last frame | true past)   vs the unigram
                        and the previous-frame token model (dynamics_model.scoring)
    rollout PSNR        decode(generated frames) vs the real frames, 1..8 frames ahead,
                        vs copying the last context frame (and the tokenizer's own ceiling)
    ΔtPSNR              PSNR with the true actions - PSNR with random ones (Genie's
                        controllability): > 0 when the model listens to the actions

Both models are scored through the same protocols (`scoring.SCENARIOS` for teacher forcing,
`rollout.NextFramePredictor` for rollouts): nothing here asks which model it was given. The
latent action model has its own evaluator (evaluate_lam.py), as do compressed tokens
(evaluate_compressed.py).

Shapes: B clips, T frames per clip, C, H, W pixels, h, w tokens per frame; `past` context
frames and `ahead` frames rolled out (the horizon) are words, as P and F mean other things.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn
from video_tokenizer.model import VideoTokenizer

from dynamics_model.config import Config
from dynamics_model.figures import save_rollout_strip
from dynamics_model.rollout import rollout_model
from dynamics_model.sampling import SampleConfig
from dynamics_model.scoring import add_interval, clip_teacher_forced, nats_to_bits, token_baselines
from dynamics_model.tokens import TokenClips, decode_frames
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import psnr
from worldmodels.metrics.tokens import copy_last_frame_accuracy, delta_psnr

FULL_TF_CLIPS = 128  # clips scored fully teacher-forced (MaskGIT: N passes per clip)


def random_future_actions(
    actions: torch.Tensor, games: torch.Tensor, game_actions: dict, past: int, seed: int = 0
) -> torch.Tensor:
    """A copy of actions (B, T) whose actions from step past-1 on (those that lead to generated
    frames, after past context frames) are drawn uniformly from the actions played in each
    clip's game."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = actions.clone()
    for b, game in enumerate(games.tolist()):
        choices = game_actions[game]  # (n,)
        picks = torch.randint(len(choices), (actions.shape[1] - past + 1,), generator=generator)
        shuffled[b, past - 1 :] = choices[picks]
    return shuffled


def per_horizon(name: str, values: torch.Tensor) -> dict[str, float]:
    """{name_h1: ..., name_h<ahead>: ...} from per-clip values (B, ahead), 1..ahead frames on."""
    return {f"{name}_h{k + 1}": v for k, v in enumerate(values.mean(0).tolist())}


@torch.no_grad()
def time_sampling(model: nn.Module, context, actions, sample: SampleConfig, repeats=3) -> dict:
    """Milliseconds to generate one frame for one clip (batch 1), best of `repeats`.

    MaskGIT: S forward passes over the whole window. AR: one pass over the prompt, then N
    single-token passes that reuse the KV cache (the notebook times it without the cache).
    """
    device = next(model.parameters()).device
    ctx, act = context[:1].to(device), actions[:1, : context.shape[1]].to(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.predict_next_frame(ctx, act, sample)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"ms_per_frame": 1000 * min(times)}


class DynamicsEvaluator:
    """Held-out scores of a MaskGIT or AR model; `evaluate(model, step)` for the trainer.

    Periodic evaluation (`full=False`) is cheap: teacher-forced CE and rollouts with the
    true actions up to data.horizon. `full=True` (validate.py) adds random-action rollouts
    (ΔtPSNR, overall and per game), per-game PSNR and sampling times. The last rollout's
    tensors stay in `self.last` for pictures.
    """

    def __init__(  # the evaluators' common signature (twins: evaluate_lam, evaluate_compressed)
        self,
        config: Config,
        datasets: dict[str, TokenClips],
        tokenizer: VideoTokenizer,
        out_dir: Path | None = None,
        full: bool = False,
        horizon: int | None = None,
        eval_clips: int | None = None,
        rollout_clips: int | None = None,
    ):
        self.config, self.tokenizer, self.out_dir, self.full = config, tokenizer, out_dir, full
        data = config.data
        self.horizon = horizon or data.horizon
        self.game_names = datasets["val"].game_names
        val = datasets["val"]
        scored = fixed_subset(val, eval_clips or data.eval_clips)
        self.scored = stack_items(val, scored)
        self.scored_episodes = val.clip_episodes()[scored]  # (B,): the bootstrap's groups
        self.last: dict[str, torch.Tensor] = {}
        # Baselines fit on the training tokens of the games this run trains on (data.games).
        self.baseline_clips = token_baselines(
            datasets["train"].game_episode_tokens(), self.scored["tokens"], tokenizer.codebook_size
        )
        self.baselines = {
            "unigram_ce_nats": self.baseline_clips["unigram"].mean().item(),
            "previous_frame_ce_nats": self.baseline_clips["previous_frame"].mean().item(),
            "previous_frame_eps": self.baseline_clips["previous_frame_eps"],
            "copy_last_token_accuracy": copy_last_frame_accuracy(
                self.scored["tokens"], last_only=True
            ),
        }
        self.baselines["unigram_ce_bits"] = self.baselines["unigram_ce_nats"] / math.log(2)
        self.game_actions = datasets["train"].game_actions()
        # the same clips with the action into the last frame drawn at random from its game's
        T = self.scored["tokens"].shape[1]
        self.scored_random_actions = random_future_actions(
            self.scored["actions"],
            self.scored["game"],
            self.game_actions,
            T - 1,
            config.sample.seed,
        )
        long_clips = TokenClips(
            "val",
            data.context_frames + self.horizon,
            data.tokenizer,
            data.atari_preset,
            with_frames=True,
            root=data.root or None,
            progress=False,
            games=data.games or None,
        )
        rolled = fixed_subset(long_clips, rollout_clips or data.rollout_clips)
        self.rolled = stack_items(long_clips, rolled)
        self.rolled_episodes = long_clips.clip_episodes()[rolled]  # (B,)
        self._pixel_baselines()

    def _pixel_baselines(self) -> None:
        """Baselines per clip and horizon (B, ahead), against the real future frames x_{past-1+k}:

        copy_psnr          PSNR(x_{past-1}, x_{past-1+k}): the last context frame, in pixels
        copy_tokens_psnr   PSNR(decode(z_{past-1}), x_{past-1+k}): the same copy, but through
                           the tokenizer's decoder, like every frame a model generates
        ceiling_psnr       PSNR(decode(z_{past-1+k}), x_{past-1+k}): the true future tokens, the
                           best any token model can score
        copy_tokens_acc    fraction of z_{past-1+k} equal to z_{past-1}, per clip
        """
        past = self.config.data.context_frames
        frames, tokens = self.rolled["frames"], self.rolled["tokens"]  # (B, past + ahead, ...)
        future = frames[:, past:]  # (B, ahead, C, H, W)
        last = frames[:, past - 1 : past].expand_as(future)  # the last context frame, repeated
        self.copy_psnr = psnr(last, future)  # (B, ahead)
        last_decoded = decode_frames(self.tokenizer, tokens[:, past - 1 : past]).expand_as(future)
        self.copy_tokens_psnr = psnr(last_decoded, future)  # (B, ahead)
        true_future = decode_frames(self.tokenizer, tokens[:, past:])  # (B, ahead, C, H, W)
        self.ceiling_psnr = psnr(true_future, future)  # (B, ahead)
        same = tokens[:, past:] == tokens[:, past - 1 : past]  # (B, ahead, h, w)
        self.copy_tokens_acc = same.float().mean((2, 3))  # (B, ahead)

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        metrics = self.evaluate_dynamics(model)
        if self.out_dir is not None and self.last:
            save_rollout_strip(
                self.last,
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: real / generated (held-out episodes)",
            )
        return metrics

    def evaluate_dynamics(self, model: nn.Module) -> dict[str, float]:
        sample, past, ahead = self.config.sample, self.config.data.context_frames, self.horizon
        metrics = self._teacher_forced(model)
        metrics.update(self.baselines)
        tokens, actions = self.rolled["tokens"], self.rolled["actions"]
        generated = rollout_model(model, tokens[:, :past], actions, ahead, sample)
        # generated: (B, ahead, h, w)
        frames = decode_frames(self.tokenizer, generated)  # (B, ahead, C, H, W)
        future = self.rolled["frames"][:, past:]
        model_psnr = psnr(frames, future)  # (B, ahead)
        metrics.update(per_horizon("rollout_psnr", model_psnr))
        metrics.update(per_horizon("copy_last_psnr", self.copy_psnr))
        metrics.update(per_horizon("copy_last_tokens_psnr", self.copy_tokens_psnr))
        metrics.update(per_horizon("tokenizer_psnr", self.ceiling_psnr))
        correct = (generated == tokens[:, past:]).float().mean((2, 3))  # (B, ahead)
        metrics.update(per_horizon("rollout_token_accuracy", correct))
        metrics.update(per_horizon("copy_last_rollout_token_accuracy", self.copy_tokens_acc))
        context = decode_frames(self.tokenizer, tokens[:, :past])
        self.last = {
            "real": self.rolled["frames"],
            "generated": torch.cat([context, frames], dim=1),
            "games": self.rolled["game"],
            "psnr": model_psnr,
        }
        self.per_clip["rollout_psnr"] = (model_psnr.mean(1), self.rolled_episodes)  # (B,)
        if self.full:
            episodes = self.rolled_episodes
            for k in range(ahead):  # paired per clip: the model minus each copy baseline
                add_interval(
                    metrics, f"rollout_minus_copy_tokens_psnr_h{k + 1}",
                    model_psnr[:, k] - self.copy_tokens_psnr[:, k], episodes,
                )  # fmt: skip
                add_interval(
                    metrics, f"rollout_minus_copy_psnr_h{k + 1}",
                    model_psnr[:, k] - self.copy_psnr[:, k], episodes,
                )  # fmt: skip
            add_interval(
                metrics, "rollout_minus_copy_tokens_psnr", model_psnr - self.copy_tokens_psnr,
                episodes,
            )  # fmt: skip
            metrics.update(self._controllability(model, model_psnr))
            metrics.update(time_sampling(model, tokens[:, :past], actions, sample))
        return metrics

    def _teacher_forced(self, model: nn.Module) -> dict[str, float]:
        """Teacher-forced CE of the last frame, in 1X's two scenarios (dynamics_model.scoring),
        with the true actions, and how much worse with random ones.

        tf_temporal_*: the frame's own true tokens hidden (what the 1X challenge ranks).
        tf_full_*: its true tokens given (AR: those before each token; MaskGIT: all others);
        validate.py only, on at most FULL_TF_CLIPS clips (MaskGIT needs N passes).
        tf_action_gain_nats = CE(random action into the last frame) - CE(true action), per
        token (temporal scenario): the information the model takes from the action. Far more
        sensitive than ΔtPSNR, where the few pixels an action moves drown in the frame's error.
        """
        tokens, games, actions = self.scored["tokens"], self.scored["game"], self.scored["actions"]
        nats, accuracy = clip_teacher_forced(model, "temporal", tokens, actions)
        # per-clip scores, kept for paired comparisons between runs (validate.py)
        self.per_clip = {"tf_temporal_ce_nats": (nats, self.scored_episodes)}
        random_nats, _ = clip_teacher_forced(model, "temporal", tokens, self.scored_random_actions)
        metrics = {
            "tf_temporal_ce_nats": nats.mean().item(),
            "tf_temporal_ce_bits": nats_to_bits(nats.mean().item()),
            "tf_temporal_accuracy": accuracy.mean().item(),
            "tf_temporal_ce_nats_random_actions": random_nats.mean().item(),
            "tf_action_gain_nats": (random_nats - nats).mean().item(),
        }
        if not self.full:
            return metrics
        episodes = self.scored_episodes
        add_interval(metrics, "tf_action_gain_nats", random_nats - nats, episodes)
        add_interval(metrics, "tf_temporal_minus_unigram_nats",
                     nats - self.baseline_clips["unigram"], episodes)  # fmt: skip
        add_interval(metrics, "tf_temporal_minus_previous_frame_nats",
                     nats - self.baseline_clips["previous_frame"], episodes)  # fmt: skip
        rows = fixed_subset(tokens, FULL_TF_CLIPS)
        full, full_accuracy = clip_teacher_forced(model, "full", tokens[rows], actions[rows])
        metrics["tf_full_clips"] = float(len(rows))
        metrics["tf_full_ce_nats"] = full.mean().item()
        metrics["tf_full_ce_bits"] = nats_to_bits(full.mean().item())
        metrics["tf_full_accuracy"] = full_accuracy.mean().item()
        add_interval(metrics, "tf_temporal_minus_full_nats", nats[rows] - full, episodes[rows])
        for g in games.unique().tolist():
            rows, name = games == g, self.game_names[g]
            metrics[f"tf_temporal_ce_nats_{name}"] = nats[rows].mean().item()
            metrics[f"tf_action_gain_nats_{name}"] = (random_nats - nats)[rows].mean().item()
        return metrics

    def _controllability(self, model: nn.Module, model_psnr: torch.Tensor) -> dict[str, float]:
        """ΔtPSNR = PSNR(true actions) - PSNR(random actions), per horizon and per game."""
        past = self.config.data.context_frames
        tokens, games = self.rolled["tokens"], self.rolled["game"]
        random_actions = random_future_actions(
            self.rolled["actions"], games, self.game_actions, past, seed=self.config.sample.seed
        )
        generated = rollout_model(
            model, tokens[:, :past], random_actions, self.horizon, self.config.sample
        )  # (B, ahead, h, w)
        random_frames = decode_frames(self.tokenizer, generated)  # (B, ahead, C, H, W)
        random_psnr = psnr(random_frames, self.rolled["frames"][:, past:])
        delta = model_psnr - random_psnr  # (B, ahead)
        metrics = {
            **per_horizon("random_actions_psnr", random_psnr),
            **per_horizon("delta_psnr", delta),
            "delta_psnr": delta_psnr(model_psnr, random_psnr),
            "rollout_psnr": model_psnr.mean().item(),
            "copy_last_psnr": self.copy_psnr.mean().item(),
            "copy_last_tokens_psnr": self.copy_tokens_psnr.mean().item(),
        }
        for k in range(delta.shape[1]):
            add_interval(metrics, f"delta_psnr_h{k + 1}", delta[:, k], self.rolled_episodes)
        add_interval(metrics, "delta_psnr", delta, self.rolled_episodes)
        self.last["random_psnr"] = random_psnr
        for g in games.unique().tolist():
            name, rows = self.game_names[g], games == g
            metrics[f"rollout_psnr_{name}"] = model_psnr[rows].mean().item()
            metrics[f"copy_last_psnr_{name}"] = self.copy_psnr[rows].mean().item()
            metrics[f"copy_last_tokens_psnr_{name}"] = self.copy_tokens_psnr[rows].mean().item()
            metrics[f"random_actions_psnr_{name}"] = random_psnr[rows].mean().item()
            metrics[f"delta_psnr_{name}"] = delta[rows].mean().item()
        return metrics
