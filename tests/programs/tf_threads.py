"""A plain TensorFlow program (not a built-in): its thread pools come only from the
TF_NUM_INTEROP_THREADS / TF_NUM_INTRAOP_THREADS variables tuner sets for command workloads.
It reports how many threads the process runs, which grows with the pools."""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

x = tf.random.normal([256, 256], seed=1)
start = time.perf_counter()
for _ in range(50):
    y = tf.matmul(x, x)
y.numpy()
rate = 50 / (time.perf_counter() - start)
print("SETTINGS " + json.dumps({
    "threads": len(os.listdir("/proc/self/task")),
    "affinity": sorted(os.sched_getaffinity(0)),
    "env": {k: v for k, v in os.environ.items() if k.startswith("TF_NUM_")},
}), flush=True)
print(f"FINAL throughput={rate:.3f} unit=matmul/s", flush=True)
