"""What a lab is made of: its networks and hosts, per profile. Data only.

All addresses lie in 198.18.0.0/15 (RFC 2544, benchmark range): never a real network.
The control node (this machine) is 198.18.0.1 on the data-centre bridge; the agency bridge has no
address on the control node, so agency hosts are reached only through the WAN edge gw1, as in a province.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from provsec.errors import InputError

PREFIX = "ps"  # every netns, link and machine of the lab starts with it; `down` sweeps by it
LAB_SUPERNET = ipaddress.ip_network("198.18.0.0/15")
DOMAIN = "lab.internal"
ADMIN_USER = "labadmin"
CONTROL_ADDR = "198.18.0.1"
APT_PROXY_PORT = 13142  # our own apt-cacher-ng; away from 3142 so a system instance never clashes
RELEASES = ("bookworm", "trixie")


@dataclass(frozen=True)
class Network:
    name: str
    bridge: str
    cidr: str
    control_addr: str | None  # the control node's address on this bridge, if it has one


@dataclass(frozen=True)
class Nic:
    network: str
    address: str


@dataclass(frozen=True)
class HostSpec:
    name: str
    groups: tuple[str, ...]
    nics: tuple[Nic, ...]
    routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, gateway)
    forwarding: bool = False  # a router: net.ipv4.ip_forward=1 inside its own namespace

    @property
    def address(self) -> str:
        return self.nics[0].address

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    def veth(self, index: int) -> str:
        return f"{PREFIX}-{self.name}-{index}"


@dataclass(frozen=True)
class Profile:
    name: str
    networks: tuple[Network, ...]
    hosts: tuple[HostSpec, ...]
    control_routes: tuple[tuple[str, str], ...] = ()  # routes the control node needs into the lab
    admin_subnets: tuple[str, ...] = ("198.18.0.0/28",)
    systems: tuple[dict[str, object], ...] = field(default_factory=tuple)
    # provsec_wan_forward: flows through the WAN edge that no role's ports declare (role wan_edge)
    wan_forward: tuple[dict[str, object], ...] = field(default_factory=tuple)

    def network(self, name: str) -> Network:
        for net in self.networks:
            if net.name == name:
                return net
        raise KeyError(name)

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InputError(f"no host {name!r} in the {self.name} lab (hosts: {', '.join(self.host_names)})")

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]


DC = Network("dc", f"{PREFIX}br-dc", "198.18.0.0/24", CONTROL_ADDR)
AGENCY = Network("agency", f"{PREFIX}br-ag", "198.18.1.0/24", None)
TO_AGENCY = ("198.18.1.0/24", "198.18.0.30")
TO_DC = ("198.18.0.0/24", "198.18.1.1")

_DC_ONLY = (DC,)


def _dc_host(name: str, last: int, groups: tuple[str, ...], *, wan: bool) -> HostSpec:
    return HostSpec(
        name=name,
        groups=groups,
        nics=(Nic("dc", f"198.18.0.{last}"),),
        routes=(TO_AGENCY,) if wan else (),
    )


PROFILES: dict[str, Profile] = {
    "minimal": Profile(
        name="minimal",
        networks=_DC_ONLY,
        hosts=(
            _dc_host("host1", 20, ("dc_servers", "monitoring"), wan=False),  # also the central log host
            _dc_host("host2", 21, ("dc_servers",), wan=False),
        ),
        systems=(
            {"id": "lab-minimal", "name": "Hệ thống thử nghiệm (lab)", "level": 2, "hosts": ["host1", "host2"]},
        ),
    ),
    "province": Profile(
        name="province",
        networks=(DC, AGENCY),
        hosts=(
            _dc_host("mon1", 20, ("dc_servers", "monitoring"), wan=True),
            _dc_host("bak1", 21, ("dc_servers", "backup_repo"), wan=True),
            _dc_host("db1", 22, ("dc_servers", "db_servers"), wan=True),
            _dc_host("web1", 23, ("dc_servers", "web_servers"), wan=True),
            HostSpec(
                name="gw1",
                groups=("wan_edge",),
                nics=(Nic("dc", "198.18.0.30"), Nic("agency", "198.18.1.1")),
                forwarding=True,
            ),
            HostSpec(
                name="agency1",
                groups=("agency_servers",),
                nics=(Nic("agency", "198.18.1.10"),),
                routes=(TO_DC,),
            ),
        ),
        control_routes=(TO_AGENCY,),
        wan_forward=(
            {"name": "portal", "proto": "tcp", "port": 443, "from": "agency_ranges", "to": "group:web_servers",
             "reason": "Người dùng các cơ quan truy cập cổng thông tin / agency users reach the portal"},
            {"name": "package-mirror", "proto": "tcp", "port": APT_PROXY_PORT, "from": "agency_ranges",
             "to": f"{CONTROL_ADDR}/32",
             "reason": "Kho gói Debian của tỉnh (lab: apt proxy) / the site's Debian mirror (lab: apt proxy)"},
        ),
        systems=(
            {"id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh (lab)", "level": 3, "hosts": ["web1", "db1"]},
            {"id": "csdl-tinh", "name": "Cơ sở dữ liệu dùng chung tỉnh (lab)", "level": 3, "hosts": ["db1", "bak1"]},
            {"id": "giam-sat", "name": "Hệ thống giám sát an toàn thông tin (lab)", "level": 2, "hosts": ["mon1"]},
            {"id": "mang-wan", "name": "Mạng truyền số liệu tỉnh (lab)", "level": 3, "hosts": ["gw1"]},
            {"id": "mot-cua-huyen", "name": "Hệ thống một cửa điện tử cấp huyện (lab)", "level": 2,
             "hosts": ["agency1"]},
        ),
    ),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(f"unknown lab profile {name!r}; choose one of: {', '.join(PROFILES)}") from None


def lab_networks(prof: Profile) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n.cidr) for n in prof.networks]
