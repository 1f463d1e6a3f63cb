"""Ego-motion tokens (OccTENS): how the car moved between two frames, as one discrete token.

A world model that predicts the scene and the car's own motion in one token sequence needs
the motion as tokens too. Per frame t, the motion since frame t-1 (0.5 s at 2 Hz) is read in
the previous ego frame, so it does not depend on where the drive started:

    M_t = P_{t-1}^{-1} P_t                 P: world-from-ego (4, 4), as the driving data stores
    dx, dy = M_t[0, 3], M_t[1, 3]           metres, x forward, y left of the car at t-1
    dyaw   = atan2(M_t[1, 0], M_t[0, 0])    radians, + = turned left

Each component is cut into bins, and the three bin numbers make one product token

    token = i_dx + n_dx * (i_dy + n_dy * i_dyaw)       n_dx * n_dy * n_dyaw values

decoded to the centres of its three bins. `integrate` chains decoded motions back into a
trajectory: yaw_t = yaw_{t-1} + dyaw_t,  p_t = p_{t-1} + R(yaw_{t-1}) (dx_t, dy_t).

Bins: uniform in value over a range fit on the training poses (`EgoMotionTokenizer.fit`).
Quantile bins would equalise the token frequencies, but they put the coarsest bins on the rare
motions (hard braking, sharp turns at roundabouts), which are the ones a planner must get
right; uniform bins give every motion the same error bound, half a bin, so the drift of a
decoded trajectory has a bound one can state (see `drift_bound`). Motions outside the fitted
range go to the end bins; their error is then more than half a bin.

Shapes: "..." any leading axes, T time steps (frames), n a count (the motions of a trajectory).
"""

import math

import torch
from einops import rearrange

COMPONENTS = ("dx", "dy", "dyaw")


def relative_motion(poses: torch.Tensor) -> torch.Tensor:
    """World-from-ego poses (..., T, 4, 4) -> motions (..., T-1, 3): (dx, dy, dyaw) of frame t
    in frame t-1 (the driving world's tilt is small: yaw is read in the ego's own plane)."""
    if poses.dim() < 3 or poses.shape[-2:] != (4, 4) or poses.shape[-3] < 2:
        raise ValueError(f"expected poses (..., T >= 2, 4, 4), got {tuple(poses.shape)}")
    poses = poses.double()
    M = torch.linalg.inv(poses[..., :-1, :, :]) @ poses[..., 1:, :, :]  # (..., T-1, 4, 4)
    dyaw = torch.atan2(M[..., 1, 0], M[..., 0, 0])  # (..., T-1)
    return torch.stack([M[..., 0, 3], M[..., 1, 3], dyaw], dim=-1).float()  # (..., T-1, 3)


def integrate(motions: torch.Tensor) -> torch.Tensor:
    """Motions (..., n, 3) -> trajectory (..., n+1, 3) of (x, y, yaw), starting at 0 in the
    first ego frame: yaw_t = yaw_{t-1} + dyaw_t, p_t = p_{t-1} + R(yaw_{t-1}) (dx_t, dy_t)."""
    check_motions(motions)
    motions = motions.double()
    dx, dy, dyaw = motions.unbind(-1)  # (..., n) each
    zero = torch.zeros_like(dyaw[..., :1])  # (..., 1)
    yaw = torch.cat([zero, dyaw.cumsum(-1)], dim=-1)  # (..., n+1): yaw_0 = 0
    before = yaw[..., :-1]  # (..., n): the heading each step starts from
    step_x = dx * torch.cos(before) - dy * torch.sin(before)  # R(yaw_{t-1}) (dx, dy)
    step_y = dx * torch.sin(before) + dy * torch.cos(before)
    x = torch.cat([zero, step_x.cumsum(-1)], dim=-1)  # (..., n+1)
    y = torch.cat([zero, step_y.cumsum(-1)], dim=-1)
    return torch.stack([x, y, yaw], dim=-1).float()  # (..., n+1, 3)


def check_motions(motions: torch.Tensor) -> None:
    if not isinstance(motions, torch.Tensor) or motions.dim() < 1 or motions.shape[-1] != 3:
        shape = tuple(motions.shape) if isinstance(motions, torch.Tensor) else type(motions)
        raise ValueError(f"expected motions (..., 3) = (dx, dy, dyaw), got {shape}")
    if not motions.dtype.is_floating_point:
        raise ValueError(f"expected float motions (metres, radians), got {motions.dtype}")
    if not bool(torch.isfinite(motions).all()):
        raise ValueError("motions contain NaN or inf")


class EgoMotionTokenizer:
    """(dx, dy, dyaw) (..., 3) <-> one token (...) int64 in [0, vocab_size), uniform bins.

    `low`, `high`: the range of each component; `bins`: (n_dx, n_dy, n_dyaw). No parameters
    to train: `fit` reads the range off the training motions. `state_dict`-like `to_dict` /
    `from_dict` keep it in a run's JSON.
    """

    def __init__(self, low: tuple, high: tuple, bins: tuple = (32, 16, 32)):
        low, high, bins = tuple(map(float, low)), tuple(map(float, high)), tuple(map(int, bins))
        if not (len(low) == len(high) == len(bins) == 3):
            raise ValueError(f"need 3 lows, highs and bin counts, got {low}, {high}, {bins}")
        if any(b < 1 for b in bins) or any(not lo < hi for lo, hi in zip(low, high)):
            raise ValueError(f"need bins >= 1 and low < high, got {bins}, {low}, {high}")
        self.low, self.high, self.bins = low, high, bins

    @classmethod
    def fit(cls, motions: torch.Tensor, bins: tuple = (32, 16, 32), coverage: float = 1.0):
        """Ranges from training motions (..., 3): the central `coverage` of each component
        (1.0 = min to max; 0.998 clips the 0.1% most extreme each side into the end bins)."""
        check_motions(motions)
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must lie in (0, 1], got {coverage}")
        flat = rearrange(motions.double(), "... c -> (...) c")  # (n, 3)
        tail = (1 - coverage) / 2
        low = torch.quantile(flat, tail, dim=0)  # (3,)
        high = torch.quantile(flat, 1 - tail, dim=0)
        pad = 1e-6 * (high - low).clamp(min=1.0)  # keeps low < high for a constant
        return cls(tuple((low - pad).tolist()), tuple((high + pad).tolist()), bins)

    @property
    def vocab_size(self) -> int:
        """n_dx * n_dy * n_dyaw."""
        return math.prod(self.bins)

    @property
    def bin_width(self) -> tuple[float, float, float]:
        """(high - low) / bins per component: the round trip is within half of it."""
        return tuple((h - lo) / b for lo, h, b in zip(self.low, self.high, self.bins))

    def _tensors(self, like: torch.Tensor):
        as_t = lambda v: torch.tensor(v, dtype=torch.float64, device=like.device)
        return as_t(self.low), as_t(self.high), as_t(self.bins)

    def encode(self, motions: torch.Tensor) -> torch.Tensor:
        """Motions (..., 3) -> tokens (...) int64."""
        check_motions(motions)
        low, high, bins = self._tensors(motions)
        # bin i covers [low + i w, low + (i+1) w), w = (high - low) / bins
        digit = ((motions.double() - low) / (high - low) * bins).floor()  # (..., 3)
        digit = torch.minimum(digit.clamp(min=0), bins - 1).long()  # out of range: end bins
        n_dx, n_dy, _ = self.bins
        return digit[..., 0] + n_dx * (digit[..., 1] + n_dy * digit[..., 2])  # (...)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (...) int64 -> motions (..., 3) at the bins' centres, float32."""
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(f"expected integer tokens, got {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(
                f"tokens must lie in [0, {self.vocab_size}), "
                f"found [{int(tokens.min())}, {int(tokens.max())}]"
            )
        n_dx, n_dy, _ = self.bins
        tokens = tokens.long()
        digit = torch.stack([tokens % n_dx, (tokens // n_dx) % n_dy, tokens // (n_dx * n_dy)], -1)
        low, high, bins = self._tensors(tokens)
        centre = low + (digit.double() + 0.5) * (high - low) / bins  # (..., 3)
        return centre.float()

    def integrate(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (..., n) -> trajectory (..., n+1, 3) of (x, y, yaw) from the first frame."""
        return integrate(self.decode(tokens))

    def drift_bound(self, motions: torch.Tensor) -> torch.Tensor:
        """Bound (...) on the endpoint position error (m) of `integrate(decode(encode(m)))` for
        in-range motions (..., n, 3): step t adds its own error |(e_dx, e_dy)| <= |w_xy| / 2
        and turns its true displacement d_t by the yaw error so far, <= (t-1) w_yaw / 2, which
        moves it by at most |d_t| (t-1) w_yaw / 2 (chord <= arc)."""
        w_dx, w_dy, w_yaw = self.bin_width
        n = motions.shape[-2]
        step = motions[..., :2].double().norm(dim=-1)  # (..., n): |d_t|
        t = torch.arange(n, dtype=torch.float64, device=motions.device)  # (n,): steps before
        yaw_error = t * w_yaw / 2  # (n,): (t-1) w_yaw / 2 for 1-based t
        own = math.hypot(w_dx, w_dy) / 2
        return (own + step * yaw_error).sum(-1).float()  # (...)

    def to_dict(self) -> dict:
        return {"low": list(self.low), "high": list(self.high), "bins": list(self.bins)}

    @classmethod
    def from_dict(cls, d: dict) -> "EgoMotionTokenizer":
        return cls(d["low"], d["high"], d["bins"])
