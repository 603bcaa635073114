"""tuner.testing.specs: study files for tests built from data."""

from __future__ import annotations

import yaml

from tuner.testing import study_spec, study_yaml


def test_the_default_study_is_valid_and_quick() -> None:
    spec = study_spec()
    assert spec.workload.builtin == "resnet"
    assert spec.workload.params["seconds"] == 0.5


def test_overrides_replace_keys_and_params_only_the_parameters() -> None:
    spec = study_spec(name="other", knobs={"intra_op": [1, 2]}, params={"preset": "small"})
    assert spec.name == "other" and set(spec.knobs) == {"intra_op"}
    assert spec.workload.builtin == "resnet" and spec.workload.params == {"preset": "small"}
    text = study_yaml(workload={"command": ["python", "x.py"]})
    assert yaml.safe_load(text)["workload"] == {"command": ["python", "x.py"]}
