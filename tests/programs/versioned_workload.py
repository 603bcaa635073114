"""A fast stand-in for a program whose best settings change with an upgrade (no TensorFlow).

Its "framework version" is the environment variable FAKESTACK_VERSION (``--version`` prints
``fakestack <version>``: what a study's ``ci.version_command`` reads). Its throughput is a
known function of ``--threads`` (1-4) and ``--block`` (0-2) for each version:

* ``1``: best at threads 3, block 1 (1000/s); the defaults (threads 1, block 0) 680/s;
* ``2``: the upgrade moved the optimum to threads 2, block 2 (1000/s): the version-1 best
  runs at 860/s, 14% behind the new best;
* ``2-small``: threads 3, block 2 gains 3% over the version-1 best (an improvement below a
  5% threshold); everything else as in version 1.

Each run is off by a random factor with spread FAKESTACK_NOISE (default 0.01).
"""

import argparse
import math
import os
import random
import sys
import time

VERSION = os.environ.get("FAKESTACK_VERSION", "1")
parser = argparse.ArgumentParser()
parser.add_argument("--version", action="store_true")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--block", type=int, default=0)
parser.add_argument("--intervals", type=int, default=2)
args = parser.parse_args()
if args.version:
    print(f"fakestack {VERSION}")
    sys.exit(0)


def surface(threads: int, block: int, version: str) -> float:
    if version == "2":
        return 1000.0 - 60.0 * (threads - 2) ** 2 - (80.0 if block != 2 else 0.0)
    value = 1000.0 - 60.0 * (threads - 3) ** 2 - (80.0 if block != 1 else 0.0)
    if version == "2-small" and (threads, block) == (3, 2):
        return 1030.0
    return value


noise = float(os.environ.get("FAKESTACK_NOISE", "0.01"))
rng = random.Random(os.urandom(8))
base = surface(args.threads, args.block, VERSION) * math.exp(rng.gauss(0.0, noise))
print(f"SETTINGS threads={args.threads} block={args.block} version={VERSION}", flush=True)
rates = []
for i in range(1, args.intervals + 1):
    time.sleep(0.005)
    rate = base * math.exp(rng.gauss(0.0, noise / 4))
    rates.append(rate)
    print(f"METRIC throughput={rate:.3f} unit=items/s interval={i}", flush=True)
print(f"FINAL throughput={sum(rates) / len(rates):.3f} unit=items/s", flush=True)
