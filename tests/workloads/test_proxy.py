"""The WaveNet proxy: both backends compute the same chain, batching changes nothing but speed,
and the PROXY line is consistent with the measurement."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT, final_throughput, reported_settings
from workloads import proxy

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

K, N, B = 6, 16, 3  # matrices, size, batch of the in-process tests


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def reference(weights: np.ndarray, vectors: np.ndarray, samples: int) -> np.ndarray:
    """v <- M_k v for k = 1..K, ``samples`` times, in float64."""
    v = vectors.astype(np.float64)
    for _ in range(samples):
        for m in weights.astype(np.float64):
            v = m @ v
    return v / np.linalg.norm(v, axis=0)


def tf_chain(tf: Any, weights: np.ndarray, vectors: np.ndarray, chunk: int, *,
             dtype: str = "float32", jit: bool = False) -> Any:
    return proxy.build_tf_chain(tf, weights, vectors, chunk=chunk, dtype=getattr(tf, dtype),
                                jit=jit)


def test_weights_are_orthogonal_and_seeded() -> None:
    w = proxy.make_weights(K, N, seed=3)
    assert w.shape == (K, N, N) and w.dtype == np.float32
    np.testing.assert_allclose(w @ w.transpose(0, 2, 1), np.broadcast_to(np.eye(N), w.shape),
                               atol=1e-5)
    assert not np.allclose(w[0], w[1])
    np.testing.assert_array_equal(w, proxy.make_weights(K, N, seed=3))


def test_numpy_chain_computes_the_chain_in_order() -> None:
    w, v = proxy.make_weights(K, N, seed=3), proxy.make_vectors(N, B, seed=3)
    chain = proxy.NumpyChain(w, v)
    first = chain.run(4)
    second = chain.run(3)  # continues from where the first call stopped
    np.testing.assert_allclose(first, reference(w, v, 4), atol=1e-5)
    np.testing.assert_allclose(second, reference(w, v, 7), atol=1e-5)
    assert not np.allclose(second, reference(w[::-1], v, 7), atol=1e-2)  # order matters
    assert not np.allclose(first, second, atol=1e-2)


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_tensorflow_chain_equals_numpy_chain(tf: Any, jit: bool) -> None:
    w, v = proxy.make_weights(K, N, seed=5), proxy.make_vectors(N, B, seed=5)
    step = tf_chain(tf, w, v, 5, jit=jit)
    chain = proxy.NumpyChain(w, v)
    for _ in range(2):  # the vectors carry over between compiled calls
        np.testing.assert_allclose(step(), chain.run(5), atol=1e-5)


def test_batched_equals_one_vector_at_a_time(tf: Any) -> None:
    w, v = proxy.make_weights(K, N, seed=7), proxy.make_vectors(N, B, seed=7)
    batched_np = proxy.NumpyChain(w, v).run(6)
    batched_tf = tf_chain(tf, w, v, 6)()
    for col in range(B):
        one = v[:, col:col + 1]
        np.testing.assert_allclose(batched_np[:, col:col + 1],
                                   proxy.NumpyChain(w, one).run(6), atol=1e-5)
        np.testing.assert_allclose(batched_tf[:, col:col + 1], tf_chain(tf, w, one, 6)(),
                                   atol=1e-5)
    assert not np.allclose(batched_np[:, 0], batched_np[:, 1], atol=1e-2)


def test_bf16_chain_stays_close_to_float32(tf: Any) -> None:
    w, v = proxy.make_weights(K, 64, seed=9), proxy.make_vectors(64, B, seed=9)
    low = tf_chain(tf, w, v, 1, dtype="bfloat16")()
    cosine = np.sum(low * reference(w, v, 1), axis=0)
    assert np.all(cosine > 0.98) and not np.allclose(low, reference(w, v, 1), atol=1e-6)


def test_cache_levels_and_the_bound(tmp_path: Path) -> None:
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "1024K"), (3, "Unified", "32M")]):
        path = tmp_path / f"index{index}"
        path.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (path / name).write_text(f"{value}\n")
    levels = proxy.cache_sizes(tmp_path)
    assert levels == [("L1", 48 * 2 ** 10), ("L2", 2 ** 20), ("L3", 32 * 2 ** 20)]
    assert proxy.fitting_level(5.2e6, levels) == "L3"
    assert proxy.fitting_level(40e6, levels) == "DRAM"
    assert proxy.fitting_level(5.2e6, []) == "unknown"
    bw = proxy.Bandwidths(dram=20e9, cache=100e9, level="L3")
    line, _ = proxy.proxy_line(weight_bytes=5e6, batch=4, throughput=1000.0, bw=bw)
    fields = dict(item.split("=") for item in line.split()[1:])
    assert float(fields["weights_per_sample_bytes"]) == 1.25e6  # weights read once per batch
    assert float(fields["achieved_bytes_per_s"]) == 1.25e9
    assert float(fields["bound_samples_per_s"]) == pytest.approx(100e9 / 1.25e6)
    dram = proxy.Bandwidths(dram=20e9, cache=100e9, level="DRAM")
    line, _ = proxy.proxy_line(weight_bytes=5e6, batch=1, throughput=1000.0, bw=dram)
    assert "bound_samples_per_s=4000 " in line


def run_small(*extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "workloads.proxy", "--preset", "small", "--seconds", "1",
           "--intervals", "2", "--warmup-steps", "1", "--chunk", "50", "--probe-mib", "64",
           *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)


def check_output(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = reported_settings(proc.stdout)
    assert settings["workload"] == "proxy" and settings["matrices"] == 80
    assert settings["affinity"] == sorted(os.sched_getaffinity(0))
    metrics = [line for line in proc.stdout.splitlines() if line.startswith("METRIC ")]
    assert len(metrics) == 2 and all("unit=samples/s" in line for line in metrics)
    throughput = final_throughput(proc.stdout)
    match = re.search(r"^PROXY (.*)$", proc.stdout, re.M)
    assert match is not None
    fields = dict(item.split("=") for item in match.group(1).split())
    per_sample = float(fields["weights_per_sample_bytes"])
    assert per_sample == 80 * 128 * 128 * 4
    assert float(fields["achieved_bytes_per_s"]) == pytest.approx(per_sample * throughput,
                                                                  rel=1e-4)
    dram, cache = float(fields["dram_bytes_per_s"]), float(fields["cache_bytes_per_s"])
    assert dram > 1e8 and cache > 1e8
    used = dram if fields["weights_fit_in"] == "DRAM" else cache
    assert float(fields["bound_samples_per_s"]) == pytest.approx(used / per_sample, rel=1e-4)
    assert "samples/s move" in proc.stdout  # the sentence
    return settings


def test_numpy_backend_smoke() -> None:
    settings = check_output(run_small("--backend", "numpy"))
    assert settings["backend"] == "numpy" and settings["inter_op"] is None
    assert "not imported" in (settings["tensorflow"] or "not imported")


@pytest.mark.slow  # test_onednn.py runs the TensorFlow backend in the default run
def test_tensorflow_backend_smoke() -> None:
    proc = run_small("--backend", "tensorflow", "--inter-op", "1", "--intra-op", "1")
    settings = check_output(proc)
    assert settings["backend"] == "tensorflow"
    assert settings["inter_op"] == 1 and settings["intra_op"] == 1
    # the numpy backend prints the same keys without importing TensorFlow
    numpy_keys = set(reported_settings(run_small("--seconds", "0.2", "--intervals", "1").stdout))
    assert numpy_keys == set(settings)


def test_bf16_with_numpy_is_rejected() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.proxy", "--precision", "bf16"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "needs --backend tensorflow" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "tensorflow"])
def test_full_preset_runs(backend: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.proxy", "--preset", "full",
                           "--backend", backend, "--seconds", "5", "--intervals", "1"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PROXY weights_per_sample_bytes=" in proc.stdout
