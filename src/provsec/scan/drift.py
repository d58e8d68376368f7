"""Drift: a scan against the reviewed baseline (`drift`), and one scan against another (`diff`).

Drift against the baseline, per host:
  unexpected-open    a port is open that is not approved
  approved-not-open  an approved port was scanned and found closed, filtered or in another state
  host-disappeared   a reviewed host that was scanned is down (or did not answer host discovery)
  host-appeared      a host is up that was never reviewed (not in the baseline)
An approved port that the scan did not probe (not in its port list) is `approved-not-scanned`: a note, not
drift, because nothing was seen either way."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from provsec.scan.baseline import Baseline
from provsec.scan.model import HostResult, ScanResult

DRIFT_KINDS = ("unexpected-open", "approved-not-open", "host-disappeared", "host-appeared")
NOTE_KINDS = ("approved-not-scanned",)


@dataclass(frozen=True)
class Finding:
    kind: str
    host: str  # inventory host or address
    address: str
    port: int | None = None
    proto: str = ""
    state: str = ""  # the state now ("" for host findings)
    service: str = ""

    @property
    def is_drift(self) -> bool:
        return self.kind in DRIFT_KINDS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def drift(scan: ScanResult, baseline: Baseline) -> list[Finding]:
    findings: list[Finding] = []
    for host in scan.hosts:
        found = baseline.for_address(host.address)
        if found is None:
            if host.status == "up":
                findings.append(Finding("host-appeared", host.name, host.address))
                findings += [Finding("unexpected-open", host.name, host.address, p.port, p.proto, p.state,
                                     p.service) for p in host.open_ports()]
            continue
        key, approved = found
        if host.status != "up":
            findings.append(Finding("host-disappeared", key, host.address, state="down"))
            continue
        allowed = {a.key for a in approved}
        findings += [Finding("unexpected-open", key, host.address, p.port, p.proto, p.state, p.service)
                     for p in host.open_ports() if p.key not in allowed]
        for a in approved:
            port = host.port(a.port, a.proto)
            if port is None:
                findings.append(Finding("approved-not-scanned", key, host.address, a.port, a.proto))
            elif port.state != "open":
                findings.append(Finding("approved-not-open", key, host.address, a.port, a.proto, port.state,
                                        port.service))
    # reviewed hosts inside the scanned targets that nmap did not report at all (a range scan lists up hosts only)
    reported = {h.address for h in scan.hosts}
    for key, address in baseline.addresses.items():
        if address not in reported and _covered(address, scan.targets):
            findings.append(Finding("host-disappeared", key, address, state="down"))
    return findings


def _covered(address: str, targets: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in (ipaddress.ip_network(t) for t in targets))


@dataclass(frozen=True)
class HostDiff:
    address: str
    name: str
    a: HostResult | None  # None: not in scan A
    b: HostResult | None
    # (port, proto, state in A, state in B, service); a state "" means not scanned there
    ports: tuple[tuple[int, str, str, str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name,
                "status": {"a": _status(self.a), "b": _status(self.b)},
                "ports": [{"port": p, "proto": pr, "a": sa or None, "b": sb or None, "service": svc}
                          for p, pr, sa, sb, svc in self.ports]}


def _status(host: HostResult | None) -> str | None:
    return host.status if host is not None else None


def diff(a: ScanResult, b: ScanResult) -> list[HostDiff]:
    """Every host whose status or any port state differs between A and B (like nmap's ndiff). A host that
    is only in one scan counts as down in the other."""
    addresses = sorted({h.address for h in a.hosts} | {h.address for h in b.hosts},
                       key=lambda s: (ipaddress.ip_address(s).version, int(ipaddress.ip_address(s))))
    result = []
    for address in addresses:
        ha, hb = a.host(address), b.host(address)
        ports = []
        pa = {p.key: p for p in (ha.ports if ha else ())}
        pb = {p.key: p for p in (hb.ports if hb else ())}
        for key in sorted(pa.keys() | pb.keys(), key=lambda k: (k[1], k[0])):
            sa, sb = (pa[key].state if key in pa else ""), (pb[key].state if key in pb else "")
            if sa != sb:
                service = (pb.get(key) or pa[key]).service
                ports.append((key[0], key[1], sa, sb, service))
        status_a, status_b = _status(ha) or "down", _status(hb) or "down"
        if ports or status_a != status_b:
            name = hb.name if hb is not None else ha.name if ha is not None else address
            result.append(HostDiff(address, name, ha, hb, tuple(ports)))
    return result
