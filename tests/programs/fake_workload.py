"""A fast stand-in workload for tests of the runner and the loop (no TensorFlow).

Follows the workload contract: SETTINGS line, METRIC per interval, FINAL. Its throughput is a
known function of its flags and environment, so a search has a findable optimum:
1000 - 40*(threads - 3)^2 - 25*(block != 1) + small deterministic jitter.

It stands in for an Intel OpenMP program (its throughput depends on KMP_BLOCKTIME), so it
maps Intel's OpenMP runtime when the environment has one (intel-openmp, a dev dependency):
tuner judges KMP_* knobs inert by construction in a process that maps none.
"""

import argparse
import ctypes
import json
import math
import os
import random
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--behaviour", default="ok",
                    choices=["ok", "crash", "hang", "garbage", "no-metric", "grandchild",
                             "huge-line", "crash-after-metric"])
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--intervals", type=int, default=3)
parser.add_argument("--interval-seconds", type=float, default=0.01)
parser.add_argument("--sleep", type=float, default=0.0, help="sleep before measuring")
args = parser.parse_args()

INTEL_OPENMP = os.path.join(sys.prefix, "lib", "libiomp5.so")
if os.path.exists(INTEL_OPENMP):
    ctypes.CDLL(INTEL_OPENMP)

settings = {
    "threads": args.threads,
    "affinity": sorted(os.sched_getaffinity(0)),
    "env": {k: v for k, v in os.environ.items()
            if k.startswith(("OMP_", "KMP_", "TF_", "FAKE_"))},
    "argv": sys.argv[1:],
}
print("SETTINGS " + json.dumps(settings), flush=True)
print("starting fake workload", flush=True)
if args.sleep:
    time.sleep(args.sleep)

if args.behaviour == "crash":
    print("about to fail: division by zero ahead", flush=True)
    print(1 / 0)
if args.behaviour == "hang":
    print("hanging now", flush=True)
    time.sleep(3600)
if args.behaviour == "garbage":
    for i in range(50):
        print(f"\x00\xff garbage line {i} ###", flush=True)
    sys.exit(0)
if args.behaviour == "no-metric":
    print("done, but I forgot to print a metric", flush=True)
    sys.exit(0)
if args.behaviour == "grandchild":
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    time.sleep(3600)
if args.behaviour == "huge-line":
    sys.stdout.write("x" * 100000)
    sys.stdout.flush()
    sys.exit(3)

block = os.environ.get("KMP_BLOCKTIME", "200")
base = 1000.0 - 40.0 * (args.threads - 3) ** 2 - (25.0 if block != "1" else 0.0)
# FAKE_NOISE=0.05: each run is off by a random factor with a 5% spread (like a busy machine)
noise = float(os.environ.get("FAKE_NOISE", "0"))
# FAKE_SEED and FAKE_COUNTER (a file counting runs) make the noise reproducible
seed: object = os.urandom(8)
if os.environ.get("FAKE_SEED") and os.environ.get("FAKE_COUNTER"):
    counter = os.environ["FAKE_COUNTER"]
    runs = int(open(counter).read() or 0) if os.path.exists(counter) else 0
    with open(counter, "w") as handle:
        handle.write(str(runs + 1))
    seed = f"{os.environ['FAKE_SEED']}-{runs}"
rng = random.Random(seed)
base *= math.exp(rng.gauss(0.0, noise)) if noise else 1.0
rates = []
for i in range(1, args.intervals + 1):
    time.sleep(args.interval_seconds)
    rate = base * (1.0 + 0.001 * ((i * 7 + args.threads) % 5 - 2))
    rate *= math.exp(rng.gauss(0.0, noise / 2)) if noise else 1.0
    rates.append(rate)
    print(f"METRIC throughput={rate:.3f} unit=items/s interval={i}", flush=True)
final = sum(rates) / len(rates)
print(f"FINAL throughput={final:.3f} unit=items/s", flush=True)
print(f"fake images/sec: {final:.3f}")
print(json.dumps({"stats": {"throughput": final}}))
if args.behaviour == "crash-after-metric":
    sys.exit(7)
