"""Only ``tuner.store.attributes`` spells an attribute key: every other module of tuner/
asks its typed attributes, so a typo in a key cannot be a silent bug.

The check parses each module with ``ast`` and names file:line for a string literal used as
a key: the first argument of ``set_user_attr``/``set_system_attr``; a subscript, ``.get``,
``.pop`` or ``in`` test on something named ``user_attrs``, ``system_attrs`` or ``attrs``;
the key argument of ``records.get``/``records.put``; the keys of a ``user_attrs=`` or
``system_attrs=`` dict (``create_trial``); and anywhere, a literal equal to one of the keys
distinctive enough to grep for (not plain words that are also JSON field names)."""

from __future__ import annotations

import ast
from pathlib import Path

from tuner.store import attributes
from tuner.store.attributes import ATTRIBUTES, Family, key_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tuner"
#: The one module that spells keys.
HOME = "tuner/store/attributes.py"
HOLDERS = {"user_attrs", "system_attrs", "attrs"}
SETTERS = {"set_user_attr", "set_system_attr"}
#: Keys that are no plain word: a literal equal to one is a key wherever it appears.
DISTINCTIVE = {"space_key", "host_class", "spec_text", "tuner:sampler_params", "run_seconds",
               "duplicate_of", "status_reason", "status_at", "submitted_at", "started_at",
               "tuner_best", "fixed_params", "failed_trial", "retry_history"}
PREFIXES = {"claim:", "abandoned:"}
#: (file, literal): a distinctive word used for something else than the attribute.
ALLOWED = {("tuner/host.py", "host_class"): "a field of the fingerprint's JSON"}
# the dashboard's ci history reads fields of the JSON objects `tuner ci` records
ALLOWED.update({
    ("tuner/ci/environment.py", "host_class"): "a field of the fingerprint's JSON",
    ("tuner/results/ci_reports.py", "host_class"): "a field of a ci record's JSON",
    ("tuner/service/api/routes/ci.py", "submitted_at"): "a field of the queued ci run's JSON",
    ("tuner/service/dashboard/ci_chart.py", "host_class"): "a field of a ci record's JSON",
    ("tuner/service/dashboard/ci_chart.py", "submitted_at"): "a field of the queued ci run's "
                                                             "JSON (the ci_request attribute)",
})


def _named(node: ast.AST) -> bool:
    """``node`` is a name or attribute called one of ``HOLDERS``."""
    return (isinstance(node, ast.Name) and node.id in HOLDERS) or (
        isinstance(node, ast.Attribute) and node.attr in HOLDERS)


def _literal(node: ast.AST | None) -> str | None:
    """The text of a string literal, or the literal head of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _literal(node.values[0])
    return None


def _is_records(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "records"


def findings(source: str, path: str) -> list[str]:
    """``path:line: why`` for every literal attribute key in ``source``."""
    out: list[str] = []

    def flag(node: ast.AST, key: str, how: str) -> None:
        if (path, key) not in ALLOWED:
            out.append(f"{path}:{getattr(node, 'lineno', 0)}: {key!r} {how}")

    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            if name in SETTERS and node.args and (key := _literal(node.args[0])) is not None:
                flag(node, key, f"as the key of {name}")
            elif name in ("get", "pop", "setdefault") and _named(owner) and node.args \
                    and (key := _literal(node.args[0])) is not None:
                flag(node, key, f"as a key of {name}() on attributes")
            elif name in ("get", "put") and _is_records(owner) and len(node.args) > 1 \
                    and (key := _literal(node.args[1])) is not None:
                flag(node, key, f"as the key of records.{name}")
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("user_attrs", "system_attrs") \
                        and isinstance(keyword.value, ast.Dict):
                    for item in keyword.value.keys:
                        if (key := _literal(item)) is not None:
                            flag(item or node, key, f"as a key of {keyword.arg}=")
        elif isinstance(node, ast.Subscript) and _named(node.value) \
                and (key := _literal(node.slice)) is not None:
            flag(node, key, "as a subscript of attributes")
        elif isinstance(node, ast.Compare) and any(
                isinstance(op, ast.In | ast.NotIn) for op in node.ops) \
                and any(_named(c) for c in node.comparators) \
                and (key := _literal(node.left)) is not None:
            flag(node, key, "tested with `in` on attributes")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in DISTINCTIVE or node.value in PREFIXES:
                flag(node, node.value, "is an attribute key")
        elif isinstance(node, ast.JoinedStr) and _literal(node) in PREFIXES:
            flag(node, str(_literal(node)), "is an attribute key's prefix")
    return sorted(set(out), key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def _all_findings() -> list[str]:
    out: list[str] = []
    for file in sorted(PACKAGE.rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        if path != HOME:
            out += findings(file.read_text(encoding="utf-8"), path)
    return out


def test_no_module_but_the_attributes_module_spells_a_key() -> None:
    found = _all_findings()
    assert not found, "attribute keys spelled outside tuner/store/attributes.py (use its " \
                      "typed attributes):\n" + "\n".join(found)


def test_the_check_finds_each_kind_of_literal_key() -> None:
    source = '\n'.join([
        'study.set_user_attr("unit", "s")',
        'trial.set_system_attr(f"claim:{job}", 1)',
        'x = trial.user_attrs["role"]',
        'y = attrs.get("noise")',
        'z = records.get(study.user_attrs, "samples")',
        'records.put(put, "runs", [])',
        'create_trial(user_attrs={"role": "vendor"}, system_attrs={"fixed_params": {}})',
        'ok = "screening" in study.user_attrs',
        'k = "space_key"',
        'n = key[len("abandoned:"):]',
        'fine = {"role": 1}["role"] + chart.attrs(data_role="x") + "role"',
    ])
    lines = [int(f.split(":")[1]) for f in findings(source, "x.py")]
    assert sorted(set(lines)) == list(range(1, 11)), findings(source, "x.py")


def test_every_distinctive_key_is_registered_and_documented() -> None:
    keys = [key_of(a) for a in ATTRIBUTES]
    assert len(keys) == len(set(keys)), "a key is registered twice"
    assert DISTINCTIVE <= set(keys)
    assert PREFIXES == {a.prefix for a in ATTRIBUTES if isinstance(a, Family)}
    doc = attributes.__doc__ or ""
    missing = [k for k in keys if f"``{k}" not in doc]
    assert not missing, f"keys the attributes module's docstring does not describe: {missing}"
    registered = {name for name, value in vars(attributes).items() if value in ATTRIBUTES
                  and name.isupper()}
    assert len(registered) == len(ATTRIBUTES), "an attribute is missing from ATTRIBUTES"
