"""The built-in workloads tuner knows by name: how to launch each, which of its flags are knobs,
and which parameters a study file may set. Pure data: nothing here imports TensorFlow.

Every built-in follows the workload contract (``workloads/_common.py``): thread settings as
flags applied before the first op, a SETTINGS line, METRIC lines per interval and a FINAL
line, so the ``protocol`` parser reads them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class Param:
    """A non-knob parameter of a built-in workload, passed as ``flag value``."""

    flag: str
    type: type[int] | type[float] | type[str]
    choices: tuple[str, ...] | None = None
    help: str = ""
    #: Smallest value allowed (None: any, e.g. a seed).
    minimum: float | None = 1e-9
    #: A file name: with the ordinary API token only files under this folder of the project
    #: (e.g. ``bench/surfaces``) may be named; the admin token may name any file.
    files_in: str | None = None


#: Flags the TensorFlow built-ins accept for knobs (see ``workloads/_common.base_parser``).
COMMON_KNOB_FLAGS = {
    "inter_op": "--inter-op",
    "intra_op": "--intra-op",
    "batch_size": "--batch-size",
    "precision": "--precision",
    "xla": "--xla",
}

#: Flags the PyTorch built-ins accept for knobs (``workloads/_torch.py``): torch's intra-op
#: pool (``torch.set_num_threads``, OpenMP's team), its inter-op pool, batch and precision.
TORCH_KNOB_FLAGS = {
    "torch_threads": "--threads",
    "torch_interop_threads": "--interop-threads",
    "batch_size": "--batch-size",
    "precision": "--precision",
}

COMMON_PARAMS = {
    "preset": Param(flag="--preset", type=str, choices=("small", "full"),
                    help="named sizes: small (seconds, for tests and quick studies) or full"),
    "seconds": Param(flag="--seconds", type=float, help="timed seconds of measurement"),
    "intervals": Param(flag="--intervals", type=int, help="METRIC lines per run"),
    "warmup_steps": Param(flag="--warmup-steps", type=int, help="untimed steps first"),
    "seed": Param(flag="--seed", type=int, help="seed of weights and synthetic inputs",
                  minimum=None),
}


@dataclass(frozen=True, kw_only=True)
class Builtin:
    name: str
    module: str
    summary: str
    unit: str
    params: dict[str, Param] = field(default_factory=dict)
    knob_flags: dict[str, str] = field(default_factory=lambda: dict(COMMON_KNOB_FLAGS))
    #: Per-run timeout by preset (seconds), used when the study sets none.
    timeouts: dict[str, float] = field(default_factory=lambda: {"small": 180.0, "full": 3600.0})
    #: The workload's own batch size by preset, i.e. the "framework defaults" value.
    default_batch: dict[str, int] = field(default_factory=dict)
    #: Units of modes that measure something else (parallel_wavenet's distill: steps/s).
    mode_units: dict[str, str] = field(default_factory=dict)
    #: The framework it runs on (``workload.runtime``'s default for it).
    runtime: Literal["tensorflow", "torch"] = "tensorflow"
    #: When it imports that framework: always (None), never (``{}``: the replay), or only
    #: with these params (the proxy: ``backend: tensorflow``; NumPy otherwise).
    framework_when: dict[str, str] | None = None

    def all_params(self) -> dict[str, Param]:
        return {**COMMON_PARAMS, **self.params}

    def needs_framework(self, params: Mapping[str, object]) -> bool:
        """Whether a run with ``params`` imports ``runtime``'s framework."""
        if self.framework_when is None:
            return True
        return bool(self.framework_when) and all(
            params.get(key) == value for key, value in self.framework_when.items())

    def timeout_for(self, preset: str) -> float:
        return self.timeouts.get(preset, max(self.timeouts.values()))


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            name="resnet",
            module="workloads.resnet",
            summary="ResNet-50 v1 inference or training on synthetic 224x224 images "
                    "(tf_cnn_benchmarks style); images/s",
            unit="images/s",
            params={
                "mode": Param(flag="--mode", type=str, choices=("infer", "train")),
                "image_size": Param(flag="--image-size", type=int,
                                    help="square input size in pixels"),
                "learning_rate": Param(flag="--learning-rate", type=float),
            },
            default_batch={"small": 8, "full": 64},
        ),
        Builtin(
            name="wavenet",
            module="workloads.wavenet",
            summary="autoregressive WaveNet generation with the fast-generation algorithm "
                    "(per-layer caches), compiled loop over chunks of samples; samples/s",
            unit="samples/s",
            params={
                "algorithm": Param(flag="--algorithm", type=str, choices=("fast", "naive"),
                                   help="fast: O(layers) per sample; naive: full window"),
                "chunk": Param(flag="--chunk", type=int,
                               help="samples generated per compiled call"),
            },
            default_batch={"small": 1, "full": 1},
        ),
        Builtin(
            name="parallel_wavenet",
            module="workloads.parallel_wavenet",
            summary="Parallel WaveNet student (inverse-autoregressive flows on logistic "
                    "noise): every timestep in parallel, timesteps/s; or one distillation "
                    "training step, steps/s",
            unit="timesteps/s",
            params={
                "mode": Param(flag="--mode", type=str, choices=("generate", "distill")),
                "length": Param(flag="--length", type=int,
                                help="timesteps generated per forward pass"),
            },
            default_batch={"small": 1, "full": 1},
            mode_units={"distill": "steps/s"},
        ),
        Builtin(
            name="gnmt",
            module="workloads.gnmt",
            summary="GNMT v2 translation inference: bidirectional + 3 LSTM encoder, 4-layer "
                    "LSTM decoder with normalised Bahdanau attention, beam search; "
                    "sentences/s",
            unit="sentences/s",
            params={
                "beam_width": Param(flag="--beam-width", type=int),
                "source_length": Param(flag="--source-length", type=int,
                                       help="tokens per synthetic source sentence"),
            },
            default_batch={"small": 8, "full": 32},
        ),
        Builtin(
            name="proxy",
            module="workloads.proxy",
            summary="the WaveNet proxy: a 128-vector through 80 different 128x128 matrices "
                    "per sample (5 MB of weights), NumPy or TensorFlow; samples/s and "
                    "weight bytes/s against the measured memory bandwidth",
            unit="samples/s",
            params={
                "backend": Param(flag="--backend", type=str, choices=("numpy", "tensorflow")),
                "matrices": Param(flag="--matrices", type=int),
                "size": Param(flag="--size", type=int),
            },
            default_batch={"small": 1, "full": 1},
            framework_when={"backend": "tensorflow"},
        ),
        Builtin(
            name="torch_resnet",
            module="workloads.torch_resnet",
            summary="ResNet-50 v1.5 in plain torch.nn (no torchvision), inference or "
                    "training on synthetic 224x224 images; images/s",
            unit="images/s",
            params={
                "mode": Param(flag="--mode", type=str, choices=("infer", "train")),
                "image_size": Param(flag="--image-size", type=int,
                                    help="square input size in pixels"),
            },
            knob_flags=dict(TORCH_KNOB_FLAGS),
            default_batch={"small": 8, "full": 64},
            runtime="torch",
        ),
        Builtin(
            name="torch_transformer",
            module="workloads.torch_transformer",
            summary="a BERT-style Transformer encoder (torch.nn.TransformerEncoder) over "
                    "synthetic token sequences, inference or training; sequences/s",
            unit="sequences/s",
            params={
                "mode": Param(flag="--mode", type=str, choices=("infer", "train")),
                "seq_len": Param(flag="--seq-len", type=int, help="tokens per sequence"),
                "layers": Param(flag="--layers", type=int, help="encoder layers"),
            },
            knob_flags=dict(TORCH_KNOB_FLAGS),
            default_batch={"small": 8, "full": 32},
            runtime="torch",
        ),
        Builtin(
            name="replay",
            module="workloads.replay",
            summary="replays a recorded performance surface (bench/surfaces): draws a recorded "
                    "run of the configuration it was launched with; for testing and comparing "
                    "search strategies",
            unit="",
            params={
                "surface": Param(flag="--surface", type=str, help="surface JSON file",
                                 files_in="bench/surfaces"),
                "time_scale": Param(flag="--time-scale", type=float, minimum=0.0,
                                    help="fraction of the recorded interval length to sleep"),
            },
            timeouts={"small": 60.0, "full": 60.0},
            framework_when={},
        ),
    )
}
