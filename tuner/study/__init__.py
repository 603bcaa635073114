"""One study run, from opening the study to its confirmed answer: the baselines (the noise
floor), screening of knobs that may be inert, the sampler's search with pruning and
repeats, and the interleaved confirmation of the best candidates; progress events for
people watching.

May import: every room below it (``spec``, ``execution``, ``knobs``, ``space``, ``store``,
``results``) and the top-level modules."""

from tuner.study.comparison_race import PairBench, PairOptions
from tuner.study.events import RunEvents, Silent
from tuner.study.measure import Measurer
from tuner.study.opening import open_study
from tuner.study.progress import Progress
from tuner.study.pruning import NoisePruner, make_pruner
from tuner.study.run import Collaborators, RunLimits, RunResult, StudyRun, StudyTarget
from tuner.study.sampler import BaselineAwareSampler
from tuner.study.samplers import make_sampler
from tuner.study.trial import TrialFailed, TrialObjective

__all__ = [
    "BaselineAwareSampler",
    "Collaborators",
    "Measurer",
    "NoisePruner",
    "PairBench",
    "PairOptions",
    "Progress",
    "RunEvents",
    "RunLimits",
    "RunResult",
    "Silent",
    "StudyRun",
    "StudyTarget",
    "TrialFailed",
    "TrialObjective",
    "make_pruner",
    "make_sampler",
    "open_study",
]
