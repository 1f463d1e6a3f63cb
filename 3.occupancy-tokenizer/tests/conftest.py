"""Shared test setup for chapter 3."""

from worldmodels.testing import one_thread  # noqa: F401  (autouse: importing turns it on)
