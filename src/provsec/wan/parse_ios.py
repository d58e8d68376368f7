"""Cisco IOS / IOS XE `show running-config` text, as blocks: each unindented line with its indented lines.

```
line vty 0 4            <- a block's header (top level)
 access-class ADMIN in  <- its lines (indented; deeper levels are kept in order, flattened)
 transport input ssh
```
`!` lines are separators or comments. A `banner … ^C … ^C` spans lines that are not commands: they are kept out
of the blocks. The text is refused (InputError naming the file) when no line reads like IOS, when it does not
end with `end` (IOS writes it last: a file without it was cut short), or when a banner is never closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provsec.errors import InputError
from provsec.wan.parse_text import Line, numbered

_IOS_MARKERS = re.compile(r"^(version [0-9]|hostname \S|interface \S|line (vty|con|aux) )")
_BANNER = re.compile(r"^banner\s+\S+\s+(\^C|\S)")
_PREAMBLE = re.compile(r"^(Building configuration|Current configuration\s*:|show running-config)")


@dataclass(frozen=True)
class Block:
    header: Line
    lines: tuple[Line, ...]

    @property
    def all(self) -> tuple[Line, ...]:
        return (self.header, *self.lines)


@dataclass(frozen=True)
class IosConfig:
    source: str
    blocks: tuple[Block, ...]

    def top(self, pattern: str) -> list[Line]:
        """Top-level lines matching `pattern` (re.match on the stripped text)."""
        regex = re.compile(pattern)
        return [b.header for b in self.blocks if regex.match(b.header.text.strip())]

    def blocks_of(self, pattern: str) -> list[Block]:
        regex = re.compile(pattern)
        return [b for b in self.blocks if regex.match(b.header.text.strip())]

    def anywhere(self, pattern: str) -> list[Line]:
        """Lines at any depth matching `pattern` (re.match on the stripped text)."""
        regex = re.compile(pattern)
        return [line for b in self.blocks for line in b.all if regex.match(line.text.strip())]


def parse_ios(text: str, source: str) -> IosConfig:
    lines = numbered(text)
    blocks: list[tuple[Line, list[Line]]] = []
    banner_end: str | None = None
    banner_start: Line | None = None
    last = None
    for line in lines:
        body = line.text
        if banner_end is not None:
            if banner_end in body:
                banner_end = None
            continue
        if not body.strip() or body.lstrip().startswith("!"):
            continue
        last = line
        if body[0] in " \t":
            if not blocks:
                raise InputError(f"{source}: {line}: indented line before any command: not an IOS configuration")
            blocks[-1][1].append(line)
            continue
        if _PREAMBLE.match(body):
            continue
        blocks.append((line, []))
        banner = _BANNER.match(body)
        if banner:
            delim = banner.group(1)
            if delim not in body[banner.end():]:
                banner_end, banner_start = delim, line
    if banner_end is not None and banner_start is not None:
        raise InputError(f"{source}: {banner_start}: the banner is never closed with {banner_end}: truncated file")
    parsed = IosConfig(source, tuple(Block(h, tuple(c)) for h, c in blocks))
    if not any(_IOS_MARKERS.match(b.header.text) for b in parsed.blocks):
        raise InputError(f"{source}: not a Cisco IOS configuration (no hostname, version, interface or line "
                         "command); check the device's profile (provsec_wan_profile)")
    if last is None or last.text.strip() != "end":
        raise InputError(f"{source}: does not end with `end` (IOS writes it last): the configuration looks "
                         "truncated; take the backup again")
    return parsed
