"""What an inventory declares, as typed values: agencies, information systems, hosts, networks.

Under Nghị định 85/2016/NĐ-CP a security level (cấp độ 1–5) belongs to an *information system*, not to a
host. A host's effective level is the highest level of the systems it serves; every role reads it as the
Ansible variable `provsec_security_level` (computed the same way in playbooks/group_vars/all/provsec.yml).

The scan scope is exactly the declared networks: nothing outside them may be scanned.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provsec.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ROLE_GROUPS = (
    "dc_servers",
    "agency_servers",
    "db_servers",
    "web_servers",
    "wan_edge",
    "monitoring",
    "backup_repo",
)
MIN_LEVEL = 1
MAX_LEVEL = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory: the file, the key inside it, and what is wrong."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}: {self.key}: {self.message}"
        return f"{self.file}: {self.message}"


class InventoryError(InputError):
    """A malformed inventory. The message lists every problem found, one line each (`FILE: KEY: problem`)."""

    def __init__(self, directory: str, problems: Sequence[Problem]) -> None:
        self.directory = directory
        self.problems = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{directory}: not a valid inventory ({count} {noun}):\n{lines}")


@dataclass(frozen=True)
class Province:
    code: str  # short code, e.g. "PYN"
    name: str  # e.g. "Phú Yên"


@dataclass(frozen=True)
class Agency:
    code: str  # mã định danh của cơ quan (QCVN 102:2016/BTTTT), e.g. "000.00.15.H48"
    name: str


@dataclass(frozen=True)
class InformationSystem:
    id: str
    name: str
    owner: str  # agency code of the owner (chủ quản hệ thống thông tin)
    level: int  # cấp độ 1..5 under Nghị định 85/2016/NĐ-CP
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]  # role groups, in the order hosts.yml lists them
    ansible_host: IPAddress
    agency: str  # agency code of the agency operating the host
    addresses: tuple[tuple[str, IPAddress], ...]  # (network name, address), from provsec_addresses
    systems: tuple[str, ...]  # ids of the information systems the host serves
    level: int  # effective level: the highest level of those systems (computed by the loader)

    def all_addresses(self) -> tuple[IPAddress, ...]:
        """ansible_host and every address in provsec_addresses, without repeats."""
        seen = [self.ansible_host]
        seen.extend(addr for _, addr in self.addresses if addr not in seen)
        return tuple(seen)


@dataclass(frozen=True)
class Networks:
    admin_subnets: tuple[IPNetwork, ...]  # where administrators and the control node connect from
    dc_ranges: tuple[IPNetwork, ...]  # the provincial data centre
    agency_ranges: tuple[IPNetwork, ...]  # agencies behind the provincial WAN

    def all(self) -> tuple[IPNetwork, ...]:
        return self.admin_subnets + self.dc_ranges + self.agency_ranges

    def contains(self, address: IPAddress) -> bool:
        return any(address in net for net in self.all())


@dataclass(frozen=True)
class Inventory:
    path: Path
    province: Province
    agencies: tuple[Agency, ...]
    systems: tuple[InformationSystem, ...]
    hosts: tuple[Host, ...]
    networks: Networks
    warnings: tuple[Problem, ...] = ()  # things to fix that do not make the inventory invalid

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InputError(f"{self.path}: no host {name!r} in hosts.yml")

    def agency(self, code: str) -> Agency:
        for a in self.agencies:
            if a.code == code:
                return a
        raise InputError(f"{self.path}: no agency {code!r} in provsec_agencies")

    def systems_of(self, host: str | Host) -> tuple[InformationSystem, ...]:
        name = host.name if isinstance(host, Host) else host
        return tuple(s for s in self.systems if name in s.hosts)

    def effective_level(self, host: str | Host) -> int:
        """The highest level of the information systems the host serves (Nghị định 85/2016/NĐ-CP)."""
        name = host.name if isinstance(host, Host) else host
        self.host(name)
        levels = [s.level for s in self.systems_of(name)]
        if not levels:
            raise InputError(
                f"{self.path}: host {name!r} serves no information system, so its security level is unknown"
            )
        return max(levels)

    def scan_scope(self) -> list[IPNetwork]:
        """Every declared network, merged: the only addresses any scan may touch."""
        v4 = [n for n in self.networks.all() if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in self.networks.all() if isinstance(n, ipaddress.IPv6Network)]
        scope: list[IPNetwork] = list(ipaddress.collapse_addresses(v4))
        scope.extend(ipaddress.collapse_addresses(v6))
        return scope

    def in_scope(self, target: IPAddress | IPNetwork) -> bool:
        """True when the address, or the whole network, lies inside the scan scope."""
        return any(_within(target, net) for net in self.scan_scope())


def _within(target: IPAddress | IPNetwork, net: IPNetwork) -> bool:
    if isinstance(target, ipaddress.IPv4Network) and isinstance(net, ipaddress.IPv4Network):
        return target.subnet_of(net)
    if isinstance(target, ipaddress.IPv6Network) and isinstance(net, ipaddress.IPv6Network):
        return target.subnet_of(net)
    if isinstance(target, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return False
    return target in net
