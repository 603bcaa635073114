"""ResNet-50 v1 inference and training on synthetic images, in the tf_cnn_benchmarks style.

ResNet-50 v1 (He et al. 2015): a 7x7/2 convolution and 3x3/2 max-pool, then bottleneck
stages of [3, 4, 6, 3] blocks with 256, 512, 1024 and 2048 output channels, the stride on
the first 1x1 convolution of a stage (v1, as tf_cnn_benchmarks' ``resnet50``), projection
shortcuts on the first block of each stage, global average pooling and a 1000-way dense
layer. NHWC, synthetic inputs generated once on the device, fixed seeds.

``--mode infer`` times the forward pass (batch normalisation with moving statistics, so
grappler/oneDNN can fuse it into the convolutions); ``--mode train`` times one SGD step
(forward, softmax cross-entropy, backward, update, batch-norm statistics updated).

Prints METRIC/FINAL lines (see ``workloads._common``) and, like tf_cnn_benchmarks,
``total images/sec: X``.

Presets: ``full`` is the reference (224x224x3, batch 64, 10 warm-up batches); ``small``
keeps the ResNet-50 topology at 64x64 and batch 8 so a trial measures in seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from workloads import _common

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"image_size": 64, "batch_size": 8, "warmup_steps": 2, "seconds": 3.0,
              "intervals": 3},
    "full": {"image_size": 224, "batch_size": 64, "warmup_steps": 10, "seconds": 60.0,
             "intervals": 6},
}

STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2), (3, 512, 2048, 2))
NUM_CLASSES = 1000
BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.9


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _common.base_parser(prog="python -m workloads.resnet",
                                 description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--mode", choices=("infer", "train"), default="infer")
    parser.add_argument("--image-size", type=int, default=None, metavar="PX")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    return parser


class ResNet50:
    """ResNet-50 v1 weights as plain variables and a forward function over raw TF ops."""

    def __init__(self, tf: Any, *, seed: int, compute_dtype: Any) -> None:
        self.tf = tf
        self.compute_dtype = compute_dtype
        self._seed = seed
        self.convs: dict[str, Any] = {}
        self.bns: dict[str, dict[str, Any]] = {}
        self._add_conv("conv1", 7, 3, 64)
        in_ch = 64
        for stage, (blocks, mid, out, _) in enumerate(STAGES, start=1):
            for block in range(blocks):
                name = f"s{stage}b{block}"
                if block == 0:
                    self._add_conv(f"{name}_proj", 1, in_ch, out)
                self._add_conv(f"{name}_a", 1, in_ch, mid)
                self._add_conv(f"{name}_b", 3, mid, mid)
                self._add_conv(f"{name}_c", 1, mid, out)
                in_ch = out
        init = tf.keras.initializers.GlorotUniform(seed=self._next_seed())
        self.fc_w = tf.Variable(init((in_ch, NUM_CLASSES)), name="fc_w")
        self.fc_b = tf.Variable(tf.zeros([NUM_CLASSES]), name="fc_b")

    def _next_seed(self) -> int:
        self._seed += 1
        return self._seed

    def _add_conv(self, name: str, k: int, cin: int, cout: int) -> None:
        tf = self.tf
        init = tf.keras.initializers.HeNormal(seed=self._next_seed())
        self.convs[name] = tf.Variable(init((k, k, cin, cout)), name=name)
        self.bns[name] = {
            "scale": tf.Variable(tf.ones([cout]), name=f"{name}_gamma"),
            "offset": tf.Variable(tf.zeros([cout]), name=f"{name}_beta"),
            "mean": tf.Variable(tf.zeros([cout]), trainable=False, name=f"{name}_mean"),
            "var": tf.Variable(tf.ones([cout]), trainable=False, name=f"{name}_var"),
        }

    @property
    def trainable(self) -> list[Any]:
        out = list(self.convs.values())
        for bn in self.bns.values():
            out += [bn["scale"], bn["offset"]]
        return out + [self.fc_w, self.fc_b]

    def _conv_bn(self, x: Any, name: str, stride: int, training: bool, relu: bool) -> Any:
        tf = self.tf
        w = tf.cast(self.convs[name], self.compute_dtype)
        y = tf.nn.conv2d(x, w, strides=stride, padding="SAME")
        bn = self.bns[name]
        y, batch_mean, batch_var, *_ = tf.raw_ops.FusedBatchNormV3(
            x=y, scale=bn["scale"], offset=bn["offset"],
            mean=bn["mean"] if not training else tf.zeros([0]),
            variance=bn["var"] if not training else tf.zeros([0]),
            epsilon=BN_EPSILON, is_training=training)
        if training:
            bn["mean"].assign(BN_MOMENTUM * bn["mean"] + (1 - BN_MOMENTUM) * batch_mean)
            bn["var"].assign(BN_MOMENTUM * bn["var"] + (1 - BN_MOMENTUM) * batch_var)
        return tf.nn.relu(y) if relu else y

    def __call__(self, images: Any, *, training: bool) -> Any:
        tf = self.tf
        x = tf.cast(images, self.compute_dtype)
        x = self._conv_bn(x, "conv1", 2, training, relu=True)
        x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME")
        for stage, (blocks, _, _, first_stride) in enumerate(STAGES, start=1):
            for block in range(blocks):
                name = f"s{stage}b{block}"
                stride = first_stride if block == 0 else 1
                if block == 0:
                    shortcut = self._conv_bn(x, f"{name}_proj", stride, training, relu=False)
                else:
                    shortcut = x
                y = self._conv_bn(x, f"{name}_a", stride, training, relu=True)
                y = self._conv_bn(y, f"{name}_b", 1, training, relu=True)
                y = self._conv_bn(y, f"{name}_c", 1, training, relu=False)
                x = tf.nn.relu(y + shortcut)
        x = tf.reduce_mean(x, axis=[1, 2])
        logits = tf.matmul(x, tf.cast(self.fc_w, self.compute_dtype)) + tf.cast(
            self.fc_b, self.compute_dtype)
        return tf.cast(logits, tf.float32)


def build_step(tf: Any, model: ResNet50, args: argparse.Namespace) -> Any:
    """A compiled step over fixed synthetic inputs; returns a scalar to block on."""
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    images = tf.random.stateless_uniform(shape, seed=(args.seed, 0), dtype=tf.float32)
    labels = tf.random.stateless_uniform((args.batch_size,), seed=(args.seed, 1),
                                         maxval=NUM_CLASSES, dtype=tf.int32)
    jit = args.xla == "on"

    if args.mode == "infer":
        @tf.function(jit_compile=jit)
        def infer() -> Any:
            probs = tf.nn.softmax(model(images, training=False))
            return tf.reduce_sum(tf.argmax(probs, axis=1))
        return infer

    variables = model.trainable
    lr = tf.constant(args.learning_rate)

    @tf.function(jit_compile=jit)
    def train() -> Any:
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, variables)
        for var, grad in zip(variables, grads, strict=True):
            var.assign_sub(lr * tf.cast(grad, var.dtype))
        return loss
    return train


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_arg_parser()
    args = _common.parse_args(parser, PRESETS, argv)
    tf = _common.configure_tensorflow(args)
    model = ResNet50(tf, seed=args.seed, compute_dtype=_common.compute_dtype(tf, args))
    _common.report_settings(tf, args, "resnet", {"mode": args.mode,
                                                 "image_size": args.image_size})
    step = build_step(tf, model, args)

    def run_step() -> object:
        return step().numpy()

    result = _common.measure(run_step, items_per_step=args.batch_size, unit="images/s",
                             warmup_steps=args.warmup_steps, seconds=args.seconds,
                             intervals=args.intervals)
    print("-" * 64)
    print(f"total images/sec: {result.throughput:.2f}")
    print("-" * 64, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
