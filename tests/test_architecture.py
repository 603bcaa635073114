"""The shape of the package, checked from its source with ``ast`` (nothing of tuner is
imported, so this runs in well under a second):

* imports go down the rooms, never up (``tuner/__init__.py`` lists the rooms); ``testing``
  may import every room and nothing in tuner imports it; ``service/api`` never imports the
  dashboard or the app (the composition root);
* at most ``MAX_TOP_LEVEL`` modules at the top of tuner/ (``__init__.py`` counted);
* every subpackage has an ``__init__.py`` with a docstring and an ``__all__`` whose names
  are all defined or imported there;
* no function or method takes more than ``MAX_PARAMETERS`` parameters (``self``/``cls`` not
  counted; ``*args`` and ``**kwargs`` one each).

Each finding names the file and line and what rule it breaks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TUNER = Path(__file__).resolve().parents[1] / "tuner"

#: The rooms from the bottom up. Top-level modules other than ``cli`` (errors, settings,
#: host, stats, goal and the package's ``__init__``) are the bottom, ``cli`` the top.
ROOMS = ("spec", "execution", "knobs", "space", "store", "results", "study", "ci", "service",
         "testing")
BOTTOM = "top-level"
TOP = "cli"
ORDER = (BOTTOM, *ROOMS, TOP)
#: May import every room; nothing in tuner may import it.
TESTING = "testing"
#: Inside ``service``: the API never reaches the dashboard or the composition root.
API = "tuner.service.api"
NOT_FROM_API = ("tuner.service.dashboard", "tuner.service.app")

MAX_TOP_LEVEL = 8
MAX_PARAMETERS = 7



@dataclass(frozen=True)
class Finding:
    message: str


def _modules() -> list[Path]:
    return sorted(p for p in TUNER.rglob("*.py") if "__pycache__" not in p.parts)


def _shown(path: Path) -> str:
    return path.relative_to(TUNER.parent).as_posix()


def _module_name(path: Path) -> str:
    parts = path.relative_to(TUNER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    """The room of a dotted module name inside tuner."""
    parts = module.split(".")
    if len(parts) < 2:
        return BOTTOM
    if parts[1] in ROOMS or parts[1] == TOP:
        return parts[1]
    return BOTTOM


def _imported(path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every tuner module ``path`` imports, with the line: plain and ``from`` imports at any
    depth (in functions, under ``TYPE_CHECKING``), relative ones resolved, the names of
    ``from tuner[.pkg] import name`` taken as submodules when they may be, and
    ``importlib.import_module``/``__import__`` of a constant string."""
    package = _module_name(path) if path.name == "__init__.py" else (
        _module_name(path).rpartition(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                yield node.lineno, first.value


def _import_problem(source: str, room: str, target: str) -> str | None:
    other = _room(target)
    if other == TESTING and room != TESTING:
        return f"{room} imports {target} ({TESTING}: nothing in tuner may import it)"
    if room != TESTING and ORDER.index(other) > ORDER.index(room):
        return f"{room} imports {target} ({other} is above {room})"
    if (source == API or source.startswith(API + ".")) and any(
            target == banned or target.startswith(banned + ".") for banned in NOT_FROM_API):
        return (f"service/api imports {target} (the API never imports the dashboard or the "
                f"app)")
    return None


def import_findings() -> Iterator[Finding]:
    for path in _modules():
        source = _module_name(path)
        room = _room(source)
        reported: set[int] = set()  # one finding per import statement
        for line, target in _imported(path, ast.parse(path.read_text(), str(path))):
            if line in reported or not (target == "tuner" or target.startswith("tuner.")):
                continue
            problem = _import_problem(source, room, target)
            if problem is not None:
                reported.add(line)
                yield Finding(message=f"{_shown(path)}:{line}: {problem}")


def top_level_findings() -> Iterator[Finding]:
    top = sorted(p.name for p in TUNER.glob("*.py"))
    if len(top) > MAX_TOP_LEVEL:
        yield Finding(message=f"tuner/ has {len(top)} top-level modules (at most "
                              f"{MAX_TOP_LEVEL}): {', '.join(top)}; give the new one a room")


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a module body binds at its top level (inside ``if``/``try`` blocks too)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try):
            nested = [*node.body, *node.orelse]
            if isinstance(node, ast.Try):
                nested += [*node.finalbody, *(s for h in node.handlers for s in h.body)]
            names |= _bound_names(nested)
    return names


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = node.value
            if isinstance(value, ast.List | ast.Tuple):
                return [e.value for e in value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            return []
    return None


def package_findings() -> Iterator[Finding]:
    packages = sorted({p.parent for p in _modules() if p.parent != TUNER})
    for package in packages:
        init = package / "__init__.py"
        shown = _shown(init)
        if not init.exists():
            yield Finding(message=f"{_shown(package)}/ has no __init__.py")
            continue
        tree = ast.parse(init.read_text(), str(init))
        if not ast.get_docstring(tree):
            yield Finding(message=f"{shown}: no docstring (what lives here, what it may "
                                  f"import)")
        declared = _declared_all(tree)
        if declared is None:
            yield Finding(message=f"{shown}: no __all__ (the package's public names; empty "
                                  f"for a mere grouping)")
            continue
        missing = sorted(set(declared) - _bound_names(tree.body))
        if missing:
            yield Finding(message=f"{shown}: __all__ names {', '.join(missing)}, not defined "
                                  f"or imported there")


def _parameters(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod"
                 for d in func.decorator_list)
    if method and not static and positional and positional[0].arg in ("self", "cls", "mcs"):
        positional = positional[1:]
    return (len(positional) + len(args.kwonlyargs) + (args.vararg is not None)
            + (args.kwarg is not None))


def _functions(node: ast.AST, prefix: str = "", in_class: bool = False,
               ) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.", True)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child, in_class
            yield from _functions(child, f"{prefix}{child.name}.", False)
        else:
            yield from _functions(child, prefix, in_class)


def parameter_findings() -> Iterator[Finding]:
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for name, func, method in _functions(tree):
            count = _parameters(func, method)
            if count > MAX_PARAMETERS:
                yield Finding(message=f"{_shown(path)}:{func.lineno}: {name} takes {count} "
                                      f"parameters (at most {MAX_PARAMETERS}: group them in "
                                      f"an object)")


def _check(findings: Iterator[Finding], kind: str) -> None:
    new = [f.message for f in findings]
    assert not new, f"{len(new)} {kind}:\n" + "\n".join(new)


def test_imports_go_down_the_rooms() -> None:
    _check(import_findings(), "imports against the rooms' order")


def test_few_top_level_modules() -> None:
    _check(top_level_findings(), "too many top-level modules")


def test_every_package_has_a_front() -> None:
    _check(package_findings(), "packages without a proper __init__.py")


def test_no_function_takes_too_many_parameters() -> None:
    _check(parameter_findings(), "functions with too many parameters")


def test_the_checks_see_what_they_should(tmp_path: Path) -> None:
    """The checkers on small samples: an upward import inside a function and under
    TYPE_CHECKING, a relative one, a function of 8 parameters, an ``__all__`` naming
    something missing."""
    sample = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from tuner.study.run import StudyRun\n"
        "def f(self, a, b, c, d, e, f, *args, **kwargs):\n"
        "    from . import search_space\n"
        "    import tuner.cli\n")
    path = TUNER / "spec" / "sample.py"
    rooms = {(line, _room(t)) for line, t in _imported(path, sample) if t.startswith("tuner")}
    assert {(3, "study"), (5, "spec"), (6, TOP)} <= rooms
    func = next(f for _, f, _ in _functions(sample))
    assert _parameters(func, method=False) == 9 and _parameters(func, method=True) == 8
    init = ast.parse('"""Doc."""\nfrom x import a\nif True:\n    b = 1\n'
                     '__all__ = ["a", "b", "c"]\n')
    assert _bound_names(init.body) >= {"a", "b"} and _declared_all(init) == ["a", "b", "c"]
    assert _room("tuner") == BOTTOM and _room("tuner.goal") == BOTTOM
    assert _room("tuner.service.api.auth") == "service"
    assert "space is above knobs" in str(_import_problem("tuner.knobs.base", "knobs",
                                                         "tuner.space.search_space"))
    assert "testing" in str(_import_problem("tuner.cli", TOP, "tuner.testing.fakes"))
    assert "dashboard" in str(_import_problem("tuner.service.api.deps", "service",
                                              "tuner.service.dashboard.views"))
    assert _import_problem("tuner.service.dashboard.views", "service", "tuner.service.api") is None
    assert _import_problem("tuner.testing.fakes", TESTING, "tuner.service.app") is None
    assert _import_problem("tuner.study.run", "study", "tuner.goal") is None
