"""Presets, derived grids, and held-out data that shares no sequence with training."""

import dataclasses
import hashlib

import pytest
import torch
from occupancy_tokenizer.build import build_datasets, build_model
from occupancy_tokenizer.config import PRESETS, complete_config, model_config, parse_run
from occupancy_tokenizer.data import SyntheticOccupancy

from worldmodels.config import ConfigError
from worldmodels.data.driving.config import PRESETS as DRIVING
from worldmodels.data.driving.store import dataset_plan


def test_presets_follow_their_data_and_the_papers():
    debug = complete_config(PRESETS["debug"]())
    assert debug.scene.grid == tuple(DRIVING["debug"].grid.size) and debug.run.device == "auto"
    paper = PRESETS["paper"]()
    for kind in ("scene", "4d", "multiscale"):
        config = complete_config(dataclasses.replace(paper, kind=kind))
        assert model_config(config).grid == (200, 200, 16), kind
    assert paper.scene.latent_grid == (50, 50)  # OccWorld's 50 x 50 latent
    assert paper.multiscale.scales[-1] == 50
    assert paper.fourd.token_shape == (4, 25, 25)  # OccSora: 32 frames -> 4 x 25 x 25
    assert PRESETS["prototype"]().run.compile and PRESETS["prototype"]().scene.latent_grid == (
        50,
        50,
    )
    params = sum(p.numel() for p in build_model(complete_config(paper)).parameters())
    assert 12e6 < params < 16e6  # OccWorld's tokenizer: about 14 M


def test_the_grid_is_the_datas_and_refused_as_an_override():
    config, preset = parse_run(["--data.preset=synthetic", "--kind=multiscale"])
    assert preset == "debug" and config.multiscale.grid == (32, 32, 8)
    assert config.multiscale.scales == (1, 2, 4, 8, 16)  # fitted to the 16 x 16 latent
    with pytest.raises(ConfigError, match="grid is set from"):
        parse_run(["--scene.grid=32,32,8"])
    with pytest.raises(ConfigError, match="kind"):
        parse_run(["--kind=video"])
    with pytest.raises(ConfigError, match="preset"):
        parse_run(["--data.preset=nuscenes"])


def test_driving_splits_share_no_sequence():
    """train, val and heldout of every driving preset are different seeds (and the held-out
    scenario appears in heldout only)."""
    for name, preset in DRIVING.items():
        plan = dataset_plan(preset)
        seeds = {
            s: {(p.scenario, p.seed) for p in plan if p.split == s}
            for s in ("train", "val", "heldout")
        }
        assert seeds["train"] and seeds["val"] and seeds["heldout"], name
        assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["heldout"], name
        assert not {p.seed for p in plan if p.split == "train"} & {
            p.seed for p in plan if p.split != "train"
        }
        assert all(p.scenario == preset.data.heldout_scenario for p in plan if p.split == "heldout")
        assert all(p.scenario != preset.data.heldout_scenario for p in plan if p.split != "heldout")


def _hashes(dataset) -> set[str]:
    return {
        hashlib.sha1(dataset[i]["occupancy"].numpy().tobytes()).hexdigest()
        for i in range(len(dataset))
    }


def test_synthetic_splits_share_no_frame_and_items_name_their_sequence():
    splits = {s: SyntheticOccupancy(s) for s in ("train", "val", "heldout")}
    assert not _hashes(splits["train"]) & (_hashes(splits["val"]) | _hashes(splits["heldout"]))
    item = splits["val"][9]
    assert item["occupancy"].shape == (32, 32, 8) and item["sequence"] == 1  # 8 frames a sequence
    clips = SyntheticOccupancy("train", frames=4, stride=2)
    assert len(clips) == 6 * 3 and clips[0]["occupancy"].shape == (4, 32, 32, 8)


def test_datasets_by_kind():
    config, _ = parse_run(["--data.preset=synthetic", "--kind=4d", "--fourd.frames=4"])
    data = build_datasets(complete_config(config))
    assert data["train"][0]["occupancy"].shape == (4, 32, 32, 8)
    assert len(data["val"]) == 3 * 2  # held-out clips do not overlap: stride = clip length
    assert data["val"][0]["occupancy"].dtype == torch.uint8
