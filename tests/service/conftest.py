"""Fixtures of the service tests: the shared ones (a finished study in a database, real
``tuner serve`` processes) live in ``tests/conftest.py`` and ``tests/serving.py``."""

from __future__ import annotations

from tests.serving import FINISHED, TOKENS, free_port, run_finished_study

__all__ = ["FINISHED", "TOKENS", "free_port", "run_finished_study"]
