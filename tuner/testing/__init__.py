"""Test support shared by the tests and the benchmarks: recorded surfaces and the replay
backend that draws from them.

May import: anything in ``tuner``; nothing in ``tuner`` imports it."""

from tuner.testing.fakes import InstantBackend
from tuner.testing.surfaces import ReplayBackend, Sample, Surface, replay

__all__ = ["InstantBackend", "ReplayBackend", "Sample", "Surface", "replay"]
