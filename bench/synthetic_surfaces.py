"""Generate SYNTHETIC performance surfaces of a 2-socket, 28-core-per-socket Xeon with SMT
(56 cores, 112 hardware threads, 2 NUMA nodes) from a performance model, for the knob space
of the published ResNet-50 case: inter_op 1..28 x intra_op 10..56 step 2 = 672
configurations. The development machine has 2 cores, so a space this large cannot be
measured here; these files are labelled ``synthetic: true`` and say so in every table.

    python bench/synthetic_surfaces.py            # writes bench/surfaces/synthetic-*.json

The model (one training or inference step of a TensorFlow graph of ``ops`` operators):

* An operator does ``work`` units, of which a fraction ``serial`` cannot be split; the rest
  is split over the intra-op threads it gets. Threads beyond the 56 physical cores sit on
  SMT siblings and add 25% of a core each.
* Splitting costs a barrier per operator that grows with the log of the threads
  (``sync`` x log2 threads), plus a fixed dispatch cost ``dispatch`` per operator.
* Memory-bound work (a fraction ``memory``) slows by ``numa`` x the share of threads on the
  second socket when the pool spills past one socket's 28 cores (memory sits on node 0).
* Up to ``width`` independent operators run at once when inter_op allows, sharing the
  intra-op pool (each gets threads / concurrency); overlapping hides their serial parts and
  dispatch costs.
* Every inter-op thread beyond the first costs ``contention`` (scheduling, cache pollution);
  threads beyond the 112 hardware threads oversubscribe the machine (+50% per 112 extra).

Three characters, as in the workloads of tuner: ``resnet`` (large compute-bound operators,
little dispatch: wants many threads), ``wavenet`` (small operators, dispatch- and
barrier-bound: wants few threads), ``gnmt`` (medium LSTM matmuls, memory-bound and
NUMA-sensitive, two-way concurrency). Noise: each
run is off by a log-normal factor (5% CV), each of its 6 one-second intervals by a further
2%; start-up (import, build) takes 6 s. Each configuration's model value is stored as its
``mean`` (its true value), with the noise model, so the replay draws fresh runs from the
model; five example runs are stored beside it. The baselines are TensorFlow's defaults (both pools
= 112 hardware threads) and the vendor's settings (intra_op 28, inter_op 2, bound to
socket 0: no NUMA penalty, 28 cores).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from tuner.testing.surfaces import RunNoise, Sample, Surface, config_key

CORES, SOCKET_CORES, THREADS = 56, 28, 112
INTER = list(range(1, 29))
INTRA = list(range(10, 57, 2))
INTERVALS, INTERVAL_SECONDS, STARTUP = 6, 1.0, 6.0
RUN_CV, INTERVAL_CV, SAMPLES = 0.05, 0.02, 5


@dataclass(frozen=True)
class Character:
    name: str
    unit: str
    items: float  # items per step
    ops: int
    work: float
    serial: float
    sync: float
    dispatch: float
    memory: float
    numa: float
    width: int
    contention: float
    description: str


CHARACTERS = (
    Character("resnet", "images/s", 64, 160, 1.0, 0.02, 0.002, 0.0005, 0.3, 0.6, 2, 0.004,
              "ResNet-50-like inference: large compute-bound operators"),
    Character("wavenet", "samples/s", 1, 250, 0.02, 0.10, 0.004, 0.010, 0.2, 0.4, 2, 0.006,
              "WaveNet-generation-like: small dispatch- and barrier-bound operators"),
    Character("gnmt", "sentences/s", 32, 120, 0.2, 0.05, 0.003, 0.003, 0.5, 1.0, 2, 0.005,
              "GNMT-like: LSTM matmuls, memory-bound and NUMA-sensitive, 2-way concurrency"),
)


def step_time(c: Character, inter: int, intra: int, *, bound_socket: bool = False) -> float:
    cores = SOCKET_CORES if bound_socket else CORES
    concurrency = max(1, min(inter, c.width))
    per_op_threads = intra / concurrency
    physical = min(per_op_threads, cores)
    effective = physical + 0.25 * max(0.0, per_op_threads - physical)
    remote = 0.0 if bound_socket else max(0.0, intra - SOCKET_CORES) / intra
    parallel = (1 - c.serial) * c.work / effective * (1 + c.memory * c.numa * remote)
    op = c.dispatch + c.serial * c.work + parallel + c.sync * math.log2(max(per_op_threads, 1))
    step = c.ops * op / concurrency
    step *= 1 + c.contention * (inter - 1)
    hardware = SOCKET_CORES * 2 if bound_socket else THREADS
    step *= 1 + 0.5 * max(0, inter + intra - hardware) / hardware
    return step


def throughput(c: Character, inter: int, intra: int, *, bound_socket: bool = False) -> float:
    return c.items / step_time(c, inter, intra, bound_socket=bound_socket)


NOISE = RunNoise(run_cv=RUN_CV, interval_cv=INTERVAL_CV, intervals=INTERVALS,
                 startup=STARTUP, teardown=0.3)


def samples(mean: float, rng: random.Random) -> list[Sample]:
    return [NOISE.sample(mean, rng, interval_seconds=INTERVAL_SECONDS)
            for _ in range(SAMPLES)]


def surface(c: Character, seed: int) -> Surface:
    rng = random.Random(seed)
    out = Surface(
        name=f"synthetic-{c.name}-xeon56", synthetic=True, unit=c.unit, maximize=True,
        description=f"SYNTHETIC (performance model, not measured): {c.description}; "
                    "2-socket 28-core Xeon with SMT",
        axes={"inter_op": INTER, "intra_op": INTRA}, interval_seconds=INTERVAL_SECONDS,
        fingerprint={"cpu_model": "SYNTHETIC 2x28-core Xeon (model)", "sockets": 2,
                     "physical_cores": CORES, "logical_cpus": THREADS, "numa_nodes": 2,
                     "threads_per_core": 2, "host_class": "synthetic-56c2n"},
        meta={"model": "bench/synthetic_surfaces.py", "character": c.__dict__},
        noise=NOISE)
    for inter in INTER:
        for intra in INTRA:
            key = config_key({"inter_op": inter, "intra_op": intra})
            out.model_means[key] = throughput(c, inter, intra)
            out.configs[key] = samples(out.model_means[key], rng)
    defaults = throughput(c, THREADS, THREADS)
    out.baselines["defaults"] = {"applied": {}, "mean": defaults, "samples": [
        s.to_dict() for s in samples(defaults, rng)]}
    vendor = {"intra_op": 28, "inter_op": 2, "OMP_NUM_THREADS": 28, "KMP_BLOCKTIME": 1,
              "KMP_AFFINITY": "granularity=fine,compact,1,0", "cpunodebind": 0, "membind": 0}
    mean = throughput(c, 2, 28, bound_socket=True)
    out.baselines["vendor"] = {"applied": vendor, "mean": mean, "samples": [
        s.to_dict() for s in samples(mean, rng)]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "surfaces"))
    args = parser.parse_args(argv)
    for index, character in enumerate(CHARACTERS):
        made = surface(character, seed=100 + index)
        made.save(Path(args.out) / f"{made.name}.json")
        best, value = made.optimum()
        defaults = made.true_value({}) or float("nan")
        print(f"{made.name}: optimum {best} = {value:.4g} {made.unit} "
              f"({value / defaults:.2f}x the defaults); "
              f"{len(made.within(0.02))} of {len(made.configs)} configurations within 2%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
