"""The settings a ci run recommends, written as ``tuner tune`` writes a study's best (the
same export lines: ``tuner.results.render.env_lines``): ``DIR/NAME/best.env`` (export
lines), ``best.json`` (knobs, speedups with intervals, the environment they were measured
in: what the next ``tuner ci --previous`` reads) and ``best.sh`` (the launch line)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.results.render import env_lines
from tuner.space.search_space import SearchSpace


def write_settings(space: SearchSpace, knobs: Mapping[str, Any], *, directory: Path,
                   facts: Mapping[str, Any]) -> Path:
    """Write the three files for ``knobs`` under ``directory/<base study name>``; ``facts``
    (label, speedups, environment, verdict, ...) go into best.json beside the knobs."""
    launch = space.launch(knobs)
    out = directory / str(facts.get("study") or space.spec.name)
    out.mkdir(parents=True, exist_ok=True)
    head = (f"# {facts.get('study')}: settings recommended by tuner ci run {facts.get('ci_run')} "
            f"({facts.get('verdict')}): {facts.get('label')}")
    (out / "best.env").write_text("\n".join([head, *env_lines(launch, knobs)]) + "\n")
    data = {**facts, "knobs": dict(knobs), "metric": space.spec.objective.metric,
            "launch": launch.to_dict(), "shell": launch.shell_line()}
    (out / "best.json").write_text(json.dumps(data, indent=2, sort_keys=True, default=str)
                                   + "\n")
    (out / "best.sh").write_text("#!/bin/sh\n" + launch.shell_line() + "\n")
    (out / "best.sh").chmod(0o755)
    return out
