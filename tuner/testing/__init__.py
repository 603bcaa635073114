"""Test support shared by the tests and the benchmarks: recorded surfaces and the replay
backend that draws from them (surfaces.py), an instant fake backend (fakes.py), and every
backend mode with a supplier of ready backends for contract tests (backends.py), as
Optuna's ``testing`` package has its storage modes; study files built from data
(specs.py), a study file run to its end (studies.py), and fake root trees of a 2-socket
Xeon and a 2-socket EPYC for the system knobs (sysroots.py).

May import: anything in ``tuner``; nothing in ``tuner`` imports it."""

from tuner.testing.backends import (
    BACKEND_MODES,
    PROCESS_MODES,
    BackendSupplier,
    flat_surface,
    replay_launch,
)
from tuner.testing.fakes import InstantBackend
from tuner.testing.specs import study_spec, study_yaml
from tuner.testing.studies import run_study_file
from tuner.testing.surfaces import ReplayBackend, Sample, Surface, replay
from tuner.testing.sysroots import EPYC_7543, XEON_8280, Machine, Parts, epyc_2s, xeon_2s

__all__ = [
    "BACKEND_MODES",
    "PROCESS_MODES",
    "BackendSupplier",
    "EPYC_7543",
    "InstantBackend",
    "Machine",
    "Parts",
    "ReplayBackend",
    "Sample",
    "Surface",
    "XEON_8280",
    "epyc_2s",
    "flat_surface",
    "replay",
    "replay_launch",
    "run_study_file",
    "study_spec",
    "study_yaml",
    "xeon_2s",
]
