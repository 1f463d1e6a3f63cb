"""Shared test setup for chapter 4."""

from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)
