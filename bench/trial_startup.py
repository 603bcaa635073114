"""Where a trial's seconds go, before (a fresh process per trial) and after (a fork of a
pre-imported server per trial), for each built-in workload's small preset.

    python bench/trial_startup.py [--runs 5] [--workloads resnet wavenet gnmt]

Each run is timed by tuner's runner from launch to exit; the workload's TIMING line splits
it into interpreter start, imports, model build, first step (tracing), warm-up and timed
measurement; what is left is process exit and the launcher's own cost. Fresh and forked runs
alternate (fresh, fork, fresh, fork, ...); the table quotes medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from tuner.execution.backend import ProcessBackend
from tuner.execution.forkserver import ForkServerBackend
from tuner.host import probe_host
from tuner.settings import get_settings
from tuner.space.search_space import build_space
from tuner.spec.models import StudySpec
from tuner.study.measure import Measurer

PHASES = ("interpreter", "imports", "build", "first_step", "warmup", "measure")
WORKLOADS = {"resnet": {"mode": "infer"}, "wavenet": {}, "parallel_wavenet": {},
             "gnmt": {}}


def split(outcome: Any) -> dict[str, float]:
    timing = dict(outcome.timing or {})
    parts = {p: float(timing.get(p, 0.0)) for p in PHASES}
    parts["exit and launcher"] = max(0.0, outcome.seconds - sum(parts.values()))
    parts["total"] = outcome.seconds
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    args = parser.parse_args(argv)
    host = probe_host()
    print("| workload | launcher | " + " | ".join(PHASES) + " | exit and launcher | total | "
          "measurement share |")
    print("|---|---|" + "---|" * (len(PHASES) + 3))
    for name in args.workloads:
        spec = StudySpec.model_validate({
            "name": f"startup-{name}",
            "workload": {"builtin": name, "params": {"preset": "small", **WORKLOADS[name]}},
            "pruner": {"name": "none", "stable_error": 0.0}})
        space = build_space(spec, host)
        fork = ForkServerBackend()
        measurers = {"fresh": Measurer(space, get_settings(), ProcessBackend()),
                     "fork": Measurer(space, get_settings(), fork)}
        measurers["fork"].run({})  # start the server (once per study, not per trial)
        rows: dict[str, list[dict[str, float]]] = {"fresh": [], "fork": []}
        for _ in range(args.runs):
            for label, measurer in measurers.items():
                outcome = measurer.run({})
                if outcome.ok:
                    rows[label].append(split(outcome))
                else:
                    print(f"{name} {label}: {outcome.reason}", file=sys.stderr)
        fork.close()
        for label, runs in rows.items():
            if not runs:
                continue
            median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            share = median["measure"] / median["total"]
            cells = " | ".join(f"{median[p]:.2f}" for p in PHASES)
            print(f"| {name} | {label} | {cells} | {median['exit and launcher']:.2f} | "
                  f"{median['total']:.2f} | {share:.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
