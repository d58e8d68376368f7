"""The reviewed baseline: which ports of which host are approved to be open, why, and who approved them.

`INVENTORY/scan_baseline.yml` (format: inventory/README.md, "Scan baseline"). A host listed with an empty
list was reviewed and may expose nothing; a host not listed was never reviewed. `accept` turns a scan into
the baseline after review, recording the approver and the time; the file is rewritten atomically."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from provsec.errors import InputError
from provsec.fileio import read_yaml, write_atomic
from provsec.inventory.model import Inventory
from provsec.scan.model import PROTOCOLS, ScanResult

FILENAME = "scan_baseline.yml"
ENTRY_KEYS = ("port", "proto", "reason", "approved_by", "approved_at")
HEADER = ("# provsec scan baseline: the approved open ports of each host (format: inventory/README.md,\n"
          "# \"Scan baseline\"). Written by `provsec scan baseline --accept`; review every change.\n")


@dataclass(frozen=True)
class Approved:
    port: int
    proto: str
    reason: str
    approved_by: str
    approved_at: str  # UTC, ISO 8601 with Z

    @property
    def key(self) -> tuple[int, str]:
        return (self.port, self.proto)


@dataclass(frozen=True)
class Baseline:
    path: Path
    hosts: dict[str, tuple[Approved, ...]]  # key as written: an inventory host or an address
    addresses: dict[str, str]  # key -> the address it stands for (absent when it cannot be known: see parse)

    def for_address(self, address: str) -> tuple[str, tuple[Approved, ...]] | None:
        """(key, approved ports) of the host at `address`; None when the host was never reviewed."""
        for key, addr in self.addresses.items():
            if addr == address:
                return key, self.hosts[key]
        return None


def default_path(inventory: Inventory) -> Path:
    return inventory.path / FILENAME


def load(path: Path, inventory: Inventory) -> Baseline:
    """The baseline at `path`; a missing file is an empty baseline (nothing reviewed yet). Every problem is an
    InputError naming the file and the key."""
    if not path.exists():
        return Baseline(path, {}, {})
    return parse(path, read_yaml(path, "scan baseline"), lambda name: _address(path, inventory, name))


def parse(path: Path, data: object, address_of: Callable[[str], str | None]) -> Baseline:
    """The baseline in `data` (the YAML of `path`, already read). `address_of` gives the address a host key
    stands for; None when it cannot be known (the reports resolve names from the scans, without the inventory):
    such a host keeps its approved ports in `hosts` but matches no address."""
    if data is None:
        return Baseline(path, {}, {})
    if not isinstance(data, dict) or set(data) != {"hosts"}:
        raise InputError(f"{path}: must be a mapping with one key, hosts: (host -> list of approved ports)")
    raw = data["hosts"] or {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: hosts: must be a mapping of host -> list of approved ports")
    hosts: dict[str, tuple[Approved, ...]] = {}
    addresses: dict[str, str] = {}
    for key, entries in raw.items():
        name = str(key)
        address = address_of(name)
        if address is not None:
            addresses[name] = address
        hosts[name] = _entries(path, name, entries)
    seen: dict[str, str] = {}
    for name, addr in addresses.items():
        if addr in seen:
            raise InputError(f"{path}: hosts.{name}: the same address ({addr}) as hosts.{seen[addr]}: list it once")
        seen[addr] = name
    return Baseline(path, hosts, addresses)


def _address(path: Path, inventory: Inventory, name: str) -> str:
    if any(h.name == name for h in inventory.hosts):
        return str(inventory.host(name).ansible_host)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        raise InputError(f"{path}: hosts.{name}: not a host of {inventory.path}/hosts.yml nor an IP address "
                         "(remove hosts that left the inventory)") from None


def _entries(path: Path, host: str, entries: object) -> tuple[Approved, ...]:
    where = f"{path}: hosts.{host}"
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise InputError(f"{where}: must be a list of approved ports ([] when nothing may be open)")
    result: list[Approved] = []
    for i, entry in enumerate(entries):
        key = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{key}: must be a mapping with keys {', '.join(ENTRY_KEYS)}")
        unknown = [str(k) for k in entry if k not in ENTRY_KEYS]
        missing = [k for k in ENTRY_KEYS if k not in entry]
        if unknown or missing:
            raise InputError(f"{key}: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])) + f" (keys: {', '.join(ENTRY_KEYS)})")
        port = entry["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{key}.port: must be an integer from 1 to 65535, got {port!r}")
        if entry["proto"] not in PROTOCOLS:
            raise InputError(f"{key}.proto: must be one of {', '.join(PROTOCOLS)}, got {entry['proto']!r}")
        for text in ("reason", "approved_by"):
            if not isinstance(entry[text], str) or not entry[text].strip():
                raise InputError(f"{key}.{text}: must be non-empty text")
        approved = Approved(port, entry["proto"], entry["reason"].strip(), entry["approved_by"].strip(),
                            _timestamp(f"{key}.approved_at", entry["approved_at"]))
        if any(a.key == approved.key for a in result):
            raise InputError(f"{key}: {port}/{approved.proto} is listed twice for {host}")
        result.append(approved)
    return tuple(result)


def _timestamp(key: str, value: object) -> str:
    """YAML reads an unquoted 2026-10-30T03:00:00Z as a datetime, a quoted one as text: both are accepted."""
    when: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
    if when is None or (when.tzinfo is None and not isinstance(value, dt.datetime)):
        raise InputError(f"{key}: must be a UTC time like \"2026-10-30T03:00:00Z\", got {value!r}")
    if when.tzinfo is None:  # PyYAML drops a Z it has converted: the value was UTC
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    host: str
    port: int
    proto: str
    action: str  # added | removed


def accept(baseline: Baseline, scan: ScanResult, approver: str, reason: str, hosts: list[str], *,
           now: dt.datetime | None = None) -> tuple[Baseline, list[Change]]:
    """The baseline after accepting `scan` for `hosts` (names or addresses; all scanned hosts when empty).

    For each accepted host that was up: its open ports not yet approved are added (with approver, reason,
    time); approved ports that were scanned and found not open are removed; other entries keep their original
    approver and time. A host that was down is left as it is: its absence is not something to approve."""
    if not approver.strip() or not reason.strip():
        raise InputError("--approver and --reason: both must be non-empty (who approved, and why)")
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    chosen = [h for h in scan.hosts if not hosts or h.name in hosts or h.address in hosts]
    unknown = [n for n in hosts if not any(n in (h.name, h.address) for h in scan.hosts)]
    if unknown:
        raise InputError(f"--host {', '.join(unknown)}: not in the scan (hosts there: "
                         f"{', '.join(h.name for h in scan.hosts) or 'none'})")
    new_hosts = dict(baseline.hosts)
    new_addresses = dict(baseline.addresses)
    changes: list[Change] = []
    for host in chosen:
        if host.status != "up":
            continue
        found = baseline.for_address(host.address)
        key, current = found if found is not None else (host.name, ())
        open_now = {p.key for p in host.open_ports()}
        scanned = {p.key for p in host.ports}
        kept = [a for a in current if a.key in open_now or a.key not in scanned]
        changes += [Change(key, a.port, a.proto, "removed") for a in current if a not in kept]
        have = {a.key for a in kept}
        for port in host.open_ports():
            if port.key not in have:
                kept.append(Approved(port.port, port.proto, reason.strip(), approver.strip(), stamp))
                changes.append(Change(key, port.port, port.proto, "added"))
        new_hosts[key] = tuple(sorted(kept, key=lambda a: (a.proto, a.port)))
        new_addresses[key] = host.address
    return replace(baseline, hosts=new_hosts, addresses=new_addresses), changes


def write(baseline: Baseline) -> None:
    data = {"hosts": {key: [{"port": a.port, "proto": a.proto, "reason": a.reason, "approved_by": a.approved_by,
                             "approved_at": a.approved_at} for a in entries]
                      for key, entries in sorted(baseline.hosts.items())}}
    text = HEADER + "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)
    write_atomic(baseline.path, text.encode("utf-8"))
