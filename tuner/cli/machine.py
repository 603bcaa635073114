"""Subcommands about this machine: ``doctor``, ``restore`` and ``runtime``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from tuner.host import probe_host
    from tuner.settings import get_settings
    from tuner.space.host_report import host_report

    report = host_report(probe_host(), get_settings())
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print("\n".join(doctor_lines(report)))
    return 0


def doctor_lines(report: dict[str, Any]) -> list[str]:
    """``tuner doctor``'s text: the report of ``tuner.space.host_report``."""
    cpu, tools = report["cpu"], report["tools"]
    lines = [f"CPU: {cpu['model']}",
             f"  sockets {cpu['sockets']}, NUMA nodes {cpu['numa_nodes']}, physical cores "
             f"{cpu['physical_cores']}, logical CPUs {cpu['logical_cpus']} "
             f"({cpu['threads_per_core']} per core); usable CPUs {cpu['usable_cpus']}"]
    lines += [f"  node {node}: CPUs {cpus}" for node, cpus in cpu["nodes"].items()]
    lines.append(f"numactl: {tools['numactl'] or 'missing'}; "
                 f"taskset: {tools['taskset'] or 'missing'}")
    lines.append("fingerprint: " + ", ".join(f"{k}={v}"
                                             for k, v in report["fingerprint"].items()))
    runtimes = report["runtimes"]
    lines.append(f"runtimes in {runtimes['directory']}: "
                 f"{', '.join(runtimes['names']) or 'none'} (`tuner runtime list`)")
    lines.append("built-in workloads in tuner's Python:")
    for name, row in report["builtin_workloads"].items():
        state = "available" if row["available"] else f"unavailable: {row['reason']}"
        lines.append(f"  {name:<22} {row['framework'] or 'no framework':<38} {state}")
    for label, rows in report["knobs"].items():
        lines.append(f"knobs for {label}:")
        for name, row in rows.items():
            state = "available" if row["available"] else f"unavailable: {row['reason']}"
            note = f" (note: {row['note']})" if row["note"] else ""
            lines.append(f"  {name:<22} {state}{note}")
    system = report["system_knobs"]
    lines.append(f"system knobs (change the whole machine for a trial, journaled in "
                 f"{system['state_dir']}; need root here and the admin token on the service; "
                 f"TUNER_SYSTEM_KNOBS={system['policy']}):")
    lines += [f"  {name:<28} {row['current']:<14} {row['state']}"
              for name, row in system["knobs"].items()]
    return lines


def cmd_restore(args: argparse.Namespace) -> int:
    """Put back what a tuner that stopped without restoring left changed."""
    from tuner.execution.system_backend import restore_on_demand
    from tuner.settings import get_settings

    done, message = restore_on_demand(get_settings())
    print(message if done else f"tuner: {message}", file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


def cmd_runtime(args: argparse.Namespace) -> int:
    """``tuner runtime create|list|show|remove``: the named Python runtimes of this machine
    (``workload.python: NAME``)."""
    import json

    from tuner.execution import runtimes
    from tuner.settings import get_settings

    where = get_settings().runtimes_dir
    if args.action == "create":
        print(f"creating runtime {args.name} in {where / args.name}", file=sys.stderr)
        data = runtimes.create(args.name, runtimes_dir=where, requirements=args.requirements,
                               packages=tuple(args.package or ()), base_python=args.python)
        print(f"runtime {args.name}: {_runtime_line(data.get('probe') or {})}")
    elif args.action == "list":
        found = runtimes.names(where)
        if not found:
            print(f"no runtimes in {where} (`tuner runtime create NAME` makes one)")
        for name in found:
            data = runtimes.read_fingerprint(where, name)
            print(f"{name:<20} {data.get('python')}  {_runtime_line(data.get('probe') or {})}")
    elif args.action == "show":
        print(json.dumps(runtimes.read_fingerprint(where, args.name), indent=2, sort_keys=True))
    else:
        runtimes.remove(args.name, runtimes_dir=where)
        print(f"removed runtime {args.name} from {where}")
    return 0


def _runtime_line(probe: dict[str, object]) -> str:
    """Python, frameworks (with builds) and OpenMP libraries of a runtime's probe."""
    parts = [f"python {probe.get('python')}"]
    if probe.get("tensorflow"):
        parts.append(f"tensorflow {probe['tensorflow']} (oneDNN threading "
                     f"{probe.get('onednn_threading', 'unknown')})")
    if probe.get("torch"):
        parts.append(f"torch {probe['torch']} ({probe.get('torch_parallel_backend', '?')})")
    if probe.get("numpy"):
        parts.append(f"numpy {probe['numpy']}")
    libraries = probe.get("libraries")
    parts.append("libraries " + (", ".join(map(str, libraries))
                                 if isinstance(libraries, list) and libraries else "none"))
    return "; ".join(parts)


def _runtime_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runtime", help="named Python runtimes for built-in workloads "
                                       "(workload.python: NAME)")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a venv NAME, install its packages, "
                                               "probe and fingerprint it")
    create.add_argument("name")
    create.add_argument("--requirements", type=Path, help="a pip requirements file")
    create.add_argument("--package", action="append", metavar="SPEC",
                        help="a package to install, e.g. intel-tensorflow==2.14.0 "
                             "(repeatable)")
    create.add_argument("--python", default=sys.executable,
                        help="the base interpreter of the venv (default: tuner's)")
    actions.add_parser("list", help="the runtimes, their Python, frameworks and OpenMP")
    for action, text in (("show", "a runtime's fingerprint (JSON)"),
                         ("remove", "delete a runtime")):
        actions.add_parser(action, help=text).add_argument("name")
    p.set_defaults(func=cmd_runtime)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``doctor``, ``restore`` and ``runtime``."""
    p = sub.add_parser("doctor", help="host topology, fingerprint, the built-in workloads "
                                      "and knobs this machine can run, and why not")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("restore", help="put back the system settings a tuner that was "
                                       "killed mid-trial left changed (its journal)")
    p.set_defaults(func=cmd_restore)
    _runtime_parser(sub)
