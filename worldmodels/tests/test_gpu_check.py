"""`gpu_check --device=cpu --tiny` keeps the GPU check working between GPU runs: every
chapter's four phases complete on the CPU, the report is well formed, and a failing phase is
recorded with its traceback while the check goes on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodels import gpu_check, gpu_phases
from worldmodels.testing import one_thread  # noqa: F401  (autouse: one CPU thread)

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [f for f in gpu_check.CHAPTERS if (ROOT / f).is_dir()]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """The whole tiny check, run as a command in a fresh interpreter (so its imports are its
    own): (exit code, report.json, report.txt)."""
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "worldmodels.gpu_check", f"--out={out}", "--device=cpu", "--tiny"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (out / "report.json").exists(), done.stdout + done.stderr
    return done.returncode, json.loads((out / "report.json").read_text()), out


def test_every_chapter_phase_completes_on_the_cpu(tiny_report):
    code, report, _ = tiny_report
    failures = {(c["chapter"], n): p.get("traceback", p["status"])
                for c in report["chapters"] for n, p in c["phases"].items()
                if p["status"] != "ok"}  # fmt: skip
    assert not failures, failures
    assert code == 0 and report["ok"]
    assert [c["chapter"] for c in report["chapters"]] == CHAPTERS


def test_the_report_is_well_formed(tiny_report):
    _, report, out = tiny_report
    assert {"machine", "torch", "commit", "device", "command", "seconds"} <= set(report)
    for chapter in report["chapters"]:
        phases = chapter["phases"]
        assert list(phases) == list(gpu_check.PHASES)
        assert all(p["seconds"] <= p["budget_s"] for p in phases.values())
        rows = phases["benchmark"]["result"]["rows"]
        assert [(r["dtype"], r["compile"]) for r in rows] == list(gpu_phases.VARIANTS)
        timed = [r for r in rows if r["status"] == "ok"]
        assert len(timed) == 1 and timed[0]["dtype"] == "float32"  # the rest: "skipped: cpu"
        assert all(r["status"].startswith("skipped: cpu") for r in rows if r not in timed)
        assert timed[0]["steps_per_s"] > 0 and 0 < timed[0]["MFU"] < 1
        assert any(k.endswith("_per_s") and k != "steps_per_s" for k in timed[0])
        train = phases["train"]["result"]
        assert train["loss_last"] < train["loss_first"] and train["reloaded_equal"]
        assert train["resumed_to_step"] == train["steps"] + 2
        assert phases["evaluate"]["result"]["trained"] is True
        assert not {"ale_py", "av", "highway_env"} & set(chapter["optional_imports"])
    # no Atari, no video files, no traffic simulator: a GPU machine has none of them
    assert not {"ale_py", "av", "highway_env"} & set(report["optional_imports"])
    text = (out / "report.txt").read_text()
    assert all(chapter in text for chapter in CHAPTERS) and "FAILED" not in text


def test_a_failing_phase_is_recorded_and_the_check_goes_on(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(gpu_phases, "evaluate_once", broken)
    report = gpu_check.main([f"--out={tmp_path}", "--device=cpu", "--tiny", "--chapters=2"])
    phases = report["chapters"][0]["phases"]
    assert phases["evaluate"]["status"] == "failed" and not report["ok"]
    assert "planted failure" in phases["evaluate"]["traceback"]
    assert all(phases[p]["status"] == "ok" for p in ("build", "benchmark", "train"))
    assert (
        "2.dynamics-model evaluate: RuntimeError: planted failure"
        in (tmp_path / "report.txt").read_text()
    )


def test_a_phase_past_its_budget_is_stopped():
    def slow(deadline):
        while True:
            pass

    record = gpu_check.run_phase("slow", 0.2, slow)
    assert record["status"] == "failed" and "PhaseTimeout" in record["error"]
