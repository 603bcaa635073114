"""A BERT-style Transformer encoder over synthetic token sequences, inference and training.

The model: token and learned position embeddings (summed, layer-normalised), then
``torch.nn.TransformerEncoder`` of ``--layers`` post-norm ``TransformerEncoderLayer`` (GELU,
``batch_first=True``, dropout 0.1), then a BERT pooler (tanh over the first token) and a
2-way classifier: sequence classification, as in BERT fine-tuning. ``full`` is BERT-base
(12 layers, d_model 768, 12 heads, feed-forward 3072, a 30522-token vocabulary) over 128
tokens, batch 32; ``small`` is 2 layers, d_model 256, 4 heads, feed-forward 1024 over 64
tokens, batch 8, so a trial measures in seconds on 2 cores. Synthetic token ids and labels
are made once, with fixed seeds; no padding mask.

``--mode infer`` times the forward pass under ``torch.inference_mode()`` with the model in
eval mode (torch's fused encoder fast path where it applies); ``--mode train`` times one
AdamW step (forward, cross-entropy, backward, update). ``--precision bf16`` runs the
forward pass under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

Prints METRIC/FINAL lines in sequences/s (see ``workloads._common``) and a closing
reference line ``Throughput: X sequences/sec`` (in the style of the Hugging Face / IPEX
BERT benchmark scripts).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from workloads import _torch

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"layers": 2, "d_model": 256, "heads": 4, "ff_dim": 1024, "vocab_size": 30522,
              "seq_len": 64, "batch_size": 8, "warmup_steps": 2, "seconds": 3.0,
              "intervals": 3},
    "full": {"layers": 12, "d_model": 768, "heads": 12, "ff_dim": 3072, "vocab_size": 30522,
             "seq_len": 128, "batch_size": 32, "warmup_steps": 5, "seconds": 60.0,
             "intervals": 6},
}
NUM_LABELS = 2
#: Flags whose values must be >= 1.
POSITIVE = ("layers", "d_model", "heads", "ff_dim", "vocab_size", "seq_len")


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _torch.base_parser(prog="python -m workloads.torch_transformer",
                                description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--mode", choices=("infer", "train"), default="infer")
    parser.add_argument("--seq-len", type=int, default=None, metavar="T",
                        help="tokens per sequence")
    parser.add_argument("--layers", type=int, default=None, metavar="N",
                        help="encoder layers")
    parser.add_argument("--d-model", type=int, default=None, metavar="N",
                        help="hidden size (a multiple of --heads)")
    parser.add_argument("--heads", type=int, default=None, metavar="N")
    parser.add_argument("--ff-dim", type=int, default=None, metavar="N",
                        help="feed-forward size")
    parser.add_argument("--vocab-size", type=int, default=None, metavar="N")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_arg_parser()
    args = _torch.parse_args(parser, PRESETS, argv, positive=POSITIVE)
    if args.d_model % args.heads:
        parser.error(f"--d-model ({args.d_model}) must be a multiple of --heads ({args.heads})")
    return args


def encoder(torch: Any, args: argparse.Namespace) -> Any:
    """The BERT-style classifier as an ``nn.Module``."""
    nn = torch.nn

    base: Any = nn.Module

    class Encoder(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(args.vocab_size, args.d_model)
            self.positions = nn.Embedding(args.seq_len, args.d_model)
            self.norm = nn.LayerNorm(args.d_model)
            layer = nn.TransformerEncoderLayer(
                args.d_model, args.heads, dim_feedforward=args.ff_dim, dropout=0.1,
                activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, args.layers, enable_nested_tensor=False)
            self.pooler = nn.Linear(args.d_model, args.d_model)
            self.classifier = nn.Linear(args.d_model, NUM_LABELS)
            self.register_buffer("position_ids", torch.arange(args.seq_len).unsqueeze(0))

        def forward(self, ids: Any) -> Any:
            x = self.norm(self.tokens(ids) + self.positions(self.position_ids))
            x = self.encoder(x)
            return self.classifier(torch.tanh(self.pooler(x[:, 0])))

    return Encoder()


def build_step(torch: Any, args: argparse.Namespace) -> Callable[[], object]:
    """The timed step over fixed synthetic sequences; returns a Python number (blocks)."""
    model = encoder(torch, args)
    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len),
                        generator=generator)
    labels = torch.randint(0, NUM_LABELS, (args.batch_size,), generator=generator)

    if args.mode == "infer":
        model.eval()

        def infer() -> object:
            with torch.inference_mode(), _torch.autocast(torch, args):
                logits = model(ids)
            return int(logits.argmax(dim=1).sum())
        return infer

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train() -> object:
        optimizer.zero_grad(set_to_none=True)
        with _torch.autocast(torch, args):
            loss = loss_fn(model(ids).float(), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return train


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch = _torch.configure_torch(args)
    step = build_step(torch, args)
    result = _torch.run(torch, step, args, workload="torch_transformer", unit="sequences/s",
                        extra={"mode": args.mode, "seq_len": args.seq_len,
                               "layers": args.layers, "d_model": args.d_model,
                               "heads": args.heads, "ff_dim": args.ff_dim})
    print(f"Throughput: {result.throughput:.2f} sequences/sec", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
