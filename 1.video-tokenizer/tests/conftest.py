"""Shared test setup for chapter 1: each test on one CPU thread (worldmodels.testing)."""

from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)
