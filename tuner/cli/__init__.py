"""The ``tuner`` command. Errors of tuner's own (``TunerError``) are printed as one clear
message and a non-zero exit status: 2 for bad input, 1 for anything else, 130 when
interrupted (the study resumes where it stopped when the same command runs again).

The subcommands are grouped by what they read: ``starting`` (init), ``studies`` (study
files: validate, tune, ci), ``results`` (a study database: best, list, export, delete),
``compare`` (two studies), ``machine`` (this host: doctor, restore, runtime) and
``service`` (serve, worker); ``entry`` builds the parser from each group's ``register``."""

from tuner.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
