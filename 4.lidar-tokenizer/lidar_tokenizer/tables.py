"""validate.py's Markdown tables, from a metrics dict (one run) or several.

scores_table     per set and metric: model | floor | codec | model - codec | model - floor
tokens_table     per set: codebook usage, perplexity, temporal coherence
skipping_table   per set: render time and depth L1 with and without spatial skipping
runs_table       one row per run (e.g. with and without k-means restarts)
"""

from __future__ import annotations

import math

SETS = ("val", "heldout", "real")
ROWS = (  # key suffix, label, has an interval
    ("depth_l1", "depth L1, rays in region (m)", True),
    ("absrel", "AbsRel, rays in region", False),
    ("depth_l1_all", "depth L1, all rays (m)", False),
    ("absrel_all", "AbsRel, all rays", False),
    ("chamfer", "Chamfer in region (m)", True),
    ("chamfer_all", "Chamfer, all points (m)", False),
)


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def interval(metrics: dict, key: str, digits: int = 3) -> str:
    """'estimate [low, high]', with ', contains 0' when the interval does; '-' if absent."""
    if key not in metrics:
        return "-"
    low, high = metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"]
    text = f"{metrics[key]:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
    return text if low > 0 or high < 0 else f"{text}, contains 0"


def scores_table(metrics: dict) -> str:
    lines = ["| set | metric | model | voxel floor | OR codec | model - codec [95%] | "
             "model - floor [95%] |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        if f"{name}_depth_l1" not in metrics:
            continue
        for suffix, label, has_interval in ROWS:
            cells = [_number(metrics.get(f"{name}_{m}{suffix}")) for m in ("", "floor_", "codec_")]
            diffs = [interval(metrics, f"{name}_{suffix}_minus_{o}") if has_interval else ""
                     for o in ("codec", "floor")]  # fmt: skip
            lines.append(f"| {name} | {label} | " + " | ".join(cells + diffs) + " |")
    return "\n".join(lines)


def tokens_table(metrics: dict) -> str:
    lines = ["| set | codebook usage (%) | perplexity | equal tokens, next frame (%) | "
             "equal tokens, ego motion applied (%) |", "|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        if f"{name}_codebook_usage" not in metrics:
            continue
        pct = lambda k: _number(100 * metrics[k], 1) if k in metrics else "-"  # noqa: E731
        lines.append(f"| {name} | {pct(f'{name}_codebook_usage')} | "
                     f"{_number(metrics[f'{name}_perplexity'], 1)} | {pct(f'{name}_coherence')} | "
                     f"{pct(f'{name}_coherence_ego')} |")  # fmt: skip
    return "\n".join(lines)


def skipping_table(metrics: dict) -> str:
    lines = ["| set | uniform: s | rays/s | depth L1 (m) | skipping: s | rays/s | depth L1 (m) | "
             "speedup | L1 change |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        if f"{name}_skipping_speedup" not in metrics:
            continue
        uniform, skipping = metrics[f"{name}_uniform_depth_l1"], metrics[f"{name}_depth_l1"]
        lines.append(
            f"| {name} | {_number(metrics[f'{name}_render_s_uniform'], 2)} | "
            f"{metrics[f'{name}_rays_per_s_uniform']:.0f} | {_number(uniform)} | "
            f"{_number(metrics[f'{name}_render_s_skipping'], 2)} | "
            f"{metrics[f'{name}_rays_per_s_skipping']:.0f} | {_number(skipping)} | "
            f"{metrics[f'{name}_skipping_speedup']:.2f}x | {100 * (skipping / uniform - 1):+.1f}% |"
        )
    return "\n".join(lines)


def runs_table(results: dict[str, dict]) -> str:
    header = ("| run | restarts | val depth L1 (m) | val Chamfer (m) | heldout depth L1 (m) | "
              "val codebook usage (%) | val perplexity |")  # fmt: skip
    lines = [header, "|---|---|---|---|---|---|---|"]
    for run, m in results.items():
        lines.append(
            f"| {run} | {m.get('restarts_done', '-')} | {_number(m.get('val_depth_l1'))} | "
            f"{_number(m.get('val_chamfer'))} | {_number(m.get('heldout_depth_l1'))} | "
            f"{_number(100 * m.get('val_codebook_usage', math.nan), 1)} | "
            f"{_number(m.get('val_perplexity'), 1)} |"
        )
    return "\n".join(lines)
