"""The Markdown tables validate.py prints (and the README quotes): scores beside the codec,
per-class IoU, the reconstruction after each scale, and one row per run (the 4D tokenizer's
temporal-compression table when the runs differ in it).

A cell with a 95% interval reads `estimate [low, high]`, and says "contains 0" when it does.
"""

from __future__ import annotations

SETS = ("val", "heldout")


def _cell(metrics: dict, key: str) -> str:
    """'66.4', or '+12.3 [+10.1, +14.2]' where the metric has a 95% interval."""
    value = metrics.get(key)
    if not isinstance(value, float):
        return "-"
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is None:
        return f"{value:.1f}"
    text = f"{value:+.1f} [{low:+.1f}, {high:+.1f}]"
    return text if low > 0 or high < 0 else f"{text}, contains 0"


def scores_table(metrics: dict) -> str:
    """One row per (set, region, score, convention): model, codec, model - codec [95%]."""
    lines = ["| set | voxels | score | model | codec | model - codec [95%] |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name in SETS:
        for where, region in (("", "all"), ("visible_", "visible mask")):
            for score in ("mIoU", "IoU"):
                for mode in ("occ3d", "occworld"):
                    key = f"{where}{score}_{mode}"
                    lines.append(
                        f"| {name} | {region} | {score} ({mode}) | "
                        f"{_cell(metrics, f'{name}_{key}')} | "
                        f"{_cell(metrics, f'{name}_codec_{key}')} | "
                        f"{_cell(metrics, f'{name}_{key}_minus_codec')} |"
                    )
    return "\n".join(lines)


def per_class_table(per_class: dict) -> str:
    """class | model and codec IoU (%) on each held-out set (Occ3D rule: '-' if absent)."""
    sets = list(per_class)
    head = " | ".join(f"{s} model | {s} codec" for s in sets)
    lines = [f"| class | {head} |", "|---|" + "---|" * (2 * len(sets))]
    names = per_class[sets[0]]["model"]
    for n in names:
        cells = [per_class[s][w][n] for s in sets for w in ("model", "codec")]
        lines.append(f"| {n} | " + " | ".join("-" if v != v else f"{v:.1f}" for v in cells) + " |")
    return "\n".join(lines)


def other_table(metrics: dict) -> str:
    """Codebook, bits and (multi-scale) per-scale rows: every remaining number."""
    keys = [k for k, v in metrics.items() if isinstance(v, float | int) and "IoU" not in k]
    keys += [k for k in metrics if "_scale" in k]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {metrics[k]:.4g} |" for k in keys if isinstance(metrics[k], float | int)]
    return "\n".join(lines)


def scales_table(metrics: dict) -> str:
    """Multi-scale kind: the reconstruction decoded from the sum of scales 1..k, per k."""
    keys = sorted((k for k in metrics if k.startswith("val_scale") and k.endswith("_mIoU_occ3d")),
                  key=lambda k: int(k.split("_")[1][len("scale"):]))  # fmt: skip
    if not keys:
        return ""
    lines = ["| scales used | last side | tokens so far | val mIoU (occ3d) | val IoU (occ3d) |",
             "|---|---|---|---|---|"]  # fmt: skip
    tokens = 0
    for key in keys:
        k, side = key.split("_")[1][len("scale") :], key.split("_")[2]
        tokens += int(side.split("x")[0]) ** 2
        iou = metrics[key.replace("_mIoU_", "_IoU_")]
        lines.append(f"| 1..{k} | {side} | {tokens} | {metrics[key]:.1f} | {iou:.1f} |")
    return "\n".join(lines)


def runs_table(results: dict[str, dict]) -> str:
    """One row per run: token grid, bits, and val scores beside the codec; with runs of the
    4D kind at several temporal compressions this is the chapter's compression table."""
    lines = ["| run | kind | frames per latent frame | tokens per frame | bits per frame | "
             "x smaller than raw | val mIoU | val IoU | codec mIoU | mIoU - codec [95%] |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for run, m in results.items():
        lines.append(
            f"| {run} | {m['kind']} | {m['token_cell']['frames']} | {m['tokens_per_frame']:.1f} "
            f"| {m['bits_per_frame']:.0f} | {m['compression_vs_raw']:.0f} "
            f"| {m['val_mIoU_occ3d']:.1f} | {m['val_IoU_occ3d']:.1f} "
            f"| {m['val_codec_mIoU_occ3d']:.1f} | {_cell(m, 'val_mIoU_occ3d_minus_codec')} |"
        )
    return "\n".join(lines)


def classes_by_run_table(results: dict[str, dict], split: str = "val") -> str:
    """Per-class IoU of each run on one set, classes ordered by their IoU in the first run:
    read across to see which classes die first as the compression grows."""
    names = list(results)
    per_run = [results[n]["per_class_iou"][split]["model"] for n in names]
    order = sorted(per_run[0], key=lambda c: -(per_run[0][c] if per_run[0][c] == per_run[0][c]
                                               else -1))  # fmt: skip
    lines = [f"| class | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for c in order:
        cells = ["-" if r[c] != r[c] else f"{r[c]:.1f}" for r in per_run]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(pairs: dict[str, dict]) -> str:
    """One row per (run - first run) difference on the same items, with its 95% interval."""
    keys = [f"{split}_{score}_occ3d" for split in SETS for score in ("mIoU", "IoU")]
    lines = [f"| run - {'first run'} | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]  # fmt: skip
    for name, diff in pairs.items():
        lines.append(f"| {name} | " + " | ".join(_cell(diff, f"{k}_minus") for k in keys) + " |")
    return "\n".join(lines)
