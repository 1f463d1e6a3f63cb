"""Reading the stored driving data, and every chapter package built on it, imports no
highway-env: a GPU machine with only torch (gpu_check) must load them. Generating does."""

import subprocess
import sys

import pytest

BLOCKED = """
import sys
sys.modules["highway_env"] = None  # `import highway_env` now raises ImportError
import worldmodels.data.driving as driving
from worldmodels.data.driving import DrivingSequences, SHARD_KEYS, ensure_dataset
import occupancy_tokenizer, lidar_tokenizer, world_model
import lidar_tokenizer.data, world_model.windows
print("ok")
try:
    driving.generate_sequence
except ImportError:
    print("generating needs highway-env")
"""


def test_the_data_readers_and_chapters_import_without_highway_env():
    out = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", *"generating needs highway-env".split()]


def test_generating_still_finds_it():
    pytest.importorskip("highway_env")
    from worldmodels.data.driving import benchmark, generate_sequence

    assert callable(generate_sequence) and callable(benchmark)
