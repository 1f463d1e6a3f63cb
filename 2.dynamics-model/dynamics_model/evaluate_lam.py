"""Held-out scores of the latent action model: do its codes mean the true controls?

    NMI                 latent actions vs the true ALE actions, per game and overall, beside
                        the same latents against the true actions shuffled within each game
    next-frame PSNR     decoding with the inferred latent actions vs random ones (the LAM's
                        own controllability), beside copying the last frame

Shapes: B clips, T frames per clip, C, H, W pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dynamics_model.config import Config
from dynamics_model.lam import LatentActionModel
from dynamics_model.scoring import add_interval, nmi_gain_interval
from dynamics_model.tokens import TokenClips
from worldmodels.data.subsets import fixed_subset, stack_items
from worldmodels.metrics import psnr
from worldmodels.metrics.tokens import delta_psnr, normalized_mutual_information

CALIBRATION_CLIPS = 256  # training clips the action standardisation is measured on


class LatentActionEvaluator:
    """`evaluate(model, step)` for a LAM run; `full=True` (validate.py) adds intervals. The
    last evaluation's latent and true actions stay in `self.last_lam` for the confusion plot."""

    def __init__(
        self,
        config: Config,
        datasets: dict[str, TokenClips],
        tokenizer=None,
        out_dir: Path | None = None,
        full: bool = False,
        eval_clips: int | None = None,
        **_,
    ):
        self.config, self.full = config, full
        val, train = datasets["val"], datasets["train"]
        self.game_names = val.game_names
        scored = fixed_subset(val, eval_clips or config.data.eval_clips)
        self.scored = stack_items(val, scored)
        self.scored_episodes = val.clip_episodes()[scored]  # (B,): the bootstrap's groups
        calibration = fixed_subset(train, CALIBRATION_CLIPS)
        self.calibration_frames = stack_items(train, calibration)["frames"]
        self.last: dict[str, torch.Tensor] = {}

    def __call__(self, model: LatentActionModel, step: int) -> dict[str, float]:
        return self.evaluate_lam(model)

    @torch.no_grad()
    def evaluate_lam(self, model: LatentActionModel, batch: int = 64) -> dict[str, float]:
        """NMI of latent vs true actions (overall, per game, and for shuffled labels), the
        next-frame PSNR with inferred vs random latent actions, and copy-last-frame PSNR."""
        device = next(model.parameters()).device
        model.calibrate_action_norm(self.calibration_frames.to(device))  # on training clips
        frames, games = self.scored["frames"], self.scored["game"]  # (B, T, C, H, W), (B,)
        true = self.scored["actions"][:, :-1]  # (B, T-1): a_t leads from frame t to t+1
        latent, recon, shuffled_recon = [], [], []
        generator = torch.Generator().manual_seed(self.config.sample.seed)
        num_codes = model.config.num_latent_actions
        for chunk in frames.split(batch):
            chunk = chunk.to(device)
            ids = model.infer_actions(chunk)  # (b, T-1)
            latent.append(ids.cpu())
            recon.append(model.decode_with_actions(chunk[:, :-1], ids).float().cpu())
            random_ids = torch.randint(num_codes, tuple(ids.shape), generator=generator)
            shuffled_recon.append(
                model.decode_with_actions(chunk[:, :-1], random_ids.to(device)).float().cpu()
            )
        latent = torch.cat(latent)  # (B, T-1)
        target = frames[:, 1:]
        lam_psnr = psnr(torch.cat(recon), target)  # (B, T-1)
        random_psnr = psnr(torch.cat(shuffled_recon), target)
        # Chance: the true actions shuffled among the transitions of the same game. Shuffling
        # across games would also destroy the game <-> action-set link, and a LAM whose codes
        # only tell the games apart would then look better than chance.
        shuffled = true.clone()  # (B, T-1)
        for g in games.unique().tolist():
            labels = true[games == g].flatten()
            order = torch.randperm(labels.numel(), generator=generator)
            shuffled[games == g] = labels[order].reshape(-1, true.shape[1])
        metrics = {
            "nmi": normalized_mutual_information(latent.flatten(), true.flatten()),
            "nmi_chance": normalized_mutual_information(latent.flatten(), shuffled.flatten()),
            "codes_used": float(latent.unique().numel()),
            "lam_psnr": lam_psnr.mean().item(),
            "lam_random_actions_psnr": random_psnr.mean().item(),
            "lam_delta_psnr": delta_psnr(lam_psnr, random_psnr),
            "copy_last_psnr": psnr(frames[:, :-1], target).mean().item(),
        }
        if self.full:
            episodes = self.scored_episodes
            metrics.update(nmi_gain_interval(latent, true, shuffled, episodes))
            add_interval(metrics, "lam_delta_psnr", lam_psnr - random_psnr, episodes)
        for g in games.unique().tolist():
            rows = games == g
            lat, act = latent[rows].flatten(), true[rows].flatten()
            name = self.game_names[g]
            metrics[f"nmi_{name}"] = normalized_mutual_information(lat, act)
            chance = normalized_mutual_information(lat, shuffled[rows].flatten())
            metrics[f"nmi_chance_{name}"] = chance
        self.last_lam = {"latent": latent, "true": true, "games": games, "num_codes": num_codes}
        return metrics
