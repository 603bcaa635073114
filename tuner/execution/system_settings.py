"""Changes to the machine a trial asks for (system knobs), as plain data, and how one is read
and written.

A ``SystemSetting`` names one place and the value a trial wants there. Three forms:

- ``text``: a sysfs/procfs file holding one value (``/proc/sys/vm/swappiness``);
- ``selected``: a file listing every choice with the current one in brackets
  (``/sys/kernel/mm/transparent_hugepage/enabled`` reads ``always [madvise] never``; writing
  a choice selects it);
- ``msr``: bits of a model-specific register, read and written through ``/dev/cpu/N/msr``
  (8 bytes at the register's address, as the kernel's msr driver serves them); ``mask`` is
  the bits the setting owns, ``value`` their new state as hex. No shelling out to ``wrmsr``.

``read_current`` gives the value a journal keeps so that ``write`` can put it back: for an
MSR, the whole register, so that restoring several settings of one register is one write
of what it held. Paths are absolute on this host (a test's fake root included).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

Form = Literal["text", "selected", "msr"]


@dataclass(frozen=True, kw_only=True)
class SystemSetting:
    """One change a trial makes to the machine (see the module docstring for ``form``)."""

    knob: str
    path: str
    value: str
    form: Form = "text"
    msr: int | None = None
    mask: int = 0

    @property
    def place(self) -> tuple[str, int | None]:
        """What the journal keeps one old value for: the file, or the file and register."""
        return (self.path, self.msr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SystemSetting:
        return cls(knob=str(data["knob"]), path=str(data["path"]), value=str(data["value"]),
                   form=data.get("form", "text"), msr=data.get("msr"),
                   mask=int(data.get("mask", 0)))

    def describe(self) -> str:
        """A line a user can read (and, for files, paste as root)."""
        if self.form == "msr":
            return (f"MSR {self.msr:#x} bits {self.mask:#x} = {int(self.value, 16):#x} "
                    f"via {self.path}")
        return f"echo {self.value} > {self.path}"


def selected_choice(text: str) -> str:
    """The bracketed word of ``always [madvise] never``, or the text itself."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.strip()


def read_msr(path: str, register: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, 8, register)
    finally:
        os.close(fd)
    if len(data) != 8:
        raise OSError(f"{path}: register {register:#x} read {len(data)} of 8 bytes")
    return int.from_bytes(data, "little")


def write_msr(path: str, register: int, value: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.pwrite(fd, value.to_bytes(8, "little"), register)
    finally:
        os.close(fd)
    if written != 8:
        raise OSError(f"{path}: register {register:#x} took {written} of 8 bytes")


def read_text(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read(4096).strip()


def write_text(path: str, value: str) -> None:
    """Write ``value`` the way ``echo value > path`` does (sysfs takes one write)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, (value + "\n").encode("ascii"))
    finally:
        os.close(fd)


def read_current(setting: SystemSetting) -> str:
    """What ``setting``'s place holds now, in the form ``restore_value`` writes back."""
    if setting.form == "msr":
        assert setting.msr is not None
        return f"{read_msr(setting.path, setting.msr):#018x}"
    text = read_text(setting.path)
    return selected_choice(text) if setting.form == "selected" else text


def apply_setting(setting: SystemSetting) -> None:
    """Write ``setting``'s value (an MSR: read, change the owned bits, write)."""
    if setting.form == "msr":
        assert setting.msr is not None
        old = read_msr(setting.path, setting.msr)
        new = (old & ~setting.mask) | (int(setting.value, 16) & setting.mask)
        if new != old:
            write_msr(setting.path, setting.msr, new)
        return
    write_text(setting.path, setting.value)


def restore_value(path: str, form: Form, msr: int | None, old: str) -> None:
    """Put back what ``read_current`` read (the whole register for an MSR)."""
    if form == "msr":
        assert msr is not None
        write_msr(path, msr, int(old, 16))
        return
    write_text(path, old)
