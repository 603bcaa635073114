"""The bytes of a study file (a file or a request body) as text: UTF-8, or a clear error that
names the line and what the bytes look like (UTF-16, Latin-1, binary)."""

from __future__ import annotations

from pathlib import Path

from tuner.errors import SpecError, SpecIssue
from tuner.spec import limits

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_UTF8_BOM = b"\xef\xbb\xbf"


def _error(source: str, line: int | None, message: str) -> SpecError:
    return SpecError([SpecIssue(source=source, line=line, field="", message=message)])


def _line_of(raw: bytes, position: int) -> int:
    return raw.count(b"\n", 0, position) + 1


def decode_text(raw: bytes, source: str) -> str:
    """UTF-8 text of ``raw`` (a UTF-8 byte-order mark is dropped). Raises ``SpecError``."""
    if len(raw) > limits.MAX_TEXT_CHARS:
        raise _error(source, None, f"{len(raw)} bytes; a study file may hold at most "
                                   f"{limits.MAX_TEXT_CHARS}")
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise _error(source, 1, f"the file is {name} (it starts with a byte-order mark); "
                                    "save it as UTF-8")
    raw = raw.removeprefix(_UTF8_BOM)
    nul = raw.find(b"\x00")
    if nul >= 0:
        even, odd = raw[0::2].count(0), raw[1::2].count(0)
        if max(even, odd) > len(raw) // 4:
            order = "big-endian" if even > odd else "little-endian"
            raise _error(source, 1, f"the file looks like {order} UTF-16 without a "
                                    "byte-order mark; save it as UTF-8")
        raise _error(source, _line_of(raw, nul), "a NUL byte: a study file is text (UTF-8), "
                                                 "not binary data")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        guess = " (Latin-1 or Windows-1252 text?)" if 0xA0 <= byte <= 0xFF else ""
        raise _error(source, _line_of(raw, exc.start),
                     f"byte 0x{byte:02X} is not UTF-8{guess}; save the file as UTF-8") from None


def read(path: str | Path) -> str:
    """The text of the study file at ``path``, read no further than the size limit."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.MAX_TEXT_CHARS + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _error(source, None, f"cannot read the study file: {reason}") from exc
    return decode_text(raw, source)
