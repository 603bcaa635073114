"""A first study file for this host (``tuner init``): a built-in workload or a command, with
the knobs that matter for its runtime and that this machine can apply, each on ``auto``
(derived from the host) and commented with what it does and the values it takes here. The
text is checked by fitting it to the host before it is returned: what ``tuner init`` writes
validates here."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from tuner.errors import SpecError, TunerError
from tuner.host import Host
from tuner.knobs import KnobContext, Target, catalogue
from tuner.knobs.base import Runtime
from tuner.space.search_space import fit_to
from tuner.spec import parse_text
from tuner.spec.builtin_workloads import BUILTINS

#: The knobs worth tuning first for each kind of runtime, in the order the file lists them:
#: the thread pools (the 1.77x-11x of the published cases), then binding and memory
#: placement, then the allocator.
FIRST_KNOBS = {
    "tensorflow": ("intra_op", "inter_op", "OMP_NUM_THREADS", "KMP_BLOCKTIME", "KMP_AFFINITY",
                   "physcpubind", "membind", "allocator"),
    "torch": ("torch_threads", "torch_interop_threads", "omp_runtime", "KMP_BLOCKTIME",
              "physcpubind", "membind", "allocator"),
    "openmp": ("OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "KMP_BLOCKTIME",
               "physcpubind", "membind", "allocator"),
    "native": ("physcpubind", "membind", "allocator"),
}


class StarterError(TunerError):
    """The workload cannot be tuned here at all (its framework missing, ...)."""


@dataclass(frozen=True, kw_only=True)
class CommandStart:
    """What ``tuner init --command`` knows of a program."""

    argv: tuple[str, ...]
    #: ``{regex: ...}``, ``{json: KEY}`` or a preset's name (``protocol``).
    parser: dict[str, str] | str = "protocol"
    runtime: str = "native"
    metric: str = "throughput"
    direction: str = "maximize"


@dataclass(kw_only=True)
class Draft:
    """A study file being written: its lines, and the knobs left out with why."""

    name: str
    workload: list[str]
    knobs: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def builtin_study(workload: str, host: Host, *, name: str | None = None) -> str:
    """A study of built-in ``workload`` (small preset) for ``host``."""
    builtin = BUILTINS[workload]
    draft = Draft(name=name or f"{workload.replace('_', '-')}-small", workload=[
        *_comment(builtin.summary, indent=2),
        f"  builtin: {workload}",
        "  params: {preset: small}   # small: under a minute per trial; full: published sizes"])
    target = Target(builtin=builtin)
    _add_knobs(draft, host, target, FIRST_KNOBS[builtin.runtime])
    return _finished(draft, host, metric="throughput", direction="maximize")


def command_study(start: CommandStart, host: Host, *, name: str | None = None) -> str:
    """A study of the program ``start.argv`` for ``host``; ``{threads}`` in an argument
    becomes a knob over 1..the logical CPUs."""
    parser = _flow(start.parser)
    protocol = ("the program prints METRIC throughput=<number> lines (or one FINAL "
                "throughput=<number>); for other output write {regex: "
                "'...(?P<throughput>[0-9.]+)'} or {json: KEY}")
    draft = Draft(name=name or "my-program", workload=[
        f"  command: {_flow(list(start.argv))}",
        *(_comment(protocol, indent=2) if start.parser == "protocol" else []),
        f"  parser: {parser}",
        "  # what the program runs on (native, openmp, tensorflow, torch): decides which "
        "knobs apply",
        f"  runtime: {start.runtime}",
        "  timeout: 600   # seconds before a run counts as hung"])
    if any("{threads}" in arg for arg in start.argv):
        logical = host.topology.logical_cpus
        draft.knobs += ["  # fills {threads} in the command",
                        f"  threads: {{low: 1, high: {logical}}}"]
    target = Target(builtin=None, runtime=cast(Runtime, start.runtime))
    _add_knobs(draft, host, target, FIRST_KNOBS[start.runtime])
    return _finished(draft, host, metric=start.metric, direction=start.direction)


def _add_knobs(draft: Draft, host: Host, target: Target, names: Sequence[str]) -> None:
    ctx = KnobContext(host=host, target=target)
    knobs = catalogue()
    for name in names:
        knob = knobs[name]
        reason = knob.availability(ctx)
        if reason is None and knob.family == "openmp" and knob.note(ctx):
            reason = knob.note(ctx)  # inert here (a runtime without OpenMP)
        if reason is not None:
            draft.left_out.append(f"{name}: {reason}")
            continue
        draft.knobs += [*_comment(knob.summary, indent=2), f"  {name}: auto"]


def _finished(draft: Draft, host: Host, *, metric: str, direction: str) -> str:
    """The file's text, after dropping knobs the host rejects on ``auto`` (named in the
    header with the reason) until it fits."""
    while True:
        text = _render(draft, host, metric=metric, direction=direction)
        problems = _problems(text, host)
        knob_problems = [(path, why) for path, why in problems
                         if len(path) >= 2 and path[0] == "knobs"]
        if not problems:
            return text
        if not knob_problems:
            raise StarterError("; ".join(f"{'.'.join(p)}: {w}" for p, w in problems))
        before = len(draft.knobs)
        for path, why in knob_problems:
            draft.knobs = _without(draft.knobs, path[1])
            draft.left_out.append(f"{path[1]}: {why}")
        if len(draft.knobs) == before:  # a problem no knob line of ours answers for
            raise StarterError("; ".join(f"{'.'.join(p)}: {w}" for p, w in problems))


def _problems(text: str, host: Host) -> list[tuple[tuple[str, ...], str]]:
    """What fitting ``text`` to ``host`` finds wrong: (field path, message) pairs."""
    try:
        parse_text(text, source="tuner init", fit=fit_to(host))
    except SpecError as exc:
        return [(tuple(issue.field.split(".")), issue.message) for issue in exc.issues]
    return []


def _render(draft: Draft, host: Host, *, metric: str, direction: str) -> str:
    topo = host.topology
    lines = [
        *_comment(f"A first study, written by `tuner init` for this host: {topo.model}, "
                  f"{topo.physical_cores} cores, {len(topo.nodes)} NUMA node(s).", indent=0),
        f"# Check it: tuner validate FILE; run it: tuner tune FILE; then: tuner best "
        f"{draft.name}",
        "# `auto` domains are derived from the machine the study runs on; write a list "
        "([1, 2, 4]) or",
        "# {low: 1, high: 8} to choose them yourself. README: what each knob does.",
    ]
    if draft.left_out:
        lines.append("# Left out here:")
        for why, names in _grouped(draft.left_out).items():
            lines += _comment(f"{', '.join(names)}: {why}", indent=0, prefix="#   ")
    lines += [f"name: {draft.name}", "workload:", *draft.workload, "knobs:"]
    lines += draft.knobs or ["  {}"]
    lines += [
        f"objective: {{metric: {metric}, direction: {direction}}}",
        "budget: {n_trials: 20}       # trials of the search (baselines and confirmation "
        "come on top)",
        "noise: {runs: 3}             # repeats of the defaults that measure the noise floor",
        "confirm: {top: 2, rounds: 4} # interleaved rounds that confirm the best with an "
        "interval",
    ]
    return "\n".join(lines) + "\n"


def _comment(text: str, *, indent: int, prefix: str = "# ") -> list[str]:
    """``text`` as comment lines of at most 96 characters at ``indent``."""
    pad = " " * indent + prefix
    return textwrap.wrap(text, width=96, initial_indent=pad, subsequent_indent=pad)


def _grouped(left_out: list[str]) -> dict[str, list[str]]:
    """``NAME: why`` entries by reason, so knobs left out for one reason share a line."""
    groups: dict[str, list[str]] = {}
    for entry in left_out:
        name, _, why = entry.partition(": ")
        groups.setdefault(why, []).append(name)
    return groups


def _without(lines: list[str], knob: str) -> list[str]:
    """The knob lines without ``knob``'s entry and the comment just above it."""
    out: list[str] = []
    for line in lines:
        if line.startswith(f"  {knob}:"):
            while out and out[-1].lstrip().startswith("#"):
                out.pop()
            continue
        out.append(line)
    return out


def _flow(value: Any) -> str:
    """``value`` as YAML on one line (a plain scalar without the document end marker)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()
