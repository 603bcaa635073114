"""Argument templates: a command's ``{knob}`` placeholders take the knob's value in place
(``--name=value``, ``-xVALUE``, options before a positional argument), ``unset`` and
``false`` leave the argument out, ``{{``/``}}`` are literal braces; what a launch shows is
what the program received (a real process, ``tests/programs/show_args.py``). Placeholders,
knobs and defaults are validated with file, line and field."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import PROGRAMS, PYTHON
from tuner.errors import SpecError
from tuner.execution.launch import LaunchBuilder
from tuner.execution.runner import RunRequest, Status, run
from tuner.host import Host, generic_host
from tuner.knobs.custom import TemplateKnob
from tuner.space import SearchSpace, build_space, fit_to
from tuner.spec import parse_text
from tuner.spec.consistency import template_fields

SHOW_ARGS = str(PROGRAMS / "show_args.py")
ENV = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def host() -> Host:
    return generic_host()


def study_text(command: list[str], knobs: list[str], runtime: str = "native") -> str:
    """A study file with one argument of ``command`` and one knob entry per line (line 6
    holds ``command[0]``; the knobs start two lines after the last argument)."""
    lines = ["name: templates", "workload:", "  parser: protocol", f"  runtime: {runtime}",
             "  command:"]
    lines += [f"    - {arg!r}" for arg in command]
    lines += ["knobs:"] + [f"  {knob}" for knob in knobs]
    return "\n".join(lines) + "\n"


def space_of(text: str, host: Host) -> SearchSpace:
    spec = parse_text(text, "study.yaml", fit=fit_to(host)).studies[0]
    return build_space(spec, host)


def received(space: SearchSpace, values: dict[str, Any]) -> list[str]:
    """What the program got, as it printed it, from a real run of the trial's launch."""
    launch = space.launch(values)
    outcome = run(RunRequest(launch=launch, metric="throughput", timeout=20.0, base_env=ENV))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.reported is not None
    argv: list[str] = outcome.reported["argv"]
    assert list(launch.argv[2:]) == argv  # what the launch shows is what the program got
    return argv


def issues(text: str, host: Host) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_text(text, "study.yaml", fit=fit_to(host))
    return [str(issue) for issue in caught.value.issues]


def test_values_reach_the_program_in_place(host: Host) -> None:
    space = space_of(study_text(
        [PYTHON, SHOW_ARGS, "--threads={threads}", "-mmt{mt}", "--mode", "{mode}",
         "input.txt"],
        ["threads: {low: 1, high: 8}", "mt: [2, 4]", "mode: [fast, slow]",
         "batch: {flag: --batch, choices: [16, 32]}"]), host)
    assert received(space, {"threads": 3, "mt": 4, "mode": "fast", "batch": 16}) == [
        "--threads=3", "-mmt4", "--mode", "fast", "input.txt", "--batch", "16"]
    launch = space.launch({"threads": 8, "mt": 2, "mode": "slow", "batch": 32})
    assert launch.shell_line().endswith(
        "--threads=8 -mmt2 --mode slow input.txt --batch 32")
    assert launch.to_dict()["argv"][2:5] == ["--threads=8", "-mmt2", "--mode"]
    assert isinstance(space.knobs["threads"], TemplateKnob)


def test_unset_and_false_leave_the_argument_out_and_braces_escape(host: Host) -> None:
    space = space_of(study_text(
        [PYTHON, SHOW_ARGS, "--t={t}", "--lit={{t}}", "{{}}", "--arena={arena}",
         "--fast{fast}"],
        ["t: [1, unset]", "arena: {env: MALLOC_ARENA_MAX, choices: [1, 2]}",
         "fast: [true, false]"]), host)
    assert received(space, {"t": "unset", "arena": 2, "fast": False}) == [
        "--lit={t}", "{}", "--arena=2"]
    launch = space.launch({"t": 1, "arena": 1, "fast": True})
    assert launch.argv[2:] == ("--t=1", "--lit={t}", "{}", "--arena=1", "--fast")
    assert launch.env["MALLOC_ARENA_MAX"] == "1"  # an env knob sets its variable too


def test_catalogue_and_flag_knobs_in_placeholders(host: Host) -> None:
    space = space_of(study_text(
        ["prog", "--omp={OMP_NUM_THREADS}", "--threads={threads}", "--batch={batch_size}"],
        ["OMP_NUM_THREADS: [1, 2]", "threads: {flag: --threads, low: 1, high: 4}",
         "batch_size: [16, 32]"], runtime="openmp"), host)
    launch = space.launch({"OMP_NUM_THREADS": 2, "threads": 3, "batch_size": 32})
    # the catalogue knob applies itself and fills its placeholder; the flag knob is not
    # appended; batch_size (a built-ins' flag) only fills its placeholder on a command
    assert launch.argv == ("prog", "--omp=2", "--threads=3", "--batch=32")
    assert launch.env["OMP_NUM_THREADS"] == "2"


def test_an_argument_whose_placeholder_has_no_value_is_left_out_with_a_note() -> None:
    builder = LaunchBuilder(argv=["prog", "--a={a}", "--b={b}", "x{{"], templated=True)
    builder.set_placeholder("a", "1")
    launch = builder.build(generic_host())
    assert launch.argv == ("prog", "--a=1", "x{")
    assert launch.notes == ("argument '--b={b}' left out: no value for {b}",)
    # a built-in's argument list is not a template
    assert LaunchBuilder(argv=["p", "{x}"]).build(generic_host()).argv == ("p", "{x}")


def test_the_defaults_and_a_default_in_the_domain(host: Host) -> None:
    space = space_of(study_text(
        ["prog", "--t={t}", "--u={u}"],
        ["t: {low: 1, high: 8, default: 4}", "u: {choices: [a, b]}",
         "v: {env: MALLOC_ARENA_MAX, choices: [1, 2], default: 2}"]), host)
    assert space.knobs["t"].default_value(space.ctx) == 4
    assert space.knobs["u"].default_value(space.ctx) == "unset"
    assert space.knobs["v"].default_value(space.ctx) == 2


@pytest.mark.parametrize(("argument", "why"), [
    ("{}", "placeholder {} names no knob"),
    ("{0}", "placeholder {0} names no knob"),
    ("{t!r}", "placeholder {t!r} has a conversion"),
    ("{t:>3}", "placeholder {t:>3} has a conversion or format spec"),
    ("{t.real}", "placeholder {t.real} reads an attribute or an index"),
    ("{t[0]}", "placeholder {t[0]} reads an attribute or an index"),
    ("--t={t", "unbalanced braces"),
    ("--t=t}", "unbalanced braces"),
])
def test_only_plain_placeholders(argument: str, why: str) -> None:
    with pytest.raises(ValueError, match="only plain|unbalanced") as caught:
        template_fields(argument)
    assert why in str(caught.value)
    assert template_fields("--{{x}}={t}-{u}") == ["t", "u"]


def test_validation_names_file_line_and_field(host: Host) -> None:
    text = study_text(
        ["prog", "--threads={thread}", "-x{t:>3}", "--fast={fast}", "--t={t}"],
        ["t: {low: 1, high: 4, default: 9}", "fast: [true, false]", "loose: [1, 2]",
         "OMP_NUM_THREADS: {low: 1, high: 2, default: 1}", "u: {env: X, choices: [a], default: b}"],
        runtime="openmp")
    found = issues(text, host)
    assert found[0].startswith("study.yaml:7: workload.command[1]: argument '--threads={thread}'"
                               ": placeholder {thread} names no knob of this study (its knobs: "
                               "OMP_NUM_THREADS, fast, loose, t, u)")
    assert found[1].startswith("study.yaml:8: workload.command[2]: argument '-x{t:>3}': "
                               "placeholder {t:>3} has a conversion or format spec")
    assert found[2].startswith("study.yaml:9: workload.command[3]: argument '--fast={fast}': "
                               "fast is a switch")
    assert found[3] == ("study.yaml:12: knobs.t.default: the default 9 is not a value of "
                        "the knob's domain 1..4")
    assert found[4].startswith("study.yaml:14: knobs.loose: unknown knob 'loose'")
    assert "placeholder" in found[4] and '"--loose={loose}"' in found[4]
    assert found[5].startswith("study.yaml:15: knobs.OMP_NUM_THREADS.default: "
                               "OMP_NUM_THREADS is a catalogue knob")
    assert found[6] == ("study.yaml:16: knobs.u.default: the default 'b' is not a value of "
                        "the knob's domain {a}")
    assert len(found) == 7
