"""The firewall contract: each role declares the ports it needs (roles/<role>/meta/ports.yml); this module
turns those declarations into the inbound rules of one host. The firewall role calls it through the
`provsec_firewall_rules` filter, so nothing is opened by hand and nothing a role needs is closed by accident.

A declaration:  {name, proto: tcp|udp, port: int | "a-b", hosts: all | GROUP | [GROUPS], from: SOURCE, reason}
SOURCE is `any`, `admin_subnets`, `dc_ranges`, `agency_ranges` (from the inventory's provsec_networks),
`group:NAME` (every address of the hosts in that inventory group), a CIDR, or a list of these.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.errors import InputError
from provsec.fileio import role_declarations

NETWORK_SOURCES = ("admin_subnets", "dc_ranges", "agency_ranges")


@dataclass(frozen=True)
class Rule:
    name: str
    proto: str
    port: str
    sources: tuple[str, ...]  # empty: from anywhere
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "proto": self.proto, "port": self.port, "sources": list(self.sources),
                "reason": self.reason}


def _where(decl: Mapping[str, Any], origin: str) -> str:
    return f"{origin}: port {decl.get('name', '?')!r}"


def _port(value: object, where: str) -> str:
    text = str(value)
    parts = text.split("-")
    if len(parts) not in (1, 2) or not all(p.isdigit() and 0 < int(p) < 65536 for p in parts):
        raise InputError(f"{where}: port {value!r} is not a port number or a range a-b")
    return text


def _applies(hosts: object, host_groups: Sequence[str], where: str) -> bool:
    wanted = [hosts] if isinstance(hosts, str) else hosts
    if not isinstance(wanted, list) or not all(isinstance(g, str) for g in wanted):
        raise InputError(f"{where}: hosts must be 'all', a group name or a list of group names")
    return "all" in wanted or any(g in host_groups for g in wanted)


def _sources(value: object, networks: Mapping[str, Sequence[str]], group_addresses: Mapping[str, Sequence[str]],
             where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"{where}: source {item!r} is not a string")
        if item == "any":
            return ()
        if item in NETWORK_SOURCES:
            out.extend(networks.get(item, []))
        elif item.startswith("group:"):
            out.extend(group_addresses.get(item.removeprefix("group:"), []))
        else:
            try:
                out.append(str(ipaddress.ip_network(item, strict=True)))
            except ValueError:
                raise InputError(
                    f"{where}: source {item!r} is none of any, {', '.join(NETWORK_SOURCES)}, group:NAME or a CIDR"
                ) from None
    if not out:
        # An empty source set must not silently become "from anywhere", nor close a needed port unnoticed.
        raise InputError(f"{where}: source {value!r} resolves to no address in this inventory")
    return tuple(dict.fromkeys(out))


def compose(declarations: Sequence[tuple[str, Mapping[str, Any]]], host_groups: Sequence[str],
            networks: Mapping[str, Sequence[str]], group_addresses: Mapping[str, Sequence[str]]) -> list[Rule]:
    """The inbound rules for a host in host_groups, from (origin, declaration) pairs."""
    rules: list[Rule] = []
    for origin, decl in declarations:
        where = _where(decl, origin)
        missing = [k for k in ("name", "proto", "port", "hosts", "from", "reason") if k not in decl]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}")
        if decl["proto"] not in ("tcp", "udp"):
            raise InputError(f"{where}: proto must be tcp or udp, not {decl['proto']!r}")
        if not _applies(decl["hosts"], host_groups, where):
            continue
        rules.append(Rule(str(decl["name"]), str(decl["proto"]), _port(decl["port"], where),
                          _sources(decl["from"], networks, group_addresses, where), str(decl["reason"])))
    return rules


def load_declarations(files: Sequence[Path]) -> list[tuple[str, Mapping[str, Any]]]:
    """(origin, declaration) pairs from roles' meta/ports.yml files; a malformed file is a clear error."""
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for path, _, decl in role_declarations(list(files), "ports"):
        if not isinstance(decl, dict):
            raise InputError(f"{path}: expected a mapping with a list 'ports' of declarations")
        pairs.append((f"{path.parent.parent.name}/meta/ports.yml", decl))
    return pairs


# --- the WAN edge: what may cross it --------------------------------------------------------------
#
# A WAN edge (role group wan_edge) joins the data-centre side (dc_ranges, admin_subnets) to the agency side
# (agency_ranges). What may be forwarded through it comes from the same contract as the hosts' own firewalls:
# every port a host behind the edge accepts from the other side, and every port a data-centre host accepts from
# the agency side, becomes a forward rule (so an exporter scraped across the WAN, the admin's SSH to an agency
# server and the agencies' log forwarding keep working, and nothing else). Business flows that no role declares
# (the agencies reaching the portal) come from the inventory's provsec_wan_forward, in the same syntax.

ZONES = ("mgmt", "dc", "agency")  # mgmt first: the admin subnets usually lie inside the data-centre ranges


@dataclass(frozen=True)
class Flow:
    """Traffic the edge forwards: from sources to destinations (empty: any) on one port."""

    name: str
    proto: str
    port: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "proto": self.proto, "port": self.port, "sources": list(self.sources),
                "destinations": list(self.destinations), "reason": self.reason}


@dataclass(frozen=True)
class EdgeHost:
    """What the forward rules need to know about one inventory host."""

    name: str
    groups: tuple[str, ...]
    addresses: tuple[str, ...]
    extra_ports: tuple[Mapping[str, Any], ...] = ()


def agency_side(cidr: str, agency_ranges: Sequence[str]) -> bool | None:
    """True: wholly on the agency side; False: wholly outside it; None: partly (it straddles the edge)."""
    net = ipaddress.ip_network(cidr, strict=False)
    same_family = [n for n in map(ipaddress.ip_network, agency_ranges) if n.version == net.version]
    if any(net.subnet_of(n) for n in same_family):  # type: ignore[arg-type]
        return True
    if any(net.overlaps(n) for n in same_family):
        return None
    return False


def zones(networks: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The zones of an edge, by name: mgmt (admin_subnets), dc (dc_ranges), agency (agency_ranges)."""
    sources = {"mgmt": "admin_subnets", "dc": "dc_ranges", "agency": "agency_ranges"}
    out: dict[str, tuple[str, ...]] = {}
    for zone, key in sources.items():
        cidrs: list[str] = []
        for item in networks.get(key, []):
            try:
                cidrs.append(str(ipaddress.ip_network(item, strict=True)))
            except ValueError:
                raise InputError(f"provsec_networks.{key}: {item!r} is not a network address/prefix") from None
        out[zone] = tuple(cidrs)
    if not out["agency"]:
        raise InputError("provsec_networks.agency_ranges is empty: a WAN edge needs the agency side's ranges")
    return out


def compose_forward(declarations: Sequence[tuple[str, Mapping[str, Any]]], hosts: Sequence[EdgeHost], edge: str,
                    networks: Mapping[str, Sequence[str]], group_addresses: Mapping[str, Sequence[str]],
                    *, explicit: Sequence[Mapping[str, Any]] = ()) -> list[Flow]:
    """The flows the WAN edge `edge` forwards: the hosts' declared ports that cross it, then `explicit`
    (provsec_wan_forward: {name, proto, port, from, to, reason}; `from`/`to` in the SOURCE syntax)."""
    inside = zones(networks)["agency"]
    merged: dict[tuple[str, str, str, tuple[str, ...], str], list[str]] = {}
    for host in hosts:
        if host.name == edge or not host.addresses:
            continue
        host_inside = agency_side(host.addresses[0], inside)
        pairs = [(f"{host.name}: firewall_extra_ports", p) for p in host.extra_ports] + list(declarations)
        for rule in compose(pairs, host.groups, networks, group_addresses):
            crossing = tuple(s for s in rule.sources if agency_side(s, inside) != host_inside)
            if rule.sources and not crossing:
                continue  # every source is on the host's own side: the traffic never reaches the edge
            key = (rule.name, rule.proto, rule.port, crossing, rule.reason)
            merged.setdefault(key, []).extend(host.addresses)
    flows = [Flow(name, proto, port, sources, tuple(dict.fromkeys(dests)), reason)
             for (name, proto, port, sources, reason), dests in merged.items()]
    for index, decl in enumerate(explicit):
        where = f"provsec_wan_forward[{index}] ({decl.get('name', '?')!r})" if isinstance(decl, Mapping) \
            else f"provsec_wan_forward[{index}]"
        if not isinstance(decl, Mapping):
            raise InputError(f"{where}: expected a mapping with name, proto, port, from, to, reason")
        missing = [k for k in ("name", "proto", "port", "from", "to", "reason") if k not in decl]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}")
        if decl["proto"] not in ("tcp", "udp"):
            raise InputError(f"{where}: proto must be tcp or udp, not {decl['proto']!r}")
        flows.append(Flow(str(decl["name"]), str(decl["proto"]), _port(decl["port"], where),
                          _sources(decl["from"], networks, group_addresses, f"{where} from"),
                          _sources(decl["to"], networks, group_addresses, f"{where} to"), str(decl["reason"])))
    return flows
