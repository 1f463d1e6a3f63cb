"""`gpu_check.py`'s record: the machine it ran on, and its report as JSON plus a short text
table (phases per chapter, then one row per benchmark variant, then training)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from worldmodels.checkpoint import write_json_atomic
from worldmodels.runlog import git_commit, machine_description

BENCH_KEYS = ("dtype", "compile", "steps_per_s", "items_per_s", "memory_MB", "MFU",
              "bf16_speedup", "compile_speedup", "status")  # fmt: skip
RATE_KEYS = ("tokens_per_s", "rays_per_s", "clips_per_s", "frames_per_s", "sweeps_per_s")


def machine_record(device, torch) -> dict:
    """Where and when: the device in words, torch and CUDA versions, host, commit, date."""
    record = {"machine": machine_description(device), "device": str(device),
              "torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node(),
              "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


def items_per_s(row: dict) -> str:
    """The first items/s column a row has, named: tokens/s before clips/s (the unit that
    compares across presets), e.g. '1.2e+05 tokens'."""
    for key in RATE_KEYS:
        if key in row:
            return f"{row[key]:.3g} {key.removesuffix('_per_s')}"
    return ""


def table(header: list[str], rows: list[list]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def text_report(report: dict) -> str:
    """The short table: each chapter's phases, its benchmark variants and its training."""
    head = [
        f"gpu_check on {report['machine']}, torch {report['torch']}, commit "
        f"{report['commit']}, {report['seconds']} s: {'ok' if report['ok'] else 'FAILED'}"
    ]
    phases, bench, trains = [], [], []
    for chapter in report["chapters"]:
        name = chapter["chapter"]
        cells = [name]
        for phase in chapter["phases"].values():
            seconds = f" {phase['seconds']}s" if "seconds" in phase else ""
            cells.append(phase["status"].split(":")[0] + seconds)
        phases.append(cells)
        for row in chapter["phases"]["benchmark"].get("result", {}).get("rows", []):
            memory = row.get("peak_memory_MB", row.get("process_peak_rss_MB", ""))
            values = {"items_per_s": items_per_s(row), "memory_MB": memory, **row}
            bench.append([name] + [values.get(k, "") for k in BENCH_KEYS])
        train = chapter["phases"]["train"].get("result")
        if train:
            trains.append([name, train["steps"], train["steps_per_s"],
                           f"{train['loss_first']} -> {train['loss_last']}",
                           f"step {train['resumed_to_step']}"])  # fmt: skip
    lines = head + [""] + table(["chapter", "build", "benchmark", "train", "evaluate"], phases)
    lines += [""] + table(["chapter", *BENCH_KEYS], bench)
    lines += [""] + table(["chapter", "steps", "steps/s", "loss", "resumed to"], trains)
    failures = [f"{c['chapter']} {p['phase']}: {p['error']}" for c in report["chapters"]
                for p in c["phases"].values() if "error" in p]  # fmt: skip
    if failures:
        lines += ["", "failures (tracebacks in report.json):", *failures]
    lines += ["", f"optional packages imported: {report['optional_imports'] or 'none'}"]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> str:
    """DIR/report.json (everything) and DIR/report.txt (the table); returns the table."""
    text = text_report(report)
    write_json_atomic(Path(out) / "report.json", json.loads(json.dumps(report, default=str)))
    (Path(out) / "report.txt").write_text(text)
    return text
