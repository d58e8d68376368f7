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

import yaml

from provsec.errors import InputError

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
    for path in files:
        origin = f"{path.parent.parent.name}/meta/ports.yml"
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read the role's ports: {exc}") from exc
        ports = doc.get("ports") if isinstance(doc, dict) else None
        if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
            raise InputError(f"{path}: expected a mapping with a list 'ports' of declarations")
        pairs.extend((origin, p) for p in ports)
    return pairs
