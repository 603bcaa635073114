# The two commands of the README:
#   make demo   set up, run a real study from studies.yaml, print the best knobs
#   make test   set up, then lint, type-check and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STUDY ?= wavenet-small

.PHONY: setup runtimes demo test test-all lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# the named runtime the Intel-build tests and the resnet-intel-small study run in (TensorFlow
# 2.14, Intel's OpenMP build; about 1.5 min and 250 MB the first time, nothing after)
runtimes: setup
	@$(VENV)/bin/tuner runtime show intel-tf >/dev/null 2>&1 || \
		$(VENV)/bin/tuner runtime create intel-tf --package intel-tensorflow==2.14.0 --package 'numpy<2'

demo: setup
	$(VENV)/bin/tuner tune studies.yaml --study $(STUDY)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint runtimes
	$(PY) -m pytest

# everything, the slow tests included (full presets, longer real studies)
test-all: lint runtimes
	$(PY) -m pytest -m ''

# both container images (tuner:slim, tuner:tensorflow) with buildah, on a local Debian base
# when the registry is unreachable (root; scripts/build-images.sh, docker/README.md)
.PHONY: docker
docker:
	scripts/build-images.sh build
