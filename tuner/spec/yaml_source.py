"""Load YAML while remembering where every value came from, so that a validation error can
name the file, the line and the field.

PyYAML's composer gives nodes with start marks; ``Located.line_of(path)`` walks that node
tree along a pydantic error location (keys and list indexes) and returns the line of the
deepest node it can reach. Duplicate keys, which PyYAML silently accepts (the last wins),
are reported as errors: in a study file they are almost always a mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tuner.errors import SpecError, SpecIssue


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the node tree it came from."""

    source: str
    data: Any
    root: yaml.Node | None

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the value at ``path`` (or of its deepest existing ancestor).

        Path parts that do not match a node (pydantic adds union tags and model names to
        locations) are skipped rather than ending the walk.
        """
        node = self.root
        if node is None:
            return None
        line: int = node.start_mark.line + 1
        for part in path:
            child = _child(node, part)
            if child is None:
                continue
            node = child
            line = node.start_mark.line + 1
        return line

    def key_line(self, path: Sequence[str | int]) -> int | None:
        """Line of the *key* at the end of ``path`` (where a field name is written)."""
        if not path:
            return self.line_of(path)
        parent = self.root
        for part in path[:-1]:
            child = _child(parent, part) if parent is not None else None
            if child is not None:
                parent = child
        if isinstance(parent, yaml.MappingNode):
            for key, _ in parent.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(path[-1]):
                    return int(key.start_mark.line) + 1
        return self.line_of(path)


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value if isinstance(value, yaml.Node) else None
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item if isinstance(item, yaml.Node) else None
    return None


def _duplicate_keys(node: yaml.Node | None, source: str, path: str = "") -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            line = key.start_mark.line + 1
            field = f"{path}.{name}" if path else str(name)
            if name in seen:
                issues.append(SpecIssue(source=source, line=line, field=field,
                                        message=f"duplicate key (first given on line "
                                                f"{seen[name]}); each key may appear once"))
            else:
                seen[name] = line
            issues += _duplicate_keys(value, source, field)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues += _duplicate_keys(item, source, f"{path}[{index}]")
    return issues


def load_yaml(text: str, source: str) -> Located:
    """Parse ``text`` (named ``source`` in messages) into data plus its node tree."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        context = ""
        if exc.context:
            started = exc.context_mark
            at = f" that starts on line {started.line + 1}" if started is not None and (
                mark is None or started.line != mark.line) else ""
            context = f" ({exc.context}{at})"
        raise SpecError([SpecIssue(source=source, line=line, field="",
                                   message=f"YAML syntax error: {problem}{context}")]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(source=source, line=None, field="",
                                   message=f"YAML error: {exc}")]) from exc
    issues = _duplicate_keys(root, source)
    if issues:
        raise SpecError(issues)
    return Located(source=source, data=data, root=root)
