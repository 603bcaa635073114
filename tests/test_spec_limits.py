"""Bounded study files: encodings, empty files, YAML limits (aliases, size, depth), caps on
lists and numbers, linear-time checks. Each refusal names its line; ordinary files still
load (anchors and aliases within the limits included)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tuner.errors import SpecError, SpecIssue
from tuner.spec import decode_text, limits, load_file, parse_text

STUDY = "name: s\nworkload: {builtin: resnet}\n"


def issue_of(text: str | bytes, source: str = "f.yaml") -> SpecIssue:
    """The first issue of a file that must not validate."""
    with pytest.raises(SpecError) as caught:
        parse_text(decode_text(text if isinstance(text, bytes) else text.encode(), source),
                   source)
    return caught.value.issues[0]


@pytest.mark.parametrize("raw,line,words", [
    (STUDY.encode("utf-16"), 1, "UTF-16 (it starts with a byte-order mark)"),
    (STUDY.encode("utf-16-le"), 1, "little-endian UTF-16 without a byte-order mark"),
    (STUDY.encode("utf-16-be"), 1, "big-endian UTF-16 without a byte-order mark"),
    (STUDY.encode("utf-32"), 1, "UTF-32"),
    ((STUDY + "description: café\n").encode("latin-1"), 3, "byte 0xE9 is not UTF-8 (Latin-1"),
    (STUDY.encode() + b"description: a\x00b\n", 3, "a NUL byte"),
    (STUDY.encode() + b"description: \x07\n", 3, "control character U+0007"),
    (b"", 1, "holds no study (it is empty or only comments)"),
    (b"# a comment\n\n   \n# another\n", 1, "holds no study"),
    (b"\n\nresnet\n", 3, "got a single value ('resnet')"),
    (b"[]\n", 1, "expected at least one study"),
])
def test_unusable_text_is_named_with_its_line(raw: bytes, line: int, words: str) -> None:
    issue = issue_of(raw)
    assert issue.line == line and words in issue.message, issue


def test_a_utf8_byte_order_mark_is_fine() -> None:
    assert parse_text(decode_text(b"\xef\xbb\xbf" + STUDY.encode(), "f"), "f").studies


def test_load_file_reads_no_further_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(STUDY.encode() + b"#" * limits.MAX_TEXT_CHARS)
    with pytest.raises(SpecError, match="a study file may hold at most"):
        load_file(path)


@pytest.mark.parametrize("text,line,words", [
    ("a: &a [1, *a]\n", 1, "recursive alias: *a refers to the collection that contains it"),
    ("x: &x {y: &y [1, {z: *x}]}\n", 1, "recursive alias: *x"),
    ("d: " + "[" * 40 + "]" * 40 + "\n", 1, f"nested more than {limits.MAX_DEPTH} levels"),
    # shallow in the text, deep once expanded
    ("a: &a " + "[" * 10 + "1" + "]" * 10 + "\nb: &b " + "[" * 10 + "*a" + "]" * 10
     + "\nc: " + "[" * 11 + "*b" + "]" * 11 + "\n", 3, "nested more than"),
    ("".join(f"k{i}: &k{i} 1\n" for i in range(201)) + "all: ["
     + ", ".join(f"*k{i}" for i in range(201)) + "]\n", 202,
     f"more than {limits.MAX_ALIASES} aliases"),
    ("v: " + "1" * 41 + "\n", 1, "a number of 41 characters"),
    (STUDY + "knobs:\n  1: [1, 2]\n", 4, "expected a name (a string) as key, got a number"),
    (STUDY + "knobs:\n  ? [a]\n  : 1\n", 4, "got a list"),
    (STUDY + "knobs: {~: 3}\n", 3, "got null"),
])
def test_yaml_limits_and_odd_keys_are_refused_at_their_line(
        text: str, line: int, words: str) -> None:
    issue = issue_of(text)
    assert issue.line == line and words in issue.message, issue


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    start = time.process_time()
    issue = issue_of(STUDY + "\n".join(lines) + "\n")
    assert time.process_time() - start < 0.5
    assert "alias bomb" in issue.message and issue.line is not None and issue.line <= 9


def test_anchors_and_aliases_within_the_limits_work() -> None:
    text = ("studies:\n"
            "- name: a\n  workload: &w {builtin: resnet, params: {preset: small}}\n"
            "  knobs: &k {intra_op: [1, 2], KMP_BLOCKTIME: [0, 1]}\n"
            "- name: b\n  workload: *w\n  knobs: *k\n")
    a, b = parse_text(text, "f").studies
    assert a.knobs == b.knobs and b.workload.params == {"preset": "small"}


def test_duplicate_choices_are_found_in_linear_time() -> None:
    many = ", ".join(str(i) for i in range(limits.MAX_CHOICES - 1)) + ", 7"
    start = time.process_time()
    issue = issue_of(STUDY + f"knobs:\n  KMP_BLOCKTIME: [{many}]\n")
    assert time.process_time() - start < 1.0
    assert issue.field == "knobs.KMP_BLOCKTIME.choices" and "choice 7 is listed twice" in \
        issue.message


def test_choices_of_different_types_are_different() -> None:
    study = parse_text(STUDY + "knobs:\n  x: {env: X, choices: [1, 1.0, true, '1']}\n",
                       "f").studies[0]
    assert study.knobs["x"].choices == [1, 1.0, True, "1"]


def test_too_many_choices_is_one_clear_error() -> None:
    many = ", ".join(str(i) for i in range(15_000))
    issue = issue_of(STUDY + f"knobs:\n  KMP_BLOCKTIME: [{many}]\n")
    assert issue.line == 4 and f"at most {limits.MAX_CHOICES} items" in issue.message


@pytest.mark.parametrize("extra,field,words", [
    ("workload: {builtin: resnet, params: {seconds: .nan}}", "workload.params.seconds",
     "finite number"),
    ("workload: {builtin: resnet, params: {seconds: -.inf}}", "workload.params.seconds",
     "finite number"),
    ("workload: {builtin: resnet, params: {intervals: 10000000000000}}",
     "workload.params.intervals", "less than or equal to 1000000000000"),
    ("workload: {builtin: resnet, params: {seed: 4294967296}}", "workload.params.seed",
     "an integer in 0..4294967295"),
    ("workload: {builtin: resnet}\nknobs: {intra_op: {low: 1, high: 99999999999999}}",
     "knobs.intra_op.high", "less than or equal"),
    ("workload: {builtin: resnet}\nknobs: {intra_op: {low: 1, high: 1000000000000}}",
     "knobs.intra_op", "a range of 1000000000000 values (1..1000000000000 by 1); at most"),
    ("workload: {builtin: resnet}\nbudget: {timeout: .inf}", "budget.timeout", "finite"),
    ("workload: {builtin: resnet}\nbudget: {timeout: 400d}", "budget.timeout", "duration"),
    ("workload: {builtin: resnet}\nsampler: {seed: -1}", "sampler.seed",
     "greater than or equal to 0"),
    ("workload: {builtin: resnet}\nsampler: {seed: 4294967296}", "sampler.seed",
     "less than or equal to 4294967295"),
    ("workload: {builtin: resnet}\nobjective: {metric: latency}", "objective.metric",
     "the built-in resnet reports throughput"),
    ("workload: {builtin: resnet}\nknobs: {intra_op: [1, 2]}\nscreening: [intra_op, nope]",
     "screening[1]", "unknown knob 'nope'"),
    ("workload: {builtin: resnet}\nbaselines: [vendor, vendor]", "baselines[1]",
     "baseline 'vendor' is listed twice"),
    ("workload: {builtin: resnet}\ndescription: " + "x" * (limits.MAX_STRING + 1),
     "description", f"at most {limits.MAX_STRING} characters"),
])
def test_absurd_values_are_refused_with_file_line_and_field(
        extra: str, field: str, words: str) -> None:
    issue = issue_of("name: s\n" + extra + "\n", "study.yaml")
    assert issue.field == field and words in issue.message, issue
    assert issue.line is not None and str(issue).startswith(f"study.yaml:{issue.line}: {field}")


def test_largest_seed_range_and_metric_of_replay_are_accepted() -> None:
    parse_text("name: s\nworkload: {builtin: resnet}\nknobs:\n"
               f"  KMP_BLOCKTIME: {{low: 0, high: {limits.MAX_RANGE - 1}}}\n"
               "  MALLOC: {env: M, low: 0, high: 999900000, step: 100000}\n", "f")
    parse_text("name: s\nworkload: {builtin: resnet, params: {seed: 4294967295}}\n"
               "sampler: {seed: 4294967295}\n", "f")
    parse_text("name: r\nworkload: {builtin: replay}\nobjective: {metric: p99}\n", "f")


def test_issues_are_capped() -> None:
    text = STUDY + "".join(f"unknown{i}: 1\n" for i in range(500))
    with pytest.raises(SpecError) as caught:
        parse_text(text, "f")
    issues = caught.value.issues
    assert len(issues) == limits.MAX_ISSUES + 1
    assert issues[-1].message.startswith(f"and {500 - limits.MAX_ISSUES} more issues; "
                                         "checking stopped")
