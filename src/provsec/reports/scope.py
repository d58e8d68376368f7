"""Which hosts a report covers: one agency (đơn vị), one security level (cấp độ), both, or the whole province.

The collected folder says which agency operates a host and at which level through `inventory.json`, derived from
the inventory by `provsec report collect --inventory DIR` (`inventory_to_json`): the agencies, and per host its
agency code, its effective level (the highest level of the information systems it serves, Nghị định 85/2016), those
systems with their name, owner and level, and its addresses (alerts, Prometheus series and scans may name a host
by address). No secret and no variable other than these is copied.

`resolve` turns the notebooks' `agency` and `security_level` parameters into a `Scope`; `restrict` keeps only the
data of its hosts, everywhere a report reads hosts:

- incidents: an incident belongs to the scope when one of its hosts (`IncidentRecord.hosts`: its alerts' host or
  instance labels, else the common labels') is a host of the scope; it keeps only its alerts on those hosts;
- backup runs and drills, audit results (this month's and, through `Collected.previous_audit`, the previous
  month's): by host;
- Prometheus series: by label host, else nodename, else instance without its port (`notify.payload.host_of`);
- scans: each scan keeps only the scope's hosts; the baseline only their entries; a scan that neither reports one
  of them nor covers one of their addresses with its targets did not look at the scope and is dropped.

A host is the scope's when its inventory name or one of its addresses is; a scanned host also by the name the
scanner gave it. The agency is the one that *operates* the host (`provsec_agency`), not the owner of the
systems it serves."""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from provsec.errors import InputError
from provsec.inventory.model import MAX_LEVEL, MIN_LEVEL, Inventory
from provsec.notify.payload import host_of
from provsec.reports.prometheus import Series
from provsec.reports.scans import ScanData
from provsec.reports.sources import BackupRun, ControlResult, CopyRecord, Drill, IncidentRecord

if TYPE_CHECKING:
    from provsec.reports.collect import Collected

FORMAT = 1
ALL = "all"
LEVELS = tuple(str(n) for n in range(MIN_LEVEL, MAX_LEVEL + 1))


@dataclass(frozen=True)
class SystemRef:
    id: str
    name: str
    owner: str  # agency code of the owner (chủ quản)
    level: int


@dataclass(frozen=True)
class HostInfo:
    name: str
    agency: str  # code of the agency operating the host
    level: int  # effective level
    systems: tuple[SystemRef, ...]
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class AgencyInfo:
    code: str
    name: str


@dataclass(frozen=True)
class ReportInventory:
    """What a report needs of the inventory (inventory.json of a collected folder)."""

    source: str  # the inventory directory it was derived from
    agencies: tuple[AgencyInfo, ...]
    hosts: tuple[HostInfo, ...]


def inventory_to_json(inventory: Inventory) -> dict[str, Any]:
    """The derived inventory.json: agencies, and per host its agency, effective level, systems and addresses."""
    return {
        "format": FORMAT,
        "province": {"code": inventory.province.code, "name": inventory.province.name},
        "agencies": [{"code": a.code, "name": a.name} for a in inventory.agencies],
        "hosts": [{"name": h.name, "agency": h.agency, "level": h.level,
                   "systems": [{"id": s.id, "name": s.name, "owner": s.owner, "level": s.level}
                               for s in inventory.systems_of(h)],
                   "addresses": [str(a) for a in h.all_addresses()]} for h in inventory.hosts],
    }


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}.{key}: expected text, got {value!r}")
    return value


def _level(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_LEVEL <= value <= MAX_LEVEL:
        raise InputError(f"{where}.{key}: expected a level {MIN_LEVEL}..{MAX_LEVEL}, got {value!r}")
    return value


def _objects(data: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(f"{where}.{key}: expected a list of objects")
    return value


def parse_inventory(doc: Any, source: str, where: str) -> ReportInventory:
    """inventory.json read back; every problem an InputError naming the file and the key."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{where}: not a report inventory of format {FORMAT} (format, agencies, hosts)")
    agencies = tuple(AgencyInfo(_str(a, "code", f"{where}: agencies[{i}]"), _str(a, "name", f"{where}: agencies[{i}]"))
                     for i, a in enumerate(_objects(doc, "agencies", where)))
    hosts = []
    for i, h in enumerate(_objects(doc, "hosts", where)):
        at = f"{where}: hosts[{i}]"
        systems = tuple(SystemRef(_str(s, "id", f"{at}.systems[{j}]"), _str(s, "name", f"{at}.systems[{j}]"),
                                  _str(s, "owner", f"{at}.systems[{j}]"), _level(s, "level", f"{at}.systems[{j}]"))
                        for j, s in enumerate(_objects(h, "systems", at)))
        addresses = h.get("addresses")
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise InputError(f"{at}.addresses: expected a list of addresses")
        hosts.append(HostInfo(_str(h, "name", at), _str(h, "agency", at), _level(h, "level", at), systems,
                              tuple(addresses)))
    return ReportInventory(source, agencies, tuple(hosts))


@dataclass(frozen=True)
class Scope:
    """The hosts a report is restricted to. `agency` None: every agency; `level` None: every level."""

    agency: AgencyInfo | None
    level: int | None
    hosts: frozenset[str]  # inventory names
    addresses: frozenset[str]

    def has(self, host: str) -> bool:
        return host in self.hosts or host in self.addresses

    def caption(self) -> str:
        """The scope in Vietnamese, as the report's subtitle shows it ("" for the whole province)."""
        parts = []
        if self.agency is not None:
            parts.append(f"{self.agency.name} (mã {self.agency.code})")
        if self.level is not None:
            parts.append(f"hệ thống thông tin cấp độ {self.level}")
        return "Phạm vi: " + "; ".join(parts) if parts else ""


def normal_name(text: str) -> str:
    """A name as typed compared with a name as written: NFC (macOS keyboards and file names give NFD), case-folded,
    without surrounding spaces and with inner runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def find_agency(inventory: ReportInventory, agency: str, what: str = "parameter agency") -> AgencyInfo:
    """The agency whose code is `agency` exactly, or whose name matches it after `normal_name`."""
    for a in inventory.agencies:
        if a.code == agency.strip():
            return a
    wanted = normal_name(agency)
    for a in inventory.agencies:
        if normal_name(a.name) == wanted:
            return a
    codes = ", ".join(f"{a.code} ({a.name})" for a in inventory.agencies) or "none"
    raise InputError(f"{what}: {agency!r} is neither the code nor the name of an agency of the collected inventory "
                     f"({inventory.source}); known codes: {codes}")


def parse_level(value: object, what: str = "parameter security_level") -> int | None:
    """"all" → None; "1".."5" (or the integer) → the level; anything else an InputError naming `what`."""
    text = str(value).strip()
    if text == ALL:
        return None
    if text not in LEVELS or isinstance(value, bool):
        raise InputError(f"{what}: {value!r} is not {ALL} or a level {', '.join(LEVELS)} (cấp độ, Nghị định "
                         "85/2016/NĐ-CP)")
    return int(text)


def resolve(inventory: ReportInventory | None, agency: str = ALL, security_level: object = ALL,
            what: tuple[str, str] = ("parameter agency", "parameter security_level")) -> Scope | None:
    """The scope the parameters choose; None for the whole province at every level. `what` names the two
    parameters in errors (the notebooks' names, or the command's options)."""
    if not isinstance(agency, str):
        raise InputError(f"{what[0]}: {agency!r} is not text")
    level = parse_level(security_level, what[1])
    chosen = agency.strip() != ALL
    if not chosen and level is None:
        return None
    if inventory is None:
        given = what[0] if chosen else what[1]
        raise InputError(f"{given}: the collected folder has no inventory, so it does not say which hosts belong to "
                         "an agency or a level: collect the month with provsec report collect --inventory DIR")
    found = find_agency(inventory, agency, what[0]) if chosen else None
    hosts = [h for h in inventory.hosts
             if (found is None or h.agency == found.code) and (level is None or h.level == level)]
    return Scope(found, level, frozenset(h.name for h in hosts), frozenset(a for h in hosts for a in h.addresses))


# -- restricting the collected data ---------------------------------------------------------------------------------
def incidents(records: Iterable[IncidentRecord], scope: Scope) -> list[IncidentRecord]:
    """The incidents with a host in the scope, each keeping only its alerts on the scope's hosts."""
    out = []
    for r in records:
        if not any(scope.has(h) for h in r.hosts):
            continue
        alerts = tuple(a for a in r.alerts if scope.has(a.host))
        out.append(replace(r, alerts=alerts) if alerts else r)  # none: the hosts came from the common labels
    return out


def backup_runs(runs: Iterable[BackupRun], scope: Scope) -> list[BackupRun]:
    return [r for r in runs if scope.has(r.host)]


def drills(items: Iterable[Drill], scope: Scope) -> list[Drill]:
    return [d for d in items if scope.has(d.host)]


def copies(items: Iterable[CopyRecord], scope: Scope) -> list[CopyRecord]:
    """Second-site copies of the scope's hosts (a copy is named after its client host)."""
    return [c for c in items if scope.has(c.host)]


def audit(results: Iterable[ControlResult] | None, scope: Scope) -> list[ControlResult] | None:
    return None if results is None else [r for r in results if scope.has(r.host)]


def series(items: Iterable[Series], scope: Scope) -> list[Series]:
    return [s for s in items if scope.has(host_of(s.labels))]


def _covered(address: str, targets: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for t in targets:
        try:
            net = ipaddress.ip_network(t, strict=False)
        except ValueError:
            continue
        if ip.version == net.version and ip in net:
            return True
    return False


def scans(data: ScanData | None, scope: Scope) -> ScanData | None:
    if data is None:
        return None
    addresses = set(scope.addresses) | {h.address for s in data.scans for h in s.result.hosts if scope.has(h.name)}
    kept = []
    for s in data.scans:
        hosts = tuple(h for h in s.result.hosts if h.address in addresses)
        if hosts or any(_covered(a, s.result.targets) for a in addresses):
            kept.append(replace(s, result=replace(s.result, hosts=hosts)))
    base = data.baseline
    keys = {k for k in base.hosts if k in scope.hosts or k in addresses or base.addresses.get(k) in addresses}
    baseline = replace(base, hosts={k: v for k, v in base.hosts.items() if k in keys},
                       addresses={k: a for k, a in base.addresses.items() if k in keys})
    return ScanData(tuple(kept), baseline)


def restrict(data: Collected, scope: Scope | None) -> Collected:
    """`data` with only the scope's hosts (see the module docstring); `data` itself when `scope` is None."""
    if scope is None:
        return data
    return replace(data, scope=scope,
                   incidents=None if data.incidents is None else incidents(data.incidents, scope),
                   backup_runs=backup_runs(data.backup_runs, scope), drills=drills(data.drills, scope),
                   copies=copies(data.copies, scope), audit=audit(data.audit, scope),
                   prometheus={name: series(items, scope) for name, items in data.prometheus.items()},
                   scans=scans(data.scans, scope))
