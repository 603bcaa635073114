"""Prints the arguments it received (a SETTINGS line with ``argv``), then a metric, so tests
can check exactly what reached a program: ``--name=value``, ``-xVALUE``, options before a
positional argument."""

import json
import sys

print("SETTINGS " + json.dumps({"argv": sys.argv[1:]}), flush=True)
print("METRIC throughput=1.0 unit=items/s interval=1", flush=True)
print("FINAL throughput=1.0 unit=items/s", flush=True)
