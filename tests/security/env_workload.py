"""A command workload for the security tests: writes its whole environment (and the
environment of every ancestor process it can read) as JSON to ``--out``, then follows the
workload contract; a ``--label`` holding ``javascript`` fails the run with the label in the
error message (so a stored failure reason carries it)."""

import argparse
import json
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--label", default="")
args = parser.parse_args()


def ancestors() -> dict[str, str]:
    """The readable /proc/PID/environ of each ancestor (what a same-user trial could read)."""
    found: dict[str, str] = {}
    pid = os.getppid()
    while pid > 1:
        try:
            found[str(pid)] = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


with open(args.out, "a", encoding="utf-8") as handle:
    handle.write(json.dumps({"env": dict(os.environ), "ancestors": ancestors()}) + "\n")
print("SETTINGS " + json.dumps({"label": args.label}), flush=True)
if "javascript" in args.label:
    print(f"error: cannot use the label {args.label}", file=sys.stderr, flush=True)
    sys.exit(2)
print("METRIC throughput=100 unit=items/s interval=1", flush=True)
print("METRIC throughput=101 unit=items/s interval=2", flush=True)
print("FINAL throughput=100.5 unit=items/s", flush=True)
