"""Opening a study on its storage: create it, or load it when it measures the same thing on
the same kind of machine; fail and retry the trials a dead tuner left running; enqueue the
baselines that have not run."""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState

from tuner.errors import StudyConflictError
from tuner.host import Fingerprint
from tuner.space.search_space import SearchSpace
from tuner.space.workload import unit_of
from tuner.store.attributes import (
    FINGERPRINT,
    HOST_CLASS,
    ROLE,
    SPACE,
    SPACE_KEY,
    SPEC,
    SPEC_TEXT,
    UNIT,
    WORKER,
    put_spec,
)
from tuner.store.database import live_trials, open_storage, retry_abandoned
from tuner.study.pruning import make_pruner
from tuner.study.sampler import BaselineAwareSampler, baseline_trial
from tuner.study.samplers import make_sampler


def open_study(space: SearchSpace, *, storage_url: str, fingerprint: Fingerprint,
               spec_text: str, sampler: optuna.samplers.BaseSampler | None = None
               ) -> optuna.Study:
    """Create the study, or load it if it exists and measures the same thing on the same kind
    of machine (otherwise ``StudyConflictError``)."""
    storage = optuna.storages.InMemoryStorage() if storage_url == "memory" else (
        open_storage(storage_url))
    name = space.spec.name
    key = space.key()
    sampler = BaselineAwareSampler(sampler or make_sampler(space), space=space)
    pruner = make_pruner(space.spec.pruner)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                  pruner=pruner)
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction=space.spec.objective.direction,
                                    load_if_exists=True)
    attrs = study.user_attrs
    if SPACE_KEY.present(attrs):
        if SPACE_KEY.get(attrs) != key:
            stored_space = SPACE.get(attrs)
            raise StudyConflictError(
                f"study {name!r} already exists with a different workload, objective or knob "
                f"space (stored {stored_space}, now {space.describe()}); its trials "
                f"would not be comparable. Give the study a new name, or delete the old one "
                f"with `tuner delete {name}`")
        if HOST_CLASS.get(attrs) != fingerprint.host_class:
            stored_model = FINGERPRINT.get(attrs).get("cpu_model")
            raise StudyConflictError(
                f"study {name!r} was measured on another kind of machine (host class "
                f"{HOST_CLASS.get(attrs)}, {stored_model}); "
                f"this one is {fingerprint.host_class} ({fingerprint.cpu_model}). Trials from "
                f"different machines must not be mixed: use a new study name")
    else:
        if SPEC_TEXT.present(attrs):  # submitted through the API: its text is stored already
            SPEC.put(study, space.spec.model_dump(mode="json", by_alias=True,
                                                  exclude_defaults=True))
        else:
            put_spec(study, space.spec, spec_text)
        SPACE.put(study, space.describe())
        SPACE_KEY.put(study, key)
        FINGERPRINT.put(study, fingerprint.to_dict())
        HOST_CLASS.put(study, fingerprint.host_class)
        UNIT.put(study, unit_of(space.spec.workload))
    if not study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([space.spec.objective.metric])
    return study


def recover_abandoned(study: optuna.Study, hostname: str) -> list[int]:
    """Fail and retry trials left RUNNING by a tuner process on this host that has died."""
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = WORKER.get(trial)
        if worker is not None and worker.is_dead(hostname):
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            retry_abandoned(study, trial, f"abandoned: the tuner process (pid "
                                          f"{worker.pid}) died mid-trial; retried")
            recovered.append(trial.number)
    return recovered


def enqueue_baselines(study: optuna.Study, space: SearchSpace) -> list[str]:
    """Enqueue each baseline that has no trial yet (one that ran and failed is a result)."""
    present = {ROLE.get(t) for t in live_trials(study)}
    enqueued: list[str] = []
    for baseline in space.baselines:
        if baseline.name not in present:
            study.add_trial(baseline_trial(space, baseline))
            enqueued.append(baseline.name)
    return enqueued
