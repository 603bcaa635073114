"""Running a study file to its end, as tests and benchmarks do: load it, fit its first
study to a host, run a ``StudyRun`` with tuner's settings."""

from __future__ import annotations

from pathlib import Path

from tuner.execution.runtimes import fingerprint_of
from tuner.host import Host
from tuner.settings import get_settings
from tuner.space import build_space, fit_to
from tuner.spec import load_file
from tuner.study.run import Collaborators, RunLimits, RunResult, StudyRun, StudyTarget


def run_study_file(path: Path | str, host: Host, storage_url: str, *,
                   limits: RunLimits | None = None) -> RunResult:
    """The first study of the file at ``path``, fitted to ``host`` and run on
    ``storage_url`` (the study file's text stored with it)."""
    loaded = load_file(path, fit=fit_to(host))
    settings = get_settings()
    spec = loaded.studies[0]
    target = StudyTarget(space=build_space(spec, host), storage_url=storage_url,
                         fingerprint=fingerprint_of(host, spec.workload.python,
                                                    settings=settings),
                         spec_text=loaded.text)
    return StudyRun(target, collaborators=Collaborators(settings=settings),
                    limits=limits).run()
