"""Metrics of token prediction and of latent actions (chapter 2).

A dynamics model that works on tokens is scored like a language model: the cross-entropy of
the true next-frame tokens under its predicted distribution, in nats or bits per token. Two
baselines say what a number is worth:

- the unigram cross-entropy: predict every token from the token histogram of the training
  set, ignoring the past entirely. A model that does not beat it has learned nothing
  about dynamics.
- the previous-frame model: each token is the token at the same place one frame earlier
  (with a smoothed distribution, so its cross-entropy is finite). On Atari, where most of
  the screen is static, this is the strongest trivial baseline.

Both are fit on the training tokens of the games the model trains on, never on others.

Genie scores its latent actions by how much they control the generated video (ΔtPSNR), and
we add the mutual information between latent actions and the true ALE actions to see whether
the model discovered the game's controls without ever seeing them.

Every function returns Python floats (or a count tensor for `label_cooccurrence`) and takes
token ids as int64 tensors.
"""

import math

import torch
import torch.nn.functional as F
from einops import rearrange


def _check_ids(ids: torch.Tensor, K: int, name: str) -> None:
    """Raise a ValueError unless `ids` is an integer tensor with values in [0, K)."""
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{name} must be integer token ids, got dtype {ids.dtype}")
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty")
    if ids.min() < 0 or ids.max() >= K:
        raise ValueError(
            f"{name} must lie in [0, {K}), got values in [{int(ids.min())}, {int(ids.max())}]"
        )


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Mean cross-entropy and accuracy of predicted token distributions.

    logits: (..., K) float, unnormalised log-probabilities; targets: (...) int64 in [0, K).
    Returns {"nats": CE, "bits": CE / ln 2, "accuracy": fraction of argmax == target}, all
    averaged over every token. CE = -mean_i log softmax(logits_i)[target_i]; uniform logits
    give ln K nats = log2 K bits.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits (..., K) must match targets (...): got logits {tuple(logits.shape)} "
            f"and targets {tuple(targets.shape)}"
        )
    K = logits.shape[-1]
    _check_ids(targets, K, "targets")
    flat_logits = rearrange(logits.detach().float(), "... k -> (...) k")  # (M, K)
    flat_targets = rearrange(targets, "... -> (...)")  # (M,)
    nats = F.cross_entropy(flat_logits, flat_targets).item()
    accuracy = (flat_logits.argmax(dim=-1) == flat_targets).float().mean().item()
    return {"nats": nats, "bits": nats / math.log(2), "accuracy": accuracy}


def _histogram(token_ids: torch.Tensor, K: int) -> torch.Tensor:
    """Counts of each id, (K,) float64."""
    return torch.bincount(token_ids.flatten(), minlength=K).double()  # (K,)


def unigram_entropy(token_ids: torch.Tensor, K: int) -> float:
    """Entropy of the token histogram in nats: H = -sum_k p_k ln p_k, with 0 ln 0 = 0.

    This is the in-sample cross-entropy of the best context-free predictor, fit and scored on
    the same tokens. For a fair baseline on held-out data use `unigram_cross_entropy`.
    """
    _check_ids(token_ids, K, "token_ids")
    p = _histogram(token_ids, K)
    p = p / p.sum()  # (K,)
    return -(p * torch.log(p.clamp_min(1e-300))).sum().item()  # 0 ln 0 -> 0 * (-690) = 0


def unigram_cross_entropy(
    train_ids: torch.Tensor, eval_ids: torch.Tensor, K: int, smoothing: float = 1.0
) -> float:
    """Cross-entropy (nats per token) of held-out tokens under the training-set unigram.

    The unigram is fit on `train_ids` with additive (Laplace) smoothing,
        q_k = (count_k + smoothing) / (n + K * smoothing),
    so a code never seen in training still gets probability > 0, and scored on `eval_ids`:
        CE = -mean_i ln q[eval_i].
    This is the number a dynamics model's held-out cross-entropy must beat. smoothing=0 gives
    the maximum-likelihood unigram; CE is then infinite if eval holds an unseen code.
    """
    _check_ids(eval_ids, K, "eval_ids")
    log_q = unigram_log_probs(train_ids, K, smoothing)  # (K,)
    return -log_q[eval_ids.flatten()].mean().item()


def clip_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in nats of each clip's tokens, averaged within the clip: (B,) float64.

    logits (B, ..., K), targets (B, ...) int64. The mean of the result over clips equals
    `token_cross_entropy(...)["nats"]` when every clip has as many tokens; per clip, it is
    what a bootstrap over clips or episodes resamples.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits (B, ..., K) must match targets (B, ...): got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    _check_ids(targets, logits.shape[-1], "targets")
    log_p = F.log_softmax(logits.detach().double(), dim=-1)  # (B, ..., K)
    nll = -log_p.gather(-1, targets[..., None])[..., 0]  # (B, ...)
    return nll.reshape(len(nll), -1).mean(1)  # (B,)


def unigram_log_probs(train_ids: torch.Tensor, K: int, smoothing: float = 1.0) -> torch.Tensor:
    """ln q_k of the Laplace-smoothed training unigram, (K,) float64 (see below)."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    _check_ids(train_ids, K, "train_ids")
    counts = _histogram(train_ids, K)  # (K,)
    return torch.log((counts + smoothing) / (counts.sum() + K * smoothing))  # (K,)


def previous_frame_log_probs(
    train_episodes: list[torch.Tensor], K: int, smoothing: float = 1.0
) -> tuple[float, torch.Tensor]:
    """Fit the previous-frame token model on training episodes (each (T_e, h, w) ids).

    The strongest trivial token model on Atari, where most of the screen stands still: each
    token is the token at the same place one frame earlier with probability 1 - eps, else
    a draw from the training unigram q:
        p(z_t[n] = k | z_{t-1}[n] = j) = (1 - eps) [k = j] + eps q_k,
    eps = the share of training tokens that differ from the one before them (so its CE is
    finite, and both parameters come from the training tokens only). Returns (eps, ln q).
    """
    changed = total = 0
    for episode in train_episodes:
        if len(episode) >= 2:
            changed += int((episode[1:] != episode[:-1]).sum())
            total += episode[1:].numel()
    if total == 0:
        raise ValueError("previous_frame_log_probs needs an episode of >= 2 frames")
    eps = (changed + 1) / (total + 2)  # Laplace: never 0 or 1
    return eps, unigram_log_probs(torch.cat(list(train_episodes)), K, smoothing)


def previous_frame_cross_entropy(
    previous: torch.Tensor, targets: torch.Tensor, eps: float, log_q: torch.Tensor
) -> torch.Tensor:
    """Per-clip CE (nats) of `targets` (B, h, w) under the previous-frame model given the
    tokens one frame earlier, `previous` (B, h, w): (B,) float64. See previous_frame_log_probs."""
    q = log_q.exp()[targets]  # (B, h, w) q of each target
    p = (1 - eps) * (targets == previous).double() + eps * q  # (B, h, w)
    return (-torch.log(p)).reshape(len(p), -1).mean(1)  # (B,)


def copy_last_frame_accuracy(tokens: torch.Tensor, last_only: bool = False) -> float:
    """Accuracy of predicting each frame's tokens as a copy of the previous frame's.

    tokens: (B, T, h, w) int64, T >= 2. Averages [tokens[:, t] == tokens[:, t-1]] over every
    transition t = 1..T-1, or only over t = T-1 with `last_only` (to compare with a model's
    teacher-forced accuracy on the last frame).
    """
    if tokens.ndim != 4 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be (B, T, h, w) with T >= 2, got {tuple(tokens.shape)}")
    same = tokens[:, 1:] == tokens[:, :-1]  # (B, T-1, h, w)
    if last_only:
        same = same[:, -1]  # (B, h, w)
    return same.float().mean().item()


def delta_psnr(psnr_true_actions: torch.Tensor, psnr_random_actions: torch.Tensor) -> float:
    """Genie's controllability metric ΔtPSNR, in dB.

    ΔtPSNR = PSNR(x_t, x̂_t from the inferred/true actions) - PSNR(x_t, x̂_t from random
    actions), each x̂_t generated t frames into the future from the same context. Inputs are
    PSNR values in dB, one per clip (paired, same shape) or scalars; the result is the mean
    difference. A large value means the actions matter for what is generated; ~0 means the
    model ignores them.
    """
    true_db = torch.as_tensor(psnr_true_actions, dtype=torch.float64)
    random_db = torch.as_tensor(psnr_random_actions, dtype=torch.float64)
    if true_db.shape != random_db.shape:
        raise ValueError(
            "psnr_true_actions and psnr_random_actions must be paired (same shape), got "
            f"{tuple(true_db.shape)} and {tuple(random_db.shape)}"
        )
    return (true_db - random_db).mean().item()


def label_cooccurrence(
    labels_a: torch.Tensor, labels_b: torch.Tensor, num_a: int, num_b: int
) -> torch.Tensor:
    """Joint counts M[i, j] = #{n : a_n = i and b_n = j}, (num_a, num_b) int64: a contingency
    table of two labellings (not a confusion matrix of predictions against truth: neither is
    the truth, and metrics.occupancy.confusion_matrix is that one).

    labels_a, labels_b: integer tensors of the same shape (e.g. latent action ids and true
    ALE action ids of the same transitions), with values in [0, num_a) and [0, num_b).
    """
    if labels_a.shape != labels_b.shape:
        raise ValueError(
            f"labels_a and labels_b must have the same shape, got {tuple(labels_a.shape)} "
            f"and {tuple(labels_b.shape)}"
        )
    _check_ids(labels_a, num_a, "labels_a")
    _check_ids(labels_b, num_b, "labels_b")
    pair_index = labels_a.flatten() * num_b + labels_b.flatten()  # row-major cell i*num_b + j
    counts = torch.bincount(pair_index, minlength=num_a * num_b)  # (num_a * num_b,)
    return rearrange(counts, "(a b) -> a b", a=num_a)  # (num_a, num_b)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """-sum p ln p of a probability tensor, with 0 ln 0 = 0."""
    return -(p * torch.log(p.clamp_min(1e-300))).sum()


def normalized_mutual_information(labels_a: torch.Tensor, labels_b: torch.Tensor) -> float:
    """NMI(A, B) = I(A; B) / ((H(A) + H(B)) / 2), in [0, 1].

    Normalised by the arithmetic mean of the two entropies, as sklearn's default
    (`average_method="arithmetic"`). I(A; B) = sum_ij p_ij ln(p_ij / (p_i p_j)). It does not
    care how the labels are named: a latent action model whose codes are a relabelling of
    the true actions scores 1; codes independent of the actions score ~0. When both
    labelings are constant (H(A) = H(B) = 0) it is 1, as in sklearn.
    """
    if labels_a.shape != labels_b.shape or labels_a.numel() == 0:
        raise ValueError(
            "labels_a and labels_b must be non-empty and of the same shape, got "
            f"{tuple(labels_a.shape)} and {tuple(labels_b.shape)}"
        )
    num_a, num_b = int(labels_a.max()) + 1, int(labels_b.max()) + 1
    joint = label_cooccurrence(labels_a, labels_b, num_a, num_b).double()  # (num_a, num_b)
    p_ab = joint / joint.sum()  # (num_a, num_b)
    p_a, p_b = p_ab.sum(dim=1), p_ab.sum(dim=0)  # (num_a,), (num_b,) marginals
    h_a, h_b = _entropy(p_a), _entropy(p_b)
    if h_a == 0 and h_b == 0:
        return 1.0
    mutual_information = h_a + h_b - _entropy(p_ab)  # I(A; B) = H(A) + H(B) - H(A, B)
    return (mutual_information / ((h_a + h_b) / 2)).clamp(0.0, 1.0).item()
