"""Held-out scores of the AR model on temporally compressed tokens (the 1X challenge setting).

A clip of 1 + t*k frames is 1 + k latent token frames; the model sees the first k and
predicts the last, which stands for the clip's last t frames.

Shapes: B clips, C, H, W pixels, h, w tokens per frame.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from video_tokenizer.model import VideoTokenizer

from dynamics_model.ar import ARDynamics
from dynamics_model.compressed_tokens import CompressedTokenClips
from dynamics_model.config import Config
from dynamics_model.evaluate import per_horizon
from dynamics_model.figures import save_rollout_strip
from dynamics_model.rollout import rollout_model
from dynamics_model.scoring import add_interval, clip_teacher_forced, nats_to_bits
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import psnr
from worldmodels.metrics.tokens import unigram_log_probs


class CompressedEvaluator:
    """Held-out scores of an AR model on temporally compressed tokens (the 1X challenge).

    A clip of 1 + t*k frames is 1 + k latent token frames; the model sees the first k and
    predicts the last, which stands for the clip's last t frames. Scores:
        teacher-forced CE of the last latent frame (nats, bits per token) vs the unigram;
        rollout PSNR of the last t frames decoded from (true context + generated latent)
        vs copying the last context frame (pixels) and vs decoding the true latent (ceiling).
    """

    def __init__(  # the evaluators' common signature (twin: evaluate.DynamicsEvaluator)
        self,
        config: Config,
        datasets: dict[str, CompressedTokenClips],
        tokenizer: VideoTokenizer,
        out_dir: Path | None = None,
        full: bool = False,
        eval_clips: int | None = None,
        rollout_clips: int | None = None,
        **_,
    ):
        self.config, self.tokenizer, self.out_dir, self.full = config, tokenizer, out_dir, full
        data, val = config.data, datasets["val"]
        self.game_names = val.game_names
        self.t = data.temporal_compression
        self.horizon = self.t  # frames generated: the last latent frame stands for t frames
        scored = fixed_subset(val, eval_clips or data.eval_clips)
        self.scored = stack_items(val, scored)
        self.scored_episodes = val.atari.clip_episodes()[scored]  # (B,)
        K = tokenizer.codebook_size
        train_ids = datasets["train"].tokens  # (clips, 1 + k, h, w): clips overlap, so
        # the unigram is fit on every training latent frame at every clip offset
        log_q = unigram_log_probs(train_ids, K)  # (K,)
        self.unigram_clips = (-log_q[self.scored["tokens"][:, -1]]).flatten(1).mean(1)  # (B,)
        unigram = self.unigram_clips.mean().item()
        self.baselines = {"unigram_ce_nats": unigram, "unigram_ce_bits": unigram / math.log(2)}
        self.tokenizer_device = next(tokenizer.parameters()).device
        rolled = CompressedTokenClips(
            "val", data.clip_len, data.tokenizer, data.atari_preset, with_frames=True,
            root=data.root or None, progress=False,
        )  # fmt: skip
        self.rolled = stack_items(rolled, fixed_subset(rolled, rollout_clips or data.rollout_clips))
        # frames (B, 1 + t*k, C, H, W), tokens (B, 1 + k, h, w)
        frames, tokens = self.rolled["frames"], self.rolled["tokens"]
        future = frames[:, -self.t :]  # (B, t, C, H, W): the frames the last latent stands for
        last_seen = frames[:, -self.t - 1 : -self.t].expand_as(future)
        self.copy_psnr = psnr(last_seen, future)  # (B, t)
        self.ceiling_psnr = psnr(self._decode(tokens)[:, -self.t :], future)
        self.last: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Latent token clips (B, 1 + k, h, w) -> frames on the CPU, decoded where the
        tokenizer lives (the model may sit on another device)."""
        return torch.cat(
            [self.tokenizer.decode(c.to(self.tokenizer_device)).float().cpu()
             for c in tokens.split(64)]
        )  # fmt: skip

    @torch.no_grad()
    def __call__(self, model: ARDynamics, step: int) -> dict[str, float]:
        tokens = self.scored["tokens"]
        metrics = {}
        for scenario in ("temporal", "full"):
            nats, accuracy = clip_teacher_forced(model, scenario, tokens, None)
            metrics[f"tf_{scenario}_ce_nats"] = nats.mean().item()
            metrics[f"tf_{scenario}_ce_bits"] = nats_to_bits(nats.mean().item())
            metrics[f"tf_{scenario}_accuracy"] = accuracy.mean().item()
            if self.full:
                add_interval(metrics, f"tf_{scenario}_minus_unigram_nats",
                             nats - self.unigram_clips, self.scored_episodes)  # fmt: skip
        metrics.update(self.baselines)
        tokens, frames = self.rolled["tokens"], self.rolled["frames"]
        generated = rollout_model(model, tokens[:, :-1], None, 1, self.config.sample)  # (B,1,h,w)
        clip = torch.cat([tokens[:, :-1], generated], dim=1)  # (B, 1 + k, h, w)
        decoded = self._decode(clip)  # (B, 1 + t*k, C, H, W)
        model_psnr = psnr(decoded[:, -self.t :], frames[:, -self.t :])  # (B, t)
        metrics.update(per_horizon("rollout_psnr", model_psnr))
        metrics.update(per_horizon("copy_last_psnr", self.copy_psnr))
        metrics.update(per_horizon("tokenizer_psnr", self.ceiling_psnr))
        correct = (generated[:, 0] == tokens[:, -1]).float().mean()
        metrics["rollout_token_accuracy"] = correct.item()
        self.last = {"real": frames, "generated": decoded, "games": self.rolled["game"],
                     "psnr": model_psnr}  # fmt: skip
        if self.out_dir is not None:
            save_rollout_strip(
                self.last,
                self.out_dir / "samples" / f"step_{step:06d}.png",
                f"step {step}: real / decoded (context latents + generated last latent)",
            )
        return metrics
