"""Bad inputs end in one clear error that names the key or the file: one test per group.

config values     every RunConfig range, checked when the config is built
checkpoint files  every file of a checkpoint, damaged the ways a crash, a hand edit or a
                  copy from another run damage it, then --resume
data files        recordings, manifests and archives with damage inside them
"""

import json
import shutil
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from worldmodels.checkpoint import CheckpointError
from worldmodels.config import ConfigError, RunConfig, parse_config
from worldmodels.data import atari
from worldmodels.data.real_formats import load_occ3d_labels, save_occ3d_labels
from worldmodels.tests.test_trainer import fit


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)


@pytest.mark.parametrize(
    "arg",
    [
        *("--batch_size=0", "--log_every=0", "--keep_checkpoints=0", "--keep_checkpoints=-1"),
        *("--steps=-5", "--eval_every=-1", "--checkpoint_every=-1", "--warmup_steps=-1"),
        *("--num_workers=-1", "--weight_decay=-0.1", "--grad_clip=-1", "--min_lr_ratio=2"),
        *("--min_lr_ratio=-0.1", "--lr=0", "--lr=nan", "--beta1=1", "--beta2=-0.5"),
        *("--dtype=float8", "--device=gpu"),
    ],
)
def test_config_values(arg):
    key, value = arg[2:].split("=")
    with pytest.raises(ConfigError, match=rf"RunConfig\.{key}=.*{value.lstrip('-')}.*expected"):
        parse_config({"debug": Config}, [arg])


# ----------------------------------------------------------------------- checkpoint files


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 10-step run (checkpoint step_000010), copied afresh for every case."""
    root = tmp_path_factory.mktemp("pristine")
    fit(root, steps=10)
    return root / "run"


def write(name, data):
    def change(step_dir):
        file = step_dir / name
        if isinstance(data, bytes):
            file.write_bytes(data)
        else:
            file.write_text(json.dumps(data))

    return change


def edit_optimizer(edit):
    def change(step_dir):
        saved = torch.load(step_dir / "optimizer.pt", weights_only=True)
        edit(saved)
        torch.save(saved, step_dir / "optimizer.pt")

    return change


def other_models_optimizer(saved):
    model = nn.Sequential(nn.Linear(8, 3), nn.GELU(), nn.Linear(3, 1))  # same layout, sizes
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.ndim >= 2]},
         {"params": [p for p in model.parameters() if p.ndim < 2]}]
    )  # fmt: skip
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    saved["optimizer"] = optimizer.state_dict()


def other_models_weights(step_dir):
    save_file(nn.Linear(3, 3).state_dict(), step_dir / "model.safetensors")


def no_rng(saved):
    del saved["rng"], saved["rng_ranks"]


def step_beyond_the_run(step_dir):
    """A checkpoint at step 1000 of a run of 20 steps: it must not silently do nothing."""
    write("state.json", {"step": 1000})(step_dir)
    step_dir.rename(step_dir.with_name("step_001000"))
    write("latest.json", {"step": 1000, "path": "step_001000"})(step_dir.parent)


def truncate(name):
    def change(step_dir):
        file = step_dir / name
        file.write_bytes(file.read_bytes()[:100])

    return change


@pytest.mark.parametrize(
    ("change", "file", "message"),
    [
        (write("state.json", []), "state.json", 'integer "step"'),
        (write("state.json", {}), "state.json", 'integer "step"'),
        (write("state.json", {"step": "10"}), "state.json", 'integer "step"'),
        (write("state.json", {"step": -10}), "state.json", ">= 0"),
        (write("state.json", {"step": 9}), "state.json", "says step 9, but its folder"),
        (step_beyond_the_run, "step_001000/state.json", "beyond steps=20"),
        (write("state.json", b"{not json"), "state.json", "not valid JSON"),
        (write("config.json", b"\xff\xfe"), "config.json", "not valid JSON"),
        (write("config.json", []), "config.json", "expected an object"),
        (edit_optimizer(no_rng), "optimizer.pt", "no RNG state"),
        (edit_optimizer(lambda saved: saved.pop("optimizer")), "optimizer.pt", "no optimizer"),
        (edit_optimizer(other_models_optimizer), "optimizer.pt", "another model.*'exp_avg'"),
        (write("optimizer.pt", b"garbage"), "optimizer.pt", "corrupt"),
        (truncate("optimizer.pt"), "optimizer.pt", "corrupt"),
        (truncate("model.safetensors"), "model.safetensors", "corrupt"),
        (other_models_weights, "model.safetensors", "does not fit this model"),
        (lambda d: write("latest.json", [])(d.parent), "latest.json", "corrupt"),
        (lambda d: write("latest.json", b"{")(d.parent), "latest.json", "not valid JSON"),
    ],
)
def test_checkpoint_files(finished_run, tmp_path, change, file, message):
    shutil.copytree(finished_run, tmp_path / "run")
    change(tmp_path / "run" / "checkpoints" / "step_000010")
    with pytest.raises((CheckpointError, ConfigError), match=rf"{file}.*{message}"):
        fit(tmp_path, steps=20, resume=True)


# ----------------------------------------------------------------------------- data files

TINY = atari.AtariConfig(
    games=("Breakout",), heldout_game=None, train_episodes=1, val_episodes=1, max_steps=8
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari")
    atari.ensure_recorded(TINY, root, progress=False)
    return root


def manifest_without(*path):
    def change(folder):
        manifest = json.loads((folder / "manifest.json").read_text())
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return "manifest.json"

    return change


def zeroed_shard(folder):
    shard = sorted(folder.glob("*.npz"))[0]
    shard.write_bytes(bytes(len(shard.read_bytes())))  # the right length, all zeros
    return shard.name


def occ3d_member_damaged(folder):
    path = folder / "labels.npz"
    shape = (8, 8, 4)
    save_occ3d_labels(path, np.zeros(shape, np.uint8), np.ones(shape, bool), np.ones(shape, bool))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("mask_camera.npy")
    start = info.header_offset + 30 + len(info.filename) + 8  # inside its compressed data
    data[start : start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    return "labels.npz.*member 'mask_camera'"


@pytest.mark.parametrize(
    "change",
    [
        manifest_without("game_names"),
        manifest_without("shards", 0, "sha256"),
        manifest_without("shards", 0, "file"),
        zeroed_shard,
        occ3d_member_damaged,
    ],
)
def test_data_files(recording, tmp_path, change):
    folder = tmp_path / TINY.name
    shutil.copytree(recording / TINY.name, folder)
    named = change(folder)
    with pytest.raises(ValueError, match=named):
        if "labels" in named:
            load_occ3d_labels(folder / "labels.npz", grid=None)
        else:
            atari.AtariClips("train", 2, TINY, tmp_path, progress=False)
