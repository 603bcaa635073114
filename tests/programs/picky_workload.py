"""The fake workload (``fake_workload.py``) behind conditions that make it fail, for tests of
studies whose baselines fail.

``--needs-flag FLAG``: exit 1 unless FLAG is on the command line (a program that needs its
flag: both baselines run without it). ``--fails-when NAME=VALUE``: exit 1 when the variable
NAME is VALUE (``KMP_BLOCKTIME=1``: the vendor settings fail, the defaults run).
``--needs-env NAME``: exit 1 unless NAME is set (the defaults fail, the vendor settings run).
Every other argument goes to the fake workload.
"""

import os
import runpy
import sys
from pathlib import Path

argv = sys.argv[1:]
needs_flag: list[str] = []
fails_when: list[str] = []
needs_env: list[str] = []
rest: list[str] = []
while argv:
    arg = argv.pop(0)
    if arg == "--needs-flag":
        needs_flag.append(argv.pop(0))
    elif arg == "--fails-when":
        fails_when.append(argv.pop(0))
    elif arg == "--needs-env":
        needs_env.append(argv.pop(0))
    else:
        rest.append(arg)

print("picky workload starting", flush=True)
for flag in needs_flag:
    if not any(a == flag or a.startswith(flag + "=") for a in rest):
        print(f"error: {flag} is required (got: {' '.join(rest) or 'no arguments'})",
              flush=True)
        sys.exit(1)
for condition in fails_when:
    name, _, value = condition.partition("=")
    if os.environ.get(name) == value:
        print(f"error: {name}={value} is not supported here", flush=True)
        sys.exit(1)
for name in needs_env:
    if name not in os.environ:
        print(f"error: set {name}", flush=True)
        sys.exit(1)

sys.argv = [str(Path(__file__).with_name("fake_workload.py")), *rest]
runpy.run_path(sys.argv[0], run_name="__main__")
