"""What several subcommands share: the study database a command names."""

from __future__ import annotations

import argparse


def storage_for(args: argparse.Namespace) -> str:
    from tuner.settings import get_settings

    if getattr(args, "storage", None):
        return str(args.storage)
    if getattr(args, "file", None):
        from tuner.spec import load_file

        loaded = load_file(args.file)
        for study in loaded.studies:
            if study.name == args.name and study.storage:
                return study.storage
    return get_settings().default_storage




def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """NAME, ``--storage`` and ``-f/--file`` (a study file naming the storage)."""
    p.add_argument("name")
    p.add_argument("--storage")
    p.add_argument("-f", "--file", help="study file naming the storage")
