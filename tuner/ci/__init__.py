"""The regression gate after upgrades (``tuner ci``): what changed in the environment, the
deployed settings measured again against the baselines in interleaved rounds until each
comparison is decided against a threshold, a re-tune warm-started from the previous study
when the environment changed or the settings lost their edge, the verdict (ok, improved,
regressed, inconclusive) with its exit status, and the history of every ci run.

May import: every room below it (``spec``, ``execution``, ``knobs``, ``space``, ``store``,
``results``, ``study``) and the top-level modules."""

from tuner.ci.environment import Change, changes, environment_of
from tuner.ci.previous import Previous, PreviousError
from tuner.ci.run import CiOptions, CiRun, CiTarget
from tuner.ci.verdict import ERROR_EXIT, EXIT_CODES, Comparison, exit_code, standing, verdict_of

__all__ = [
    "ERROR_EXIT",
    "EXIT_CODES",
    "Change",
    "CiOptions",
    "CiRun",
    "CiTarget",
    "Comparison",
    "Previous",
    "PreviousError",
    "changes",
    "environment_of",
    "exit_code",
    "standing",
    "verdict_of",
]
