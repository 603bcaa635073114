"""A tiny command workload for the echo tests: it takes --threads but runs with at most
--cap of them (as a program that quietly caps its pool would), says so in one line,
``Number of threads: N`` (none with --quiet), then prints METRIC lines and a FINAL line."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--cap", type=int, default=64)
parser.add_argument("--quiet", action="store_true", help="never say how many threads")
parser.add_argument("--intervals", type=int, default=2)
args = parser.parse_args()

used = min(args.threads, args.cap)
if not args.quiet:
    print(f"Number of threads: {used}", flush=True)
for i in range(1, args.intervals + 1):
    time.sleep(0.01)
    print(f"METRIC throughput={100.0 * used + i:.1f} unit=items/s interval={i}", flush=True)
print(f"FINAL throughput={100.0 * used:.1f} unit=items/s", flush=True)
