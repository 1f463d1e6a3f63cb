"""A dataset of driving sequences on disk: compressed shards with a manifest.

`ensure_dataset(preset)` makes every sequence of a preset once (resuming an interrupted run)
and returns the folder `<repo>/data/driving/<preset>/`:

    manifest.json                  settings, their fingerprint, one entry per sequence
    train/<scenario>-<seed>.npz    one shard per sequence (a zip of .npy arrays, see SHARD_KEYS)
    val/...  heldout/...

Shards are written to a temporary name and renamed, so a shard that exists is complete, and
their bytes depend only on (preset, scenario, seed): zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.data.driving.config import ENGINE_VERSION, Preset, get_preset
from worldmodels.data.driving.shards import SPLIT_SEED_BASE

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_ROOT = REPO_ROOT / "data" / "driving"


def write_shard(path: Path, arrays: dict) -> None:
    """Write arrays as a zip of .npy files (deflate), atomically and byte-reproducibly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())
    os.replace(tmp, path)


def read_shard(path: Path, keys=None) -> dict:
    """Arrays of a shard (all, or only `keys`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"driving shard {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in (keys or data.files)}


# ----------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class SequenceSpec:
    split: str
    scenario: str
    seed: int

    @property
    def file(self) -> str:
        return f"{self.split}/{self.scenario}-{self.seed:05d}.npz"


def dataset_plan(preset: Preset) -> list[SequenceSpec]:
    """Every sequence of a preset: train and val share scenarios (disjoint seeds); the held-out
    scenario only appears in "heldout"."""
    data = preset.data
    plan = []
    for split, per_scenario in (("train", data.train_per_scenario), ("val", data.val_per_scenario)):
        for scenario in data.scenarios:
            base = SPLIT_SEED_BASE[split]
            count = data.count(scenario, per_scenario)
            plan += [SequenceSpec(split, scenario, base + k) for k in range(count)]
    base = SPLIT_SEED_BASE["heldout"]
    plan += [
        SequenceSpec("heldout", data.heldout_scenario, base + k)
        for k in range(data.heldout_sequences)
    ]
    return plan


def dataset_root(preset: str | Preset, root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else DATA_ROOT / get_preset(preset).name


def _make_one(args) -> dict:
    spec, preset, folder = args
    path = Path(folder) / spec.file
    if not path.exists():  # highway-env is imported only here: reading needs none
        from worldmodels.data.driving.generate import generate_sequence

        write_shard(path, generate_sequence(spec.scenario, spec.seed, preset))
    meta = read_shard(path, ["attempt", "crashed", "box_count"])
    return {
        "file": spec.file,
        "split": spec.split,
        "scenario": spec.scenario,
        "seed": spec.seed,
        "frames": len(meta["box_count"]),
        "attempt": int(meta["attempt"]),
        "crashed": bool(meta["crashed"]),
    }


def _write_json(path: Path, content: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def ensure_dataset(
    preset: str | Preset = "debug",
    root: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Make the preset's dataset unless it is already complete; return its folder.

    An interrupted run resumes (finished shards are kept). A folder made with other settings
    raises ValueError rather than mixing two datasets. workers: processes (default: 2 or the
    CPU count if smaller)."""
    preset = get_preset(preset)
    folder = dataset_root(preset, root)
    manifest_path = folder / "manifest.json"
    settings = {
        "engine_version": ENGINE_VERSION,
        "fingerprint": preset.fingerprint(),
        "preset": preset.to_dict(),
    }
    if manifest_path.exists():
        _check_settings(manifest_path, settings)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    settings_path = folder / "settings.json"
    if settings_path.exists():
        _check_settings(settings_path, settings)
    else:
        _write_json(settings_path, settings)
    plan = dataset_plan(preset)
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = [(spec, preset, str(folder)) for spec in plan]
    bar = tqdm(total=len(plan), desc=f"driving/{preset.name}", unit="seq", disable=not progress)
    entries = []
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            for entry in pool.imap(_make_one, jobs):
                entries.append(entry)
                bar.update()
    else:
        for job in jobs:
            entries.append(_make_one(job))
            bar.update()
    bar.close()
    _write_json(manifest_path, {**settings, "sequences": entries})
    return folder


def _check_settings(path: Path, settings: dict) -> None:
    found = json.loads(path.read_text())
    if found.get("fingerprint") != settings["fingerprint"]:
        raise ValueError(
            f"{path} was made with other settings (fingerprint {found.get('fingerprint')}, "
            f"expected {settings['fingerprint']}); delete {path.parent} or pass another root"
        )


def load_manifest(folder: str | Path) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: make the dataset with ensure_dataset() or "
            "`uv run python -m worldmodels.data.driving --preset <name>`"
        )
    return json.loads(path.read_text())
