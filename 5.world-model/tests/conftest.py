"""Shared test setup for chapter 5: one CPU thread, and tiny driving sequences made in
milliseconds (a straight street the ego drives along, cars overtaking it), for the
benchmark's plumbing; the benchmark's numbers come from the driving world's data."""

from types import SimpleNamespace

import pytest
import torch
from world_model.synthetic import pose_at
from world_model.synthetic import street_sequence as synthetic_street
from world_model.windows import ForecastWindows

from worldmodels.data.driving import GridConfig
from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)

STREET_GRID = GridConfig(size=(16, 8, 4), voxel_xy=1.0, z_range=(-1.0, 3.0))


def street_sequence(seed: int, frames: int = 13, grid: GridConfig = STREET_GRID):
    """(occupancy (T, X, Y, Z) uint8, visibility (T, X, Y, Z) bool, poses (T, 4, 4)): the ego
    drives 1 m a frame along a street of buildings; a car drives 2 m a frame beside it."""
    return synthetic_street(seed, frames, grid)


def street_windows(sequences: int = 4, frames: int = 13, first_seed: int = 0, split="val"):
    arrays = [street_sequence(first_seed + k, frames) for k in range(sequences)]
    return ForecastWindows(
        occupancy=[a[0] for a in arrays],
        visibility=[a[1] for a in arrays],
        poses=[a[2] for a in arrays],
        grid=STREET_GRID,
        names=[f"street-{first_seed + k:05d}" for k in range(sequences)],
        split=split,
    )


@pytest.fixture
def streets():
    """streets.windows(...) (`street_windows`), streets.sequence(...) (`street_sequence`),
    streets.grid, streets.pose_at: the tiny street world, for the tests of this folder."""
    return SimpleNamespace(windows=street_windows, sequence=street_sequence, grid=STREET_GRID,
                           pose_at=pose_at)  # fmt: skip


def tiny_multiscale_tokenizer(seed: int = 0):
    """(chapter 3's SceneTokenizer with a multi-scale quantizer on the 8 x 8 x 4 synthetic grid,
    scales (1, 2, 4), 16 codes of 4 dims, untrained; its chapter-3 run Config)."""
    from occupancy_tokenizer.build import build_model
    from occupancy_tokenizer.config import Config, MultiScaleSection

    config = Config(kind="multiscale", multiscale=MultiScaleSection(
        grid=(8, 8, 4), channels=8, channel_mults=(1, 2), latent_dim=4, codebook_size=16,
        scales=(1, 2, 4)))  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config).eval(), config


def tiny_scene_tokenizer(seed: int = 0):
    """(chapter 3's single-scale SceneTokenizer (kind scene, FSQ levels (4, 4): 16 codes) on
    the 8 x 8 x 4 synthetic grid, a 4 x 4 token grid, untrained; its chapter-3 run Config)."""
    from occupancy_tokenizer.build import build_model
    from occupancy_tokenizer.config import Config, SceneSection

    config = Config(kind="scene", scene=SceneSection(
        grid=(8, 8, 4), channels=8, channel_mults=(1, 2), latent_dim=4, quantizer="fsq",
        fsq_levels=(4, 4)))  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config).eval(), config


def tiny_fourd_tokenizer(seed: int = 0):
    """(chapter 3's 4D tokenizer on the 8 x 8 x 4 synthetic grid: clips of 8 frames, temporal
    compression 2 and spatial 2 -> a 4 x 4 x 4 latent, VQ 16 codes of 4 dims, untrained, its
    codebook spread to N(0, 1) so that codes differ; its chapter-3 run Config)."""
    from occupancy_tokenizer.build import build_model
    from occupancy_tokenizer.config import Config, FourDSection

    config = Config(kind="4d", fourd=FourDSection(
        grid=(8, 8, 4), frames=8, embed_dim=4, channels=8, temporal_compression=2,
        spatial_downsample=2, latent_dim=4, codebook_size=16))  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config).eval()
        with torch.no_grad():
            model.quantizer.codebook.weight.normal_()
        return model, config


def export_tokenizer(folder, model, config):
    """`model` and its chapter-3 `config` written as chapter 3 exports a tokenizer
    (model.safetensors + config.json), loadable with `load_tokenizer(folder)`."""
    from safetensors.torch import save_file

    from worldmodels.checkpoint import write_json_atomic
    from worldmodels.config import to_dict

    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, folder / "model.safetensors")
    write_json_atomic(folder / "config.json", to_dict(config))
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    """A folder holding a tiny untrained multi-scale tokenizer as chapter 3 exports one
    (model.safetensors + config.json), loadable with `load_tokenizer(folder)`."""
    return export_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"),
                            *tiny_multiscale_tokenizer())  # fmt: skip


@pytest.fixture(scope="session")
def tiny_scene_tokenizer_dir(tmp_path_factory):
    """A folder holding a tiny untrained single-scale scene tokenizer (the AR baseline's)."""
    return export_tokenizer(tmp_path_factory.mktemp("tiny-scene-tokenizer"),
                            *tiny_scene_tokenizer())  # fmt: skip


@pytest.fixture(scope="session")
def tiny_fourd_tokenizer_dir(tmp_path_factory):
    """A folder holding a tiny untrained 4D tokenizer (the DiT's), as chapter 3 exports one."""
    return export_tokenizer(tmp_path_factory.mktemp("tiny-fourd-tokenizer"),
                            *tiny_fourd_tokenizer())  # fmt: skip


@pytest.fixture(scope="session")
def make_fourd_tokenizer():
    """`make_fourd_tokenizer(seed=0)` -> a tiny untrained 4D tokenizer (its model only)."""
    return lambda seed=0: tiny_fourd_tokenizer(seed)[0]


@pytest.fixture(scope="session")
def make_tokenizer():
    """`make_tokenizer(seed=0)` -> a tiny untrained multi-scale tokenizer (its model only)."""
    return lambda seed=0: tiny_multiscale_tokenizer(seed)[0]


@pytest.fixture(scope="session")
def make_scene_tokenizer():
    """`make_scene_tokenizer(seed=0)` -> a tiny untrained single-scale scene tokenizer."""
    return lambda seed=0: tiny_scene_tokenizer(seed)[0]
