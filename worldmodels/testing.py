"""Test helpers the chapters' tests share: one CPU thread per test, and loading a script.

A chapter's `tests/conftest.py` turns the fixture on for its folder by importing it:

    from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)

and its script tests load `train.py`, `validate.py`, ... as modules with `load_script`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one CPU thread, then restore the setting (tiny tensors on a shared
    2-core machine: a second spinning thread only slows them down)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_script(chapter: Path, name: str) -> ModuleType:
    """The chapter's script `name`.py (e.g. "train") imported as module `ch<N>_<name>`, N being
    the number the chapter folder starts with ("3.occupancy-tokenizer" -> ch3_train)."""
    number = chapter.name.split(".", 1)[0]
    spec = importlib.util.spec_from_file_location(f"ch{number}_{name}", chapter / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module
