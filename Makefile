# The two commands of the README:
#   make demo   set up, run a real study from studies.yaml, print the best knobs
#   make test   set up, then lint, type-check and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STUDY ?= wavenet-small

.PHONY: setup demo test test-all lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/tuner tune studies.yaml --study $(STUDY)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

# everything, the slow tests included (full presets, longer real studies)
test-all: lint
	$(PY) -m pytest -m ''
