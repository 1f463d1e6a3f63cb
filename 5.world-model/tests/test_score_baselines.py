"""score_baselines.py end to end on the tiny street world: the JSON has every reference's
scores with intervals, the command and the commit."""

import json
from pathlib import Path

from worldmodels import testing

CHAPTER = Path(__file__).resolve().parent.parent


def test_score_baselines_writes_the_references(tmp_path, monkeypatch, streets, capsys):
    script = testing.load_script(CHAPTER, "score_baselines")
    monkeypatch.setattr(script, "load_windows",
                        lambda split, preset: streets.windows(split=split))  # fmt: skip
    record = script.main(["--splits=val", "--ceilings=", "--samples=20", f"--results={tmp_path}"])
    saved = json.loads((tmp_path / "baselines.json").read_text())
    assert saved.keys() == record.keys()
    assert saved["command"].startswith("score_baselines.py --splits=val")
    assert saved["val_windows"] == 4 * 3 and saved["val_sequences"] == 4  # 13 frames: 3 windows
    for name in ("copy_last", "warp_last"):
        key = f"val_{name}_mean_mIoU_occ3d"
        assert saved[f"{key}_ci_low"] <= saved[key] <= saved[f"{key}_ci_high"]
    # the street moves with the ego: the warp by the true motion beats copying
    assert saved["val_warp_last_minus_copy_last_mean_mIoU_occ3d_ci_low"] > 0
    assert "| val | warp_last |" in capsys.readouterr().out
