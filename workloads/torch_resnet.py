"""ResNet-50 v1.5 inference and training on synthetic images, in plain torch.nn.

ResNet-50 v1.5 (torchvision's ``resnet50``, written out here: torchvision is not needed): a
7x7/2 convolution and 3x3/2 max-pool, then bottleneck stages of [3, 4, 6, 3] blocks with 256,
512, 1024 and 2048 output channels, the stride on the 3x3 convolution of a stage's first
block (v1.5; v1 strides the first 1x1), projection shortcuts on the first block of each
stage, global average pooling and a 1000-way linear layer. Model and input are in
``torch.channels_last`` memory format (NHWC, what oneDNN's CPU convolutions prefer); synthetic
inputs made once, fixed seeds.

``--mode infer`` times the forward pass under ``torch.inference_mode()`` with the model in
eval mode (batch normalisation with running statistics); ``--mode train`` times one SGD step
(momentum 0.9: forward, cross-entropy on synthetic labels, backward, update; batch-norm
statistics updated). ``--precision bf16`` runs the forward pass under
``torch.autocast("cpu", dtype=torch.bfloat16)``.

Prints METRIC/FINAL lines (see ``workloads._common``) and, like tf_cnn_benchmarks,
``total images/sec: X``.

Presets: ``full`` is the reference (224x224x3, batch 64, 10 warm-up batches); ``small``
keeps the ResNet-50 topology at 64x64 and batch 8 so a trial measures in seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from workloads import _torch

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"image_size": 64, "batch_size": 8, "warmup_steps": 2, "seconds": 3.0,
              "intervals": 3},
    "full": {"image_size": 224, "batch_size": 64, "warmup_steps": 10, "seconds": 60.0,
             "intervals": 6},
}

#: (blocks, bottleneck width, output channels, stride of the first block) per stage.
STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2), (3, 512, 2048, 2))
NUM_CLASSES = 1000


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _torch.base_parser(prog="python -m workloads.torch_resnet",
                                description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--mode", choices=("infer", "train"), default="infer")
    parser.add_argument("--image-size", type=int, default=None, metavar="PX")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    return parser


def resnet50(torch: Any) -> Any:
    """A ResNet-50 v1.5 ``nn.Module`` (classes built here so torch is imported only after
    the flags are parsed)."""
    nn = torch.nn

    def conv_bn(cin: int, cout: int, kernel: int, stride: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout))

    base: Any = nn.Module

    class Bottleneck(base):  # type: ignore[misc]
        def __init__(self, cin: int, mid: int, cout: int, stride: int) -> None:
            super().__init__()
            self.a = conv_bn(cin, mid, 1, 1)
            self.b = conv_bn(mid, mid, 3, stride)  # v1.5: the stride is here
            self.c = conv_bn(mid, cout, 1, 1)
            self.proj = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: Any) -> Any:
            shortcut = x if self.proj is None else self.proj(x)
            y = self.relu(self.a(x))
            y = self.relu(self.b(y))
            return self.relu(self.c(y) + shortcut)

    layers: list[Any] = [conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]
    cin = 64
    for blocks, mid, cout, first_stride in STAGES:
        for block in range(blocks):
            layers.append(Bottleneck(cin, mid, cout, first_stride if block == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, NUM_CLASSES)]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def build_step(torch: Any, args: argparse.Namespace) -> Callable[[], object]:
    """The timed step over fixed synthetic inputs; returns a Python number (blocks)."""
    model = resnet50(torch).to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.rand((args.batch_size, 3, args.image_size, args.image_size),
                        generator=generator).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, NUM_CLASSES, (args.batch_size,), generator=generator)

    if args.mode == "infer":
        model.eval()

        def infer() -> object:
            with torch.inference_mode(), _torch.autocast(torch, args):
                logits = model(images)
            return int(logits.argmax(dim=1).sum())
        return infer

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train() -> object:
        optimizer.zero_grad(set_to_none=True)
        with _torch.autocast(torch, args):
            loss = loss_fn(model(images).float(), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return train


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_arg_parser()
    args = _torch.parse_args(parser, PRESETS, argv, positive=("image_size",))
    torch = _torch.configure_torch(args)
    step = build_step(torch, args)
    result = _torch.run(torch, step, args, workload="torch_resnet", unit="images/s",
                        extra={"mode": args.mode, "image_size": args.image_size,
                               "memory_format": "channels_last"})
    print("-" * 64)
    print(f"total images/sec: {result.throughput:.2f}")
    print("-" * 64, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
