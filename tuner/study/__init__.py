"""One study run, from opening the study to its confirmed answer: the baselines (the noise
floor), screening of knobs that may be inert, the sampler's search with pruning and
repeats, and the interleaved confirmation of the best candidates; progress events for
people watching.

May import: every room below it (``spec``, ``execution``, ``knobs``, ``space``, ``store``,
``results``) and the top-level modules."""

from tuner.study.measure import Measurer
from tuner.study.opening import make_sampler, open_study
from tuner.study.progress import Progress
from tuner.study.pruning import NoisePruner, make_pruner
from tuner.study.run import TuneResult, tune
from tuner.study.sampler import BaselineAwareSampler

__all__ = [
    "BaselineAwareSampler",
    "Measurer",
    "NoisePruner",
    "Progress",
    "TuneResult",
    "make_pruner",
    "make_sampler",
    "open_study",
    "tune",
]
