"""The WaveNet workload: fast generation is the naive full-window generation, only faster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT, final_throughput, reported_settings
from tuner.execution.parsers import make_parser
from tuner.spec.models import ParserSpec
from workloads import wavenet

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def generate(tf: Any, model: wavenet.WaveNet, algorithm: str, chunks: list[int], *,
             jit: bool = False, batch: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Samples [B, T] and logits [B, T, Q] in float64, generated in calls of ``chunks``."""
    generator = wavenet.make_generator(tf, model, algorithm=algorithm, batch=batch, seed=11,
                                       dtype=tf.float64)
    steps = {chunk: wavenet.build_generate(tf, generator, chunk=chunk, jit=jit,
                                           with_logits=True) for chunk in set(chunks)}
    samples, logits = [], []
    for chunk in chunks:
        s, lg = steps[chunk]()
        samples.append(s.numpy())
        logits.append(lg.numpy())
    return np.concatenate(samples, axis=1), np.concatenate(logits, axis=1)


def tiny_model(tf: Any, max_dilation: int) -> wavenet.WaveNet:
    config = wavenet.WaveNetConfig.stacked(2, max_dilation, residual_channels=8,
                                           dilation_channels=8, skip_channels=32)
    return wavenet.WaveNet(tf, config, seed=5)


def assert_same_generation(fast: tuple[np.ndarray, np.ndarray],
                           naive: tuple[np.ndarray, np.ndarray], length: int) -> None:
    assert fast[0].shape == naive[0].shape == (2, length)
    # the model is not degenerate: the two sequences differ and use many of the 256 codes
    assert not np.array_equal(fast[0][0], fast[0][1])
    assert len(np.unique(fast[0])) > 40
    np.testing.assert_allclose(fast[1], naive[1], rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(fast[0], naive[0])


def test_fast_generation_equals_naive_full_window_generation(tf: Any) -> None:
    """Float64 on both sides, so no rounding difference can flip a draw: every one of 300
    samples of 2 sequences is the same, and every step's logits agree to 1e-9. The chunks
    differ (3 x 100 against 2 x 150), so the state carried between calls is checked too."""
    model = tiny_model(tf, 16)  # dilations 1..16 twice: receptive field 64 < 300 samples
    assert model.config.receptive_field == 64
    fast = generate(tf, model, "fast", [100, 100, 100])
    naive = generate(tf, model, "naive", [150, 150])
    assert_same_generation(fast, naive, 300)


def test_fast_generation_under_xla_equals_naive_under_xla(tf: Any) -> None:
    """XLA's sampler draws other numbers than TensorFlow's CPU kernel for the same seed, so
    the compiled fast loop is compared with the compiled naive loop."""
    model = tiny_model(tf, 4)
    fast = generate(tf, model, "fast", [60, 60], jit=True)
    naive = generate(tf, model, "naive", [120], jit=True)
    assert_same_generation(fast, naive, 120)


def test_sizes_of_the_reference_model(tf: Any) -> None:
    config = wavenet.WaveNetConfig.stacked(5, 512, residual_channels=32, dilation_channels=32,
                                           skip_channels=512)
    assert config.layers == 50 and config.dilations[:11] == (*[2 ** k for k in range(10)], 1)
    assert config.receptive_field == 5117  # ibab's: (2 - 1) * sum(dilations) + 1 + (2 - 1)
    model = wavenet.WaveNet(tf, config, seed=1)
    r, s, q = 32, 512, 256
    expected = (2 * q * r + 50 * (2 * r * 64 + 64 + 32 * r + r + 32 * s + s)
                + s * s + s + s * q + q)
    assert model.parameter_count == expected
    # a sample reads all weights but 2Q-2 embedding rows and the last layer's residual 1x1,
    # and reads the skip biases once, summed
    unread = (2 * q - 2) * r + (32 * r + r) + 49 * s
    assert model.weight_elements_per_sample() == expected - unread


def test_small_preset_runs_and_reports(tmp_path: Any) -> None:
    cmd = [sys.executable, "-m", "workloads.wavenet", "--preset", "small", "--seconds", "1",
           "--intervals", "2", "--warmup-steps", "1", "--chunk", "200", "--inter-op", "1",
           "--intra-op", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = reported_settings(proc.stdout)
    assert settings["workload"] == "wavenet" and settings["preset"] == "small"
    assert settings["inter_op"] == 1 and settings["intra_op"] == 1
    assert settings["affinity"] == sorted(os.sched_getaffinity(0))
    assert settings["algorithm"] == "fast" and settings["chunk"] == 200
    assert settings["layers"] == 14 and settings["receptive_field"] == 256
    assert 0 < settings["weight_bytes_per_sample"] < 4 * settings["parameters"]
    metrics = [line for line in proc.stdout.splitlines() if line.startswith("METRIC ")]
    assert len(metrics) == 2 and all("unit=samples/s" in line for line in metrics)
    assert len(re.findall(r"^step \d+ - samples/sec: [0-9.]+$", proc.stdout, re.M)) == 2
    final = final_throughput(proc.stdout)
    items = float(re.search(r"^FINAL .*items=(\S+)", proc.stdout, re.M).group(1))
    assert final > 0 and items % 200 == 0  # whole chunks of samples
    average = re.search(r"^Average Throughput of whole run: Samples / sec: ([0-9.]+)$",
                        proc.stdout, re.M)
    assert average is not None and float(average.group(1)) == pytest.approx(final, abs=0.01)
    parser = make_parser(ParserSpec(preset="wavenet"))  # tuner's parser for the reference
    for line in proc.stdout.splitlines():
        parser.feed(line)
    assert parser.result()["throughput"] == pytest.approx(final, abs=0.01)
    assert len(parser.intervals("throughput")) == 2


def test_bad_flags_are_rejected() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.wavenet", "--max-dilation", "6"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "power of two" in proc.stderr


@pytest.mark.slow
def test_full_preset_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.wavenet", "--preset", "full",
                           "--seconds", "5", "--intervals", "1"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert reported_settings(proc.stdout)["receptive_field"] == 5117
    assert "Average Throughput of whole run: Samples / sec:" in proc.stdout
