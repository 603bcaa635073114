"""A real upgrade under ``tuner ci``: the same study file, the same runtime name, two real
TensorFlow builds. "Before" the runtime ``tf`` is Intel's TensorFlow 2.14 (its OpenMP build,
the ``intel-tf`` runtime of ``make runtimes``); "after" it is TensorFlow 2.21 (tuner's own
environment, oneDNN on its own thread pool). The study is tuned before; ``tuner ci`` after
says what changed (the TensorFlow version, its oneDNN threading, the OpenMP library),
re-tunes in a study of its own and gives a verdict with intervals.

Slow (about 3-5 minutes: real ResNet-50 runs of the small preset): ``pytest -m slow
tests/test_ci_upgrade.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuner.execution import runtimes
from tuner.settings import get_settings
from tuner.store import database as store
from tuner.store.attributes import CI_RUNS

pytestmark = pytest.mark.slow


def _runtime_dir(where: Path, prefix: Path, probe: dict[str, object]) -> Path:
    """A runtimes folder whose runtime ``tf`` is the virtual environment at ``prefix``."""
    where.mkdir(parents=True)
    (where / "tf").symlink_to(prefix, target_is_directory=True)
    (where / "tf.json").write_text(json.dumps({"name": "tf", "prefix": str(where / "tf"),
                                               "python": str(where / "tf/bin/python"),
                                               "probe": probe}))
    return where


def test_an_upgrade_from_intel_tensorflow_2_14_to_tensorflow_2_21(tmp_path: Path) -> None:
    installed = get_settings().runtimes_dir
    if "intel-tf" not in runtimes.names(installed):
        pytest.fail("the intel-tf runtime is missing: `make runtimes` creates it")
    before_probe = runtimes.read_fingerprint(installed, "intel-tf")["probe"]
    before = _runtime_dir(tmp_path / "before", installed / "intel-tf", before_probe)
    after = _runtime_dir(tmp_path / "after", Path(sys.prefix),
                         runtimes.probe(sys.executable))
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "upgrade", "workload": {"builtin": "resnet", "python": "tf", "params": {
            "preset": "small", "mode": "infer", "seconds": 1.5, "intervals": 3}},
        "knobs": {"intra_op": [1, 2], "inter_op": [1, 2]},
        "budget": {"n_trials": 5}, "noise": {"runs": 2}, "repeats": 1,
        "confirm": {"top": 1, "rounds": 2, "max_rounds": 3},
        "sampler": {"name": "tpe", "seed": 1},
        "ci": {"retune_trials": 5, "rounds": 3, "max_rounds": 6, "candidates": 1}}))
    storage = f"sqlite:///{tmp_path / 'tuner.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env["TUNER_CACHE_DIR"] = str(tmp_path / "cache")

    def tuner(*args: str, runtimes_dir: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tuner.cli", *args, "--quiet"],
                              env={**env, "TUNER_RUNTIMES_DIR": str(runtimes_dir)},
                              cwd=tmp_path, capture_output=True, text=True, timeout=900,
                              check=False)

    tuned = tuner("tune", str(study), "--storage", storage, runtimes_dir=before)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    checked = tuner("ci", str(study), "--study", "upgrade", "--storage", storage,
                    "--output", str(tmp_path / "out"), "--junit", "junit.xml",
                    runtimes_dir=after)
    assert checked.returncode in (0, 1, 3), checked.stdout + checked.stderr
    [record] = CI_RUNS.get(store.load(storage, "upgrade", heartbeat=False))
    changed = {c["field"]: (c["then"], c["now"]) for c in record["changed"]}
    assert changed["tensorflow"][0] == "2.14.0"
    assert changed["tensorflow"][1].startswith("2.2")
    assert changed["onednn_threading"] == ("openmp", "threadpool")
    assert record["retuned"] == "upgrade.ci1"
    assert record["verdict"] in ("ok", "improved", "regressed", "inconclusive")
    assert record["exit_code"] == checked.returncode
    now = record["speedup_now"]
    assert now is not None and now["low"] <= now["ratio"] <= now["high"]
    assert {c["rival"] for c in record["comparisons"]} >= {"framework defaults",
                                                          "vendor settings"}
    assert "TensorFlow 2.14.0 -> 2.2" in checked.stdout
    print(checked.stdout)
