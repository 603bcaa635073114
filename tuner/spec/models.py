"""Pydantic models of a study file. Structure and bounds only (``tuner.spec.limits``): checks
across fields are in ``tuner.spec.consistency``; whether a knob exists, fits this host or
suits the workload is checked afterwards by ``tuner.space.search_space`` with the knob catalogue.

A file holds one study (a mapping with ``name``), a list of studies, or ``studies: [...]``.
Each model forbids unknown fields, so a typo is an error, never silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuner.spec import limits
from tuner.spec.builtin_workloads import BUILTINS

BaselineName = Literal["defaults", "vendor"]
BASELINES: tuple[BaselineName, ...] = ("defaults", "vendor")
_M = limits.MAX_MAGNITUDE
#: A bounded integer, a finite bounded number, a bounded string (see ``tuner.spec.limits``).
Int = Annotated[int, Field(strict=True, ge=-_M, le=_M)]
Float = Annotated[float, Field(strict=True, ge=-_M, le=_M, allow_inf_nan=False)]
Text = Annotated[str, Field(strict=True, max_length=limits.MAX_STRING)]
Scalar = StrictBool | Int | Float | Text

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                       r"(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(value: Any) -> Any:
    """Seconds from ``90``, ``90s``, ``10m``, ``1h30m``; other input is left for pydantic to
    reject with its own message."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            return h * 3600 + m * 60 + s
        raise ValueError(f"expected a duration such as 90, '90s', '10m' or '1h30m', "
                         f"got {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration),
                     Field(gt=0, le=limits.MAX_SECONDS, allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class KnobSpec(Strict):
    """The domain of one knob: exactly one of a range, choices, a fixed value, or ``auto``.

    Shorthands: ``4`` is a fixed value, ``[1, 2, 4]`` are choices, ``auto`` asks the knob
    for a domain derived from this host. ``env``/``flag`` make a custom knob.
    """

    low: Int | None = None
    high: Int | None = None
    step: Int | None = None
    choices: Annotated[list[Scalar], Field(max_length=limits.MAX_CHOICES)] | None = None
    value: Scalar | None = None
    auto: StrictBool = False
    env: Text | None = None
    flag: Text | None = None
    siblings: StrictBool = False
    #: physcpubind only: bind each instance to as many cores as this thread knob's value.
    follow: Literal["intra_op", "OMP_NUM_THREADS", "torch_threads"] | None = None
    #: A custom knob's value the program runs with today (the defaults baseline uses it).
    default: Scalar | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"choices": data}
        if data == "auto":
            return {"auto": True}
        if isinstance(data, bool | int | float | str):
            return {"value": data}
        if data is None:
            raise ValueError("expected a domain: {low, high, step}, {choices: [...]}, "
                             "a fixed value, or auto")
        return data

    @field_validator("step")
    @classmethod
    def _step_positive(cls, step: int | None) -> int | None:
        if step is not None and step < 1:
            raise ValueError(f"expected a step >= 1, got {step}")
        return step

    @field_validator("choices")
    @classmethod
    def _choices_nonempty_unique(cls, choices: list[Any] | None) -> list[Any] | None:
        if choices is not None:
            if not choices:
                raise ValueError("expected at least one choice, got an empty list")
            seen: set[tuple[type, Any]] = set()  # 1, 1.0 and true are different choices
            for choice in choices:
                key = (type(choice), choice)
                if key in seen:
                    raise ValueError(f"choice {choice!r} is listed twice")
                seen.add(key)
        return choices

    @field_validator("env")
    @classmethod
    def _env_name(cls, env: str | None) -> str | None:
        if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            raise ValueError(f"expected an environment variable name, got {env!r}")
        return env

    @field_validator("flag")
    @classmethod
    def _flag_name(cls, flag: str | None) -> str | None:
        if flag is not None and not re.fullmatch(r"--?[A-Za-z0-9][A-Za-z0-9_.-]*", flag):
            raise ValueError(f"expected a command-line flag such as --threads, got {flag!r}")
        return flag

    @model_validator(mode="after")
    def _one_domain(self) -> KnobSpec:
        kinds = [name for name, present in (
            ("range", self.low is not None or self.high is not None or self.step is not None),
            ("choices", self.choices is not None),
            ("value", self.value is not None),
            ("auto", self.auto),
            ("follow", self.follow is not None)) if present]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none"
            raise ValueError("expected exactly one domain: {low, high, step}, choices, value, "
                             f"auto (or follow, for physcpubind); found {found}")
        if self.env is not None and self.flag is not None:
            raise ValueError("a custom knob sets either env or flag, not both")
        if kinds == ["range"]:
            if self.low is None or self.high is None:
                raise ValueError("a range needs both low and high")
            if self.low > self.high:
                raise ValueError(f"empty range: low {self.low} is above high {self.high}")
            step = self.step or 1
            count = (self.high - self.low) // step + 1
            if count > limits.MAX_RANGE:
                raise ValueError(f"a range of {count} values ({self.low}..{self.high} by "
                                 f"{step}); at most {limits.MAX_RANGE}: use a larger step")
            if (self.high - self.low) % step:
                raise ValueError(f"step {step} does not divide the range {self.low}..{self.high}"
                                 f" (high - low = {self.high - self.low}); like `seq "
                                 f"{self.low} {step} {self.high}`, high must be low + k*step")
        return self

    @property
    def kind(self) -> Literal["range", "choices", "value", "auto", "follow"]:
        if self.follow is not None:
            return "follow"
        if self.choices is not None:
            return "choices"
        if self.value is not None:
            return "value"
        if self.auto:
            return "auto"
        return "range"

    def listed(self) -> list[Any]:
        """The values of a ``choices`` or ``value`` entry, as a list."""
        if self.choices is not None:
            return list(self.choices)
        return [self.value] if self.value is not None else []

    @property
    def is_custom(self) -> bool:
        return self.env is not None or self.flag is not None


def _with_named_groups(regex: str | None, expected: str) -> str | None:
    """``regex`` if it compiles and has a named group (``expected`` says which, for the
    message); a ValueError otherwise."""
    if regex is None:
        return None
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    if not compiled.groupindex:
        raise ValueError(f"expected {expected}")
    return regex


class ParserSpec(Strict):
    """How to read metrics from a command's output: the METRIC/FINAL line ``protocol``, a
    named ``preset`` of a known program, a ``regex`` with named groups, or a JSON-line key."""

    preset: Text | None = None
    regex: Annotated[str, Field(strict=True, max_length=1000)] | None = None
    json_key: Text | None = Field(default=None, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"preset": data} if isinstance(data, str) else data

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, regex: str | None) -> str | None:
        return _with_named_groups(regex, "a named group, e.g. "
                                         "'images/sec: (?P<throughput>[0-9.]+)'")

    @model_validator(mode="after")
    def _exactly_one(self) -> ParserSpec:
        given = [n for n in ("preset", "regex", "json_key") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of preset (a name), regex or json")
        return self


#: A named runtime (``workload.python``; ``tuner.execution.runtimes`` holds the same rule).
RUNTIME_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class WorkloadSpec(Strict):
    """A built-in workload by name with its parameters, or a command as an argument list."""

    builtin: Text | None = None
    params: dict[str, Scalar] = Field(default_factory=dict, max_length=limits.MAX_ENTRIES)
    command: Annotated[list[Text], Field(max_length=limits.MAX_ARGS)] | None = None
    parser: ParserSpec | None = None
    #: Deprecated spelling of ``runtime: tensorflow`` (true) / ``runtime: native`` (false).
    tensorflow: StrictBool | None = None
    #: What the program runs on, which decides the knobs that apply and the vendor
    #: baseline: ``tensorflow``, ``torch`` (PyTorch: its OpenMP runtime and allocator),
    #: ``openmp`` (an OpenMP program), ``native`` (anything else: only placement). Unset: the
    #: built-in's own (tensorflow, or torch for the torch_* workloads), native for commands.
    runtime: Literal["tensorflow", "torch", "openmp", "native"] | None = None
    #: The Python a built-in workload runs in: a runtime made by ``tuner runtime create
    #: NAME`` (its name), or the absolute path of an interpreter (admin token on the
    #: service: it names a program to run). Unset: tuner's own interpreter.
    python: Text | None = None
    #: A regex with a named group per knob that reads back, from the program's output, the
    #: values it actually ran with; a trial whose read-back differs from what was asked fails.
    echo: Annotated[str, Field(strict=True, max_length=1000)] | None = None
    cwd: Text | None = None
    env: dict[str, Text] = Field(default_factory=dict, max_length=limits.MAX_ENTRIES)
    timeout: Duration | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _argument_list(cls, command: Any) -> Any:
        if isinstance(command, str):
            raise ValueError(
                "expected an argument list such as [python, train.py, --steps, '100']; "
                "a shell string is never run (no quoting, globbing or injection surprises)")
        return command

    @field_validator("command")
    @classmethod
    def _nonempty(cls, command: list[str] | None) -> list[str] | None:
        if command is not None and (not command or not command[0]):
            raise ValueError("expected at least the program to run")
        return command

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, builtin: str | None) -> str | None:
        if builtin is not None and builtin not in BUILTINS:
            from difflib import get_close_matches

            close = get_close_matches(builtin, BUILTINS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown built-in workload {builtin!r}; known: "
                             f"{', '.join(sorted(BUILTINS))}{hint}")
        return builtin

    @field_validator("python")
    @classmethod
    def _python_name_or_path(cls, python: str | None, info: ValidationInfo) -> str | None:
        if python is None:
            return python
        if info.data.get("command") is not None:
            raise ValueError("python belongs to built-in workloads: a command names its "
                             "interpreter itself (its first argument)")
        if python.startswith("/"):
            if "\x00" in python or "/../" in python + "/" or "/./" in python + "/":
                raise ValueError("expected a plain absolute path of an interpreter (no '.', "
                                 "'..' or NUL), such as /opt/venv/bin/python")
            return python
        if not RUNTIME_NAME.fullmatch(python) or python.startswith("."):
            raise ValueError(f"{python!r} is neither a runtime name (letters, digits, '.', "
                             "'_', '-'; at most 64; not starting with '.'; made by `tuner "
                             "runtime create NAME`) nor an absolute path of an interpreter")
        return python

    @field_validator("echo")
    @classmethod
    def _echo_compiles(cls, echo: str | None) -> str | None:
        return _with_named_groups(echo, "a named group per knob, e.g. "
                                        "'Number of threads: (?P<threads>[0-9]+)'")

    @property
    def kind_of_runtime(self) -> Literal["tensorflow", "torch", "openmp", "native"]:
        """``runtime``, with its default filled in (see the field)."""
        if self.runtime is not None:
            return self.runtime
        if self.tensorflow is not None:
            return "tensorflow" if self.tensorflow else "native"
        if self.builtin is not None and self.builtin in BUILTINS:
            return BUILTINS[self.builtin].runtime
        return "native"

    @model_validator(mode="after")
    def _builtin_or_command(self) -> WorkloadSpec:
        if (self.builtin is None) == (self.command is None):
            raise ValueError("expected exactly one of builtin (a name) or command (a list)")
        if self.command is not None and self.parser is None:
            raise ValueError("a command workload needs a parser: protocol, a preset "
                             "(tf_cnn_benchmarks, wavenet, gnmt), {regex: ...} or {json: key}")
        if self.builtin is not None and (self.cwd or self.env or self.parser):
            raise ValueError("cwd, env and parser belong to command workloads")
        return self


class Objective(Strict):
    metric: Text = "throughput"
    direction: Literal["maximize", "minimize"] = "maximize"


class Budget(Strict):
    """Stop after ``n_trials`` trials in the study (baselines included) and/or after
    ``timeout`` of wall-clock time in this run, whichever comes first."""

    n_trials: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | None = None
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _default_trials(self) -> Budget:
        if self.n_trials is None and self.timeout is None:
            object.__setattr__(self, "n_trials", 20)
        return self


class SamplerSpec(Strict):
    name: Literal["tpe", "gp", "cmaes", "random", "grid"] = "tpe"
    #: numpy's ``RandomState`` (Optuna's samplers) takes 0..2**32-1.
    seed: Annotated[int, Field(ge=0, le=limits.MAX_SEED, strict=True)] | None = None
    multivariate: StrictBool = True
    n_startup_trials: Annotated[int, Field(ge=0, le=1_000_000, strict=True)] | None = None


class RepeatsSpec(Strict):
    """Runs per trial. ``repeats: 3`` is a fixed count; ``{min: 1, max: 3}`` adapts: a
    candidate within the noise of the best (or better) gets more runs, up to ``max``; a
    clearly worse one stops at ``min``. The trial's value is ``statistic`` of its runs."""

    min: Annotated[int, Field(ge=1, le=50, strict=True)] = 1
    max: Annotated[int, Field(ge=1, le=50, strict=True)] = 3
    statistic: Literal["median", "trimmed_mean"] = "median"

    @model_validator(mode="before")
    @classmethod
    def _fixed_count(cls, data: Any) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return {"min": data, "max": data}
        if not isinstance(data, dict):
            raise ValueError(f"expected a number of runs such as 3, or {{min: 1, max: 3}}; "
                             f"got {data!r}")
        return data

    @model_validator(mode="after")
    def _ordered(self) -> RepeatsSpec:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class NoiseSpec(Strict):
    """Before the search, the defaults baseline runs ``runs`` times: the spread of those runs
    is the noise floor; above ``max_cv`` tuner warns that the machine is too noisy."""

    runs: Annotated[int, Field(ge=2, le=50, strict=True)] = 5
    max_cv: Annotated[float, Field(gt=0, lt=1)] = 0.10


class PrunerSpec(Strict):
    """Stop trials clearly worse than the best so far from their per-interval metrics.
    ``noise`` (default): the median of the intervals so far is more than ``margin`` (and
    more than 3 standard errors of the interval noise) below the best; Optuna's ``median``,
    ``percentile`` (with ``percentile``), ``wilcoxon``, ``successive_halving`` (rungs at
    ``min_intervals`` times 1, 3, 9... intervals, the best third going on), or ``none``."""

    name: Literal["noise", "median", "percentile", "wilcoxon", "successive_halving",
                  "none"] = "noise"
    margin: Annotated[float, Field(ge=0, lt=1)] = 0.10
    min_intervals: Annotated[int, Field(ge=1, le=1000, strict=True)] = 2
    percentile: Annotated[float, Field(gt=0, lt=100)] = 25.0
    #: End a run early once the mean of its intervals (at least 3) is known to within this
    #: relative standard error: the run is then measured more precisely than runs differ
    #: from each other. ``auto``: half the noise floor (1% until it is measured); 0: never.
    stable_error: Literal["auto"] | Annotated[float, Field(ge=0, lt=1)] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


def _check_first_look(rounds: int, max_rounds: int) -> None:
    """A sequential race's round budget must hold its first look."""
    if max_rounds < rounds:
        raise ValueError(f"max_rounds ({max_rounds}) must be at least rounds "
                         f"({rounds}), the rounds of the first look")


class ConfirmSpec(Strict):
    """After the search, the ``top`` candidates and both baselines run in interleaved
    rounds: ``rounds`` first, then more (about 1.5 times as many at each look) up to
    ``max_rounds``, until every interval still compared is within +/- ``precision`` (a
    fraction; ``auto``: the machine's noise floor, at least 2%). Speedups are reported
    with 95% intervals valid however early the rounds stop. ``top: 0`` skips it."""

    top: Annotated[int, Field(ge=0, le=10, strict=True)] = 3
    rounds: Annotated[int, Field(ge=2, le=50, strict=True)] = 4
    max_rounds: Annotated[int, Field(ge=2, le=100, strict=True)] = 12
    precision: Literal["auto"] | Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = "auto"
    #: Stop at the first look where the target cannot be met by ``max_rounds`` (the widest
    #: interval still racing, projected to the last look, over 1.5 times the target): fewer
    #: rounds on a noisy machine, at the price of choosing among near-tied candidates on
    #: fewer rounds. Off by default (see the README's time-to-answer figures).
    stop_out_of_reach: StrictBool = False

    @model_validator(mode="after")
    def _budget_holds_the_first_look(self) -> ConfirmSpec:
        _check_first_look(self.rounds, self.max_rounds)
        return self


class CiSpec(Strict):
    """``tuner ci``: the regression gate after an upgrade. The deployed settings are measured
    against the baselines (and, after a re-tune, the new candidates) in interleaved rounds:
    ``rounds`` first, then more at each look up to ``max_rounds``, until each comparison is
    decided against ``threshold`` (lost by more than it, or measurably not). A re-tune runs
    ``retune_trials`` trials (default: half the study's budget, at least 8), the previous
    study's ``warm_start`` best configurations first. ``version_command``: an argument list
    that prints the workload's own version (a command workload's program), recorded with the
    environment so that its upgrades show as changes."""

    threshold: Annotated[float, Field(gt=0.0, lt=0.5, strict=True)] = 0.05
    rounds: Annotated[int, Field(ge=2, le=50, strict=True)] = 4
    max_rounds: Annotated[int, Field(ge=2, le=200, strict=True)] = 30
    retune_trials: Annotated[int, Field(ge=1, le=10_000, strict=True)] | None = None
    warm_start: Annotated[int, Field(ge=0, le=20, strict=True)] = 3
    candidates: Annotated[int, Field(ge=1, le=5, strict=True)] = 2
    version_command: Annotated[list[Text], Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _budget_holds_the_first_look(self) -> CiSpec:
        _check_first_look(self.rounds, self.max_rounds)
        return self


class SystemSpec(Strict):
    """The study's policy for system knobs (settings of the whole machine: THP, NUMA
    balancing, prefetchers, frequency, ...): ``allow`` lists those it may change; a system
    knob in ``knobs`` outside it fails validation. Absent: every system knob it names.
    A shared study file lists here, in one place a reviewer reads, what it may touch."""

    allow: Annotated[list[StrictStr], Field(max_length=limits.MAX_KNOBS)] | None = None


class StudySpec(Strict):
    name: Name
    description: Text = ""
    workload: WorkloadSpec
    knobs: dict[StrictStr, KnobSpec] = Field(default_factory=dict, max_length=limits.MAX_KNOBS)
    objective: Objective = Field(default_factory=Objective)
    budget: Budget = Field(default_factory=Budget)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    repeats: RepeatsSpec = Field(default_factory=RepeatsSpec)
    noise: NoiseSpec = Field(default_factory=NoiseSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    confirm: ConfirmSpec = Field(default_factory=ConfirmSpec)
    ci: CiSpec = Field(default_factory=CiSpec)
    system: SystemSpec = Field(default_factory=SystemSpec)
    #: How built-in workloads start: ``fork`` from a server that has already imported
    #: TensorFlow (a fresh runtime each trial, 2-3 s less start-up), or ``fresh`` processes.
    #: Commands always start fresh.
    launcher: Literal["fork", "fresh"] = "fork"
    #: Thread pools (intra_op, OMP_NUM_THREADS) at most the hardware threads each instance
    #: is bound to: a larger pool only oversubscribes its cores.
    threads_within_binding: StrictBool = True
    #: Knobs to test for a measurable effect before the search; the inert ones are fixed
    #: at their defaults. ``auto``: the OpenMP knobs in the space; ``off``; or a list.
    screening: Literal["auto", "off"] | Annotated[
        list[StrictStr], Field(max_length=limits.MAX_KNOBS)] = "auto"
    baselines: list[BaselineName] = Field(default_factory=lambda: list(BASELINES),
                                          max_length=len(BASELINES))
    storage: Text | None = None

    @field_validator("screening", mode="before")
    @classmethod
    def _screening_switch(cls, value: Any) -> Any:
        # YAML 1.1 reads `screening: off` as false
        if isinstance(value, bool):
            return "auto" if value else "off"
        return value

    @field_validator("storage")
    @classmethod
    def _storage_url(cls, storage: str | None) -> str | None:
        if storage is not None and not re.match(r"^(sqlite|postgresql|mysql)(\+\w+)?://",
                                                storage):
            raise ValueError("expected a database URL such as sqlite:///tuner.db or "
                             f"postgresql://user@host/db, got {storage!r}")
        return storage
