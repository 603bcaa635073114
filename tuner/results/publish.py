"""tuner's answer where Optuna's own tools look: the study attribute ``TUNER_BEST`` and an
optuna-dashboard note on the study (and one on each baseline trial, saying what it set).

Optuna's ``study.best_trial`` cannot be told otherwise: it is the trial with the best single
search value, which the confirmation may have found no better than the defaults. The note
says so, next to the answer every other surface shows (``tuner.results.answer``).
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from tuner.results.render import format_speedup
from tuner.results.summary import Summary, summarize
from tuner.space.baselines import ROLE_LABELS
from tuner.store.attributes import APPLIED, ROLE, SAMPLER_PARAMS, TUNER_BEST

logger = logging.getLogger(__name__)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def note_body(summary: Summary, optuna_best: optuna.trial.FrozenTrial | None) -> str:
    answer = summary.answer
    assert answer is not None
    lines = [f"## tuner's answer for {_cell(summary.name)}", "",
             f"**Best: {_cell(summary.metric)} {_cell(answer.label)}**", ""]
    if answer.knobs:
        lines += ["| knob | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in sorted(answer.knobs.items())]
    else:
        lines.append("No knob set: the framework defaults.")
    lines.append("")
    for role, speedup in summary.speedups.items():
        lines.append(f"- over {ROLE_LABELS.get(role, role)}: {format_speedup(speedup)}")
    if summary.failed_baselines:
        lines += ["", _cell(summary.baseline_statement)]
        for failed in summary.failed_baselines.values():
            lines += ["", f"{_cell(failed.label)} (trial {failed.trial}) failed: "
                          f"{_cell(failed.reason)}; the last lines of its output:", "", "```"]
            lines += [line.replace("`", "'") for line in failed.tail] + ["```"]
    if optuna_best is not None and optuna_best.number != answer.trial:
        lines += ["", f"Optuna's *best trial* (trial {optuna_best.number}, "
                      f"{optuna_best.value:.4g}) is the best single search value; "
                      + ("the interleaved confirmation did not support it over the answer "
                         "above." if answer.confirmed else "it is not confirmed.")]
    lines += ["", f"The same answer is the study attribute `{TUNER_BEST.key}`, `tuner best "
                  f"{_cell(summary.name)}` and `GET /studies/{_cell(summary.name)}/best`. "
                  "The baseline trials have params only for what they set: the framework "
                  "defaults trial set nothing."]
    return "\n".join(lines)


def baseline_note(role: str, applied: dict[str, Any]) -> str:
    if not applied:
        return (f"**{ROLE_LABELS.get(role, role)}**: nothing applied, so this trial has no "
                "params. The sampler learns from it at the values the runtime chooses by "
                f"itself (system attribute `{SAMPLER_PARAMS.key}`).")
    shown = ", ".join(f"{_cell(k)}={_cell(v)}" for k, v in sorted(applied.items()))
    return (f"**{ROLE_LABELS.get(role, role)}**: applied {shown}. Its params are the tuned "
            "knobs it set exactly; the rest of its point for the sampler is in the system "
            f"attribute `{SAMPLER_PARAMS.key}`.")


def publish(study: optuna.Study) -> bool:
    """Write the answer as ``TUNER_BEST`` and as notes, unless it is there already.
    True when something was written."""
    summary = summarize(study)
    answer = summary.answer
    if answer is None:
        return False
    data = answer.to_dict()
    if TUNER_BEST.get(study) == data:
        return False
    from optuna_dashboard import save_note
    from optuna_dashboard._note import note_ver_key, save_note_with_version

    try:
        optuna_best: optuna.trial.FrozenTrial | None = study.best_trial
    except ValueError:
        optuna_best = None
    save_note(study, note_body(summary, optuna_best))
    storage, study_id = study._storage, study._study_id
    system = storage.get_study_system_attrs(study_id)
    for trial in study.get_trials(deepcopy=False):
        role = ROLE.get(trial)
        if role in ROLE_LABELS and note_ver_key(trial._trial_id) not in system:
            applied = APPLIED.get(trial) or {}
            save_note_with_version(storage, study_id, trial._trial_id, 1,
                                   baseline_note(role, applied))
    TUNER_BEST.put(study, data)
    logger.debug("study %s: published %s", study.study_name, answer.label)
    return True
