"""What the exporter counts, kept together so that one snapshot of it is consistent with the read positions.

`Counts` holds the event counter values, the per-source line counters and the top-K table of failed-SSH
sources. The state file (state.py) saves it together with every source's position in one atomic write: after
`kill -9` the exporter restarts from the last saved position with the counter values of that same moment, so
a line is neither lost nor counted twice.

Top-K: failed SSH events (ssh_failed, ssh_invalid_user) per source address are tracked in a table of at most
`capacity` entries; an entry is forgotten `ttl` seconds after its last failure. When the table is full, the
entry with the fewest failures makes room and `provsec_auth_top_sources_dropped_total` counts it. Only the
`top` largest entries become series, so the label `source` never has more than `top` values at a time."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EventKey = tuple[str, str, str]  # event, method, user
_OCTET = rb"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(_OCTET + rb"(?:\." + _OCTET + rb"){3}")  # dotted quad, no leading zeros (as sshd logs it)


@dataclass
class SourceEntry:
    failures: int
    last_seen: float


@dataclass
class TopSources:
    top: int = 10
    capacity: int = 1024
    ttl: float = 3600.0
    entries: dict[bytes, SourceEntry] = field(default_factory=dict)  # address as logged (validated) -> entry
    dropped: int = 0

    def add(self, address: bytes, count: int, now: float) -> None:
        entry = self.entries.get(address)
        if entry is not None:
            if now - entry.last_seen > self.ttl:
                entry.failures = 0
            entry.failures += count
            entry.last_seen = now
            return
        if IPV4.fullmatch(address) is None:
            try:
                ipaddress.IPv6Address(address.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return  # not an address (a host name when UseDNS is on): never a label
        if len(self.entries) >= self.capacity:
            self.make_room(now)
        self.entries[address] = SourceEntry(count, now)

    def make_room(self, now: float) -> None:
        """Forget expired entries; if that is not enough, the half with the fewest failures (counted as
        dropped). Done for many entries at once, so that a flood of new addresses costs O(log n) each."""
        self.expire(now)
        if len(self.entries) < self.capacity * 3 // 4:
            return
        ranked = sorted(self.entries.items(), key=lambda item: (item[1].failures, item[1].last_seen))
        remove = len(self.entries) - self.capacity // 2
        for key, _ in ranked[:remove]:
            del self.entries[key]
        self.dropped += remove

    def expire(self, now: float) -> None:
        for key in [k for k, e in self.entries.items() if now - e.last_seen > self.ttl]:
            del self.entries[key]

    def largest(self, now: float) -> list[tuple[str, int]]:
        self.expire(now)
        ranked = sorted(self.entries.items(), key=lambda item: (-item[1].failures, item[0]))
        return [(str(ipaddress.ip_address(key.decode("ascii"))), entry.failures) for key, entry in ranked[: self.top]]

    def to_json(self) -> dict[str, Any]:
        return {"dropped": self.dropped,
                "entries": {k.decode("ascii"): [e.failures, e.last_seen] for k, e in self.entries.items()}}

    def load(self, data: dict[str, Any]) -> None:
        self.dropped = int(data.get("dropped", 0))
        self.entries = {str(k).encode("ascii"): SourceEntry(int(v[0]), float(v[1]))
                        for k, v in dict(data.get("entries", {})).items()}


@dataclass
class Counts:
    events: dict[EventKey, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # per source
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)
    rotations: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, kind)
    top: TopSources = field(default_factory=TopSources)
    clock: Callable[[], float] = time.time

    def emit(self, event: str, method: str, user: str, count: int) -> None:
        key = (event, method, user)
        self.events[key] = self.events.get(key, 0) + count

    def reject(self, source: str, reason: str) -> None:
        """A line counted but not parsed."""
        self.add(self.lines, source)
        self.add(self.rejected, (source, reason))

    def add(self, table: dict[Any, int], key: Any, count: int = 1) -> None:
        table[key] = table.get(key, 0) + count

    def to_json(self) -> dict[str, Any]:
        return {
            "events": [[*key, value] for key, value in sorted(self.events.items())],
            "lines": dict(sorted(self.lines.items())),
            "rejected": [[*key, value] for key, value in sorted(self.rejected.items())],
            "rotations": [[*key, value] for key, value in sorted(self.rotations.items())],
            "top_sources": self.top.to_json(),
        }

    def load(self, data: dict[str, Any]) -> None:
        self.events = {(str(e), str(m), str(u)): int(v) for e, m, u, v in data.get("events", [])}
        self.lines = {str(k): int(v) for k, v in dict(data.get("lines", {})).items()}
        self.rejected = {(str(s), str(r)): int(v) for s, r, v in data.get("rejected", [])}
        self.rotations = {(str(s), str(k)): int(v) for s, k, v in data.get("rotations", [])}
        self.top.load(dict(data.get("top_sources", {})))
