"""Shared test setup for chapter 4."""

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
