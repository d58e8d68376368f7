"""Write the lab's inventory in the same shape as a province's (see inventory/README.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from provsec.lab.topology import ADMIN_USER, Profile

LAB_AGENCY = {"code": "000.00.00.LAB", "name": "Sở Thông tin và Truyền thông (phòng thí nghiệm provsec)"}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def write(prof: Profile, inventory_dir: Path, key: Path, known_hosts: Path) -> Path:
    groups: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for host in prof.hosts:
        for group in host.groups:
            entry: dict[str, Any] = {}
            if host.name not in seen:
                entry = {
                    "ansible_host": host.address,
                    "provsec_agency": LAB_AGENCY["code"],
                    "provsec_addresses": {nic.network: nic.address for nic in host.nics},
                }
                seen.add(host.name)
            groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = entry or None
    ssh_args = (
        f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    )
    hosts_doc = {
        "all": {
            "vars": {
                "ansible_user": ADMIN_USER,
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": ssh_args,
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "children": groups,
        }
    }
    header = f"# Written by `provsec lab up --profile {prof.name}`; do not edit, it is rewritten at every up.\n"
    hosts_path = inventory_dir / "hosts.yml"
    _atomic_write(hosts_path, "---\n" + header + yaml.safe_dump(hosts_doc, allow_unicode=True, sort_keys=False))
    province = {
        "provsec_province": {"code": "LAB", "name": "Tỉnh thử nghiệm (lab)"},
        "provsec_agencies": [LAB_AGENCY],
        "provsec_information_systems": [
            {**system, "owner": LAB_AGENCY["code"]} for system in prof.systems
        ],
        "provsec_networks": {
            "admin_subnets": list(prof.admin_subnets),
            "dc_ranges": [n.cidr for n in prof.networks if n.name == "dc"],
            "agency_ranges": [n.cidr for n in prof.networks if n.name == "agency"],
        },
        # The province's time servers (role time). The lab has none that really serves time (chronyd cannot
        # set a clock inside nspawn); the log host stands in, so that the clients' configuration is real.
        "provsec_ntp_servers": [h.address for h in prof.hosts if "monitoring" in h.groups][:1],
        **({"provsec_wan_forward": [dict(flow) for flow in prof.wan_forward]} if prof.wan_forward else {}),
    }
    _atomic_write(
        inventory_dir / "group_vars" / "all" / "province.yml",
        "---\n" + header + yaml.safe_dump(province, allow_unicode=True, sort_keys=False),
    )
    return hosts_path


def remove(inventory_dir: Path) -> None:
    for rel in ("hosts.yml", "group_vars/all/province.yml"):
        (inventory_dir / rel).unlink(missing_ok=True)
