"""Scan drift over a month: when each difference from the reviewed baseline was found, and when and how it was
resolved, from the scans `provsec report collect --scans` copied (the month's, and the last one before it) and the
baseline it copied (`--scan-baseline`).

Parsing and drift are the scan area's own (`ScanResult.from_json`, `baseline.parse`, `drift.drift`); none of those
modules imports python-nmap. What is added here is time:

- **The baseline as of a scan.** The collected baseline is the one at collection time. An approved port counts for
  a scan only if its `approved_at` (UTC; a required key of the format, so never missing) is not after the scan's
  `started_at`. A host listed with ports all approved later was not reviewed yet at that scan (so it was
  `host-appeared`); a host listed with no port (`[]`) has no date and counts as reviewed all along. An entry that
  was removed from the baseline during the month (`scan baseline --accept` removes approved ports found closed) is
  not in the copy, so it cannot be seen.
- **Host names.** The baseline names hosts by inventory name or address; the reports have no inventory, so a name
  is resolved to the address the scans recorded for it (the scanner names each address after its inventory host;
  the latest scan wins). A name that no collected scan mentions cannot be placed and is not judged.
- **Episodes.** Per (address, port, proto, kind), in scan order: *found* at the first scan where the finding
  appears, *resolved* at the first later scan that looked and did not find it. A scan that did not look (host not
  scanned, or the port not in its port list, or the host down for a port finding) changes nothing. How it was
  resolved: `closed` (an unexpected port no longer open), `approved` (the port, or the whole host, was approved
  since), `reopened` (an approved port open again), `host-back` (a host that had disappeared answers again),
  `host-gone` (a never-reviewed host no longer answers).
- **The month.** Episodes found at a scan started within the month are counted; those already open at the last
  scan before the month are `carried` (found then, or earlier: that scan is the first seen). Still open after the
  month's last scan: unresolved."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError
from provsec.reports.month import Month, Traced
from provsec.scan import baseline as scan_baseline
from provsec.scan.baseline import Baseline
from provsec.scan.drift import DRIFT_KINDS, Finding, drift
from provsec.scan.model import ScanResult

PORT_KINDS = ("unexpected-open", "approved-not-open")
RESOLUTIONS = ("closed", "approved", "reopened", "host-back", "host-gone")


@dataclass(frozen=True)
class Scan:
    name: str  # the file name in the store (and in the collected folder's scans/)
    result: ScanResult
    started_at: datetime

    @property
    def id(self) -> str:
        return f"scan:{self.name}"


@dataclass(frozen=True)
class ScanData:
    """The collected scans, oldest first, and the baseline (host names resolved through the scans)."""

    scans: tuple[Scan, ...]
    baseline: Baseline


def started(result: ScanResult, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(result.started_at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{where}: started_at {result.started_at!r} is not a UTC time like 2026-10-05T02:00:00Z")
    return moment.astimezone(UTC)


def parse_scan(doc: Any, name: str, where: str) -> Scan:
    result = ScanResult.from_json(doc, where)
    return Scan(name, result, started(result, where))


def baseline_yaml(data: bytes, where: str) -> Any:
    try:
        return yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{where}:{line} not valid YAML") from None


def _ip(name: str) -> str | None:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


def parse_baseline(data: bytes, path: Path, scans: Sequence[Scan] = ()) -> Baseline:
    """scan_baseline.yml checked as `provsec scan` checks it; host names resolved through `scans`."""
    names = {h.name: h.address for s in scans for h in s.result.hosts if h.name != h.address}
    return scan_baseline.parse(path, baseline_yaml(data, str(path)), lambda key: _ip(key) or names.get(key))


def baseline_as_of(baseline: Baseline, moment: datetime) -> Baseline:
    """What had been approved at `moment` (see the module docstring)."""
    when = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # approved_at is normalised to this form
    hosts: dict[str, tuple[scan_baseline.Approved, ...]] = {}
    for key, entries in baseline.hosts.items():
        kept = tuple(a for a in entries if a.approved_at <= when)
        if kept or not entries:
            hosts[key] = kept
    return replace(baseline, hosts=hosts, addresses={k: a for k, a in baseline.addresses.items() if k in hosts})


@dataclass(frozen=True)
class Episode:
    host: str  # the baseline's key, else the name the scan gives
    address: str
    port: int | None  # None for host findings
    proto: str
    kind: str  # one of provsec.scan.drift.DRIFT_KINDS
    found_at: datetime
    resolved_at: datetime | None  # None: still open at the last scan of the month
    resolution: str | None  # one of RESOLUTIONS
    found_in: str  # the scan file names
    resolved_in: str | None

    @property
    def port_label(self) -> str:
        """8080/tcp; "" for a host finding."""
        return "" if self.port is None else f"{self.port}/{self.proto}"

    @property
    def id(self) -> str:
        where = self.host if self.port is None else f"{self.host}:{self.port}/{self.proto}"
        return f"scan-drift:{where}/{self.kind}@{self.found_in}"


@dataclass(frozen=True)
class ScanDrift:
    scans: Traced[int]  # scans started within the month
    episodes: tuple[Episode, ...]  # found within the month, in order found
    carried: tuple[Episode, ...]  # open at the last scan before the month
    found: Traced[int]
    resolved: Traced[int]
    unresolved: Traced[int]


Key = tuple[str, int | None, str, str]  # address, port, proto, kind


def _key(f: Finding) -> Key:
    return (f.address, f.port, f.proto, f.kind)


def _covered(address: str, targets: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    nets = []
    for t in targets:
        try:
            nets.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            continue
    return any(ip.version == n.version and ip in n for n in nets)


def _looked(scan: ScanResult, key: Key) -> bool:
    """Whether `scan` could have seen the finding `key` (so its absence there means it is gone)."""
    address, port, proto, kind = key
    host = scan.host(address)
    if kind in PORT_KINDS:
        assert port is not None  # noqa: S101  (port findings name a port)
        return host is not None and host.status == "up" and (
            host.port(port, proto) is not None or (proto == "tcp" and port in scan.ports_scanned))
    return host is not None or _covered(address, scan.targets)


def _resolution(scan: ScanResult, key: Key, baseline: Baseline) -> str:
    address, port, proto, kind = key
    host = scan.host(address)
    if kind == "unexpected-open":
        state = host.port(port, proto) if host is not None and port is not None else None
        return "approved" if state is not None and state.state == "open" else "closed"
    if kind == "approved-not-open":
        return "reopened"
    if kind == "host-disappeared":
        return "host-back"
    return "approved" if baseline.for_address(address) is not None else "host-gone"  # host-appeared


def episodes(data: ScanData, until: datetime | None = None) -> list[Episode]:
    """Every episode over the collected scans (started before `until`, when given), in the order found."""
    done: list[Episode] = []
    open_: dict[Key, Episode] = {}
    for scan in data.scans:
        if until is not None and scan.started_at >= until:
            break
        base = baseline_as_of(data.baseline, scan.started_at)
        now = {_key(f): f for f in drift(scan.result, base) if f.kind in DRIFT_KINDS}
        for key, episode in list(open_.items()):
            if key not in now and _looked(scan.result, key):
                done.append(replace(episode, resolved_at=scan.started_at, resolved_in=scan.name,
                                    resolution=_resolution(scan.result, key, base)))
                del open_[key]
        for key, f in now.items():
            if key not in open_:
                open_[key] = Episode(f.host, f.address, f.port, f.proto, f.kind, scan.started_at, None, None,
                                     scan.name, None)
    every = done + list(open_.values())
    return sorted(every, key=lambda e: (e.found_at, e.host, e.port or 0, e.kind))


def scan_drift(data: ScanData, month: Month) -> ScanDrift:
    """The month's drift episodes and their totals (see the module docstring)."""
    every = episodes(data, until=month.end)
    found = tuple(e for e in every if month.contains(e.found_at))
    carried = tuple(e for e in every if e.found_at < month.start
                    and (e.resolved_at is None or e.resolved_at >= month.start))
    resolved = [e for e in found if e.resolved_at is not None]
    unresolved = [e for e in found if e.resolved_at is None]
    in_month = [s.id for s in data.scans if month.contains(s.started_at)]
    return ScanDrift(scans=Traced(len(in_month), tuple(in_month)), episodes=found, carried=carried,
                     found=Traced(len(found), tuple(e.id for e in found)),
                     resolved=Traced(len(resolved), tuple(e.id for e in resolved)),
                     unresolved=Traced(len(unresolved), tuple(e.id for e in unresolved)))
