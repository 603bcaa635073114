"""The search space of a study on this host: the knobs it tunes with their resolved domains,
the knobs it fixes, the two baselines, and how a set of knob values becomes a ``Launch``.

``build_space`` is where the study file meets the host. Every problem it finds is returned
with its path inside the study (``knobs.intra_op.high``) so the loader can name the line;
nothing impossible on this host (a core or node that does not exist, a knob that cannot be
applied) survives into the space, so it can never be sampled.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.execution.launch import Launch
from tuner.host import Host
from tuner.knobs import (
    CONTROLLED_ENV,
    SYSTEM_FAMILY,
    UNSET,
    ChoiceDomain,
    Domain,
    DomainError,
    IntDomain,
    Knob,
    KnobContext,
    UnknownKnobError,
    catalogue,
    make_knob,
)
from tuner.knobs.custom import CustomKnob, TemplateKnob, placeholder_text
from tuner.space.baselines import baseline_values, custom_defaults
from tuner.space.checks import check_objective, check_params, sampler_unavailable
from tuner.space.constraints import (
    PLACEMENT,
    Constraints,
    narrow,
    narrow_domains,
    thread_low,
    valid_count,
)
from tuner.space.workload import PythonProblem, base_builder, missing_framework, target_of
from tuner.spec.consistency import FieldPath, Problem, placeholders_of
from tuner.spec.load import Fit
from tuner.spec.models import BaselineName, StudySpec, WorkloadSpec

MAX_GRID = 200_000


def config_key(applied: Mapping[str, Any] | None) -> str:
    """The identity of a configuration (its knob values), as a string: equal knob values,
    equal keys, whatever the order they were given in."""
    return json.dumps(dict(applied or {}), sort_keys=True, default=str)


class SpaceError(ValueError):
    """Problems found while fitting a study to this host, each with its path in the study."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
        self.problems = problems


@dataclass(frozen=True)
class Dimension:
    name: str
    knob: Knob
    domain: Domain


@dataclass(frozen=True, kw_only=True)
class BaselineTrial:
    name: BaselineName
    #: What the baseline applies beyond the study's fixed knobs, by knob name: the custom
    #: knobs' defaults, and for the vendor its runtime's recipe (nothing that runtime
    #: cannot read: no TF_* variable on openmp, no TF_*/OMP_*/KMP_* on native).
    values: dict[str, Any]
    #: The values recorded for the tuned knobs (so the sampler sees a point of its space).
    params: dict[str, Any]
    #: Tuned knobs whose baseline value lies outside an integer domain and was recorded as
    #: the nearest value in it (what ran is in ``values``).
    approximate: list[str] = field(default_factory=list)


def system_policy_problems(spec: StudySpec, knobs: Mapping[str, Knob]
                           ) -> list[tuple[FieldPath, str]]:
    """``system.allow``: names system knobs only, and every system knob the study names is in
    it (when given)."""
    allow = spec.system.allow
    if allow is None:
        return []
    problems: list[tuple[FieldPath, str]] = []
    system_names = {name for name, knob in catalogue().items() if knob.family == SYSTEM_FAMILY}
    for index, name in enumerate(allow):
        if name not in system_names:
            known = ", ".join(sorted(system_names))
            problems.append((("system", "allow", index),
                             f"{name!r} is not a system knob (system knobs: {known})"))
    for name in spec.knobs:
        knob = knobs.get(name)
        if knob is not None and knob.family == SYSTEM_FAMILY and name not in allow:
            problems.append((("knobs", name), (
                f"a system knob this study does not allow: system.allow lists "
                f"{', '.join(allow) or 'none'}; add {name} there or remove it")))
    return problems


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    spec: StudySpec
    host: Host
    ctx: KnobContext
    knobs: dict[str, Knob]
    dims: list[Dimension]
    fixed: dict[str, Any]
    baselines: list[BaselineTrial]
    constraints: Constraints
    thread_low: int = 1
    #: Valid configurations of the tuned knobs (the grid of the valid space).
    size: int = 1
    #: Knobs asked for with ``auto`` that this host cannot apply, each dropped with a
    #: one-line note (an explicit domain for such a knob is a validation error instead).
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    @property
    def system_knobs(self) -> dict[str, Knob]:
        """The tuned or fixed knobs that change the machine (``family`` system)."""
        return {name: self.knobs[name] for name in (*self.names, *self.fixed)
                if self.knobs[name].family == SYSTEM_FAMILY}

    def system_now(self) -> dict[str, Any]:
        """The current value of each of ``system_knobs`` on this machine."""
        return {name: knob.default_value(self.ctx) for name, knob in self.system_knobs.items()}

    @property
    def notes(self) -> list[str]:
        """One line per dropped ``auto`` knob, for the CLI, the worker's log and the report."""
        return [f"{self.spec.name}: knobs.{name} (auto) left out: {reason}"
                for name, reason in self.dropped.items()]

    def suggest(self, trial: Any, skip: set[str] | None = None) -> dict[str, Any]:
        """Ask an Optuna trial for a value of every tuned knob (but those in ``skip``)."""
        values: dict[str, Any] = {}
        for dim in self.dims:  # placement first: the ranges after it depend on it
            if skip and dim.name in skip:
                continue
            domain = self.domain_of(dim, values)
            if isinstance(domain, IntDomain):
                values[dim.name] = trial.suggest_int(dim.name, domain.low, domain.high,
                                                     step=domain.step)
            else:
                values[dim.name] = trial.suggest_categorical(dim.name, list(domain.choices))
        follow = self.constraints.follow
        if follow is not None:
            threads = values.get(follow, self.fixed.get(follow))
            assert isinstance(threads, int), "validation ensures the followed knob is set"
            copies = self.constraints.instances({**self.fixed, **values})
            values["physcpubind"] = threads * copies
        return values

    def domain_of(self, dim: Dimension, values: Mapping[str, Any]) -> Domain:
        """``dim``'s domain given the values of the knobs before it (a thread count within
        the binding chosen)."""
        return narrow(dim.domain, self.constraints.cap(
            dim.name, {**self.fixed, **values}, self.thread_low)) or dim.domain

    def configurations(self, skip: set[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every valid configuration of the tuned knobs (but those in ``skip``), in grid
        order: what ``suggest`` can return, without the values a knob follows."""
        dims = [d for d in self.dims if not (skip and d.name in skip)]

        def extend(index: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if index == len(dims):
                yield dict(values)
                return
            dim = dims[index]
            for value in self.domain_of(dim, values).values():
                values[dim.name] = value
                yield from extend(index + 1, values)
                del values[dim.name]

        return extend(0, {})

    def grid(self) -> dict[str, list[Any]]:
        return {d.name: d.domain.values() for d in self.dims}

    def launch(self, values: Mapping[str, Any]) -> Launch:
        """The launch of a trial: the workload's base, then ``values``, then the fixed
        knobs (which no baseline overrides). Knobs this host cannot apply are skipped with
        a note in the launch."""
        builder = base_builder(self.spec.workload, python=self.ctx.target.python)
        merged = {k: v for k, v in values.items() if k not in self.fixed}
        merged.update(self.fixed)
        for name, value in merged.items():
            knob = self.knobs[name]
            reason = knob.availability(self.ctx)
            if reason is not None:
                if value != UNSET:
                    builder.notes.append(f"{name}={value} not applied: {reason}")
                continue
            knob.apply(value, builder, self.ctx)
            builder.set_placeholder(name, placeholder_text(value))
        return builder.build(self.host)

    @property
    def controlled_env(self) -> frozenset[str]:
        """Variables scrubbed from the inherited environment of every trial."""
        custom = {getattr(k, "variable", None) for k in self.knobs.values()}
        return CONTROLLED_ENV | {v for v in custom if isinstance(v, str)}

    def describe(self) -> dict[str, Any]:
        return {
            "runtime": self.ctx.target.kind_of_runtime,
            "tuned": {d.name: d.domain.describe() for d in self.dims},
            "fixed": {k: v for k, v in self.fixed.items()},
            "size": self.size,
        }

    def key(self) -> str:
        """Identity of what the trials measure: workload, objective and the space. Resuming a
        study with a different key would mix incomparable trials."""
        blob = {
            "workload": _workload_identity(self.spec.workload),
            "objective": self.spec.objective.model_dump(mode="json"),
            # the runtime is the workload's (above); leaving it out keeps the keys of
            # studies stored before the description named it
            "space": {k: v for k, v in self.describe().items() if k != "runtime"},
            "repeats": self.spec.repeats.model_dump(mode="json"),
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _workload_identity(workload: WorkloadSpec) -> dict[str, Any]:
    """The workload as the space key has always read it, so a study stored by an earlier
    tuner resumes under this one: ``echo`` only when set, and the runtime in the older
    spelling (``tensorflow: true`` for tensorflow or unset, ``false`` for native; only
    ``openmp``, which had no older spelling, as ``runtime``)."""
    data = workload.model_dump(mode="json", by_alias=True)
    for added in ("echo", "python"):  # fields added later: only when set
        if data.get(added) is None:
            data.pop(added, None)
    runtime = data.pop("runtime", None)
    if runtime == "openmp":
        data["runtime"] = runtime
    data["tensorflow"] = runtime != "native" and data.get("tensorflow") is not False
    return data


def _with_baseline_choices(domain: Domain, values: list[Any]) -> Domain:
    """Categorical domains grow to include the baselines' values: the baselines are points
    of every study's space (integer domains are never widened)."""
    if isinstance(domain, ChoiceDomain):
        extra = tuple(v for v in values if not domain.contains(v))
        extra = tuple(dict.fromkeys(extra))
        if extra:
            return ChoiceDomain(domain.choices + extra)
    return domain


def build_space(spec: StudySpec, host: Host) -> SearchSpace:
    """Fit ``spec`` to ``host``. Raises ``SpaceError`` listing every problem found."""
    problems = check_params(spec) + check_objective(spec)
    try:
        target = target_of(spec.workload, host)
    except PythonProblem as exc:
        raise SpaceError([*problems, (("workload", "python"), str(exc))]) from exc
    if host.local:
        missing = missing_framework(spec.workload, target)
        if missing is not None:
            problems.append((("workload", "builtin"), missing))
    ctx = KnobContext(host=host, target=target)
    known = catalogue(dict(spec.knobs))
    knobs: dict[str, Knob] = dict(known)
    resolved: dict[str, Domain] = {}
    fixed: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    placeholders = placeholders_of(spec.workload)
    for name, entry in spec.knobs.items():
        path: FieldPath = ("knobs", name)
        if entry.is_custom and name in known:
            problems.append((path, f"{name!r} is a catalogue knob; give the custom knob "
                                   "another name"))
            continue
        try:
            knob = make_knob(name, entry, known, placeholders=placeholders)
        except UnknownKnobError as exc:
            problems.append((path, str(exc)))
            continue
        reason = knob.availability(ctx)
        if reason is not None and name in placeholders and not isinstance(knob, CustomKnob):
            # a catalogue knob this workload cannot apply (batch_size on a command): the
            # study names it in a placeholder, which it only fills
            knob, reason = TemplateKnob(name=name, default=entry.default), None
        if entry.default is not None and not isinstance(knob, CustomKnob):
            problems.append((path + ("default",), (
                f"{name} is a catalogue knob, which starts from the runtime's own default; "
                "default belongs to custom knobs (env:, flag:, or a {placeholder} knob)")))
            continue
        knobs[name] = knob
        if reason is not None and entry.kind == "auto":
            dropped[name] = reason  # a host-derived domain: nothing to derive it from here
            continue
        if reason is not None:
            problems.append((path, f"cannot be applied here: {reason}"))
            continue
        if entry.follow is not None and name != "physcpubind":
            problems.append((path + ("follow",), "only physcpubind can follow a thread knob"))
            continue
        try:
            domain = knob.domain(entry, ctx)
        except DomainError as exc:
            problems.append((path + ((exc.field,) if exc.field else ()), str(exc)))
            continue
        if entry.kind == "follow":
            continue  # derived from the thread knob it follows
        if entry.kind == "value":
            fixed[name] = entry.value
        else:
            resolved[name] = domain
    problems += system_policy_problems(spec, knobs)
    if "physcpubind" in spec.knobs and "cpunodebind" in spec.knobs:
        problems.append((("knobs", "cpunodebind"), "physcpubind and cpunodebind both bind "
                                                   "CPUs; tune one of them"))
    binding = spec.knobs.get("physcpubind")
    follow = binding.follow if binding is not None else None
    if follow is not None and follow not in resolved and follow not in fixed:
        problems.append((("knobs", "physcpubind", "follow"),
                         f"follows {follow}, which the study neither tunes nor fixes"))
    constraints = Constraints(host=host, threads_within_binding=spec.threads_within_binding,
                              follow=follow, siblings=bool(binding and binding.siblings))
    if not problems:
        problems += narrow_domains(constraints, resolved, fixed)
    if problems:
        raise SpaceError(problems)

    names = set(resolved) | set(fixed) | ({"physcpubind"} if follow else set())
    defaults = custom_defaults(spec, fixed=set(fixed))
    recipes = {b: baseline_values(b, ctx, tuned_or_fixed=names, defaults=defaults)
               for b in spec.baselines}
    dims: list[Dimension] = []
    for name, domain in resolved.items():
        knob = knobs[name]
        wanted = [recipes[b].get(name, knob.default_value(ctx)) for b in spec.baselines]
        domain = _with_baseline_choices(domain, wanted)
        if domain.size == 1:
            fixed[name] = domain.values()[0]
        else:
            dims.append(Dimension(name=name, knob=knob, domain=domain))
    dims.sort(key=lambda d: PLACEMENT.index(d.name) if d.name in PLACEMENT else len(PLACEMENT))
    domains = {d.name: d.domain for d in dims}
    full = math.prod(d.domain.size for d in dims)
    size = valid_count(constraints, domains, fixed)

    baselines: list[BaselineTrial] = []
    for b in spec.baselines:
        params: dict[str, Any] = {}
        approximate: list[str] = []
        for dim in dims:
            value = recipes[b].get(dim.name, dim.knob.default_value(ctx))
            if not dim.domain.contains(value):
                assert isinstance(dim.domain, IntDomain)
                approximate.append(dim.name)
                value = dim.domain.nearest(value if isinstance(value, int) else dim.domain.low)
            params[dim.name] = value
        baselines.append(BaselineTrial(name=b, values=recipes[b], params=params,
                                       approximate=approximate))
    missing = sampler_unavailable(spec.sampler.name)
    if missing:
        raise SpaceError([(("sampler", "name"), missing)])
    if spec.sampler.name == "grid":
        if size != full:
            raise SpaceError([(("sampler", "name"), (
                f"the grid sampler needs a rectangular grid, but only {size} of the {full} "
                "combinations are valid here (threads within the binding); use tpe or "
                "random, or set threads_within_binding: false"))])
        if size > MAX_GRID:
            raise SpaceError([(("sampler", "name"),
                               f"a grid of {size} configurations is too large (at most "
                               f"{MAX_GRID}); use tpe or random")])
    return SearchSpace(spec=spec, host=host, ctx=ctx, knobs=knobs, dims=dims, fixed=fixed,
                       baselines=baselines, constraints=constraints,
                       thread_low=thread_low(domains, fixed), size=size, dropped=dropped)


def fit_to(host: Host) -> Fit:
    """What ``tuner.spec.parse_text`` asks of a host: the problems of fitting a study to
    it (knob names, domains, availability), each with its path in the study."""
    def fit(spec: StudySpec) -> list[Problem]:
        try:
            build_space(spec, host)
        except SpaceError as exc:
            return list(exc.problems)
        return []
    return fit
