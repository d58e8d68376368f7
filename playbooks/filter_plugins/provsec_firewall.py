"""Ansible filters over the firewall contract of provsec.firewall: `provsec_firewall_rules` (a host's inbound
rules), `provsec_wan_forward_rules` (what a WAN edge forwards), `provsec_wan_zones` (the edge's zones) and
`provsec_host_networks` (hosts' addresses as single-address networks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

from provsec.errors import InputError
from provsec.firewall import EdgeHost, agency_side, compose, compose_forward, load_declarations, zones


def _host_addresses(hv: Mapping[str, Any], host: str) -> list[str]:
    found = [str(hv.get("ansible_host", host))]
    found.extend(str(a) for a in (hv.get("provsec_addresses") or {}).values())
    return list(dict.fromkeys(found))


def _group_addresses(groups: Mapping[str, list[str]], hostvars: Any) -> dict[str, list[str]]:
    addresses: dict[str, list[str]] = {}
    for group, members in groups.items():
        found: list[str] = []
        for host in members:
            found.extend(_host_addresses(hostvars[host], host))
        addresses[group] = list(dict.fromkeys(found))
    return addresses


def _declarations(roles_dir: str) -> list[tuple[str, Mapping[str, Any]]]:
    return load_declarations(sorted(Path(roles_dir).glob("*/meta/ports.yml")))


def provsec_firewall_rules(  # noqa: PLR0917 - Ansible passes filter arguments by position
    roles_dir: str,
    extra_ports: list[dict[str, Any]],
    group_names: list[str],
    networks: dict[str, list[str]],
    groups: dict[str, list[str]],
    hostvars: Any,
) -> list[dict[str, Any]]:
    """The rules for one host from every role's meta/ports.yml under roles_dir and extra_ports, as dicts."""
    try:
        pairs: list[tuple[str, Mapping[str, Any]]] = [("firewall_extra_ports", port) for port in extra_ports]
        pairs += _declarations(roles_dir)
        return [r.as_dict() for r in compose(pairs, group_names, networks, _group_addresses(groups, hostvars))]
    except InputError as exc:
        raise AnsibleFilterError(f"firewall contract: {exc}") from exc


def provsec_wan_forward_rules(  # noqa: PLR0917 - Ansible passes filter arguments by position
    roles_dir: str,
    explicit: list[dict[str, Any]],
    edge: str,
    networks: dict[str, list[str]],
    groups: dict[str, list[str]],
    hostvars: Any,
) -> list[dict[str, Any]]:
    """What the WAN edge `edge` forwards: the declared ports of every inventory host that cross it, then
    `explicit` (provsec_wan_forward), as dicts."""
    hosts = []
    for name in groups.get("all", []):
        hv = hostvars[name]
        hosts.append(EdgeHost(name, tuple(hv.get("group_names") or ()), tuple(_host_addresses(hv, name)),
                              tuple(hv.get("firewall_extra_ports") or ())))
    try:
        flows = compose_forward(_declarations(roles_dir), hosts, edge, networks,
                                _group_addresses(groups, hostvars), explicit=explicit)
    except InputError as exc:
        raise AnsibleFilterError(f"WAN forwarding contract: {exc}") from exc
    return [f.as_dict() for f in flows]


def provsec_wan_zones(networks: dict[str, list[str]]) -> dict[str, list[str]]:
    """The zones of a WAN edge (mgmt, dc, agency) and their networks, from provsec_networks."""
    try:
        return {zone: list(cidrs) for zone, cidrs in zones(networks).items()}
    except InputError as exc:
        raise AnsibleFilterError(f"WAN zones: {exc}") from exc


def provsec_wan_behind(hosts: list[str], edge: str, networks: dict[str, list[str]], hostvars: Any) -> list[str]:
    """The inventory hosts, other than the edge, whose address lies in the agency ranges (behind the WAN)."""
    try:
        inside = zones(networks)["agency"]
    except InputError as exc:
        raise AnsibleFilterError(f"WAN zones: {exc}") from exc
    return [h for h in hosts if h != edge and agency_side(_host_addresses(hostvars[h], h)[0], inside) is True]


def provsec_host_networks(hosts: list[str], hostvars: Any) -> list[str]:
    """Every address of the hosts (ansible_host and provsec_addresses) as a /32 or /128 network."""
    try:
        return [str(ipaddress.ip_network(a)) for h in hosts for a in _host_addresses(hostvars[h], h)]
    except ValueError as exc:
        raise AnsibleFilterError(f"host addresses: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provsec_firewall_rules": provsec_firewall_rules,
                "provsec_wan_forward_rules": provsec_wan_forward_rules,
                "provsec_wan_zones": provsec_wan_zones,
                "provsec_wan_behind": provsec_wan_behind,
                "provsec_host_networks": provsec_host_networks}
