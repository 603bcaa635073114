"""The contract every parser keeps, parametrised over every preset in ``PARSER_PRESETS`` and
over a JSON-line and a regex parser: it reads the metric from the lines of its format, a
FINAL line (where the format has one) overrides the interval readings, garbage, binary,
non-finite and over-long lines are ignored without an error, and what it keeps is bounded:
one value per metric it can name, every value finite."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tuner.execution import PARSER_PRESETS, make_parser, metric_names
from tuner.spec.models import ParserSpec


@dataclass(frozen=True)
class Format:
    """How a program of one parser's kind prints interval ``i`` and its final value."""

    spec: ParserSpec
    metric: str
    interval: Callable[[str, int], str]
    final: Callable[[str], str] | None = None


FORMATS: dict[str, Format] = {
    "protocol": Format(ParserSpec(preset="protocol"), "throughput",
                       lambda v, i: f"METRIC throughput={v} unit=items/s interval={i}",
                       lambda v: f"FINAL throughput={v} unit=items/s"),
    "tf_cnn_benchmarks": Format(ParserSpec(preset="tf_cnn_benchmarks"), "throughput",
                                lambda v, i: f"{i * 10}\timages/sec: {v} +/- 0.1 (jitter = 0.2)",
                                lambda v: f"total images/sec: {v}"),
    "wavenet": Format(ParserSpec(preset="wavenet"), "throughput",
                      lambda v, i: f"step {i}, loss 1.5, samples/sec: {v}",
                      lambda v: f"Average Throughput of whole run: Samples / sec: {v}"),
    "gnmt": Format(ParserSpec(preset="gnmt"), "throughput",
                   lambda v, i: f"batch {i} of 100, sentences/sec: {v}",
                   lambda v: f"Overall Throughput : {v} sentences per sec."),
    "json": Format(ParserSpec(json="stats.throughput"), "stats.throughput",
                   lambda v, i: f'{{"step": {i}, "stats": {{"throughput": {v}}}}}'),
    "regex": Format(ParserSpec(regex=r"ips=(?P<ips>[0-9.eE+-]+)"), "ips",
                    lambda v, i: f"step {i}: ips={v} loss=0.5"),
}
WITH_FINAL = [name for name, f in FORMATS.items() if f.final is not None]

GARBAGE = [
    "", "   ", "\x00\x01\x02", "\ufffd\ufffd binary \x7f\x00 ###", "METRIC", "FINAL",
    "METRIC =", "SETTINGS", "SETTINGS {", "TIMING [1]", "{", "{}", "[1, 2]", "null",
    '{"stats": [1]}', '{"stats": {"throughput": true}}', "images/sec:", "samples/sec:",
    "x" * 100_000, "step 1 " + "y" * 100_000, "\t" * 5000 + "9" * 5000,
]


def feed(fmt: Format, lines: list[str]):  # type: ignore[no-untyped-def]
    parser = make_parser(fmt.spec)
    for line in lines:
        parser.feed(line)
    return parser


def test_every_preset_has_a_format() -> None:
    assert set(PARSER_PRESETS) <= set(FORMATS)


@pytest.mark.parametrize("name", FORMATS)
def test_reads_the_metric_and_its_intervals(name: str) -> None:
    fmt = FORMATS[name]
    parser = feed(fmt, [fmt.interval(v, i) for i, v in enumerate(("10.5", "12", "11.25"), 1)])
    assert parser.result() == {fmt.metric: 11.25}
    assert parser.intervals(fmt.metric) == [10.5, 12.0, 11.25]
    names = metric_names(fmt.spec)
    assert names is None or fmt.metric in names


@pytest.mark.parametrize("name", WITH_FINAL)
def test_a_final_line_overrides_the_interval_readings(name: str) -> None:
    fmt = FORMATS[name]
    assert fmt.final is not None
    parser = feed(fmt, [fmt.interval("10", 1), fmt.final("99.5"), fmt.interval("12", 2)])
    assert parser.result() == {fmt.metric: 99.5}
    assert parser.intervals(fmt.metric) == [10.0, 12.0]


@pytest.mark.parametrize("name", FORMATS)
def test_garbage_binary_non_finite_and_long_lines_are_ignored(name: str) -> None:
    fmt = FORMATS[name]
    bad_values = ["nan", "inf", "-inf", "1e999", "NaN", "Infinity", "abc", ""]
    noise = GARBAGE + [fmt.interval(v, 7) for v in bad_values]
    if fmt.final is not None:
        noise += [fmt.final(v) for v in bad_values]
    lines = [*noise, fmt.interval("5", 1), *noise, fmt.interval("6", 2), *noise]
    parser = feed(fmt, lines)
    assert parser.result() == {fmt.metric: 6.0}
    assert parser.intervals(fmt.metric) == [5.0, 6.0]


@pytest.mark.parametrize("name", FORMATS)
def test_what_a_parser_keeps_is_bounded(name: str) -> None:
    fmt = FORMATS[name]
    count = 500
    lines = [fmt.interval(f"{100 + i % 7}.5", i) for i in range(1, count + 1)]
    if fmt.final is not None:
        lines.append(fmt.final("103.5"))
    parser = feed(fmt, lines)
    result = parser.result()
    assert set(result) == {fmt.metric}
    names = metric_names(fmt.spec)
    assert names is None or set(result) <= names
    assert all(math.isfinite(v) for v in result.values())
    values = parser.intervals(fmt.metric)
    assert len(values) == count and all(math.isfinite(v) for v in values)
