"""Shared test setup for chapter 1."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one CPU thread, then restore the setting.

    These tensors are tiny, and on the shared 2-core machine two threads fighting other
    processes for the cores measured 10-20x slower than one thread alone.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
