"""A workload that reports the system settings it ran under (for the system-knob tests).

It prints, in its SETTINGS line, what the transparent-huge-page, NUMA-balancing, swappiness
and autogroup files held while it ran, then measures a memory-bound loop (random touches of
a buffer of ``--megabytes``, where huge pages change the TLB misses) and follows the
workload contract (METRIC per interval, FINAL).
"""

import argparse
import json
import random
import time

FILES = {
    "thp_enabled": "/sys/kernel/mm/transparent_hugepage/enabled",
    "thp_defrag": "/sys/kernel/mm/transparent_hugepage/defrag",
    "numa_balancing": "/proc/sys/kernel/numa_balancing",
    "swappiness": "/proc/sys/vm/swappiness",
    "sched_autogroup": "/proc/sys/kernel/sched_autogroup_enabled",
}

parser = argparse.ArgumentParser()
parser.add_argument("--megabytes", type=int, default=64)
parser.add_argument("--intervals", type=int, default=3)
parser.add_argument("--touches", type=int, default=200_000)
parser.add_argument("--sleep", type=float, default=0.0, help="sleep before measuring")
args = parser.parse_args()


def read(path: str) -> str:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return "-"
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


print("SETTINGS " + json.dumps({"system": {k: read(v) for k, v in FILES.items()}}), flush=True)
time.sleep(args.sleep)
size = args.megabytes * 1024 * 1024
buffer = bytearray(size)
rng = random.Random(0)
offsets = [rng.randrange(0, size) for _ in range(args.touches)]
values = []
for interval in range(args.intervals):
    start = time.perf_counter()
    for offset in offsets:
        buffer[offset] = (buffer[offset] + 1) & 0xFF
    rate = args.touches / (time.perf_counter() - start)
    values.append(rate)
    print(f"METRIC throughput={rate:.1f} unit=touches/s interval={interval}", flush=True)
print(f"FINAL throughput={sum(values) / len(values):.1f} unit=touches/s", flush=True)
