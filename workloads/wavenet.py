"""Autoregressive WaveNet generation, a TensorFlow port in the style of ibab/tensorflow-wavenet.

The model (van den Oord et al. 2016, ibab's ``wavenet_params.json``): a 256-way one-hot mu-law
input, an initial causal convolution of width 2 to the residual channels, dilated causal
convolutions of width 2 with dilations 1, 2, ..., 512 repeated 5 times (50 layers), gated
activations ``tanh(filter) * sigmoid(gate)``, a 1x1 convolution back to the residual channels
(added to the layer's input) and a 1x1 convolution to the skip channels; the sum of the skips
goes through ReLU, 1x1, ReLU, 1x1 to 256 logits and a softmax, from which the next sample is
drawn and fed back. 16 kHz audio, ``--batch-size`` independent sequences, weights randomly
initialised from fixed seeds, generation starting from silence (sample 128).

``--algorithm fast`` is the Fast Wavenet Generation Algorithm (Paine et al. 2016): each layer
keeps a queue of its last ``dilation`` inputs, so a sample costs O(layers) instead of
O(receptive field). The queues are circular buffers laid out in one variable updated in place
(layer ``i`` owns rows ``[offset_i, offset_i + dilation_i)``): one gather reads every layer's
input from ``dilation`` samples ago, one scatter stores this sample's inputs. The one-hot input
times the first convolution is a row gather; the skip 1x1 convolutions of all layers are one
matmul over the concatenated gated activations (the same sum). ``--algorithm naive`` is the
slow reference: every sample runs the whole convolution stack over the last receptive-field
samples (one-hot, dilated ``tf.nn.convolution``), as ibab's ``generate.py`` without
``--fast_generation``. Both draw sample ``t`` with ``tf.random.stateless_categorical`` seeded
by ``(seed, t)``, so they generate the same waveform (XLA's sampler draws other numbers than
TensorFlow's CPU kernel: the same waveform again, among XLA runs).

The per-sample loop is a ``tf.while_loop`` inside one ``tf.function`` generating ``--chunk``
samples; the generation state (queues, last two samples, sample index) stays in variables
between calls, so Python runs once per chunk. One measured step is one chunk:
``chunk * batch`` samples. ``--xla on`` compiles the call with XLA.

SETTINGS adds the algorithm, chunk, layers, dilations, channels, receptive field, parameter
count and the weight bytes one fast-generation step reads (once for the whole batch; bf16
halves them: ``--precision bf16`` runs on bf16 copies of the float32 weights, made once per
call, and keeps the queues in bf16). Prints METRIC/FINAL lines in samples/s (see
``workloads._common``), ``step N - samples/sec: X`` per interval and, like the reference,
``Average Throughput of whole run: Samples / sec: X``.

Presets: ``full`` is the reference model (5 stacks of dilations 1..512, 32 residual and
dilation channels, 512 skip channels; 50 layers, receptive field 5117 samples) with chunks of
1000 samples; ``small`` keeps the character (latency-bound, one sample at a time) with 2
stacks of dilations 1..64, 16 residual/dilation and 128 skip channels (14 layers).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workloads import _common

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"stacks": 2, "max_dilation": 64, "residual_channels": 16,
              "dilation_channels": 16, "skip_channels": 128, "batch_size": 1,
              "warmup_steps": 1, "seconds": 3.0, "intervals": 3},
    "full": {"stacks": 5, "max_dilation": 512, "residual_channels": 32,
             "dilation_channels": 32, "skip_channels": 512, "batch_size": 1,
             "warmup_steps": 1, "seconds": 20.0, "intervals": 5},
}

#: Samples per compiled call when ``--chunk`` is not given, by (preset, algorithm).
DEFAULT_CHUNK = {("small", "fast"): 500, ("small", "naive"): 100,
                 ("full", "fast"): 1000, ("full", "naive"): 20}

QUANTIZATION_CHANNELS = 256
SAMPLE_RATE = 16000
SILENCE = QUANTIZATION_CHANNELS // 2  # mu-law code of amplitude 0


@dataclass(frozen=True)
class WaveNetConfig:
    """Sizes of a WaveNet with filter width 2 everywhere (ibab's defaults)."""

    dilations: tuple[int, ...]
    residual_channels: int
    dilation_channels: int
    skip_channels: int
    quantization_channels: int = QUANTIZATION_CHANNELS

    @classmethod
    def stacked(cls, stacks: int, max_dilation: int, **channels: int) -> WaveNetConfig:
        """``stacks`` repetitions of dilations 1, 2, 4, ..., ``max_dilation``."""
        if stacks < 1 or max_dilation < 1 or max_dilation & (max_dilation - 1):
            raise ValueError("stacks must be >= 1 and max_dilation a power of two")
        block = tuple(2 ** k for k in range(max_dilation.bit_length()))
        return cls(dilations=block * stacks, **channels)

    @property
    def layers(self) -> int:
        return len(self.dilations)

    @property
    def receptive_field(self) -> int:
        """(width - 1) * sum(dilations) + 1, plus (width - 1) for the initial convolution."""
        return sum(self.dilations) + 2

    @property
    def cache_rows(self) -> int:
        return sum(self.dilations)


class WaveNet:
    """The weights, as variables with per-layer tensors stacked along a leading layer axis.

    ``embed`` [2, Q, R]: the initial causal convolution (taps ``t-1``, ``t``; no bias, as
    ibab). Per layer: ``fg_w`` [L, 2, R, 2D] the dilated convolution (taps ``t-d``, ``t``;
    output channels filter then gate), ``fg_b`` [L, 2D], ``dense_w`` [L, D, R] and ``dense_b``
    the residual 1x1, ``skip_w`` [L, D, S] and ``skip_b`` the skip 1x1. Post-processing:
    ``post1_w`` [S, S], ``post2_w`` [S, Q] and their biases.
    """

    def __init__(self, tf: Any, config: WaveNetConfig, *, seed: int) -> None:
        self.tf = tf
        self.config = config
        c = config
        big_l, r, d, s, q = (c.layers, c.residual_channels, c.dilation_channels,
                             c.skip_channels, c.quantization_channels)
        shapes: dict[str, tuple[tuple[int, ...], int, int]] = {
            # name: (shape, fan_in, fan_out) for Glorot-uniform limits
            "embed": ((2, q, r), 2, 2 * r),  # a one-hot input has 2 nonzero inputs
            "fg_w": ((big_l, 2, r, 2 * d), 2 * r, 2 * 2 * d),
            "dense_w": ((big_l, d, r), d, r),
            "skip_w": ((big_l, d, s), d, s),
            "post1_w": ((s, s), s, s),
            "post2_w": ((s, q), s, q),
        }
        self.variables: dict[str, Any] = {}
        for index, (name, (shape, fan_in, fan_out)) in enumerate(shapes.items()):
            limit = (6.0 / (fan_in + fan_out)) ** 0.5
            self.variables[name] = tf.Variable(tf.random.stateless_uniform(
                shape, seed=(seed, index), minval=-limit, maxval=limit), name=name)
        biases = {"fg_b": (big_l, 2 * d), "dense_b": (big_l, r), "skip_b": (big_l, s),
                  "post1_b": (s,), "post2_b": (q,)}
        for index, (name, shape) in enumerate(biases.items(), start=len(shapes)):
            self.variables[name] = tf.Variable(tf.random.stateless_uniform(
                shape, seed=(seed, index), minval=-0.05, maxval=0.05), name=name)

    def weights(self, dtype: Any) -> dict[str, Any]:
        """The weights in the compute dtype (call inside the compiled function)."""
        return {name: self.tf.cast(v, dtype) for name, v in self.variables.items()}

    @property
    def parameter_count(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self.variables.values())

    def weight_elements_per_sample(self) -> int:
        """Weight elements one fast-generation sample reads: two embedding rows, every
        layer's dilated convolution and skip 1x1, the residual 1x1 of all but the last layer
        (whose residual output feeds nothing), the summed skip biases and the post-net."""
        c = self.config
        r, d, s, q = (c.residual_channels, c.dilation_channels, c.skip_channels,
                      c.quantization_channels)
        per_layer = 2 * r * 2 * d + 2 * d + d * s
        residual = (d * r + r) * (c.layers - 1)
        return 2 * r + c.layers * per_layer + residual + s + s * s + s + s * q + q


def _postprocess(tf: Any, w: dict[str, Any], skip: Any) -> Any:
    """Sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1: the logits [B, Q]."""
    h = tf.nn.relu(skip)
    h = tf.nn.relu(tf.nn.bias_add(tf.matmul(h, w["post1_w"]), w["post1_b"]))
    return tf.nn.bias_add(tf.matmul(h, w["post2_w"]), w["post2_b"])


def _draw(tf: Any, logits: Any, seed: int, t: Any) -> Any:
    """Sample ``t`` drawn from softmax(logits) [B, Q], seeded by (seed, t); int32 [B].
    (int32 seeds: XLA has no int64-seeded StatelessMultinomial. XLA draws other numbers than
    the CPU kernel for the same seed, so samples match only between runs of the same kind.)"""
    if logits.dtype == tf.bfloat16:
        logits = tf.cast(logits, tf.float32)
    pair = tf.stack([tf.constant(seed, tf.int32), tf.cast(t, tf.int32)])
    return tf.cast(tf.random.stateless_categorical(logits, 1, seed=pair)[:, 0], tf.int32)


class _Generator:
    """Generation state lives in variables, so one compiled call continues where the last
    one stopped; ``reset`` goes back to silence at sample 0."""

    def __init__(self, tf: Any, model: WaveNet, *, batch: int, seed: int, dtype: Any) -> None:
        self.tf = tf
        self.model = model
        self.batch = batch
        self.seed = seed
        self.dtype = dtype
        self.logits_dtype = tf.float32 if dtype == tf.bfloat16 else dtype
        self.position = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="t")

    def _arrays(self, chunk: int, with_logits: bool) -> tuple[Any, Any]:
        tf = self.tf
        samples = tf.TensorArray(tf.int32, size=chunk, element_shape=[self.batch])
        logits = tf.TensorArray(self.logits_dtype, size=chunk if with_logits else 0,
                                element_shape=[self.batch,
                                               self.model.config.quantization_channels])
        return samples, logits

    def _outputs(self, samples: Any, logits: Any, with_logits: bool) -> tuple[Any, Any]:
        """Samples [B, chunk] and logits [B, chunk, Q] (or None) from the arrays."""
        tf = self.tf
        stacked = tf.transpose(logits.stack(), [1, 0, 2]) if with_logits else None
        return tf.transpose(samples.stack()), stacked


class FastGenerator(_Generator):
    """Per-layer circular queues; one sample costs one pass through the layers.

    The queues are one variable updated in place: one gather reads every layer's input from
    ``dilation`` samples ago, one scatter writes this sample's inputs. (As a ``while_loop``
    variable the whole buffer would be copied by every sample's scatter: ~10x slower.)
    """

    def __init__(self, tf: Any, model: WaveNet, *, batch: int, seed: int, dtype: Any) -> None:
        super().__init__(tf, model, batch=batch, seed=seed, dtype=dtype)
        c = model.config
        offsets = [sum(c.dilations[:i]) for i in range(c.layers)]
        self._dilations = tf.constant(c.dilations, tf.int64)
        self._offsets = tf.constant(offsets, tf.int64)
        self.cache = tf.Variable(tf.zeros([c.cache_rows, batch, c.residual_channels], dtype),
                                 trainable=False, name="queues")
        self.last = tf.Variable(tf.zeros([2, batch], tf.int32), trainable=False,
                                name="last_two_samples")
        self.reset()

    def _weights(self) -> dict[str, Any]:
        """Weights in the compute dtype, per-layer tensors still stacked (a few loop-invariant
        captures; unstacked inside the loop body, which costs no copy)."""
        tf, c = self.tf, self.model.config
        w = self.model.weights(self.dtype)
        r, d = c.residual_channels, c.dilation_channels
        return {
            "embed": tf.reshape(w["embed"], [2 * c.quantization_channels, r]),
            "fg_w": tf.reshape(w["fg_w"], [c.layers, 2 * r, 2 * d]),
            "fg_b": w["fg_b"], "dense_w": w["dense_w"], "dense_b": w["dense_b"],
            "skip_w": tf.reshape(w["skip_w"], [c.layers * d, c.skip_channels]),
            "skip_b": tf.reduce_sum(w["skip_b"], axis=0),
            "post1_w": w["post1_w"], "post1_b": w["post1_b"],
            "post2_w": w["post2_w"], "post2_b": w["post2_b"],
        }

    def _unstacked(self, w: dict[str, Any]) -> dict[str, Any]:
        per_layer = ("fg_w", "fg_b", "dense_w", "dense_b")
        n = self.model.config.layers
        return {k: self.tf.unstack(v, num=n) if k in per_layer else v for k, v in w.items()}

    def _embed(self, w: dict[str, Any], prev: Any, cur: Any) -> Any:
        """The initial causal convolution of one-hot inputs: two rows of its weights."""
        rows = self.tf.stack([prev, cur + self.model.config.quantization_channels])
        return self.tf.reduce_sum(self.tf.gather(w["embed"], rows), axis=0)

    def _layers(self, w: dict[str, Any], x: Any,
                past_of: Callable[[int, Any], Any]) -> tuple[list[Any], Any]:
        """Run the layers at one position from the initial convolution's output ``x`` [B, R];
        ``past_of(i, x_i)`` is layer i's input ``dilation_i`` samples ago. Returns every
        layer's input (what the queues store) and the skip sum [B, S]."""
        tf = self.tf
        inputs, gated = [], []
        last = self.model.config.layers - 1
        for i in range(last + 1):
            inputs.append(x)
            h = tf.matmul(tf.concat([past_of(i, x), x], axis=1), w["fg_w"][i])
            filt, gate = tf.split(tf.nn.bias_add(h, w["fg_b"][i]), 2, axis=1)
            z = tf.tanh(filt) * tf.sigmoid(gate)
            gated.append(z)
            if i < last:  # the last layer's residual output feeds nothing
                x = x + tf.nn.bias_add(tf.matmul(z, w["dense_w"][i]), w["dense_b"][i])
        skip = tf.nn.bias_add(tf.matmul(tf.concat(gated, axis=1), w["skip_w"]), w["skip_b"])
        return inputs, skip

    def reset(self) -> None:
        """Silence since forever: every queue holds the constant activations that an endless
        run of sample 128 produces (what the naive window, padded with 128, computes)."""
        tf, c = self.tf, self.model.config
        w = self._unstacked(self._weights())
        silence = tf.fill([self.batch], tf.constant(SILENCE, tf.int32))
        inputs, _ = self._layers(w, self._embed(w, silence, silence), lambda _i, x: x)
        self.cache.assign(tf.concat([tf.tile(x[None], [dil, 1, 1])
                                     for x, dil in zip(inputs, c.dilations, strict=True)], 0))
        self.last.assign(tf.stack([silence, silence]))
        self.position.assign(0)

    def generate(self, chunk: int, with_logits: bool) -> tuple[Any, Any]:
        """The next ``chunk`` samples [B, chunk] (and their logits [B, chunk, Q] or None).
        Traced into the caller's ``tf.function``."""
        tf, c = self.tf, self.model.config
        stacked = self._weights()
        samples, logits_ta = self._arrays(chunk, with_logits)

        def body(i: Any, t: Any, prev: Any, cur: Any, out: Any,
                 out_logits: Any) -> tuple[Any, ...]:
            w = self._unstacked(stacked)
            slots = self._offsets + tf.math.floormod(t, self._dilations)
            pasts = tf.unstack(tf.gather(self.cache, slots), num=c.layers)
            inputs, skip = self._layers(w, self._embed(w, prev, cur),
                                        lambda idx, _x: pasts[idx])
            self.cache.scatter_nd_update(slots[:, None], tf.stack(inputs))
            logits = _postprocess(tf, w, skip)
            sample = _draw(tf, logits, self.seed, t)
            out = out.write(i, sample)
            if with_logits:
                out_logits = out_logits.write(i, tf.cast(logits, self.logits_dtype))
            return i + 1, t + 1, cur, sample, out, out_logits

        last = self.last.read_value()
        _, t, prev, cur, samples, logits_ta = tf.while_loop(
            lambda i, *_: i < chunk, body,
            (tf.constant(0), self.position.read_value(), last[0], last[1], samples, logits_ta))
        self.position.assign(t)
        self.last.assign(tf.stack([prev, cur]))
        return self._outputs(samples, logits_ta, with_logits)


class NaiveGenerator(_Generator):
    """Every sample runs the whole convolution stack over the last receptive-field samples."""

    def __init__(self, tf: Any, model: WaveNet, *, batch: int, seed: int, dtype: Any) -> None:
        super().__init__(tf, model, batch=batch, seed=seed, dtype=dtype)
        self.window = tf.Variable(tf.zeros([batch, model.config.receptive_field], tf.int32),
                                  trainable=False, name="window")
        self.reset()

    def reset(self) -> None:
        tf = self.tf
        self.window.assign(tf.fill(self.window.shape, tf.constant(SILENCE, tf.int32)))
        self.position.assign(0)

    def logits(self, w: dict[str, Any], window: Any) -> Any:
        """Logits [B, Q] for the sample after ``window`` [B, receptive_field]."""
        tf, c = self.tf, self.model.config
        x = tf.one_hot(window, c.quantization_channels, dtype=self.dtype)
        x = tf.nn.convolution(x, w["embed"], padding="VALID")
        skip = None
        for i, dilation in enumerate(c.dilations):
            h = tf.nn.convolution(x, w["fg_w"][i], padding="VALID", dilations=dilation)
            filt, gate = tf.split(tf.nn.bias_add(h, w["fg_b"][i]), 2, axis=2)
            z = tf.tanh(filt) * tf.sigmoid(gate)
            term = tf.nn.bias_add(tf.matmul(z[:, -1, :], w["skip_w"][i]), w["skip_b"][i])
            skip = term if skip is None else skip + term
            dense = tf.nn.convolution(z, w["dense_w"][i][None], padding="VALID")
            x = x[:, dilation:, :] + tf.nn.bias_add(dense, w["dense_b"][i])
        return _postprocess(tf, w, skip)

    def generate(self, chunk: int, with_logits: bool) -> tuple[Any, Any]:
        tf = self.tf
        w = self.model.weights(self.dtype)
        samples, logits_ta = self._arrays(chunk, with_logits)

        def body(i: Any, t: Any, window: Any, out: Any, out_logits: Any) -> tuple[Any, ...]:
            logits = self.logits(w, window)
            sample = _draw(tf, logits, self.seed, t)
            window = tf.concat([window[:, 1:], sample[:, None]], axis=1)
            out = out.write(i, sample)
            if with_logits:
                out_logits = out_logits.write(i, tf.cast(logits, self.logits_dtype))
            return i + 1, t + 1, window, out, out_logits

        _, t, window, samples, logits_ta = tf.while_loop(
            lambda i, *_: i < chunk, body,
            (tf.constant(0), self.position.read_value(), self.window.read_value(), samples,
             logits_ta))
        self.position.assign(t)
        self.window.assign(window)
        return self._outputs(samples, logits_ta, with_logits)


def make_generator(tf: Any, model: WaveNet, *, algorithm: str, batch: int, seed: int,
                   dtype: Any) -> FastGenerator | NaiveGenerator:
    """A generator at sample 0, starting from silence."""
    cls = FastGenerator if algorithm == "fast" else NaiveGenerator
    return cls(tf, model, batch=batch, seed=seed, dtype=dtype)


def build_generate(tf: Any, generator: FastGenerator | NaiveGenerator, *, chunk: int,
                   jit: bool, with_logits: bool = False) -> Any:
    """One compiled call generating the next ``chunk`` samples: returns the samples [B, chunk]
    (and the logits [B, chunk, Q] when ``with_logits``)."""

    @tf.function(jit_compile=jit)
    def generate() -> Any:
        samples, logits = generator.generate(chunk, with_logits)
        return (samples, logits) if with_logits else samples
    return generate


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _common.base_parser(prog="python -m workloads.wavenet",
                                 description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--algorithm", choices=("fast", "naive"), default="fast",
                        help="fast: per-layer queues, O(layers) per sample; naive: the whole "
                             "stack over the receptive field per sample")
    parser.add_argument("--chunk", type=int, default=None, metavar="N",
                        help="samples generated per compiled call (one measured step); "
                             "default by preset and algorithm")
    parser.add_argument("--stacks", type=int, default=None, metavar="N",
                        help="repetitions of the dilation block")
    parser.add_argument("--max-dilation", type=int, default=None, metavar="D",
                        help="dilations 1, 2, ..., D in each block (a power of two)")
    parser.add_argument("--residual-channels", type=int, default=None, metavar="C")
    parser.add_argument("--dilation-channels", type=int, default=None, metavar="C")
    parser.add_argument("--skip-channels", type=int, default=None, metavar="C")
    return parser


def config_from_args(args: argparse.Namespace) -> WaveNetConfig:
    return WaveNetConfig.stacked(args.stacks, args.max_dilation,
                                 residual_channels=args.residual_channels,
                                 dilation_channels=args.dilation_channels,
                                 skip_channels=args.skip_channels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_arg_parser()
    args = _common.parse_args(parser, PRESETS, argv)
    if args.chunk is None:
        args.chunk = DEFAULT_CHUNK[(args.preset, args.algorithm)]
    sizes = (args.chunk, args.residual_channels, args.dilation_channels, args.skip_channels)
    if min(sizes) < 1:
        parser.error("--chunk and the channel counts must be >= 1")
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    tf = _common.configure_tensorflow(args)
    dtype = _common.compute_dtype(tf, args)
    model = WaveNet(tf, config, seed=args.seed)
    itemsize = 2 if args.precision == "bf16" else 4
    _common.report_settings(tf, args, "wavenet", {
        "algorithm": args.algorithm, "chunk": args.chunk, "layers": config.layers,
        "dilations": f"{args.stacks}x(1..{args.max_dilation})",
        "residual_channels": config.residual_channels,
        "dilation_channels": config.dilation_channels,
        "skip_channels": config.skip_channels,
        "receptive_field": config.receptive_field, "sample_rate": SAMPLE_RATE,
        "parameters": model.parameter_count,
        "weight_bytes_per_sample": model.weight_elements_per_sample() * itemsize,
    })
    generator = make_generator(tf, model, algorithm=args.algorithm, batch=args.batch_size,
                               seed=args.seed, dtype=dtype)
    generate = build_generate(tf, generator, chunk=args.chunk, jit=args.xla == "on")

    def run_step() -> object:
        return generate().numpy()

    def on_interval(index: int, rate: float) -> None:
        print(f"step {index} - samples/sec: {rate:.2f}", flush=True)

    result = _common.measure(run_step, items_per_step=args.chunk * args.batch_size,
                             unit="samples/s", warmup_steps=args.warmup_steps,
                             seconds=args.seconds, intervals=args.intervals,
                             on_interval=on_interval)
    print(f"Average Throughput of whole run: Samples / sec: {result.throughput:.2f}")
    print(f"({result.throughput / SAMPLE_RATE:.3f}x real time at {SAMPLE_RATE} Hz)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
