"""A program that cannot run without its flag: exits 1 unless ``--threads N`` is given, as a
program that needs its thread count would. With it, it follows the workload contract
(SETTINGS, METRIC per interval, FINAL) and reports the OMP_/KMP_/TF_ variables it sees."""

import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int)
args = parser.parse_args()
if args.threads is None:
    print("error: --threads is required (this program has no default)", flush=True)
    sys.exit(1)
seen = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "KMP_", "TF_"))}
print("SETTINGS " + json.dumps({"threads": args.threads, "env": seen}), flush=True)
for interval in (1, 2):
    print(f"METRIC throughput={100 + args.threads} unit=x/s interval={interval}", flush=True)
print(f"FINAL throughput={100 + args.threads} unit=x/s", flush=True)
