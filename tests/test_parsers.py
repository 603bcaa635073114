from __future__ import annotations

from tuner.execution.parsers import (
    JsonLineParser,
    ProtocolParser,
    RegexParser,
    make_parser,
    metric_names,
)
from tuner.spec.models import ParserSpec

PROTOCOL_OUTPUT = """\
SETTINGS {"inter_op": 1, "intra_op": 2, "affinity": [0, 1]}
METRIC throughput=258.8615 unit=images/s interval=1 items=264 seconds=1.0199
noise line with throughput=1 in it
METRIC throughput=273.2515 unit=images/s interval=2 items=280 seconds=1.0247
FINAL throughput=265.0 unit=images/s items=544 seconds=2.04
----------------------------------------------------------------
total images/sec: 265.00
"""


def feed(parser, text):  # type: ignore[no-untyped-def]
    for line in text.splitlines():
        parser.feed(line)
    return parser


def test_protocol_intervals_final_and_settings() -> None:
    parser = feed(ProtocolParser(), PROTOCOL_OUTPUT)
    assert parser.intervals("throughput") == [258.8615, 273.2515]
    assert parser.result() == {"throughput": 265.0}
    assert parser.reported == {"inter_op": 1, "intra_op": 2, "affinity": [0, 1]}
    assert [r.interval for r in parser.readings if not r.final] == [1, 2]


def test_protocol_without_final_uses_the_last_interval_and_numbers_them() -> None:
    parser = feed(ProtocolParser(), "METRIC latency=3.5\nMETRIC latency=3.1\n")
    assert parser.result() == {"latency": 3.1}
    assert [r.interval for r in parser.readings] == [1, 2]


def test_protocol_ignores_non_finite_and_malformed() -> None:
    parser = feed(ProtocolParser(), "METRIC throughput=nan\nMETRIC throughput=inf\n"
                                    "METRIC throughput=abc\nFINAL\nSETTINGS {broken\n")
    assert parser.result() == {} and parser.reported is None


def test_tf_cnn_benchmarks_preset_reads_real_style_output() -> None:
    text = ("Step\tImg/sec\ttotal_loss\n"
            "1\timages/sec: 101.2 +/- 0.0 (jitter = 0.0)\t7.1\n"
            "10\timages/sec: 105.9 +/- 1.1 (jitter = 2.5)\t7.0\n"
            "----------------------------------------------------------------\n"
            "total images/sec: 104.77\n")
    parser = feed(make_parser(ParserSpec(preset="tf_cnn_benchmarks")), text)
    assert parser.intervals("throughput") == [101.2, 105.9]
    assert parser.result() == {"throughput": 104.77}


def test_wavenet_and_gnmt_presets() -> None:
    wavenet = feed(make_parser(ParserSpec(preset="wavenet")),
                   "Average Throughput of whole run: Samples / sec: 1234.5\n")
    assert wavenet.result() == {"throughput": 1234.5}
    gnmt = feed(make_parser(ParserSpec(preset="gnmt")),
                "Overall Throughput : 12.75 sentences per sec.\n")
    assert gnmt.result() == {"throughput": 12.75}


def test_regex_with_several_named_groups() -> None:
    parser = feed(RegexParser(r"ips=(?P<ips>[0-9.]+) p99=(?P<p99>[0-9.]+)"),
                  "ips=10 p99=5.5\nips=12 p99=5.0\nother\n")
    assert parser.result() == {"ips": 12.0, "p99": 5.0}
    assert parser.intervals("ips") == [10.0, 12.0]


def test_json_lines_with_a_dotted_key() -> None:
    parser = feed(JsonLineParser("stats.throughput"),
                  '{"stats": {"throughput": 5}}\nnot json\n{"stats": {"throughput": "x"}}\n'
                  '{"stats": {"throughput": 7.5}}\n[1, 2]\n')
    assert parser.result() == {"stats.throughput": 7.5}
    assert parser.intervals("stats.throughput") == [5.0, 7.5]


def test_metric_names() -> None:
    assert metric_names(ParserSpec(regex=r"(?P<a>\d+) (?P<b>\d+)")) == {"a", "b"}
    assert metric_names(ParserSpec(json_key="x.y")) == {"x.y"}
    assert metric_names(ParserSpec(preset="gnmt")) == {"throughput"}
    assert metric_names(ParserSpec(preset="protocol")) is None
