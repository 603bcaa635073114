"""Study files: every bad fixture is rejected with its file, line and field; good ones load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tuner.errors import SpecError
from tuner.host import Host
from tuner.space import fit_to
from tuner.space.search_space import build_space
from tuner.spec import load_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures" / "studies"
BAD = sorted((FIXTURES / "bad").glob("*.yaml"))
GOOD = sorted((FIXTURES / "good").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<line>\d+|-) \| (?P<field>[^|]*) \| (?P<text>.+)$")


def test_there_are_enough_bad_fixtures() -> None:
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_fixture_is_rejected_with_line_and_field(path: Path, xeon: Host) -> None:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name} must start with '# expect: LINE | FIELD | TEXT'"
    with pytest.raises(SpecError) as caught:
        load_file(path, fit=fit_to(xeon))
    issues = caught.value.issues
    expected_line = None if match["line"] == "-" else int(match["line"])
    wanted = [i for i in issues if i.field == match["field"].strip()
              and i.line == expected_line and match["text"].strip() in i.message]
    assert wanted, f"no issue at line {expected_line}, field {match['field'].strip()!r} " \
                   f"saying {match['text'].strip()!r}; got:\n{caught.value}"
    rendered = str(wanted[0])
    assert rendered.startswith(f"{path}:{expected_line}:" if expected_line else str(path))


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_fixture_loads_and_fits_a_xeon(path: Path, xeon: Host) -> None:
    loaded = load_file(path, fit=fit_to(xeon))
    for study in loaded.studies:
        space = build_space(study, xeon)
        assert space.size >= 1


def test_example_studies_file_is_valid_here(local_host: Host) -> None:
    root = Path(__file__).resolve().parent.parent
    loaded = load_file(root / "studies.yaml", fit=fit_to(local_host))
    assert "resnet-small" in [s.name for s in loaded.studies]


def test_all_issues_are_reported_at_once(xeon: Host) -> None:
    text = ("name: many\nworkload: {builtin: resnet}\nknobs:\n  intra_op: {low: 0, high: 4}\n"
            "  bogus: 1\n  physcpubind: 99\n")
    with pytest.raises(SpecError) as caught:
        parse_text(text, "inline.yaml", fit=fit_to(xeon))
    fields = {i.field for i in caught.value.issues}
    assert fields == {"knobs.intra_op.low", "knobs.bogus", "knobs.physcpubind.value"}
    lines = {i.field: i.line for i in caught.value.issues}
    assert lines == {"knobs.intra_op.low": 4, "knobs.bogus": 5, "knobs.physcpubind.value": 6}


def test_structure_only_validation_needs_no_host() -> None:
    loaded = parse_text("name: x\nworkload: {builtin: resnet}\nknobs: {physcpubind: 500}\n",
                        "x.yaml")
    assert loaded.studies[0].knobs["physcpubind"].value == 500


def test_shorthands_and_durations() -> None:
    loaded = parse_text(
        "name: s\nworkload: {builtin: resnet}\nknobs:\n  intra_op: auto\n  inter_op: [1, 2]\n"
        "  KMP_BLOCKTIME: 1\nbudget: {timeout: 1h30m}\n", "s.yaml")
    study = loaded.studies[0]
    assert study.knobs["intra_op"].kind == "auto"
    assert study.knobs["inter_op"].choices == [1, 2]
    assert study.knobs["KMP_BLOCKTIME"].value == 1
    assert study.budget.timeout == 5400.0
    assert study.budget.n_trials is None


def test_default_budget_and_baselines() -> None:
    study = parse_text("name: d\nworkload: {builtin: resnet}\n", "d.yaml").studies[0]
    assert study.budget.n_trials == 20
    assert study.baselines == ["defaults", "vendor"]
    assert study.sampler.name == "tpe" and study.sampler.multivariate


def test_unreadable_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the study file"):
        load_file(tmp_path / "missing.yaml")
