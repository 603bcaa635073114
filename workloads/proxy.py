"""The WaveNet proxy: how fast can one core stream a sample's weights through tiny matmuls?

Fast WaveNet generation is a chain of small matrix-vector products per sample, each on its
own weights: latency- and weight-traffic-bound. The proxy keeps only that: per sample a
``--size`` (128) float vector is multiplied in turn by ``--matrices`` (80) different
``size x size`` matrices, ``v <- M_k v`` for k = 1..80 (5.2 MB of float32 weights per
sample), and the next sample starts from the result, so samples are sequential as in
generation. ``--batch-size B`` pushes B vectors through the same chain (the weights are read
once per batch). The matrices are random orthogonal (fixed seed), so the vectors keep their
norm; they are renormalised once per chunk all the same.

``--backend numpy``: a Python loop over the matrices, ``np.matmul(M_k, v, out=buf)`` into
preallocated buffers (a Python call per matrix is inherent to NumPy); BLAS threads come from
the environment (``OMP_NUM_THREADS``, ...) and TensorFlow is not imported (the SETTINGS line
has the usual keys, with ``inter_op``/``intra_op`` null: there are no TensorFlow pools).
``--backend tensorflow``: one ``tf.function`` runs ``--chunk`` samples in a ``tf.while_loop``
whose body multiplies by the 80 matrices (unrolled; the stacked weights are unstacked in the
body, which copies nothing); ``--xla on`` compiles it with XLA, ``--precision bf16``
multiplies bf16 copies of the float32 weights. Both are errors with ``--backend numpy``.

Before timing, the program measures the bandwidths its result is compared with (well under
2 s, though the first touch of fresh memory can take seconds more in a VM): ``dram``, the
best of 3 NumPy copies between two arrays of ``--probe-mib`` MiB together (bytes read +
written); ``cache``, the best of 5 rounds of NumPy matrix-vector products over a 5 MiB
float32 matrix (bytes read; it stays in L3, or L2 on some machines). Then METRIC/FINAL lines
in samples/s (see ``workloads._common``; one step is one chunk, ``chunk * batch`` samples),

    PROXY weights_per_sample_bytes=... achieved_bytes_per_s=... dram_bytes_per_s=...
          cache_bytes_per_s=... bound_samples_per_s=... weights_fit_in=L3 samples_per_s=...

(one line) where achieved = weight bytes per sample x samples/s and bound = the bandwidth of
the level the weights fit in (from the /sys cache sizes) / weight bytes per sample; the
weights per sample are the weights per batch / batch size. Then the same as a sentence.

Presets: ``small`` (200 samples per step, 3 s, a 512 MiB probe) and ``full`` (1000 samples per
step, 30 s, a 1 GiB probe); both 80 matrices of 128 x 128, batch 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads import _common

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"batch_size": 1, "chunk": 200, "probe_mib": 512, "warmup_steps": 2,
              "seconds": 3.0, "intervals": 3},
    "full": {"batch_size": 1, "chunk": 1000, "probe_mib": 1024, "warmup_steps": 5,
             "seconds": 30.0, "intervals": 5},
}

CACHE_PROBE_BYTES = 5 * 2 ** 20
CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _common.base_parser(prog="python -m workloads.proxy",
                                 description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--backend", choices=("numpy", "tensorflow"), default="numpy")
    parser.add_argument("--matrices", type=int, default=80, metavar="K",
                        help="different matrices per sample (default 80)")
    parser.add_argument("--size", type=int, default=128, metavar="N",
                        help="vector length and matrix side (default 128)")
    parser.add_argument("--chunk", type=int, default=None, metavar="N",
                        help="samples per measured step (per compiled call for tensorflow)")
    parser.add_argument("--probe-mib", type=int, default=None, metavar="MIB",
                        help="memory the bandwidth probe copies through: two arrays of "
                             "half this size")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_arg_parser()
    args = _common.parse_args(parser, PRESETS, argv)
    if min(args.matrices, args.size, args.chunk, args.probe_mib) < 1:
        parser.error("--matrices, --size, --chunk and --probe-mib must be >= 1")
    if args.backend == "numpy" and args.precision == "bf16":
        parser.error("--precision bf16 needs --backend tensorflow (NumPy has no bfloat16)")
    if args.backend == "numpy" and args.xla == "on":
        parser.error("--xla on needs --backend tensorflow (NumPy is not compiled)")
    return args


# --- the chain -------------------------------------------------------------------------------

def make_weights(matrices: int, size: int, seed: int) -> np.ndarray:
    """``matrices`` random orthogonal float32 matrices [K, N, N] (Q of a Gaussian's QR)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((matrices, size, size)))
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # unique, Haar-distributed
    return np.ascontiguousarray(q * signs, dtype=np.float32)


def make_vectors(size: int, batch: int, seed: int) -> np.ndarray:
    """Unit start vectors [N, B] (the columns), float32."""
    v = np.random.default_rng(seed + 1).standard_normal((size, batch))
    return (v / np.linalg.norm(v, axis=0)).astype(np.float32)


class NumpyChain:
    """``run(n)`` pushes the vectors through n samples of the chain and returns them [N, B]."""

    def __init__(self, weights: np.ndarray, vectors: np.ndarray) -> None:
        self.mats = list(weights)  # views: no indexing in the loop
        shape = vectors.shape if vectors.shape[1] > 1 else vectors.shape[:1]  # B=1: gemv
        self.a = np.array(vectors.reshape(shape), dtype=np.float32)
        self.b = np.empty_like(self.a)

    def run(self, samples: int) -> np.ndarray:
        matmul, mats = np.matmul, self.mats
        a, b = self.a, self.b
        for _ in range(samples):
            for m in mats:
                matmul(m, a, out=b)
                a, b = b, a
        a /= np.linalg.norm(a, axis=0)
        self.a, self.b = a, b
        return a.reshape(a.shape[0], -1).copy()  # the buffers are reused by the next call


def build_tf_chain(tf: Any, weights: np.ndarray, vectors: np.ndarray, *, chunk: int,
                   dtype: Any, jit: bool) -> Callable[[], np.ndarray]:
    """A compiled call running ``chunk`` samples; the vectors stay in a variable between
    calls. Returns a function giving the vectors [N, B] as float32 NumPy."""
    stack = tf.Variable(weights, trainable=False, name="matrices")  # float32 weights
    state = tf.Variable(vectors, trainable=False, name="vectors")
    count = weights.shape[0]

    @tf.function(jit_compile=jit)
    def run() -> Any:
        mats = tf.cast(stack, dtype)  # bf16: one cast per call, not per sample

        def body(i: Any, v: Any) -> tuple[Any, Any]:
            for m in tf.unstack(mats, num=count):
                v = tf.matmul(m, v)
            return i + 1, v

        _, v = tf.while_loop(lambda i, _: i < chunk, body,
                             (tf.constant(0), tf.cast(state, dtype)))
        v = tf.cast(v, tf.float32)
        v = v / tf.norm(v, axis=0, keepdims=True)
        state.assign(v)
        return v

    return lambda: run().numpy()


# --- bandwidths ------------------------------------------------------------------------------

def best_rate(fn: Callable[[], object], nbytes: float, *, rounds: int, calls: int) -> float:
    """The best bytes/s over ``rounds`` rounds of ``calls`` calls of ``fn``."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = max(best, nbytes * calls / (time.perf_counter() - start))
    return best


def dram_bandwidth(mib: int) -> float:
    """Copy bandwidth, bytes read + written per second, from one array to another, together
    ``mib`` MiB: far beyond the caches."""
    src = np.ones(max(mib * 2 ** 20 // 8, 1), dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    return best_rate(lambda: np.copyto(dst, src), 2.0 * src.nbytes, rounds=3, calls=1)


def cache_bandwidth(size: int) -> float:
    """Read bandwidth of matrix-vector products over a 5 MiB matrix read again and again."""
    rows = max(CACHE_PROBE_BYTES // (4 * size), 1)
    mat = np.ones((rows, size), dtype=np.float32)
    vec = np.ones(size, dtype=np.float32)
    out = np.empty(rows, dtype=np.float32)
    np.matmul(mat, vec, out=out)
    return best_rate(lambda: np.matmul(mat, vec, out=out), float(mat.nbytes), rounds=5,
                     calls=50)


def cache_sizes(root: Path = CACHE_ROOT) -> list[tuple[str, int]]:
    """Data/unified cache levels of CPU 0 as (name, bytes), smallest first; [] if unknown."""
    levels = []
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        if kind == "Instruction" or not text:
            continue
        scale = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}.get(text[-1], 1)
        levels.append((f"L{level}", int(text.rstrip("KMG")) * scale))
    return sorted(levels, key=lambda item: item[1])


def fitting_level(nbytes: float, levels: list[tuple[str, int]]) -> str:
    """The smallest cache level holding ``nbytes``, or DRAM ('unknown' without /sys data)."""
    if not levels:
        return "unknown"
    return next((name for name, size in levels if nbytes <= size), "DRAM")


@dataclass(frozen=True, kw_only=True)
class Bandwidths:
    dram: float
    cache: float
    level: str  # where the weights fit: L1, L2, L3, DRAM or unknown

    def for_weights(self, nbytes: float) -> float:
        if self.level == "DRAM" or (self.level == "unknown" and nbytes > CACHE_PROBE_BYTES):
            return self.dram
        return self.cache


def proxy_line(*, weight_bytes: float, batch: int, throughput: float,
               bw: Bandwidths) -> tuple[str, str]:
    """The PROXY line and the sentence, for ``throughput`` samples/s."""
    per_sample = weight_bytes / batch
    achieved = per_sample * throughput
    bandwidth = bw.for_weights(weight_bytes)
    bound = bandwidth / per_sample
    line = (f"PROXY weights_per_sample_bytes={per_sample:.6g} "
            f"achieved_bytes_per_s={achieved:.6g} dram_bytes_per_s={bw.dram:.6g} "
            f"cache_bytes_per_s={bw.cache:.6g} bound_samples_per_s={bound:.6g} "
            f"weights_fit_in={bw.level} samples_per_s={throughput:.6g}")
    where = "DRAM" if bandwidth == bw.dram else f"{bw.level} cache"
    sentence = (f"{throughput:.0f} samples/s move {achieved / 1e9:.2f} GB/s of weights "
                f"({per_sample / 1e6:.2f} MB per sample): {100 * achieved / bandwidth:.0f}% of "
                f"the {where} bandwidth measured here ({bandwidth / 1e9:.1f} GB/s), which "
                f"bounds the proxy at {bound:.0f} samples/s (DRAM copy: "
                f"{bw.dram / 1e9:.1f} GB/s).")
    return line, sentence


def blas_info() -> dict[str, Any]:
    info: dict[str, Any] = {"numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # only informative
        info["blas"] = "unknown"
    info["blas_env"] = {name: os.environ[name] for name in
                        ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if name in os.environ}
    return info


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    itemsize = 2 if args.precision == "bf16" else 4
    weight_bytes = float(args.matrices * args.size * args.size * itemsize)
    extra: dict[str, Any] = {"backend": args.backend, "matrices": args.matrices,
                             "size": args.size, "chunk": args.chunk,
                             "weight_bytes_per_batch": int(weight_bytes), **blas_info()}
    if args.backend == "tensorflow":
        tf = _common.configure_tensorflow(args)
    else:
        tf = None
        _common.mark("tf_imported")  # the framework here is NumPy, imported with the module
    # built after the framework's import, so TIMING counts them as build, not imports
    weights = make_weights(args.matrices, args.size, args.seed)
    vectors = make_vectors(args.size, args.batch_size, args.seed)
    _common.report_settings(tf, args, "proxy", extra)
    if tf is not None:
        step = build_tf_chain(tf, weights, vectors, chunk=args.chunk, jit=args.xla == "on",
                              dtype=_common.compute_dtype(tf, args))
    else:
        chain = NumpyChain(weights, vectors)

        def step() -> np.ndarray:
            return chain.run(args.chunk)

    start = time.perf_counter()
    bw = Bandwidths(dram=dram_bandwidth(args.probe_mib), cache=cache_bandwidth(args.size),
                    level=fitting_level(weight_bytes, cache_sizes()))
    print(f"bandwidth probes: dram {bw.dram / 1e9:.2f} GB/s, cache {bw.cache / 1e9:.2f} GB/s "
          f"({time.perf_counter() - start:.2f} s)", flush=True)
    result = _common.measure(step, items_per_step=args.chunk * args.batch_size,
                             unit="samples/s", warmup_steps=args.warmup_steps,
                             seconds=args.seconds, intervals=args.intervals)
    line, sentence = proxy_line(weight_bytes=weight_bytes, batch=args.batch_size,
                                throughput=result.throughput, bw=bw)
    print(line)
    print(f"{args.backend}, batch {args.batch_size}: {sentence}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
