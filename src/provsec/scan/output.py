"""How scans, drift and differences are printed: a table for people, JSON for scripts, and nmap's ndiff text
format (each line starts with ' ' for context, '-' for what only the first scan has, '+' for what only the
second has; one block per host that changed), so that tools and habits built on ndiff keep working.

Times are stored and written in JSON in UTC; the table and ndiff texts show them in Asia/Ho_Chi_Minh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provsec.scan.drift import Finding, HostDiff
from provsec.scan.model import HostResult, ScanResult

try:
    LOCAL_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tzdata: Việt Nam keeps UTC+7 all year
    LOCAL_TZ = dt.timezone(dt.timedelta(hours=7), "+07")


def local_time(stamp: str) -> str:
    """A stored UTC time (ISO 8601) as people read it: '2026-11-26 19:40:35 +07' (Asia/Ho_Chi_Minh)."""
    if not stamp:
        return "-"
    when = dt.datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S %z")[:-2]


def scan_table(scan: ScanResult) -> list[str]:
    lines = [f"scan started {local_time(scan.started_at)} (nmap {scan.nmap_version or '?'}), "
             f"{len(scan.hosts)} host(s), {len(scan.ports_scanned)} TCP port(s) probed per host"]
    rows = [("HOST", "ADDRESS", "STATUS", "OPEN PORTS", "NOT OPEN")]
    for h in scan.hosts:
        shown = ", ".join(f"{p.port}/{p.proto}" + (f" {p.service}" if p.service else "") for p in h.open_ports())
        other: dict[str, int] = {}
        for p in h.ports:
            if p.state != "open":
                other[p.state] = other.get(p.state, 0) + 1
        rest = ", ".join(f"{n} {state}" for state, n in sorted(other.items()))
        rows.append((h.name, h.address, h.status, shown or "-", rest or "-"))
    return lines + _columns(rows)


def drift_table(findings: list[Finding], baseline: str) -> list[str]:
    count = sum(f.is_drift for f in findings)
    lines = [f"drift against {baseline}: " + (f"{count} finding(s)" if count else "none")]
    rows = [("KIND", "HOST", "ADDRESS", "PORT", "STATE", "SERVICE")]
    rows += [(f.kind, f.host, f.address, f"{f.port}/{f.proto}" if f.port else "-", f.state or "-",
              f.service or "-") for f in findings]
    return lines + (_columns(rows) if findings else [])


def diff_table(diffs: list[HostDiff]) -> list[str]:
    if not diffs:
        return ["no difference"]
    rows = [("HOST", "ADDRESS", "WHAT", "BEFORE", "AFTER")]
    for d in diffs:
        sa, sb = (d.a.status if d.a else "absent"), (d.b.status if d.b else "absent")
        if sa != sb:
            rows.append((d.name, d.address, "host", sa, sb))
        rows += [(d.name, d.address, f"{p}/{proto}", a or "not scanned", b or "not scanned")
                 for p, proto, a, b, _ in d.ports]
    return _columns(rows)


def findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.to_json() for f in findings]


def ndiff(a: ScanResult, b: ScanResult, diffs: list[HostDiff]) -> list[str]:
    lines = [f"-Nmap {a.nmap_version} scan initiated {local_time(a.started_at)} as: {a.command}",
             f"+Nmap {b.nmap_version} scan initiated {local_time(b.started_at)} as: {b.command}"]
    for d in diffs:
        lines.append("")
        lines += _ndiff_host(d)
    return lines


def _ndiff_host(d: HostDiff) -> list[str]:
    # A host in only one scan is entirely "-" or "+"; ndiff prints the same.
    whole = "-" if d.b is None else "+" if d.a is None else " "
    label = d.address if d.name == d.address else f"{d.name} ({d.address})"
    out = [f"{whole}{label}:"]
    sa, sb = _state_line(d.a), _state_line(d.b)
    if whole == " " and sa != sb:
        out += [f"-{sa}", f"+{sb}"]
    elif whole != " ":
        out.append(f"{whole}{sa or sb}")
    if d.ports:
        rows = [("PORT", "STATE", "SERVICE")]
        marks = [whole]
        for port, proto, state_a, state_b, service in d.ports:
            if state_a:
                rows.append((f"{port}/{proto}", state_a, service))
                marks.append("-")
            if state_b:
                rows.append((f"{port}/{proto}", state_b, service))
                marks.append("+")
        out += [m + line for m, line in zip(marks, _columns(rows), strict=True)]
    return out


def _state_line(host: HostResult | None) -> str:
    if host is None:
        return ""
    return "Host is up." if host.status == "up" else "Host is down."


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
