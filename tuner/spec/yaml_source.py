"""Load YAML while remembering where every value came from, so that a validation error can
name the file, the line and the field.

PyYAML's composer gives nodes with start marks; ``Located.line_of(path)`` walks that node
tree along a pydantic error location (keys and list indexes) and returns the line of the
deepest node it can reach. Duplicate keys, which PyYAML silently accepts (the last wins),
are reported as errors: in a study file they are almost always a mistake; so are keys that
are not names (``1:``, ``true:``, a list).

The loader counts while it composes (``tuner.spec.limits``): aliases, nodes with every alias
expanded, and nesting. An alias bomb, a recursive alias or a deeply nested document is refused
at the line where it passes a limit, before anything walks the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import yaml

from tuner.errors import SpecError, SpecIssue
from tuner.spec import limits


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


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_KINDS = {"tag:yaml.org,2002:int": "a number", "tag:yaml.org,2002:float": "a number",
          "tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:null": "null",
          "tag:yaml.org,2002:timestamp": "a date"}


class _Limits(yaml.composer.Composer, yaml.constructor.SafeConstructor):
    """PyYAML's composer and safe constructor, counting while composing: aliases, nodes with
    every alias expanded, and nesting (aliases expanded). It stops at the first limit passed,
    before anything walks the tree, and refuses an alias to a collection that contains it.
    A loader adds a parser (events) and a resolver."""

    def __init__(self) -> None:
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        self._aliases = 0
        self._nodes = 0
        self._depth = 0
        self._peak = 0
        #: Expanded size and height of each complete anchored node, by ``id(node)``.
        self._extent: dict[int, tuple[int, int]] = {}

    if TYPE_CHECKING:
        def peek_event(self) -> yaml.Event: ...  # from the parser of the loader

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, parent, index)
        self._count(1, event.start_mark)
        self._depth += 1
        self._reach(self._depth, event.start_mark)
        before_nodes, before_peak = self._nodes - 1, self._peak
        self._peak = self._depth
        try:
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._extent[id(node)] = (self._nodes - before_nodes, self._peak - self._depth)
        self._peak = max(self._peak, before_peak)
        return node

    def _alias(self, event: yaml.AliasEvent, parent: yaml.Node | None,
               index: Any) -> yaml.Node:
        self._aliases += 1
        if self._aliases > limits.MAX_ALIASES:
            raise _limit(event, f"more than {limits.MAX_ALIASES} aliases (*name); a study "
                                "file needs few, if any")
        target = self.anchors.get(event.anchor)
        if target is not None:
            extent = self._extent.get(id(target))
            if extent is None:
                raise _limit(event, f"recursive alias: *{event.anchor} refers to the "
                                    f"collection that contains it (anchored on line "
                                    f"{target.start_mark.line + 1})")
            size, height = extent
            self._count(size, event.start_mark)
            self._reach(self._depth + height, event.start_mark)
        return cast(yaml.Node, super().compose_node(parent, index))

    def _count(self, nodes: int, mark: Any) -> None:
        self._nodes += nodes
        if self._nodes > limits.MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {limits.MAX_NODES} values with every alias expanded; "
                            "a study file is far smaller (an alias bomb?)", mark)

    def _reach(self, depth: int, mark: Any) -> None:
        if depth > limits.MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {limits.MAX_DEPTH} levels deep (aliases "
                            "expanded); a study needs about 6", mark)
        self._peak = max(self._peak, depth)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > limits.MAX_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number of {len(node.value)} characters; expected at most "
                            f"{limits.MAX_DIGITS}", node.start_mark)
        value: int = super().construct_yaml_int(node)
        return value

    yaml_constructors = {**yaml.constructor.SafeConstructor.yaml_constructors,
                         "tag:yaml.org,2002:int": construct_yaml_int}


class _PyLoader(_Limits, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                yaml.resolver.Resolver):
    """Pure-Python events (when PyYAML is built without libyaml)."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _Limits.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def dispose(self) -> None:
        yaml.parser.Parser.dispose(self)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CLoader(_Limits, CParser, yaml.resolver.Resolver):
        """libyaml's events (five times faster), composed in Python with the limits."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Limits.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _Loader: type[_PyLoader] | type[_CLoader] = _CLoader
else:  # pragma: no cover
    _Loader = _PyLoader


def _limit(event: yaml.Event, problem: str) -> yaml.MarkedYAMLError:
    mark: Any = event.start_mark
    return yaml.composer.ComposerError(None, None, problem, mark)


def _key_issues(node: yaml.Node | None, source: str, path: str = "") -> list[SpecIssue]:
    """Duplicate keys and keys that are not names (a number, a list...), with their lines.
    Walks the tree with aliases expanded: the loader has bounded its size and depth."""
    issues: list[SpecIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            name = _key_name(key)
            field = f"{path}.{name}" if path else name
            if key.tag == _MERGE_TAG:
                pass
            elif not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
                kind = (_KINDS.get(key.tag, "a tagged value") if isinstance(key, yaml.ScalarNode)
                        else "a list" if isinstance(key, yaml.SequenceNode) else "a mapping")
                hint = f"; quote it if it is a name: '{key.value}'" if isinstance(
                    key, yaml.ScalarNode) and key.tag in _KINDS else ""
                issues.append(SpecIssue(source=source, line=line, field=field or path,
                                        message=f"expected a name (a string) as key, got "
                                                f"{kind}{hint}"))
                continue
            elif name in seen:
                issues.append(SpecIssue(source=source, line=line, field=field,
                                        message=f"duplicate key (first given on line "
                                                f"{seen[name]}); each key may appear once"))
            else:
                seen[name] = line
            issues += _key_issues(value, source, field)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues += _key_issues(item, source, f"{path}[{index}]")
    return issues


def _key_name(key: yaml.Node) -> str:
    if isinstance(key, yaml.ScalarNode):
        text = str(key.value)
        return text if len(text) <= 60 else text[:57] + "..."
    return "[list]" if isinstance(key, yaml.SequenceNode) else "{mapping}"


def _syntax_error(exc: yaml.MarkedYAMLError, source: str, last_line: int) -> SpecError:
    """The error at its line (libyaml places the end of a file without a final newline on
    the line after it: ``last_line`` is where the text ends)."""
    mark = exc.problem_mark or exc.context_mark
    line = min(mark.line + 1, last_line) if mark is not None else None
    problem = exc.problem or "invalid YAML"
    context = ""
    if exc.context:
        started = exc.context_mark
        at = f" that starts on line {started.line + 1}" if started is not None and (
            mark is None or started.line != mark.line) else ""
        context = f" ({exc.context}{at})"
    kind = "YAML syntax error: " if isinstance(
        exc, yaml.scanner.ScannerError | yaml.parser.ParserError) else ""
    return SpecError([SpecIssue(source=source, line=line, field="",
                                message=f"{kind}{problem}{context}")])


def load_yaml(text: str, source: str) -> Located:
    """Parse ``text`` (named ``source`` in messages) into data plus its node tree, within
    the limits of ``tuner.spec.limits``. Raises ``SpecError`` naming the line."""
    if len(text) > limits.MAX_TEXT_CHARS:
        raise SpecError([SpecIssue(source=source, line=None, field="",
                                   message=f"{len(text)} characters; a study file may hold "
                                           f"at most {limits.MAX_TEXT_CHARS}")])
    loader: _PyLoader | _CLoader | None = None
    try:
        loader = _Loader(text)  # checks the characters at once
        root = loader.get_single_node()
        issues = _key_issues(root, source)
        if issues:
            raise SpecError(issues)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, source, text.count("\n") + 1) from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of the UTF-8 text, PyYAML characters
        if _Loader is _PyLoader:
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = text.encode("utf-8").count(b"\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1])
        raise SpecError([SpecIssue(source=source, line=line, field="", message=(
            f"control character U+{code:04X} is not allowed in YAML text; is this a text "
            "file in UTF-8?"))]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(source=source, line=None, field="",
                                   message=f"YAML error: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(source=source, data=data, root=root)
