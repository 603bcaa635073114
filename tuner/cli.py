"""The ``tuner`` command. Errors of tuner's own (``TunerError``) are printed as one clear
message and a non-zero exit status: 2 for bad input, 1 for anything else, 130 when
interrupted (the study resumes where it stopped when the same command runs again)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.errors import SpecError, SpecIssue, TunerError

if TYPE_CHECKING:
    from tuner.host import Host


def _storage_for(args: argparse.Namespace) -> str:
    from tuner.settings import get_settings

    if getattr(args, "storage", None):
        return str(args.storage)
    if getattr(args, "file", None):
        from tuner.spec import load_file

        loaded = load_file(args.file)
        for study in loaded.studies:
            if study.name == args.name and study.storage:
                return study.storage
    return get_settings().default_storage


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid, 2 when one is not, 1 when tuner itself failed on one;
    whatever the input, the answer is lines naming the file, never a traceback."""
    from tuner.host import generic_host, probe_host

    host = generic_host() if args.no_host else probe_host()
    codes = [_validate_one(path, host, generic=args.no_host) for path in args.files]
    return max(codes, default=0)


def _validate_one(path: str, host: Host, *, generic: bool) -> int:
    from tuner.space import fit_to
    from tuner.space.search_space import build_space
    from tuner.spec import load_file

    try:
        loaded = load_file(path, fit=fit_to(host))
        for study in loaded.studies:
            space = build_space(study, host)
            for note in space.notes:
                print(f"note: {note}", file=sys.stderr)
            extra = f": {len(space.dims)} knobs tuned over {space.size} configurations"
            if space.fixed:
                extra += f", fixed {space.fixed}"
            if generic:
                extra += " (on a generic machine; not checked against this one)"
            print(f"{path}: study {study.name} is valid{extra}")
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of tuner's: one line, not a traceback
        logging.getLogger(__name__).debug("validating %s", path, exc_info=True)
        print(f"{path}: tuner failed to validate this file ({type(exc).__name__}: "
              f"{str(exc)[:200]}); please report it (-v shows where)", file=sys.stderr)
        return 1
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from tuner.execution.runtimes import fingerprint_of
    from tuner.goal import Goal
    from tuner.host import probe_host
    from tuner.results.render import render, write_best
    from tuner.results.summary import importance, summarize
    from tuner.settings import get_settings
    from tuner.space import fit_to
    from tuner.space.search_space import build_space
    from tuner.space.workload import unit_of
    from tuner.spec import load_file
    from tuner.study.progress import Progress
    from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget

    settings = get_settings()
    host = probe_host()
    # every study is checked as written; only those about to run are fitted to this host
    loaded = load_file(args.file, fit=fit_to(host), only=set(args.study) if args.study else None)
    studies = loaded.studies
    if args.study:
        wanted = set(args.study)
        unknown = wanted - {s.name for s in studies}
        if unknown:
            have = ", ".join(s.name for s in studies)
            raise SpecError([SpecIssue(source=args.file, line=None, field="study", message=(
                f"no study named {', '.join(sorted(unknown))}; the file has {have}"))])
        studies = [s for s in studies if s.name in wanted]
    if host.tools.numactl is None:
        print("note: numactl is not installed; CPU binding uses taskset/sched_setaffinity and "
              "memory binding is unavailable", file=sys.stderr)
    for spec in studies:
        space = build_space(spec, host)
        fp = fingerprint_of(host, spec.workload.python, settings=settings)
        for note in space.notes:
            print(f"note: {note}", file=sys.stderr)
        storage = args.storage or spec.storage or settings.default_storage
        runtime = f" in runtime {fp.runtime}" if fp.runtime else ""
        print(f"Tuning {spec.name}: {len(space.dims)} knobs over {space.size} configurations "
              f"on {fp.cpu_model} ({fp.physical_cores} cores, {fp.numa_nodes} NUMA nodes)"
              f"{runtime}; storage {storage}", file=sys.stderr)
        progress = Progress(planned=spec.budget.n_trials, time_budget=spec.budget.timeout,
                            unit=unit_of(spec.workload),
                            goal=Goal.of(spec.objective.direction), quiet=args.quiet)
        run = StudyRun(
            StudyTarget(space=space, storage_url=storage, fingerprint=fp, spec_text=loaded.text),
            collaborators=Collaborators(settings=settings),
            limits=RunLimits(max_trials=args.trials, confirm=not args.no_confirm,
                             resume_stopped=True),
            events=progress)
        result = run.run()
        if result.recovered:
            print(f"recovered trials {result.recovered} left running by a dead tuner process",
                  file=sys.stderr)
        summary = summarize(result.study)
        written = write_best(summary, Path(args.output or settings.output_dir))
        print(render(summary, written=written, importances=importance(result.study)))
    return 0


def cmd_ci(args: argparse.Namespace) -> int:
    """The regression gate (``tuner.ci.command``): exit 0 (ok, improved), 1 (regressed; with
    ``--fail-on``, more), 3 (inconclusive), 2 (an error: bad input, nothing to compare with)."""
    from tuner.ci.command import run_command
    from tuner.settings import get_settings

    return run_command(args, get_settings())


def cmd_best(args: argparse.Namespace) -> int:
    from tuner.results.render import best_as, render
    from tuner.results.summary import importance, summarize
    from tuner.store import database as store

    study = store.load(_storage_for(args), args.name, heartbeat=False)
    summary = summarize(study)
    if args.format == "text":
        print(render(summary, importances=importance(study)))
        return 0 if summary.best else 1
    if summary.best is None:
        print(f"study {args.name} has no completed trial yet", file=sys.stderr)
        return 1
    print(best_as(summary, args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Every run of a study as CSV or JSON rows (``tuner.results.export``)."""
    from tuner.results.export import export
    from tuner.store import database as store

    study = store.load(_storage_for(args), args.name, heartbeat=False)
    text = export(study, args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    from tuner.results.summary import MALFORMED, summarize, why_unreadable
    from tuner.store import database as store

    url = _storage_for(args)
    storage = store.open_storage(url, heartbeat=False)
    names = sorted(optuna.get_all_study_names(storage))
    if not names:
        print(f"no studies in {store.redact(url)}")
    for name in names:
        try:
            summary = summarize(optuna.load_study(study_name=name, storage=storage))
        except MALFORMED as exc:
            print(f"{name}: {why_unreadable(exc)}")
            continue
        answer = summary.answer
        best = (f"best {summary.metric} {answer.label}: {answer.knobs_text}" if answer
                else "no trial completed yet")
        print(f"{name}: {summary.counted}/{summary.planned or '?'} trials, {best}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    import optuna

    from tuner.store import database as store

    url = _storage_for(args)
    store.load(url, args.name, heartbeat=False)  # NotFoundError if absent
    optuna.delete_study(study_name=args.name, storage=store.open_storage(url, heartbeat=False))
    print(f"deleted study {args.name} from {store.redact(url)}")
    return 0


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


def _recover_system_settings() -> None:
    """Every command first puts back what a killed tuner left changed on this host."""
    from tuner.execution.system_backend import recover_at_start
    from tuner.settings import get_settings

    message = recover_at_start(get_settings())
    if message is not None:
        print(f"tuner: {message}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tuner.service.app import create_app
    from tuner.service.worker import Worker
    from tuner.settings import conceal_secrets, get_settings
    from tuner.store.database import redact

    settings = get_settings()
    conceal_secrets(settings)  # trials must not read the tokens from /proc/PARENT/environ
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    if not (settings.api_token or settings.admin_token):
        if not args.insecure_local:
            raise TunerError("no API token: set TUNER_API_TOKEN (and TUNER_ADMIN_TOKEN for "
                             "studies that run commands), or start with --insecure-local "
                             "to serve this machine only, without tokens")
        if not loopback:
            raise TunerError("--insecure-local serves the loopback interface only; use "
                             "--host 127.0.0.1")
    storage = args.storage or settings.default_storage
    worker = None
    if not args.storage and not args.no_worker:
        worker = Worker.on_this_host(storage, settings)
    app = create_app(settings=settings, storage_url=storage, worker=worker,
                     insecure_local=args.insecure_local)
    mode = "with an in-process worker" if worker else "API only (run `tuner worker`)"
    print(f"tuner serving http://{args.host}:{args.port} ({mode}); storage "
          f"{redact(storage)}; dashboard /ui, API docs /docs", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from tuner.service.worker import Worker
    from tuner.settings import conceal_secrets, get_settings
    from tuner.store.database import redact

    settings = get_settings()
    conceal_secrets(settings)
    worker = Worker.on_this_host(args.storage or settings.default_storage, settings)
    worker.install_signal_handlers()
    print(f"tuner worker on {worker.hostname} (host class {worker.fingerprint.host_class}); "
          f"storage {redact(worker.storage_url)}", file=sys.stderr)
    if args.once:
        worker.run_once()
    else:
        worker.run_forever(max_idle=args.max_idle)
    return 0


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


def _version_line() -> str:
    """``tuner X.Y.Z (Python A.B.C, Optuna V)``: what a bug report needs first."""
    import platform
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"tuner {version('tuner')} (Python {platform.python_version()}, "
            f"Optuna {version('optuna')})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuner", description="Automated performance tuning "
                                     "of ML workloads on CPUs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check study files without running anything")
    p.add_argument("files", nargs="+")
    p.add_argument("--no-host", action="store_true",
                   help="check against a generous generic machine, not this one")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("tune", help="run (or resume) the studies of a file")
    p.add_argument("file")
    p.add_argument("--study", action="append", help="only this study (repeatable)")
    p.add_argument("--storage", help="database URL (default: the study's, else sqlite)")
    p.add_argument("--trials", type=int, help="run at most this many trials now")
    p.add_argument("--output", help="directory for best.{env,json,sh} (default tuner-out)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-confirm", action="store_true",
                   help="skip the confirmation of the top candidates after the search")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("ci", help="the regression gate after an upgrade: re-measure the "
                                  "deployed settings, re-tune when needed, give a verdict")
    p.add_argument("file", help="the study file")
    p.add_argument("--study", action="append",
                   help="a study to check (repeatable; default: every study of the file)")
    p.add_argument("--storage", help="database URL (default: the study's, else sqlite)")
    p.add_argument("--previous", metavar="BEST_JSON_OR_DIR",
                   help="the deployed settings as a committed best.json, or a folder "
                        "holding NAME/best.json per study (default: the latest "
                        "recommendation in the study database)")
    p.add_argument("--output", help="directory for the new best.{env,json,sh} "
                                    "(default tuner-out)")
    p.add_argument("--fail-on", choices=("regressed", "changed", "any"), default="regressed",
                   help="exit 1 on regressed (default); changed: also on improved; any: on "
                        "anything but ok")
    p.add_argument("--retune", choices=("auto", "always", "never"), default="auto",
                   help="re-tune when the environment changed or the deployed settings "
                        "lost (auto), always, or never")
    p.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    p.add_argument("--markdown", metavar="PATH", help="write a Markdown summary (also "
                   "appended to $GITHUB_STEP_SUMMARY when set)")
    p.add_argument("--benchmark-json", metavar="PATH", help="write github-action-benchmark's "
                   "customBiggerIsBetter JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_ci)

    for name, func, text in (("best", cmd_best, "the best settings of a study"),
                             ("delete", cmd_delete, "delete a study and its trials")):
        p = sub.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--storage")
        p.add_argument("-f", "--file", help="study file naming the storage")
        if name == "best":
            p.add_argument("--format", choices=("text", "env", "json", "shell"),
                           default="text")
        p.set_defaults(func=func)

    p = sub.add_parser("export", help="every run of a study as CSV or JSON rows: the knobs "
                                      "applied, the value, state, reason, environment")
    p.add_argument("name")
    p.add_argument("--storage")
    p.add_argument("-f", "--file", help="study file naming the storage")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("list", help="studies in a database")
    p.add_argument("--storage")
    p.set_defaults(func=cmd_list, file=None, name=None)

    p = sub.add_parser("doctor", help="host topology, fingerprint and what each knob can do")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("restore", help="put back the system settings a tuner that was "
                                       "killed mid-trial left changed (its journal)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("serve", help="the REST API and dashboard (and, without --storage, "
                                     "an embedded database and worker)")
    p.add_argument("--storage", help="study database shared with workers, e.g. "
                                     "postgresql://tuner@db/tuner; the API then only serves")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--insecure-local", action="store_true",
                   help="allow writes without a token; serves the loopback interface only")
    p.add_argument("--no-worker", action="store_true",
                   help="embedded database but no in-process worker")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run queued studies from a shared study database")
    p.add_argument("--storage", help="the study database (default: the local SQLite file)")
    p.add_argument("--once", action="store_true", help="one pass over the studies, then exit")
    p.add_argument("--max-idle", type=float, help="exit after this many idle seconds")
    p.set_defaults(func=cmd_worker)
    _runtime_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every system setting is restored on the way
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGHUP, _terminate)
    try:
        if args.func is not cmd_restore:
            _recover_system_settings()
        return int(args.func(args))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except TunerError as exc:
        print(f"tuner: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
