"""What a study found, read back from the study database: the ``Summary`` (the answer,
speedups with intervals, noise floor, screening, importance, failures, failed baselines),
its renderings for people and scripts, every run as CSV/JSON rows (``export``), and the
answer published into the database for generic Optuna tools.

May import: the top-level modules, ``spec``, ``execution``, ``knobs``, ``space``, ``store``."""

from tuner.results.answer import Answer, Confirmed, confirmed_entries
from tuner.results.baselines import FailedBaseline, failed_baselines
from tuner.results.comparison import Comparison, ComparisonError, compare
from tuner.results.export import export, run_rows
from tuner.results.publish import publish
from tuner.results.render import (
    best_as,
    fmt_value,
    format_ratio,
    format_speedup,
    render,
    write_best,
)
from tuner.results.summary import (
    MALFORMED,
    Summary,
    TrialView,
    importance,
    summarize,
    why_unreadable,
)

__all__ = [
    "export",
    "run_rows",
    "MALFORMED",
    "Answer",
    "Comparison",
    "ComparisonError",
    "Confirmed",
    "FailedBaseline",
    "Summary",
    "TrialView",
    "best_as",
    "compare",
    "confirmed_entries",
    "failed_baselines",
    "fmt_value",
    "format_ratio",
    "format_speedup",
    "importance",
    "publish",
    "render",
    "summarize",
    "why_unreadable",
    "write_best",
]
