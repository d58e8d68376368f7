"""A Linux (Debian) WAN edge's stored evidence: the output of several commands, each under a `### ` header.

```
### nft list ruleset          <- the command (or file) whose output follows
table inet filter { … }
### ss -ltun
### sshd -T
### sysctl net
### chrony.conf               <- NTP sources (or timesyncd.conf)
### rsyslog.conf              <- syslog forwarding (rsyslog.conf and rsyslog.d/*.conf)
### snmpd.conf                <- only when net-snmp is installed
```
Sections are recognised by the header's words (SECTION_PATTERNS); others are kept and ignored. The text is
refused (InputError naming the file) when a line other than a `#` comment comes before the first header, or
when no header is recognised.
`nft -j list ruleset` (JSON) is read as the servers' audit reads it; `nft list ruleset` (text) by its lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provsec.errors import InputError
from provsec.wan.parse_text import Line, numbered

HEADER = "### "
SECTION_PATTERNS = {
    "nft_json": r"^nft\s+(-j|--json)\b.*\blist ruleset",
    "nft": r"^nft\b.*\blist ruleset",
    "ss": r"^ss\b",
    "sshd": r"^sshd\s+-T\b",
    "sysctl": r"^sysctl\b",
    "ip_route": r"^ip\b.*\broute\b",
    "ntp": r"\b(chrony|timesyncd|ntp)\b",
    "syslog": r"\b(rsyslog|syslog-ng)\b",
    "snmpd": r"\bsnmpd\b",
}


@dataclass(frozen=True)
class Section:
    header: Line
    kind: str  # a key of SECTION_PATTERNS, or "" (not used by the audit)
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
class LinuxEvidence:
    source: str
    sections: tuple[Section, ...]

    def section(self, kind: str) -> Section | None:
        return next((s for s in self.sections if s.kind == kind), None)


def _kind(title: str) -> str:
    command = re.sub(r"^sudo\s+(-\S+\s+)*", "", title)  # provsec wan backup runs nft and sshd -T through sudo -n
    for kind, pattern in SECTION_PATTERNS.items():
        if re.search(pattern, command):
            return kind
    return ""


def parse_linux(text: str, source: str) -> LinuxEvidence:
    sections: list[tuple[Line, str, list[Line]]] = []
    for line in numbered(text):
        if line.text.startswith(HEADER):
            title = line.text[len(HEADER):].strip()
            sections.append((line, _kind(title), []))
            continue
        if not sections:
            if not line.text.strip() or line.text.startswith("#"):
                continue  # blank lines and comments before the first section
            raise InputError(f"{source}: {line}: text before the first `### <command>` header: not a Linux edge's "
                             "evidence; check the device's profile (provsec_wan_profile)")
        if line.text.strip():
            sections[-1][2].append(line)
    parsed = LinuxEvidence(source, tuple(Section(h, k, tuple(ls)) for h, k, ls in sections))
    if not any(s.kind for s in parsed.sections):
        raise InputError(f"{source}: no `### <command>` section the audit knows (nft list ruleset, ss -ltun, "
                         "sshd -T, chrony.conf, rsyslog.conf, …): not a Linux edge's evidence")
    return parsed
