"""Pose as tokens, both ways: steering the forecast (control) and drawing the ego's own
motion (planning).

**Control.** A forecaster is conditioned on the future ego poses it is given. Give it another
plausible trajectory and it should forecast another world: `with_trajectory(forecaster,
stop_trajectory)` is the same model told that the ego stands still at its last observed pose.
Both are scored against what really happened, so

    delta_mIoU = mIoU(forecast | true trajectory) - mIoU(forecast | alternative)

is > 0 when the model follows the trajectory it is given (Genie's delta-tPSNR, for a driving
world model). It is a paired difference: the benchmark's `<model>_minus_<alternative>`.

**Planning.** Drawing the motion tokens from the model (`plan=True`), the ego's trajectory is
a forecast too. Positions are integrated from the motions (chapter 3's `integrate`), in the
last observed ego frame, and compared with the true ones at 1, 2 and 3 s (frames 2, 4, 6):

    l2_at_h     = | p_hat(h) - p(h) |                          the displacement at h (UniAD)
    l2_avg_to_h = mean over the frames k <= h of | p_hat(k) - p(k) |   (ST-P3's average,
                  the protocol of OccWorld's planning table)

beside the constant-velocity plan: the last observed motion (frame -1 to 0) repeated.

Shapes: B batch (windows), T time steps (frames), T_f future frames, "3" a motion
(dx, dy, dyaw) or a pose (x, y, yaw).
"""

from __future__ import annotations

import numpy as np
import torch
from occupancy_tokenizer.ego import integrate, relative_motion

from world_model.baselines import Forecaster
from world_model.forecast_scores import HORIZONS
from worldmodels.metrics.bootstrap import mean_interval


def stop_trajectory(past_poses: torch.Tensor, future_poses: torch.Tensor) -> torch.Tensor:
    """Future poses (B, T_f, 4, 4) of an ego that stops: every one is the last observed pose."""
    return past_poses[:, -1:].expand_as(future_poses).clone()


ALTERNATIVES = {"stop": stop_trajectory}


def with_trajectory(forecaster: Forecaster, alternative) -> Forecaster:
    """The forecaster conditioned on `alternative(past_poses, future_poses)` instead of the
    true future poses (the scores still compare it with what really happened)."""

    def forecast(past, past_poses, future_poses):
        return forecaster(past, past_poses, alternative(past_poses, future_poses))

    return forecast


def true_path(past_poses: torch.Tensor, future_poses: torch.Tensor) -> torch.Tensor:
    """(B, T_f, 3) (x, y, yaw) of the future frames in the last observed ego frame."""
    poses = torch.cat([past_poses[:, -1:], future_poses], dim=1)  # (B, 1 + T_f, 4, 4)
    return integrate(relative_motion(poses))[:, 1:]  # (B, T_f, 3)


def constant_velocity_path(past_poses: torch.Tensor, future_frames: int) -> torch.Tensor:
    """(B, T_f, 3): the last observed motion (frame -1 -> 0) repeated T_f times."""
    last = relative_motion(past_poses[:, -2:])  # (B, 1, 3)
    return integrate(last.expand(-1, future_frames, -1))[:, 1:]  # (B, T_f, 3)


def motion_path(motion_tokenizer, motions_BT: torch.Tensor) -> torch.Tensor:
    """(B, T_f, 3) from motion tokens (B, T_f) m_{T_p} .. (the first leads out of the last
    observed frame), at their bins' centres."""
    return motion_tokenizer.integrate(motions_BT.cpu())[:, 1:]  # (B, T_f, 3)


def displacement_errors(path_BT3: torch.Tensor, truth_BT3: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per window (B,): `l2_at_<h>` and `l2_avg_to_<h>` (metres) for each horizon of HORIZONS
    ({"1s": 2, ...}: frames after the last observed one)."""
    errors = (path_BT3[..., :2] - truth_BT3[..., :2]).double().norm(dim=-1)  # (B, T_f)
    out = {}
    for name, frames in HORIZONS.items():
        out[f"l2_at_{name}"] = errors[:, frames - 1]
        out[f"l2_avg_to_{name}"] = errors[:, :frames].mean(dim=1)
    return out


class PlanningScores:
    """Collects per-window displacement errors of several planners and reports means with
    95% intervals over sequences, and each planner minus the constant-velocity plan."""

    def __init__(self):
        self.errors: dict[str, dict[str, list]] = {}
        self.sequences: list[torch.Tensor] = []

    def add(self, paths: dict[str, torch.Tensor], truth_BT3: torch.Tensor, sequence_B) -> None:
        for name, path in paths.items():
            table = self.errors.setdefault(name, {})
            for key, values in displacement_errors(path, truth_BT3).items():
                table.setdefault(key, []).append(values)
        self.sequences.append(sequence_B)

    def metrics(self, prefix: str = "", reference: str = "constant_velocity",
                samples: int = 1000) -> dict[str, float]:  # fmt: skip
        groups = torch.cat(self.sequences).numpy()
        values = {name: {k: torch.cat(v).numpy() for k, v in table.items()}
                  for name, table in self.errors.items()}  # fmt: skip
        out = {}
        for name, table in values.items():
            for key, v in table.items():
                interval = mean_interval(v, groups, samples=samples)
                out.update(interval.as_dict(f"{prefix}{name}_{key}"))
                if name != reference and reference in values:
                    diff = mean_interval(v - values[reference][key], groups, samples=samples)
                    out.update(diff.as_dict(f"{prefix}{name}_minus_{reference}_{key}"))
        return {k: float(np.round(v, 4)) for k, v in out.items()}


def planning_table(plan: dict, split: str, name: str) -> str:
    lines = ["", "| planner | L2 1 s | 2 s | 3 s (m) | avg-to-3 s [95%] |", "|---|---|---|---|---|"]
    for planner in (name, "constant_velocity"):
        key = f"{split}_plan_{planner}_{{}}"
        at = [plan[key.format(f"l2_at_{h}")] for h in ("1s", "2s", "3s")]
        avg = key.format("l2_avg_to_3s")
        lines.append(f"| {planner} | {at[0]:.2f} | {at[1]:.2f} | {at[2]:.2f} | "
                     f"{plan[avg]:.2f} [{plan[avg + '_ci_low']:.2f}, "
                     f"{plan[avg + '_ci_high']:.2f}] |")  # fmt: skip
    return "\n".join(lines)
