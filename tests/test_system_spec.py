"""Study files with system knobs: the study's `system.allow`, values a system file cannot
take, the disruptive SMT knob, and where the knobs sit in a space (checked against a
generic host, where every knob is available: no root needed)."""

from __future__ import annotations

import pytest

from tuner.errors import SpecError
from tuner.host import generic_host
from tuner.space import fit_to
from tuner.spec import parse_text

BASE = """name: s
workload: {{builtin: resnet, params: {{preset: small}}}}
knobs:
  intra_op: [1, 2]
{knobs}
{extra}
"""


def validate(knobs: str, extra: str = "") -> str:
    try:
        parse_text(BASE.format(knobs=knobs, extra=extra), "s.yaml", fit=fit_to(generic_host()))
    except SpecError as exc:
        return str(exc)
    return ""


def test_system_allow_bounds_the_system_knobs_a_study_names() -> None:
    ok = validate("  thp_enabled: [always, never]\n  numa_balancing: [0, 1]",
                  "system: {allow: [thp_enabled, numa_balancing]}")
    assert ok == ""
    refused = validate("  thp_enabled: [always, never]\n  numa_balancing: [0, 1]",
                       "system: {allow: [thp_enabled]}")
    assert ("s.yaml:6: knobs.numa_balancing: a system knob this study does not allow: "
            "system.allow lists thp_enabled; add numa_balancing there or remove it") in refused
    unknown = validate("  thp_enabled: [always, never]",
                       "system: {allow: [thp_enabled, intra_op, thp_enable]}")
    assert "system.allow[1]: 'intra_op' is not a system knob" in unknown
    assert "system.allow[2]: 'thp_enable' is not a system knob" in unknown


@pytest.mark.parametrize(("knobs", "message"), [
    ("  cpu_governor: ['performance\\nx']", "is not a value a system file takes"),
    ("  cpu_governor: ['$(reboot)']", "is not a value a system file takes"),
    ("  thp_enabled: [always, sometimes]", "expected one of ['always', 'madvise', 'never']"),
    ("  swappiness: [ten]", "expected a non-negative integer, got 'ten'"),
    ("  swappiness: {low: 0, high: 100000}", "at most"),
    ("  smt: auto", "smt changes the machine's shape; it is never tuned on auto"),
])
def test_values_a_system_file_cannot_take_are_refused_at_their_line(knobs: str,
                                                                    message: str) -> None:
    problem = validate(knobs)
    assert "s.yaml:5: knobs." in problem and message in problem, problem


def test_a_numeric_range_becomes_the_files_words() -> None:
    loaded = parse_text(BASE.format(knobs="  swappiness: {low: 0, high: 100, step: 50}",
                                    extra=""), "s.yaml", fit=fit_to(generic_host()))
    assert loaded.studies[0].knobs["swappiness"].low == 0
    from tuner.space.search_space import build_space

    space = build_space(loaded.studies[0], generic_host())
    dim = next(d for d in space.dims if d.name == "swappiness")
    assert set(dim.domain.values()) >= {"0", "50", "100"}
    assert list(space.system_knobs) == ["swappiness"]


def test_the_example_system_study_runs_without_thp_where_tuner_is_not_root(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """studies.yaml's resnet-system-small names thp_enabled on auto: a user without root
    gets the study with the thread knobs alone and a note saying why."""
    import os
    from pathlib import Path

    from tuner.host import probe_host
    from tuner.space.search_space import build_space
    from tuner.spec import load_file

    real_access = os.access
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path).startswith(
        ("/sys", "/proc")) else real_access(path, mode, **kw))
    host = probe_host()
    root = Path(__file__).resolve().parent.parent
    loaded = load_file(root / "studies.yaml", fit=fit_to(host), only={"resnet-system-small"})
    spec = next(s for s in loaded.studies if s.name == "resnet-system-small")
    space = build_space(spec, host)
    assert "thp_enabled" not in space.names and "intra_op" in space.names
    why = "needs root" if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists() else ""
    assert any(f"knobs.thp_enabled (auto) left out: {why}" in n for n in space.notes)
