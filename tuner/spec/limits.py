"""Bounds on a study file, so that validating any input takes little time and memory.

A real study file is a few kilobytes: a handful of studies, a dozen knobs, lists of tens of
values. The limits below are far above that and far below what could stall a server: every
walk over a study (YAML composition, key checks, pydantic, the space) is linear in the
*expanded* node count, which aliases cannot push past ``MAX_NODES``.
"""

from __future__ import annotations

#: Characters of study-file text (the service's request-body cap, ``max_body_bytes``, is
#: usually lower; this one also guards ``tuner validate`` and ``tuner tune``).
MAX_TEXT_CHARS = 4 * 1024 * 1024
#: Nesting of collections, aliases expanded. A study needs 6 (studies, a study, knobs, a
#: knob, choices, a choice).
MAX_DEPTH = 32
#: Collection and scalar nodes of the document with every alias expanded.
MAX_NODES = 100_000
#: Aliases (``*name``) in one document.
MAX_ALIASES = 200
#: Studies in one file, knobs in one study, choices of one knob, entries of params/env,
#: arguments of a command.
MAX_STUDIES = 200
MAX_KNOBS = 200
MAX_CHOICES = 4096
#: Values of one ``{low, high, step}`` range (the constraints enumerate thread ranges).
MAX_RANGE = 10_000
MAX_ENTRIES = 256
MAX_ARGS = 1024
#: Characters of one string value (a description, a command argument, a regex).
MAX_STRING = 10_000
#: Largest magnitude of a number in ``params`` or ``value``/``choices``: far beyond any
#: thread count, batch size or duration, well inside what every consumer converts exactly.
MAX_MAGNITUDE = 1e12
#: Seeds of Optuna's samplers and of the workloads: numpy's ``RandomState`` takes 0..2**32-1.
MAX_SEED = 2**32 - 1
#: Digits of one integer literal (Python refuses to convert more than 4300).
MAX_DIGITS = 40
#: Longest duration (a budget or a run timeout): a year.
MAX_SECONDS = 366 * 24 * 3600.0
#: Issues reported for one file; the rest are counted.
MAX_ISSUES = 100
#: Seconds the service gives one submission to validate.
PARSE_SECONDS = 10.0
