"""The example studies that ship with tuner (``tuner/spec/example_studies``; the repository's
``studies.yaml`` and ``examples/`` point at them), by study name, each as the text of a
study file of its own with its comments (``tuner init --example NAME``)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

EXAMPLES_DIR = Path(__file__).resolve().parent / "example_studies"
#: Where one study of a ``studies:`` list starts (the files' own layout).
_ITEM = re.compile(r"^  - name: *(?P<name>[^\s#]+)")


def example_files() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.yaml"))


def example_names() -> dict[str, Path]:
    """Every example study's name and the file holding it."""
    found: dict[str, Path] = {}
    for path in example_files():
        data = yaml.safe_load(path.read_text())
        studies = data.get("studies", [data]) if isinstance(data, dict) else []
        for study in studies:
            found[str(study["name"])] = path
    return found


def example_text(name: str) -> str:
    """Study ``name`` as a file of its own: a file holding only it, as it is; from a list,
    its entry with the comments inside it, moved out of the list. ``KeyError`` when there
    is no such example."""
    path = example_names()[name]
    lines = path.read_text().splitlines()
    starts = {i: match["name"] for i, line in enumerate(lines) if (match := _ITEM.match(line))}
    if not starts:
        return "\n".join(lines) + "\n"
    first = next(i for i, found in starts.items() if found == name)
    end = next((i for i in starts if i > first), len(lines))
    block = [lines[first][4:]] + [line[4:] if line.startswith("    ") else line.lstrip()
                                  for line in lines[first + 1:end]]
    while block and not block[-1].strip():
        block.pop()
    return (f"# tuner's example study {name} (from {path.name}); run it with "
            f"`tuner tune FILE`\n" + "\n".join(block) + "\n")
