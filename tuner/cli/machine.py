"""Subcommands about this machine: ``doctor``, ``restore`` and ``runtime``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.host import Host


def cmd_doctor(args: argparse.Namespace) -> int:
    from tuner.host import fingerprint, format_cpu_list, probe_host
    from tuner.knobs import KnobContext, Target, catalogue
    from tuner.settings import get_settings
    from tuner.spec.builtin_workloads import BUILTINS

    host = probe_host()
    topo = host.topology
    fp = fingerprint(host, cache_dir=get_settings().cache_dir)
    print(f"CPU: {topo.model}")
    print(f"  sockets {len(topo.sockets)}, NUMA nodes {len(topo.nodes)}, physical cores "
          f"{topo.physical_cores}, logical CPUs {topo.logical_cpus} "
          f"({topo.threads_per_core} per core); usable CPUs {format_cpu_list(topo.allowed)}")
    for node in topo.nodes:
        print(f"  node {node}: CPUs {format_cpu_list(topo.cpus_of_node(node))}")
    print(f"numactl: {host.tools.numactl or 'missing'}; taskset: {host.tools.taskset or 'missing'}")
    print("fingerprint: " + ", ".join(f"{k}={v}" for k, v in fp.to_dict().items()))
    from tuner.execution.runtimes import names

    where = get_settings().runtimes_dir
    print(f"runtimes in {where}: {', '.join(names(where)) or 'none'} (`tuner runtime list`)")
    targets = (("built-in workloads (runtime tensorflow)", Target(builtin=BUILTINS["resnet"])),
               ("built-in workloads (runtime torch)", Target(builtin=BUILTINS["torch_resnet"])),
               ("commands, runtime: tensorflow", Target(builtin=None, runtime="tensorflow")),
               ("commands, runtime: torch", Target(builtin=None, runtime="torch")),
               ("commands, runtime: openmp", Target(builtin=None, runtime="openmp")),
               ("commands, runtime: native (the default)",
                Target(builtin=None, runtime="native")))
    for label, target in targets:
        print(f"knobs for {label}:")
        ctx = KnobContext(host=host, target=target)
        for name, knob in catalogue().items():
            if knob.family == "system":
                continue  # listed once, below
            reason = knob.availability(ctx)
            note = knob.note(ctx)
            state = "available" if reason is None else f"unavailable: {reason}"
            print(f"  {name:<22} {state}" + (f" (note: {note})" if note and not reason else ""))
    _doctor_system(host)
    return 0


def _doctor_system(host: Host) -> None:
    from tuner.knobs import KnobContext, Target, system_knobs
    from tuner.knobs.system import system_status
    from tuner.settings import get_settings

    settings = get_settings()
    print(f"system knobs (change the whole machine for a trial, journaled in "
          f"{settings.state_dir}; need root here and the admin token on the service; "
          f"TUNER_SYSTEM_KNOBS={settings.system_knobs}):")
    ctx = KnobContext(host=host, target=Target(builtin=None))
    for name, current, state in system_status(ctx, system_knobs()):
        print(f"  {name:<28} {current:<14} {state}")


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
    p = sub.add_parser("doctor", help="host topology, fingerprint and what each knob can do")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("restore", help="put back the system settings a tuner that was "
                                       "killed mid-trial left changed (its journal)")
    p.set_defaults(func=cmd_restore)
    _runtime_parser(sub)
