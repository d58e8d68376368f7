"""Ansible filter `provsec_firewall_rules`: the firewall contract of provsec.firewall, for one host."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

from provsec.errors import InputError
from provsec.firewall import compose, load_declarations


def provsec_firewall_rules(  # noqa: PLR0917 - Ansible passes filter arguments by position
    roles_dir: str,
    extra_ports: list[dict[str, Any]],
    group_names: list[str],
    networks: dict[str, list[str]],
    groups: dict[str, list[str]],
    hostvars: Any,
) -> list[dict[str, Any]]:
    """The rules for one host from every role's meta/ports.yml under roles_dir and extra_ports, as dicts."""
    addresses: dict[str, list[str]] = {}
    for group, members in groups.items():
        found: list[str] = []
        for host in members:
            hv = hostvars[host]
            found.append(str(hv.get("ansible_host", host)))
            found.extend(str(a) for a in (hv.get("provsec_addresses") or {}).values())
        addresses[group] = list(dict.fromkeys(found))
    try:
        pairs: list[tuple[str, Mapping[str, Any]]] = [("firewall_extra_ports", port) for port in extra_ports]
        pairs += load_declarations(sorted(Path(roles_dir).glob("*/meta/ports.yml")))
        return [r.as_dict() for r in compose(pairs, group_names, networks, addresses)]
    except InputError as exc:
        raise AnsibleFilterError(f"firewall contract: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provsec_firewall_rules": provsec_firewall_rules}
