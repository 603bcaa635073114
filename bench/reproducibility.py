"""Does a second run of the same study, with another seed, confirm the same performance?

    python bench/reproducibility.py [--study resnet-small] [--seeds 7 8]

Runs the study of ``studies.yaml`` once per seed, each in a fresh database, and compares the
confirmed best of every later run with the first run's: the later run's confirmed
throughput should lie inside the first run's 95% interval (the configurations may differ
where several are equally good; the throughput they confirm should not).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tuner.host import fingerprint, probe_host
from tuner.results.summary import summarize
from tuner.settings import get_settings
from tuner.space import fit_to
from tuner.space.search_space import build_space
from tuner.spec import load_file
from tuner.study.run import Collaborators, StudyRun, StudyTarget

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT / "studies.yaml"))
    parser.add_argument("--study", default="resnet-small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    args = parser.parse_args(argv)
    host = probe_host()
    loaded = load_file(args.file, fit=fit_to(host))
    spec = next(s for s in loaded.studies if s.name == args.study)
    fp = fingerprint(host, cache_dir=get_settings().cache_dir)
    picks = []
    for seed in args.seeds:
        seeded = spec.model_copy(update={"sampler": spec.sampler.model_copy(
            update={"seed": seed})})
        with tempfile.TemporaryDirectory() as tmp:
            target = StudyTarget(space=build_space(seeded, host),
                                 storage_url=f"sqlite:///{tmp}/r.db", fingerprint=fp,
                                 spec_text=loaded.text)
            result = StudyRun(target, collaborators=Collaborators(settings=get_settings())).run()
            summary = summarize(result.study)
        if summary.best is None or summary.best_interval is None:
            print(f"seed {seed}: no confirmed best", file=sys.stderr)
            return 1
        interval = summary.best_interval
        picks.append((seed, summary.best.applied, interval))
        print(f"seed {seed}: best {summary.best.applied} confirmed at {interval['mean']:.4g} "
              f"[{interval['low']:.4g}, {interval['high']:.4g}] {summary.unit}", flush=True)
    _, _, first = picks[0]
    inside = True
    for seed, _, interval in picks[1:]:
        ok = first["low"] <= interval["mean"] <= first["high"]
        inside &= ok
        print(f"seed {seed}'s confirmed throughput {interval['mean']:.4g} is "
              f"{'inside' if ok else 'OUTSIDE'} seed {picks[0][0]}'s interval "
              f"[{first['low']:.4g}, {first['high']:.4g}]")
    return 0 if inside else 1


if __name__ == "__main__":
    sys.exit(main())
