"""MikroTik RouterOS `/export` text, as commands grouped by their menu path.

```
/ip service                               <- a menu path: the commands below apply there
set telnet disabled=yes                   <- verb, item (a name or `[ find … ]`), key=value arguments
add address=10.0.0.1 comment="long \\
    comment"                              <- a trailing backslash continues the command on the next line
```
`#` lines are comments (the export's header). An export lists only what differs from the defaults (unless made
with `verbose`), so a rule must know RouterOS's default when nothing is listed. The text is refused
(InputError naming the file) when a command comes before any menu path, when it ends inside a continuation or a
quoted value, or when a line is not a command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from provsec.errors import InputError
from provsec.wan.parse_text import Line, numbered

_VERB = re.compile(r"^[a-z][a-z-]*$")
_FIND_ARG = re.compile(r"([a-z][a-z0-9-]*)=(\"(?:[^\"\\]|\\.)*\"|\S+)")


@dataclass(frozen=True)
class Command:
    line: Line  # the command's first line number; its text with continuations joined, after its menu path
    path: str  # "/ip service"
    verb: str  # add, set, remove, …
    item: str  # "telnet" in `set telnet …`; the `[ find … ]` text; "" for a menu's single settings
    args: Mapping[str, str] = field(default_factory=dict)

    def find(self) -> dict[str, str]:
        """The arguments of a `[ find name=admin ]` item (empty for a plain item name)."""
        if not self.item.startswith("["):
            return {}
        return {k: _unquote(v) for k, v in _FIND_ARG.findall(self.item)}

    def names(self, name: str) -> bool:
        """Does the command act on the item called `name` (`set admin …`, `set [ find name=admin ] …`)?"""
        return self.item == name or self.find().get("name") == name


@dataclass(frozen=True)
class RouterOsExport:
    source: str
    commands: tuple[Command, ...]

    def under(self, path: str) -> list[Command]:
        return [c for c in self.commands if c.path == path]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _tokens(text: str, line: Line, source: str) -> list[str]:
    tokens: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            current.append(ch)
            escaped = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "[":
            depth += 1
        elif not quoted and ch == "]":
            depth -= 1
        if ch.isspace() and not quoted and depth == 0:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(ch)
    if quoted or depth:
        what = "a quoted value" if quoted else "a [ … ] item"
        raise InputError(f"{source}: {line}: {what} is never closed: truncated or not a RouterOS export")
    if current:
        tokens.append("".join(current))
    return tokens


def _logical_lines(text: str, source: str) -> list[Line]:
    out: list[Line] = []
    pending: Line | None = None
    for line in numbered(text):
        if pending is None and (not line.text.strip() or line.text.lstrip().startswith("#")):
            continue
        body = line.text.strip() if pending is not None else line.text.rstrip()
        joined = Line(pending.number, pending.text + body) if pending else Line(line.number, body)
        if joined.text.endswith("\\"):
            pending = Line(joined.number, joined.text[:-1])
            continue
        pending = None
        out.append(joined)
    if pending is not None:
        raise InputError(f"{source}: line {pending.number}: the command continues (`\\`) past the end of the file: "
                         "the export is truncated; take the backup again")
    return out


def parse_routeros(text: str, source: str) -> RouterOsExport:
    path = ""
    commands: list[Command] = []
    for line in _logical_lines(text, source):
        words = _tokens(line.text.strip(), line, source)
        if words[0].startswith("/"):
            path_words = [w for w in words if w.startswith("/") or ("=" not in w and _VERB.match(w))]
            path = " ".join(path_words)
            continue
        if not path:
            raise InputError(f"{source}: {line}: a command before any /menu path: not a RouterOS export; "
                             "check the device's profile (provsec_wan_profile)")
        verb, rest = words[0], words[1:]
        if not _VERB.match(verb):
            raise InputError(f"{source}: {line}: not a RouterOS command")
        item = ""
        if rest and (rest[0].startswith("[") or "=" not in rest[0]):
            item, rest = rest[0], rest[1:]
        args: dict[str, str] = {}
        for word in rest:
            key, eq, value = word.partition("=")
            args[key] = _unquote(value) if eq else "yes"  # a bare flag (`disabled`) reads as set
        # shown with its path, as one line of RouterOS CLI: `/ip service set telnet disabled=yes`
        commands.append(Command(Line(line.number, f"{path} {line.text.strip()}"), path, verb, item, args))
    if not commands:
        raise InputError(f"{source}: no RouterOS command (/menu path followed by add/set lines): not an export")
    return RouterOsExport(source, tuple(commands))
