"""What every device family's parser shares: a stored configuration read as text, and its numbered lines.

A stored configuration is refused (InputError naming the file) when it is empty, binary or not UTF-8: the audit
never judges a file it cannot read whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from provsec.errors import InputError

_CONTROL_OK = {"\t", "\n", "\r", "\f"}
MAX_CONTROL_SHARE = 0.01  # a few stray control characters (a pasted ^C) are text; more is a binary file


@dataclass(frozen=True)
class Line:
    """One line of a configuration: its number in the file (from 1) and its text without the line end."""

    number: int
    text: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.text.strip()}"


def evidence(lines: list[Line] | tuple[Line, ...]) -> str:
    """The lines that prove a result, as the audit shows them: `line 12: ip ssh version 2; line 40: …`."""
    return "; ".join(str(line) for line in lines)


def decode(data: bytes, source: str) -> str:
    """The text of a stored configuration; InputError when it is empty, binary or not UTF-8."""
    if b"\x00" in data:
        raise InputError(f"{source}: binary file (NUL bytes), not a configuration in text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise InputError(f"{source}: empty file, not a configuration")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in _CONTROL_OK)
    if controls > max(2, MAX_CONTROL_SHARE * len(text)):
        raise InputError(f"{source}: binary file ({controls} control characters), not a configuration in text")
    return text


def numbered(text: str) -> list[Line]:
    return [Line(i, raw.rstrip()) for i, raw in enumerate(text.splitlines(), start=1)]
