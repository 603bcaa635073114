"""Fuzzing the study-file loader: malformed files generated from the good fixtures (with a
fixed seed, so every run sees the same cases) are each answered quickly with a
line-numbered ``SpecError`` or a clean acceptance, never another exception or a hang; and
``tuner validate`` prints no traceback for any of them.

The time bound is on the CPU time of the validating thread (5 s: the slowest case takes
about 1.1 s alone on a 2-vCPU AMD EPYC VM and up to 2.6 s of CPU there in the middle of the
full suite), with a wall-clock guard (10 s) that catches a hang. It is a bound against
pathological input, not a speed target: the service kills a validation at 10 s.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tuner.errors import SpecError
from tuner.host import Host, generic_host
from tuner.space import fit_to
from tuner.spec import StudyFileText, decode_text, parse_text

ROOT = Path(__file__).resolve().parent.parent
GOOD = sorted((ROOT / "tests" / "fixtures" / "studies" / "good").glob("*.yaml"))
SEED = 20261202
CASES = 160
CPU_SECONDS = 5.0
HANG_SECONDS = 10.0

Mutator = Callable[[random.Random, str], bytes]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) or [""]


def truncate(rng: random.Random, text: str) -> bytes:
    return text[:rng.randrange(len(text) + 1)].encode()


def drop_line(rng: random.Random, text: str) -> bytes:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "".join(lines).encode()


def repeat_line(rng: random.Random, text: str) -> bytes:
    lines = _lines(text)
    at = rng.randrange(len(lines))
    lines.insert(at, lines[at])
    return "".join(lines).encode()


def shift_indent(rng: random.Random, text: str) -> bytes:
    lines = _lines(text)
    at = rng.randrange(len(lines))
    lines[at] = (" " * rng.choice((1, 2, 3, 8)) + lines[at] if rng.random() < 0.6
                 else lines[at].lstrip())
    return "".join(lines).encode()


VALUES = ["[1, 2]", "{a: 1}", "~", ".nan", ".inf", "-.inf", "1e308", "1e400", "-0",
          "99999999999999999999999", "9" * 300, "0x" + "f" * 50, "true", "no", "''",
          "!!binary aGk=", "2001-01-01", "*undefined", "&a 1", "!!python/name:os.system",
          "!custom 3", "'" + "x" * 20000 + "'", "-1", "4294967296", "[]", "{}", "12:30:00",
          '"\\u0000"', '"\\uD800"', "[" + ", ".join(["1"] * 300) + "]",
          "{low: 1, high: 999999999999}", "{low: -999999999999, high: 999999999999, step: 7}",
          "{low: 1, high: 10001}", "{choices: [1, 1.0, true, '1']}"]


def swap_value(rng: random.Random, text: str) -> bytes:
    """Replace the value after a random ``key:`` with a value of another kind."""
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if ": " in line]
    if not candidates:
        return (text + rng.choice(VALUES)).encode()
    at = rng.choice(candidates)
    head = lines[at].split(": ", 1)[0]
    lines[at] = f"{head}: {rng.choice(VALUES)}\n"
    return "".join(lines).encode()


KEYS = ["1", "2.5", "~", "true", "[a, b]", "{k: v}", "'' ", "&k name", "*k", "<<", "!!int 3"]


def swap_key(rng: random.Random, text: str) -> bytes:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if ": " in line]
    if not candidates:
        return (text + f"{rng.choice(KEYS)}: x\n").encode()
    at = rng.choice(candidates)
    indent, rest = lines[at][:len(lines[at]) - len(lines[at].lstrip())], lines[at].lstrip()
    key = rng.choice(KEYS)
    value = rest.split(": ", 1)[1] if ": " in rest else "1\n"
    lines[at] = f"{indent}? {key}\n{indent}: {value}" if key.startswith(("[", "{")) \
        else f"{indent}{key}: {value}"
    return "".join(lines).encode()


def nest_deep(rng: random.Random, text: str) -> bytes:
    depth = rng.choice((20, 33, 40, 200, 999, 1001, 5000, 50_000))
    if rng.random() < 0.5:
        value = "[" * depth + "1" + "]" * depth
    else:
        value = "{a: " * depth + "1" + "}" * depth
    return (text + f"description: {value}\n").encode()


def nest_block(rng: random.Random, text: str) -> bytes:
    depth = rng.choice((30, 40, 300))
    body = "".join(" " * i + "- \n" for i in range(depth))
    return (text + "knobs:\n" + body).encode()


def alias_bomb(rng: random.Random, text: str) -> bytes:
    levels, fan = rng.choice(((9, 9), (6, 10), (20, 2), (30, 2), (3, 50), (4, 100)))
    lines = [f"x0: &a0 [{', '.join(['lol'] * fan)}]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    where = rng.choice(("top", "description"))
    if where == "top" or "studies:" in text or text.lstrip().startswith("-"):
        return ("\n".join(lines) + "\n" + text).encode()
    return (text + "description:\n" + "".join(f"  {line}\n" for line in lines)).encode()


def recursive_alias(rng: random.Random, text: str) -> bytes:
    forms = ["knobs: &r {intra_op: *r}\n", "description: &r [*r]\n",
             "workload: &w {builtin: resnet, params: {p: *w}}\n", "x: &r {<<: *r}\n",
             "a: &a [&b [*a, *b]]\n"]
    return (text + rng.choice(forms)).encode()


def many_values(rng: random.Random, text: str) -> bytes:
    count = rng.choice((4096, 4097, 15_000, 60_000))
    kind = rng.choice(("distinct", "repeated"))
    items = ", ".join(str(i if kind == "distinct" else i % 7) for i in range(count))
    return (f"name: many\nworkload: {{builtin: resnet}}\nknobs:\n  KMP_BLOCKTIME: [{items}]\n"
            ).encode()


def random_bytes(rng: random.Random, text: str) -> bytes:
    raw = bytearray(text.encode())
    start = rng.randrange(len(raw) + 1)
    noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    raw[start:start + rng.randrange(0, 16)] = noise
    return bytes(raw)


def control_character(rng: random.Random, text: str) -> bytes:
    at = rng.randrange(len(text) + 1)
    char = rng.choice(("\x00", "\x01", "\x07", "\x1b", "\x7f", "\ufeff", "\u2028", "\ud800"))
    return (text[:at] + char + text[at:]).encode("utf-8", "surrogatepass")


def reencode(rng: random.Random, text: str) -> bytes:
    text = text.replace("name: ", "name: café-", 1) if rng.random() < 0.5 else text
    encoding = rng.choice(("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252",
                           "utf-8-sig"))
    return text.encode(encoding, "replace")


def insert_char(rng: random.Random, text: str) -> bytes:
    at = rng.randrange(len(text) + 1)
    char = rng.choice(":-[]{}\"'&*!%@|>#\t?,`")
    return (text[:at] + char + text[at:]).encode()


def whole_file(rng: random.Random, text: str) -> bytes:
    return rng.choice((b"", b"\n\n  \n", b"# only a comment\n", b"---\n", b"...\n", b"42\n",
                       b"'a string'\n", b"~\n", b"[]\n", b"{}\n", b"- 1\n- 2\n",
                       b"studies: 3\n", b"studies: []\n", b"a: 1\n---\nb: 2\n", b"%YAML 1.1\n",
                       b"%TAG ! tag:x,2000:\n--- !foo 1\n", b"\xef\xbb\xbf", b"\xff\xfe",
                       b"name: x\nworkload: {builtin: resnet}\n" * 3))


def numbers(rng: random.Random, text: str) -> bytes:
    extra = rng.choice(("sampler: {seed: -1}\n", "sampler: {seed: 4294967296}\n",
                        "sampler: {seed: 4294967295}\n", "budget: {timeout: .inf}\n",
                        "budget: {n_trials: 1e9}\n", "budget: {timeout: 1e300}\n",
                        "repeats: {min: 1, max: .nan}\n", "noise: {max_cv: .nan}\n",
                        "budget: {n_trials: 9999999999999999999999}\n"))
    return _replace_block(text, extra)


def semantics(rng: random.Random, text: str) -> bytes:
    extra = rng.choice(("objective: {metric: latency}\n", "screening: [nope]\n",
                        "baselines: [defaults, defaults]\n", "baselines: [vendor, defaults]\n",
                        "screening: [intra_op, intra_op]\n", "screening: 5\n",
                        "baselines: [mine]\n"))
    return _replace_block(text, extra)


def _replace_block(text: str, extra: str) -> bytes:
    """``extra`` (a top-level key) added to the first study, replacing the key if present."""
    key = extra.split(":", 1)[0]
    if text.lstrip().startswith(("studies:", "-")):
        lines = _lines(text)
        first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("- ")), -1)
        if first < 0:
            return (text + extra).encode()
        indent = " " * (len(lines[first]) - len(lines[first].lstrip()) + 2)
        lines.insert(first + 1, indent + extra)
        return "".join(lines).encode()
    kept = [line for line in _lines(text) if not line.startswith(f"{key}:")]
    return ("".join(kept) + extra).encode()


MUTATORS: list[Mutator] = [truncate, drop_line, repeat_line, shift_indent, swap_value, swap_key,
                           nest_deep, nest_block, alias_bomb, recursive_alias, many_values,
                           random_bytes, control_character, reencode, insert_char, whole_file,
                           numbers, semantics]


def generate(count: int = CASES, seed: int = SEED) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    texts = [path.read_text() for path in GOOD]
    cases = []
    for index in range(count):
        text = rng.choice(texts)
        chosen = [MUTATORS[index % len(MUTATORS)]]  # every mutator, in turn
        if rng.random() < 0.3:
            chosen.append(rng.choice(MUTATORS))  # and sometimes a second one
        raw = text.encode()
        for mutate in chosen:
            raw = mutate(rng, raw.decode("utf-8", "replace"))
        cases.append((f"{index:03d}-{'+'.join(m.__name__ for m in chosen)}", raw))
    return cases


GENERATED = generate()


def validate(raw: bytes, source: str, host: Host) -> tuple[StudyFileText | BaseException, float]:
    """Decode and validate in a thread; the outcome and the thread's CPU seconds. Fails the
    test if the thread is still busy after ``HANG_SECONDS``."""
    box: dict[str, object] = {}

    def run() -> None:
        start = time.thread_time()
        try:
            box["out"] = parse_text(decode_text(raw, source), source,
                                    fit=fit_to(host) if host else None)
        except BaseException as exc:  # noqa: BLE001 -- the test inspects whatever it is
            box["out"] = exc
        box["cpu"] = time.thread_time() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), f"{source}: still validating after {HANG_SECONDS} s (a hang)"
    out = box["out"]
    assert isinstance(out, StudyFileText | BaseException)
    cpu = box["cpu"]
    assert isinstance(cpu, float)
    return out, cpu


def test_enough_cases_and_every_mutator() -> None:
    assert len(GENERATED) >= 100
    names = {part for name, _ in GENERATED for part in name.split("-", 1)[1].split("+")}
    assert names == {m.__name__ for m in MUTATORS}
    assert len({raw for _, raw in GENERATED}) >= 0.9 * len(GENERATED), "cases repeat"


def test_generation_is_deterministic() -> None:
    assert generate(20) == GENERATED[:20]


@pytest.fixture(scope="module")
def host() -> Host:
    return generic_host()


@pytest.mark.parametrize("name,raw", GENERATED, ids=[name for name, _ in GENERATED])
def test_malformed_file_is_answered_fast_with_a_line(name: str, raw: bytes, host: Host) -> None:
    source = f"{name}.yaml"
    out, cpu = validate(raw, source, host)
    assert cpu < CPU_SECONDS, f"{source}: {cpu:.2f} s of CPU"
    if isinstance(out, StudyFileText):
        assert out.studies, "accepted, so it holds a study"
        return
    assert isinstance(out, SpecError), f"{source}: {type(out).__name__}: {out}"
    last_line = raw.count(b"\n") + 1
    summary = [i for i in out.issues if i.message.startswith("and ") and i.line is None]
    for issue in out.issues:
        assert issue.source == source and issue.message
        if issue not in summary:
            assert issue.line is not None and 1 <= issue.line <= last_line, str(issue)
    assert str(out).startswith(f"{source}:")


def test_some_cases_are_accepted_and_most_rejected(host: Host) -> None:
    """The mutations are neither all harmless nor all fatal: the test sees both answers."""
    outcomes = [validate(raw, name, host)[0] for name, raw in GENERATED[:60]]
    accepted = sum(isinstance(o, StudyFileText) for o in outcomes)
    assert 1 <= accepted <= len(outcomes) // 2


def test_validate_command_prints_no_traceback(tmp_path: Path) -> None:
    """Every generated file through the real ``tuner validate``, in one process."""
    paths = []
    for name, raw in GENERATED:
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(raw)
        paths.append(path)
    result = subprocess.run([sys.executable, "-m", "tuner.cli", "validate", "--no-host",
                             *map(str, paths)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    assert result.returncode == 2, result.stderr[-3000:]
    for path in paths:
        assert str(path) in result.stderr + result.stdout, f"{path.name} is not reported"


def test_validate_reports_a_bug_of_tuners_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Even an unexpected exception inside tuner is one line naming the file, exit 1."""
    import tuner.space.search_space
    from tuner.cli import main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(tuner.space.search_space, "build_space", broken)
    good = str(GOOD[0])
    assert main(["validate", "--no-host", good]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{good}: tuner failed to validate this file (RuntimeError: "
                                "boom); please report it (-v shows where)"]
