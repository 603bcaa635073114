"""The Parallel WaveNet workload: flow composition, the entropy identity, distillation learns,
and the small preset runs in both modes."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tests.conftest import final_throughput, reported_settings

tf = pytest.importorskip("tensorflow")

from workloads import parallel_wavenet as pw  # noqa: E402


def tiny_student(dtype: Any, *, flows: tuple[int, ...] = (2, 3, 1), hidden: int = 8,
                 conv_impl: str = "conv1d", seed: int = 5, spread: float = 5.0) -> pw.Student:
    """A small student whose last 1x1s are scaled up, so the s_i differ clearly from 1."""
    student = pw.Student(tf, flows=flows, hidden=hidden, seed=seed, param_dtype=dtype,
                         compute_dtype=dtype, conv_impl=conv_impl)
    for flow in student.flows:
        flow.o_w.assign(flow.o_w * spread)
    return student


def test_composed_location_and_scale_match_the_closed_forms() -> None:
    student = tiny_student(tf.float64)
    z = pw.logistic_noise(tf, (3, 40), (1, 2), tf.float64)
    mus, log_scales, xs = student.flow_outputs(z)
    mu = np.stack([m.numpy() for m in mus])          # (flows, batch, time)
    s = np.exp(np.stack([v.numpy() for v in log_scales]))
    assert s.min() < 0.7 and s.max() > 1.4  # the scales really differ from 1
    n = len(mus)
    s_tot = np.prod(s, axis=0)
    mu_tot = sum(mu[i] * np.prod(s[i + 1:], axis=0) for i in range(n))
    # the flows applied one by one end where the closed form says
    np.testing.assert_allclose(xs[-1].numpy(), z.numpy() * s_tot + mu_tot,
                               rtol=1e-12, atol=1e-12)
    # and the student's own composition (accumulated flow by flow) is the closed form
    x, mu_c, log_s_c = student(z)
    np.testing.assert_allclose(x.numpy(), xs[-1].numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mu_c.numpy(), mu_tot, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_s_c.numpy()), s_tot, rtol=1e-12)


def test_flows_are_causal_location_and_scale_see_only_earlier_noise() -> None:
    student = tiny_student(tf.float64)
    z = pw.logistic_noise(tf, (2, 40), (3, 4), tf.float64).numpy()
    bumped = z.copy()
    bumped[:, 20] += 3.0
    x0, mu0, ls0 = (v.numpy() for v in student(tf.constant(z)))
    x1, mu1, ls1 = (v.numpy() for v in student(tf.constant(bumped)))
    np.testing.assert_array_equal(mu0[:, :21], mu1[:, :21])
    np.testing.assert_array_equal(ls0[:, :21], ls1[:, :21])
    np.testing.assert_array_equal(x0[:, :20], x1[:, :20])
    assert np.abs(mu0[:, 21:] - mu1[:, 21:]).max() > 1e-6
    assert np.abs(x0[:, 20] - x1[:, 20]).min() > 1e-3


def test_both_dilated_convolutions_agree() -> None:
    z = pw.logistic_noise(tf, (2, 300), (5, 6), tf.float32)
    conv = tiny_student(tf.float32, flows=(11,), conv_impl="conv1d")(z)
    taps = tiny_student(tf.float32, flows=(11,), conv_impl="taps")(z)
    for a, b in zip(conv, taps, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dilation", [1, 2, 8])
def test_dilated_convolution_gradients_match_the_taps_formulation(dilation: int) -> None:
    """The hand-written gradient (which TensorFlow's own CPU kernels can run, oneDNN or not)
    equals the gradient of the same convolution written as one matmul over the shifted
    taps, for the input and for the kernel."""
    steps, c_in, c_out = 40, 5, 7
    x = tf.random.stateless_normal((2, steps + 2 * dilation, c_in), (1, dilation), dtype=tf.float64)
    w = tf.random.stateless_normal((3, c_in, c_out), (2, dilation), dtype=tf.float64)
    dy = tf.random.stateless_normal((2, steps, c_out), (3, dilation), dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        conv = pw.dilated_conv(tf, x, w, dilation)
        taps = pw.shifted_taps(tf, x, 3, dilation, steps)
        reference = tf.reshape(tf.matmul(tf.reshape(taps, [-1, 3 * c_in]),
                                         tf.reshape(w, [3 * c_in, c_out])), [2, steps, c_out])
        ours, theirs = tf.reduce_sum(conv * dy), tf.reduce_sum(reference * dy)
    np.testing.assert_allclose(conv.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)
    for mine, expected in zip(tape.gradient(ours, [x, w]), tape.gradient(theirs, [x, w]),
                              strict=True):
        assert float(tf.reduce_max(tf.abs(expected))) > 0.1
        np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-10, atol=1e-10)


def test_jacobian_is_triangular_with_log_det_sum_of_log_scales() -> None:
    """Change of variables: log p_S(x) = log p_z(z) - sum_t log s_tot(t) needs dx/dz to be
    lower triangular with diagonal s_tot."""
    student = tiny_student(tf.float64, conv_impl="taps")
    z = pw.logistic_noise(tf, (2, 12), (7, 8), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(z)
        x, _, log_s_tot = student(z)
    jac = tape.batch_jacobian(x, z).numpy()  # (batch, t, t')
    upper = np.triu(np.ones((12, 12), dtype=bool), k=1)
    assert np.all(jac[:, upper] == 0.0)
    assert np.abs(jac[:, ~upper & ~np.eye(12, dtype=bool)]).max() > 1e-4  # really autoregressive
    np.testing.assert_allclose(np.diagonal(jac, axis1=1, axis2=2), np.exp(log_s_tot.numpy()),
                               rtol=1e-10)
    _, logdet = np.linalg.slogdet(jac)
    np.testing.assert_allclose(logdet, log_s_tot.numpy().sum(axis=1), rtol=1e-8)


def test_logistic_entropy_is_log_scale_plus_two() -> None:
    n = 200_000
    loc, scale = 1.5, 0.37
    x = loc + scale * pw.logistic_noise(tf, (n,), (9, 9), tf.float64)
    nll = -pw.logistic_log_prob(tf, x, loc, np.log(scale)).numpy()
    tolerance = 5.0 * nll.std() / np.sqrt(n)
    assert abs(nll.mean() - (np.log(scale) + 2.0)) < tolerance


def test_student_entropy_matches_monte_carlo_negative_log_likelihood() -> None:
    """-E[log p_S(x)] (Monte Carlo over samples, the student's density evaluated as the
    product of its per-timestep logistics) equals E[sum_t log s_tot(t)] + 2T."""
    n, steps = 20_000, 16
    student = tiny_student(tf.float64, spread=2.0)  # wider makes rare samples overflow
    z = pw.logistic_noise(tf, (n, steps), (11, 12), tf.float64)
    x, mu_tot, log_s_tot = student(z)
    nll = -tf.reduce_sum(pw.logistic_log_prob(tf, x, mu_tot, log_s_tot), axis=1).numpy()
    entropy = pw.student_entropy(tf, log_s_tot).numpy()
    assert np.abs(log_s_tot.numpy()).mean() > 0.1  # scales far from 1: the term matters
    diff = nll - entropy
    tolerance = 5.0 * diff.std() / np.sqrt(n)
    assert abs(diff.mean()) < tolerance
    assert tolerance < 0.5  # a wrong constant (e.g. log s + 1 per step) would show


def test_full_size_student_starts_with_o1_scales() -> None:
    student = pw.Student(tf, flows=(10, 10, 10, 30), hidden=64, seed=1234,
                         param_dtype=tf.float32, compute_dtype=tf.float32)
    z = pw.logistic_noise(tf, (1, 512), (1, 2), tf.float32)
    x, _, log_s_tot = student(z)
    assert np.all(np.isfinite(x.numpy()))
    assert np.abs(log_s_tot.numpy()).max() < 3.0
    assert 0.5 < float(tf.math.reduce_std(x)) < 5.0


def test_kl_estimate_matches_plain_monte_carlo_kl() -> None:
    """The loss's KL (teacher NLL of per-timestep draws minus the analytic entropy) against
    mean(log p_S(x) - log p_T(x)) over student samples x, per timestep."""
    n, steps = 4000, 32
    student = tiny_student(tf.float32, spread=2.0)
    teacher = pw.Teacher(tf, seed=4, compute_dtype=tf.float32, layers=3, hidden=8, skip=8,
                         mixtures=3)
    z = pw.logistic_noise(tf, (n, steps), (13, 14), tf.float32)
    draws = pw.logistic_noise(tf, (n, steps, 2), (13, 15), tf.float32)
    x, mu_tot, log_s_tot = student(z)
    log_p_s = tf.reduce_sum(pw.logistic_log_prob(tf, x, mu_tot, log_s_tot), axis=1)
    log_p_t = tf.reduce_sum(pw.mixture_log_prob(tf, x, *teacher(x)), axis=1)
    plain = (log_p_s - log_p_t).numpy() / steps
    zeros = tf.zeros((1, steps // 2 + 1))  # power target, unused at weight 0
    _, kl, _ = pw.distill_loss(tf, student, teacher, z, draws, zeros, steps, 0.0)
    tolerance = 6.0 * plain.std() / np.sqrt(n)
    assert plain.mean() > 5 * tolerance  # the distributions really differ
    assert abs(float(kl) - plain.mean()) < tolerance, (float(kl), plain.mean(), tolerance)


def distill_setup(power_weight: float) -> tuple[float, float, float, float]:
    """(first total, last total, first kl, last kl) on fixed evaluation noise, 20 steps."""
    args = argparse.Namespace(batch_size=2, length=128, seed=3, xent_samples=4,
                              learning_rate=1e-2, xla="off")
    student = pw.Student(tf, flows=(2, 2), hidden=8, seed=3, param_dtype=tf.float32,
                         compute_dtype=tf.float32)
    teacher = pw.Teacher(tf, seed=3, compute_dtype=tf.float32, layers=3, hidden=8, skip=8,
                         mixtures=3)
    frame = pw.stft_frame(args.length)
    target = pw.average_power(tf, pw.real_signal(tf, args.length, args.seed), frame)
    z = pw.logistic_noise(tf, (8, args.length), (9, 9), tf.float32)
    draws = pw.logistic_noise(tf, (8, args.length, 4), (9, 10), tf.float32)

    def evaluate() -> tuple[float, float]:
        total, kl, _ = pw.distill_loss(tf, student, teacher, z, draws, target, frame,
                                       power_weight)
        return float(total), float(kl)

    first = evaluate()
    step = pw.build_distill_step(tf, student, teacher, args, power_weight=power_weight)
    teacher_before = [v.numpy() for v in teacher.variables]
    for _ in range(20):
        assert np.isfinite(step().numpy())
    for before, after in zip(teacher_before, teacher.variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())  # only the student learns
    last = evaluate()
    return first[0], last[0], first[1], last[1]


def test_distillation_loss_decreases() -> None:
    first, last, _, _ = distill_setup(pw.POWER_WEIGHT)
    assert last < 0.5 * first, (first, last)


def test_kl_alone_decreases() -> None:
    _, _, first_kl, last_kl = distill_setup(0.0)
    assert first_kl > 0.0 and last_kl < 0.75 * first_kl, (first_kl, last_kl)


@pytest.mark.parametrize(("mode", "unit", "reference"), [
    # 8-12 s each; test_onednn runs both modes' small presets in the default run
    pytest.param("generate", "timesteps/s", r"^Parallel WaveNet: ([0-9.]+) timesteps/sec$",
                 marks=pytest.mark.slow),
    pytest.param("distill", "steps/s", r"^Parallel WaveNet distillation: ([0-9.]+) steps/sec$",
                 marks=pytest.mark.slow),
])
def test_small_preset_runs(mode: str, unit: str, reference: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workloads.parallel_wavenet", "--preset", "small", "--mode", mode,
         "--seconds", "1", "--intervals", "2", "--warmup-steps", "1", "--intra-op", "2",
         "--inter-op", "1"],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    settings = reported_settings(proc.stdout)
    assert settings["workload"] == "parallel_wavenet" and settings["mode"] == mode
    assert settings["intra_op"] == 2 and settings["inter_op"] == 1
    assert settings["affinity"] and "mempolicy" in settings
    assert settings["flows"] == list(pw.parse_flows(pw.PRESETS["small"]["flows"]))
    assert settings["hidden"] == pw.PRESETS["small"]["hidden"]
    assert settings["length"] == pw.PRESETS["small"]["length"]
    assert settings["parameters"] > 0
    assert ("teacher" in settings) == (mode == "distill")
    metrics = [x for x in proc.stdout.splitlines() if x.startswith("METRIC ")]
    assert len(metrics) == 2 and all(f"unit={unit}" in x for x in metrics)
    final = final_throughput(proc.stdout)
    assert final > 0
    match = re.search(reference, proc.stdout, re.MULTILINE)
    assert match and float(match.group(1)) == pytest.approx(final, rel=1e-3)


def test_bad_flows_are_rejected() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.parallel_wavenet", "--flows", "3,0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--flows" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["generate", "distill"])
def test_full_preset_runs(mode: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.parallel_wavenet", "--preset", "full",
                           "--mode", mode, "--seconds", "5", "--intervals", "1",
                           "--warmup-steps", "1"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "Parallel WaveNet" in proc.stdout
