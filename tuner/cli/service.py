"""Subcommands of the service: ``serve`` (API, dashboard) and ``worker``."""

from __future__ import annotations

import argparse
import sys

from tuner.errors import TunerError


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve`` and ``worker``."""
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
