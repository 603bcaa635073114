"""The time-to-answer benchmark's results file: rows written compactly read back the same,
and ``--merge`` still reads a file written before the rows were lists."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench" / "time_to_answer.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("time_to_answer_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def row(seed: int, correct: bool) -> dict[str, object]:
    seconds = round(800.0 + seed / 7, 3)  # run_task's rows are to the millisecond
    return {"surface": "gnmt-small", "strategy": "tpe", "seed": seed, "budget": 26,
            "seconds": seconds, "correct": correct, "false_win": False,
            "to_answer": seconds if correct else None, "runs": 90 + seed,
            "cpu_seconds": 0.123456}


def test_rows_read_back_as_written(tmp_path: Path) -> None:
    module = bench()
    rows = [row(seed, correct=seed % 3 != 0) for seed in range(6)]
    out = tmp_path / "time_to_answer"
    module.report(rows, out, 12.34)
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["results"]["gnmt-small"]["tpe"]["correct"] == 4 / 6
    back = module.load_rows(out.with_suffix(".json"))
    assert back == rows
    assert [r["to_answer"] is None for r in back] == [s % 3 == 0 for s in range(6)]
    # the table from the rows read back is the table from the rows written
    again = tmp_path / "again"
    assert module.report(back, again, 1.0) == module.report(rows, tmp_path / "first", 1.0)


def test_rows_of_the_earlier_format_are_read(tmp_path: Path) -> None:
    module = bench()
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"results": {}, "rows": [row(0, True)], "seconds": 1.0}))
    assert module.load_rows(path) == [row(0, True)]
