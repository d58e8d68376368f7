"""What a scan found, as typed values that cross module boundaries, and their JSON form in the scan store.

A port's state is nmap's, unchanged: `open` (something answered), `closed` (the host answered that nothing
listens), `filtered` (no answer, or an ICMP refusal: a firewall hides the port, so nothing can be said about
what listens behind it), and nmap's combined states (`open|filtered`, `closed|filtered`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provsec.errors import InputError

FORMAT = "provsec-scan/1"
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortResult:
    port: int
    proto: str
    state: str  # nmap's state: open, closed, filtered, open|filtered, closed|filtered, unfiltered
    reason: str = ""  # nmap's reason: syn-ack, conn-refused, no-response, …
    service: str = ""  # nmap's guess from the port number, or what -sV found
    product: str = ""
    version: str = ""

    @property
    def key(self) -> tuple[int, str]:
        return (self.port, self.proto)

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "proto": self.proto, "state": self.state, "reason": self.reason,
                "service": self.service, "product": self.product, "version": self.version}


@dataclass(frozen=True)
class HostResult:
    address: str
    name: str  # the inventory host whose ansible_host this is, else the address itself
    status: str  # up | down (down: no answer to host discovery, or not in nmap's output)
    ports: tuple[PortResult, ...] = ()

    def port(self, port: int, proto: str = "tcp") -> PortResult | None:
        for p in self.ports:
            if p.key == (port, proto):
                return p
        return None

    def open_ports(self) -> tuple[PortResult, ...]:
        return tuple(p for p in self.ports if p.state == "open")

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "name": self.name, "status": self.status,
                "ports": [p.to_json() for p in self.ports]}


@dataclass(frozen=True)
class ScanResult:
    started_at: str  # UTC, ISO 8601 with Z
    finished_at: str
    nmap_version: str
    command: str  # nmap's own record of its command line
    targets: tuple[str, ...]  # what was asked (addresses and ranges, after the scope check)
    ports_scanned: tuple[int, ...]  # every TCP port nmap probed on each host
    hosts: tuple[HostResult, ...] = field(default_factory=tuple)

    def host(self, address: str) -> HostResult | None:
        for h in self.hosts:
            if h.address == address:
                return h
        return None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "started_at": self.started_at, "finished_at": self.finished_at,
                "nmap_version": self.nmap_version, "command": self.command, "targets": list(self.targets),
                "ports_scanned": _ranges(self.ports_scanned), "hosts": [h.to_json() for h in self.hosts]}

    @classmethod
    def from_json(cls, data: Any, source: str) -> ScanResult:
        """A stored scan; anything malformed is an InputError naming the file and the key."""
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise InputError(f"{source}: not a provsec scan (expected \"format\": \"{FORMAT}\")")
            hosts = []
            for i, h in enumerate(data["hosts"]):
                ports = tuple(
                    PortResult(int(p["port"]), str(p["proto"]), str(p["state"]), str(p.get("reason", "")),
                               str(p.get("service", "")), str(p.get("product", "")), str(p.get("version", "")))
                    for p in h["ports"]
                )
                if h["status"] not in ("up", "down"):
                    raise InputError(f"{source}: hosts[{i}].status: {h['status']!r} is not up or down")
                hosts.append(HostResult(str(h["address"]), str(h["name"]), str(h["status"]), ports))
            return cls(str(data["started_at"]), str(data["finished_at"]), str(data["nmap_version"]),
                       str(data["command"]), tuple(str(t) for t in data["targets"]),
                       parse_port_list(str(data["ports_scanned"]), source), tuple(hosts))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed provsec scan ({type(exc).__name__}: {exc})") from exc


def parse_port_list(text: str, what: str) -> tuple[int, ...]:
    """"22,80,8000-8002" as sorted unique ports; an InputError naming `what` when it is not one."""
    ports: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise InputError(f"{what}: {part!r} is not a port or a range of ports (like 22 or 8000-8010)") from None
        if not 1 <= first <= last <= 65535:
            raise InputError(f"{what}: {part!r}: ports are 1 to 65535, the lower first")
        ports.update(range(first, last + 1))
    return tuple(sorted(ports))


def _ranges(ports: tuple[int, ...]) -> str:
    """The inverse of parse_port_list: 22,80,8000-8002."""
    parts: list[str] = []
    run: list[int] = []
    for port in sorted(ports):
        if run and port == run[-1] + 1:
            run.append(port)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [port]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def format_ports(ports: tuple[int, ...]) -> str:
    return _ranges(ports)
