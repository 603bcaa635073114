"""tuner: automated performance tuning of ML workloads on CPUs.

The package is grouped in rooms along the flow of one trial; a lower room never imports a
higher one (``tests/test_architecture.py`` checks it). From the bottom up:

* top-level modules: ``errors``, ``settings`` (tuner's own environment), ``host`` (the
  machine's topology and fingerprint), ``stats``, ``goal`` (the objective's direction);
* ``spec``: the study file (YAML with lines, pydantic models, the built-in workloads);
* ``execution``: one launch run as fresh processes (launch, parsers, runner, backends);
* ``knobs``: the catalogue of knobs, each applying itself to a launch;
* ``space``: a study's knobs fitted to a host, its constraints and baselines;
* ``store``: the study database and the typed records tuner keeps in it;
* ``results``: a study's summary and its renderings;
* ``study``: one study run (``StudyRun``): baselines, screening, search, confirmation;
* ``ci``: the regression gate after upgrades (``tuner ci``): what changed, the deployed
  settings measured again, a re-tune warm-started from the previous study, the verdict;
* ``service``: the FastAPI app (API, dashboard) and the worker;
* ``testing``: fakes and factories shared by the tests and the benchmarks;
* ``cli``: the ``tuner`` command, at the top.
"""
