"""Parallel WaveNet: the IAF student generating every timestep at once, and its distillation.

Parallel WaveNet (van den Oord et al. 2017) turns logistic noise z ~ Logistic(0, 1) into audio
with a stack of inverse-autoregressive flows. Flow i is a WaveNet-like network (dilated causal
convolutions of width 3, gated tanh/sigmoid units, residual 1x1s, *no* skip connections) that
reads the previous flow's output x^{i-1} (x^0 = z) shifted right by one timestep, so its outputs
at t depend only on x^{i-1}_{<t}, and emits a location mu_i and a log-scale log s_i per timestep;
x^i = x^{i-1} * s_i + mu_i. The last residual layer's output goes through relu, 1x1, relu, 1x1
to (mu, log s). Because every flow only looks at its input, all timesteps are computed in
parallel. The composed flow is a logistic per timestep: x^N = z * s_tot + mu_tot with
s_tot = prod_i s_i and mu_tot = sum_i mu_i prod_{j>i} s_j (accumulated flow by flow).
Unconditional (no linguistic features); weights random with fixed seeds, the last 1x1 of each
flow initialised small so every s_i starts near 1 and the output stays O(1) over the flows.

``--mode generate`` (default) times one compiled forward pass through all flows on fresh noise
of ``--length`` timesteps and ``--batch-size`` sequences: throughput in timesteps/s (length x
batch per step). Prints ``Parallel WaveNet: X timesteps/sec``.

``--mode distill`` times one Adam step of Probability Density Distillation on the student
against a fixed, randomly initialised WaveNet teacher (10 layers of dilations 1..512, width 3,
64 residual and 64 skip channels, output a mixture of 10 continuous logistics), evaluated
teacher-forced on the student's sample, so all timesteps in parallel. The loss per timestep is
KL(P_S || P_T) = H(P_S, P_T) - H(P_S): the cross-entropy is the teacher's negative
log-likelihood of ``--xent-samples`` draws x'_t ~ Logistic(mu_tot(t), s_tot(t)) per timestep
(the paper's per-timestep estimator; the teacher's distribution at t depends on the student's
sample x_{<t} only), the student's entropy is analytic, sum_t log s_tot(t) + 2T. Plus the power
loss: the squared difference between the time-averaged |STFT|^2 of the student's output and of
a fixed synthetic "real" signal (a mixture of sines plus noise). Throughput in steps/s; prints
``Parallel WaveNet distillation: X steps/sec``.

Dilated convolutions are ``tf.nn.conv1d`` with dilations, differentiated by hand
(``dilated_conv``): TensorFlow's own CPU kernels (Eigen), which it uses whenever oneDNN is off,
can run a dilated convolution but not its gradient ("Current CPU implementations do not yet
support dilation rates larger than 1"), and whether oneDNN is on depends on the CPU as well as
on ``TF_ENABLE_ONEDNN_OPTS`` (TensorFlow leaves it off by default on CPUs without AVX-512). The
gradient for the input is the dilated convolution of the output gradient with the flipped,
transposed kernel, and for the kernel one matmul of the three shifted taps with the output
gradient: operations every CPU kernel set runs, so training works the same with oneDNN on or
off, with or without XLA. (``taps``, the whole convolution as that one matmul, is the
reference the tests compare it with.)

Presets: ``full`` is the paper's student (flows of 10, 10, 10 and 30 layers, dilations
1, 2, ..., 512 repeated, 64 hidden units, 24 kHz) on 24000 timesteps (1 s of audio), batch 1;
``small`` keeps the character (compute-bound, parallel over time) with flows of 4, 4, 4 and 6
layers, 32 hidden units and 4000 timesteps, so a run takes seconds on 2 cores. The teacher is
the same in both presets.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from workloads import _common

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"flows": "4,4,4,6", "hidden": 32, "length": 4000, "batch_size": 1,
              "warmup_steps": 2, "seconds": 3.0, "intervals": 3},
    "full": {"flows": "10,10,10,30", "hidden": 64, "length": 24000, "batch_size": 1,
             "warmup_steps": 3, "seconds": 60.0, "intervals": 6},
}

SAMPLE_RATE = 24000
FILTER_WIDTH = 3
MAX_DILATION_LOG2 = 9  # dilations 1, 2, ..., 512, repeated
TEACHER_LAYERS = 10
TEACHER_HIDDEN = 64
TEACHER_SKIP = 64
MIXTURES = 10
STFT_FRAME = 512
POWER_WEIGHT = 1.0
MIN_LOG_SCALE = -7.0  # teacher's logistic components (as PixelCNN++)
UNIFORM_EPS = 1e-6  # keeps logistic noise finite


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _common.base_parser(prog="python -m workloads.parallel_wavenet",
                                 description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--mode", choices=("generate", "distill"), default="generate")
    parser.add_argument("--length", type=int, default=None, metavar="T",
                        help="timesteps generated per forward pass")
    parser.add_argument("--flows", type=str, default=None, metavar="L1,L2,...",
                        help="residual layers per flow, comma-separated")
    parser.add_argument("--hidden", type=int, default=None, metavar="N",
                        help="hidden (residual) units of every flow")
    parser.add_argument("--xent-samples", type=int, default=4, metavar="K",
                        help="distill: student draws per timestep for the cross-entropy")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    return parser


def parse_flows(text: str) -> tuple[int, ...]:
    layers = tuple(int(part) for part in text.split(",") if part.strip())
    if not layers or min(layers) < 1:
        raise ValueError(f"--flows needs positive layer counts, got {text!r}")
    return layers


def dilations(layers: int) -> list[int]:
    return [2 ** (i % (MAX_DILATION_LOG2 + 1)) for i in range(layers)]


def shifted_taps(tf: Any, padded: Any, width: int, dilation: int, steps: Any) -> Any:
    """(batch, steps, width * channels): the ``width`` inputs each output of a VALID dilated
    convolution reads, side by side (tap k at offset k * dilation)."""
    return tf.concat([padded[:, k * dilation:k * dilation + steps] for k in range(width)],
                     axis=-1)


def dilated_conv(tf: Any, padded: Any, kernel: Any, dilation: int) -> Any:
    """``tf.nn.conv1d(padded, kernel, 1, "VALID", dilations=dilation)`` with a gradient that
    every CPU kernel set can run (Eigen's cannot differentiate dilation > 1): for the input,
    the dilated convolution of the output gradient (padded by the kernel's reach on both
    sides) with the kernel flipped in time and transposed; for the kernel, the shifted taps
    of the input times the output gradient, one matmul. A dilation of 1 keeps TensorFlow's
    own gradient."""
    if dilation == 1:
        return tf.nn.conv1d(padded, kernel, stride=1, padding="VALID")

    @tf.custom_gradient
    def conv(x: Any, w: Any) -> Any:
        y = tf.nn.conv1d(x, w, stride=1, padding="VALID", dilations=dilation)

        def grad(dy: Any) -> tuple[Any, Any]:
            width, channels_in, channels_out = w.shape
            reach = (width - 1) * dilation
            flipped = tf.transpose(tf.reverse(w, axis=[0]), [0, 2, 1])
            dx = tf.nn.conv1d(tf.pad(dy, [[0, 0], [reach, reach], [0, 0]]), flipped, stride=1,
                              padding="VALID", dilations=dilation)
            taps = shifted_taps(tf, x, width, dilation, tf.shape(dy)[1])
            dw = tf.matmul(tf.reshape(taps, [-1, width * channels_in]),
                           tf.reshape(dy, [-1, channels_out]), transpose_a=True)
            return dx, tf.reshape(dw, [width, channels_in, channels_out])

        return y, grad

    return conv(padded, kernel)


class _Weights:
    """Variables drawn from stateless normals keyed by (seed, counter): reproducible."""

    def __init__(self, tf: Any, *, seed: int, dtype: Any, trainable: bool) -> None:
        self.tf = tf
        self.seed = seed
        self.dtype = dtype
        self.trainable = trainable
        self.count = 0
        self.variables: list[Any] = []

    def normal(self, shape: Sequence[int], std: float, name: str) -> Any:
        self.count += 1
        init = self.tf.random.stateless_normal(shape, seed=(self.seed, self.count),
                                               stddev=std, dtype=self.dtype)
        var = self.tf.Variable(init, trainable=self.trainable, name=name)
        self.variables.append(var)
        return var

    def zeros(self, shape: Sequence[int], name: str) -> Any:
        var = self.tf.Variable(self.tf.zeros(shape, self.dtype), trainable=self.trainable,
                               name=name)
        self.variables.append(var)
        return var


class CausalWaveNet:
    """A WaveNet stack over a scalar signal: input shifted right by one (outputs at t see only
    inputs before t), a width-3 causal input convolution, gated residual layers with dilations
    1..512 (repeated), optional skip connections, and relu-1x1-relu-1x1 to ``outputs`` channels.
    """

    def __init__(self, tf: Any, *, layers: int, hidden: int, outputs: int, seed: int,
                 param_dtype: Any, compute_dtype: Any, skip: int | None = None,
                 out_std: float = 1.0, trainable: bool = True, conv_impl: str = "conv1d",
                 name: str = "net") -> None:
        self.tf = tf
        self.compute_dtype = compute_dtype
        self.hidden = hidden
        self.dilations = dilations(layers)
        self.conv_impl = conv_impl
        w = _Weights(tf, seed=seed, dtype=param_dtype, trainable=trainable)
        width = FILTER_WIDTH
        self.in_w = w.normal((width, 1, hidden), 1.0 / math.sqrt(width), f"{name}_in_w")
        self.in_b = w.zeros((hidden,), f"{name}_in_b")
        res_std = 1.0 / math.sqrt(hidden * layers)  # residual sum stays O(1) over the stack
        self.layers = []
        for i in range(layers):
            layer = {
                "w": w.normal((width, hidden, 2 * hidden), 1.0 / math.sqrt(width * hidden),
                              f"{name}_l{i}_w"),
                "b": w.zeros((2 * hidden,), f"{name}_l{i}_b"),
                "rw": w.normal((hidden, hidden), res_std, f"{name}_l{i}_rw"),
                "rb": w.zeros((hidden,), f"{name}_l{i}_rb"),
            }
            if skip is not None:
                layer["sw"] = w.normal((hidden, skip), 1.0 / math.sqrt(hidden * layers),
                                       f"{name}_l{i}_sw")
            self.layers.append(layer)
        self.skip = skip
        head = skip if skip is not None else hidden
        self.h_w = w.normal((head, head), math.sqrt(2.0 / head), f"{name}_head_w")
        self.h_b = w.zeros((head,), f"{name}_head_b")
        self.o_w = w.normal((head, outputs), out_std * math.sqrt(1.0 / head), f"{name}_out_w")
        self.o_b = w.zeros((outputs,), f"{name}_out_b")
        self.variables = w.variables

    def _cast(self, v: Any) -> Any:
        return self.tf.cast(v, self.compute_dtype)

    def _dense(self, x: Any, w: Any, b: Any) -> Any:
        tf = self.tf
        shape = tf.shape(x)
        y = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), self._cast(w)) + self._cast(b)
        return tf.reshape(y, tf.concat([shape[:-1], [w.shape[-1]]], 0))

    def _causal_conv(self, x: Any, w: Any, b: Any, dilation: int) -> Any:
        """y[t] = sum_k x[t - (width-1-k) * dilation] W[k] + b over (batch, time, channels)."""
        tf = self.tf
        width = w.shape[0]
        padded = tf.pad(x, [[0, 0], [(width - 1) * dilation, 0], [0, 0]])
        if self.conv_impl == "conv1d":
            return dilated_conv(tf, padded, self._cast(w), dilation) + self._cast(b)
        taps = shifted_taps(tf, padded, width, dilation, tf.shape(x)[1])
        flat = tf.reshape(w, [width * w.shape[1], w.shape[2]])
        return self._dense(taps, flat, b)

    def __call__(self, signal: Any) -> Any:
        """signal (batch, time) -> (batch, time, outputs), in the compute dtype."""
        tf = self.tf
        shifted = tf.pad(signal[:, :-1], [[0, 0], [1, 0]])
        h = self._causal_conv(self._cast(shifted)[:, :, None], self.in_w, self.in_b, 1)
        skips = None
        for layer, dilation in zip(self.layers, self.dilations, strict=True):
            a = self._causal_conv(h, layer["w"], layer["b"], dilation)
            gated = tf.tanh(a[..., :self.hidden]) * tf.sigmoid(a[..., self.hidden:])
            h = h + self._dense(gated, layer["rw"], layer["rb"])
            if self.skip is not None:
                s = tf.matmul(tf.reshape(gated, [-1, self.hidden]), self._cast(layer["sw"]))
                skips = s if skips is None else skips + s
        if skips is not None:
            h = tf.reshape(skips, tf.concat([tf.shape(h)[:-1], [self.skip]], 0))
        h = tf.nn.relu(self._dense(tf.nn.relu(h), self.h_w, self.h_b))
        return self._dense(h, self.o_w, self.o_b)


class Student:
    """The IAF stack. ``flow_outputs`` applies the flows one by one; ``__call__`` also composes
    (mu_tot, log s_tot) so that x^N = z * s_tot + mu_tot. Flow arithmetic is in ``param_dtype``
    (fp32, or float64 in tests); the networks run in ``compute_dtype``."""

    def __init__(self, tf: Any, *, flows: Sequence[int], hidden: int, seed: int,
                 param_dtype: Any, compute_dtype: Any, conv_impl: str = "conv1d") -> None:
        self.tf = tf
        self.param_dtype = param_dtype
        self.flows = [
            CausalWaveNet(tf, layers=layers, hidden=hidden, outputs=2, seed=seed * 1000 + i,
                          param_dtype=param_dtype, compute_dtype=compute_dtype,
                          out_std=0.1, conv_impl=conv_impl, name=f"flow{i}")
            for i, layers in enumerate(flows)
        ]
        self.variables = [v for flow in self.flows for v in flow.variables]

    def _flow(self, flow: Any, x: Any) -> tuple[Any, Any]:
        """One flow's (mu, log s) for its input x, each (batch, time)."""
        out = self.tf.cast(flow(x), self.param_dtype)
        return out[..., 0], out[..., 1]

    def flow_outputs(self, z: Any) -> tuple[list[Any], list[Any], list[Any]]:
        """Per-flow (mu_i, log s_i) and the outputs x^1..x^N, each (batch, time)."""
        x = z
        mus, log_scales, xs = [], [], []
        for flow in self.flows:
            mu, log_s = self._flow(flow, x)
            x = x * self.tf.exp(log_s) + mu
            mus.append(mu)
            log_scales.append(log_s)
            xs.append(x)
        return mus, log_scales, xs

    def __call__(self, z: Any) -> tuple[Any, Any, Any]:
        """x^N, mu_tot, log s_tot (each (batch, time)) for noise z."""
        tf = self.tf
        x = z
        mu_tot = tf.zeros_like(z)
        log_s_tot = tf.zeros_like(z)
        for flow in self.flows:
            mu, log_s = self._flow(flow, x)
            scale = tf.exp(log_s)
            x = x * scale + mu
            mu_tot = mu_tot * scale + mu
            log_s_tot = log_s_tot + log_s
        return x, mu_tot, log_s_tot


class Teacher:
    """A WaveNet (skip connections) whose output per timestep is a mixture of logistics:
    logits, means and log-scales of ``mixtures`` components. Fixed weights."""

    def __init__(self, tf: Any, *, seed: int, compute_dtype: Any, layers: int = TEACHER_LAYERS,
                 hidden: int = TEACHER_HIDDEN, skip: int = TEACHER_SKIP,
                 mixtures: int = MIXTURES, conv_impl: str = "conv1d") -> None:
        self.tf = tf
        self.mixtures = mixtures
        self.net = CausalWaveNet(tf, layers=layers, hidden=hidden, outputs=3 * mixtures,
                                 seed=seed * 1000 + 999, param_dtype=tf.float32,
                                 compute_dtype=compute_dtype, skip=skip, trainable=False,
                                 conv_impl=conv_impl, name="teacher")
        self.variables = self.net.variables

    def __call__(self, signal: Any) -> tuple[Any, Any, Any]:
        """(logits, means, log_scales), each (batch, time, mixtures), for x_t given x_{<t}."""
        tf = self.tf
        out = tf.cast(self.net(signal), signal.dtype)
        k = self.mixtures
        log_scales = tf.maximum(out[..., 2 * k:], MIN_LOG_SCALE)
        return out[..., :k], out[..., k:2 * k], log_scales


def logistic_noise(tf: Any, shape: Sequence[int] | Any, seed: Any, dtype: Any) -> Any:
    """Standard logistic samples, log u - log(1 - u), from a stateless uniform."""
    u = tf.random.stateless_uniform(shape, seed=seed, minval=UNIFORM_EPS,
                                    maxval=1.0 - UNIFORM_EPS, dtype=dtype)
    return tf.math.log(u) - tf.math.log1p(-u)


def logistic_log_prob(tf: Any, x: Any, loc: Any, log_scale: Any) -> Any:
    """log density of Logistic(loc, exp(log_scale)) at x, elementwise."""
    u = (x - loc) * tf.exp(-log_scale)
    return -u - log_scale - 2.0 * tf.nn.softplus(-u)


def mixture_log_prob(tf: Any, x: Any, logits: Any, means: Any, log_scales: Any) -> Any:
    """log density of a mixture of logistics at x (..., ) with components on the last axis."""
    comp = logistic_log_prob(tf, x[..., None], means, log_scales)
    return tf.reduce_logsumexp(tf.nn.log_softmax(logits, axis=-1) + comp, axis=-1)


def student_entropy(tf: Any, log_s_tot: Any) -> Any:
    """H(P_S) per sequence: sum_t log s_tot(t) + 2T (a logistic of scale s has entropy
    log s + 2)."""
    steps = tf.cast(tf.shape(log_s_tot)[-1], log_s_tot.dtype)
    return tf.reduce_sum(log_s_tot, axis=-1) + 2.0 * steps


def stft_frame(length: int) -> int:
    """STFT frame length: 512, or the largest power of two that fits a shorter signal."""
    return min(STFT_FRAME, 2 ** int(math.log2(max(length, 2))))


def average_power(tf: Any, signal: Any, frame: int) -> Any:
    """|STFT|^2 averaged over time (and divided by the frame length): (batch, frame/2 + 1)."""
    spec = tf.signal.stft(signal, frame_length=frame, frame_step=max(frame // 4, 1),
                          fft_length=frame)
    return tf.reduce_mean(tf.square(tf.abs(spec)), axis=-2) / frame


def real_signal(tf: Any, length: int, seed: int) -> Any:
    """The fixed synthetic "real" audio: a mixture of sines (110-1760 Hz) plus noise, (1, T)."""
    t = tf.range(length, dtype=tf.float32) / SAMPLE_RATE
    freqs = (110.0, 220.0, 440.0, 880.0, 1760.0)
    amps = (0.3, 0.2, 0.15, 0.1, 0.05)
    wave = tf.add_n([a * tf.sin(2.0 * math.pi * f * t) for f, a in zip(freqs, amps,
                                                                         strict=True)])
    noise = 0.02 * tf.random.stateless_normal((length,), seed=(seed, 7))
    return (wave + noise)[None, :]


def distill_loss(tf: Any, student: Student, teacher: Teacher, z: Any, draws: Any,
                 target_power: Any, frame: int,
                 power_weight: float = POWER_WEIGHT) -> tuple[Any, Any, Any]:
    """(total, kl, power) for noise z (batch, T) and logistic draws (batch, T, K).

    kl is KL(P_S || P_T) per timestep: the teacher's negative log-likelihood of the draws
    x'_t = mu_tot + s_tot * eps (its distribution at t conditioned on the student's sample
    x_{<t}), minus the student's analytic entropy."""
    x, mu_tot, log_s_tot = student(z)
    logits, means, log_scales = teacher(x)
    samples = mu_tot[..., None] + tf.exp(log_s_tot)[..., None] * draws
    teacher_lp = mixture_log_prob(tf, samples, logits[:, :, None], means[:, :, None],
                                  log_scales[:, :, None])
    cross_entropy = -tf.reduce_sum(tf.reduce_mean(teacher_lp, axis=-1), axis=-1)
    steps = tf.cast(tf.shape(z)[-1], z.dtype)
    kl = tf.reduce_mean(cross_entropy - student_entropy(tf, log_s_tot)) / steps
    power = tf.reduce_mean(tf.square(average_power(tf, x, frame) - target_power))
    return kl + power_weight * power, kl, power


class Adam:
    """Adam (Kingma & Ba) with slot variables, applied inside the compiled step."""

    def __init__(self, tf: Any, variables: Sequence[Any], learning_rate: float,
                 beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8) -> None:
        self.tf = tf
        self.variables = list(variables)
        self.lr, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.t = tf.Variable(0.0, trainable=False)

    def apply(self, grads: Sequence[Any]) -> None:
        tf = self.tf
        self.t.assign_add(1.0)
        correction = tf.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
        rate = self.lr * correction  # the same for every variable: computed once
        for var, grad, m, v in zip(self.variables, grads, self.m, self.v, strict=True):
            grad = tf.cast(grad, var.dtype)
            m.assign(self.beta1 * m + (1.0 - self.beta1) * grad)
            v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(grad))
            step = tf.cast(rate, var.dtype)
            var.assign_sub(step * m / (tf.sqrt(v) + self.epsilon))


def build_generate_step(tf: Any, student: Student, args: argparse.Namespace) -> Any:
    """A compiled forward pass through all flows on fresh noise; returns a scalar."""
    shape = (args.batch_size, args.length)
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)
    seed = tf.constant(args.seed, tf.int64)

    @tf.function(jit_compile=args.xla == "on")
    def generate() -> Any:
        counter.assign_add(1)
        z = logistic_noise(tf, shape, tf.stack([seed, counter]), tf.float32)
        x, _, _ = student(z)
        return tf.reduce_sum(x)
    return generate


def build_distill_step(tf: Any, student: Student, teacher: Teacher, args: argparse.Namespace,
                       *, power_weight: float = POWER_WEIGHT) -> Any:
    """A compiled Adam step on the distillation loss with fresh noise; returns the loss."""
    shape = (args.batch_size, args.length)
    frame = stft_frame(args.length)
    target = average_power(tf, real_signal(tf, args.length, args.seed), frame)
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)
    seed = tf.constant(args.seed, tf.int64)
    opt = Adam(tf, student.variables, args.learning_rate)

    @tf.function(jit_compile=args.xla == "on")
    def distill() -> Any:
        counter.assign_add(1)
        z = logistic_noise(tf, shape, tf.stack([seed, 2 * counter]), tf.float32)
        draws = logistic_noise(tf, (*shape, args.xent_samples),
                               tf.stack([seed, 2 * counter + 1]), tf.float32)
        with tf.GradientTape() as tape:
            loss, _, _ = distill_loss(tf, student, teacher, z, draws, target, frame,
                                      power_weight)
        opt.apply(tape.gradient(loss, opt.variables))
        return loss
    return distill


def parameter_count(variables: Sequence[Any]) -> int:
    return int(sum(v.shape.num_elements() for v in variables))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_arg_parser()
    args = _common.parse_args(parser, PRESETS, argv)
    try:
        flows = parse_flows(args.flows)
    except ValueError as err:
        parser.error(str(err))
    if args.length < 2 or args.hidden < 1 or args.xent_samples < 1:
        parser.error("--length must be >= 2, --hidden and --xent-samples >= 1")
    tf = _common.configure_tensorflow(args)
    training = args.mode == "distill"
    dtype = _common.compute_dtype(tf, args)
    student = Student(tf, flows=flows, hidden=args.hidden, seed=args.seed,
                      param_dtype=tf.float32, compute_dtype=dtype)
    teacher = Teacher(tf, seed=args.seed, compute_dtype=dtype) if training else None
    extra: dict[str, Any] = {
        "mode": args.mode, "flows": list(flows), "hidden": args.hidden, "length": args.length,
        "filter_width": FILTER_WIDTH, "sample_rate": SAMPLE_RATE,
        "parameters": parameter_count(student.variables), "dilated_conv": "conv1d",
    }
    if teacher is not None:
        extra["teacher"] = {"layers": TEACHER_LAYERS, "hidden": TEACHER_HIDDEN,
                            "skip": TEACHER_SKIP, "mixtures": MIXTURES,
                            "parameters": parameter_count(teacher.variables)}
        extra["xent_samples"] = args.xent_samples
        extra["stft_frame"] = stft_frame(args.length)
    _common.report_settings(tf, args, "parallel_wavenet", extra)
    if teacher is not None:
        step = build_distill_step(tf, student, teacher, args)
        items, unit = 1.0, "steps/s"
    else:
        step = build_generate_step(tf, student, args)
        items, unit = float(args.length * args.batch_size), "timesteps/s"

    def run_step() -> object:
        return step().numpy()

    result = _common.measure(run_step, items_per_step=items, unit=unit,
                             warmup_steps=args.warmup_steps, seconds=args.seconds,
                             intervals=args.intervals)
    if training:
        print(f"Parallel WaveNet distillation: {result.throughput:.4f} steps/sec", flush=True)
    else:
        print(f"Parallel WaveNet: {result.throughput:.2f} timesteps/sec", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
