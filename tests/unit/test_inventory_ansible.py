"""Ansible computes the same provsec_security_level as the Python model, for any inventory given with -i.

Runs the real ansible-playbook on playbooks/inventory_levels.yml (so playbooks/group_vars/all/provsec.yml
applies) with `-c local`: its tasks (assert, debug) run on the control node and touch no host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provsec.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "inventory_levels.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SHOW_TASK = "Show the host's security level"

HOSTS = """\
---
all:
  children:
    dc_servers:
      hosts:
        both:
          ansible_host: 198.18.0.21
          provsec_agency: "000.00.15.H48"
        high:
          ansible_host: 198.18.0.22
          provsec_agency: "000.00.15.H48"
    web_servers:
      hosts:
        both:
    agency_servers:
      hosts:
        low:
          ansible_host: 198.18.1.10
          provsec_agency: "000.00.31.H48"
          provsec_addresses: {agency: 198.18.1.10}
"""

MODEL = """\
---
provsec_province: {code: "PYN", name: "Phú Yên"}
provsec_agencies:
  - {code: "000.00.15.H48", name: "Sở Thông tin và Truyền thông tỉnh Phú Yên"}
  - {code: "000.00.31.H48", name: "Ủy ban nhân dân thành phố Tuy Hòa"}
provsec_information_systems:
  - {id: "thu-cong-vu", name: "Hệ thống thư điện tử công vụ", owner: "000.00.15.H48", level: 2,
     hosts: [both, low]}
  - {id: "ioffice", name: "Hệ thống quản lý văn bản và điều hành", owner: "000.00.15.H48", level: 3,
     hosts: [both]}
  - {id: "csdl", name: "Cơ sở dữ liệu dùng chung", owner: "000.00.15.H48", level: 4, hosts: [high]}
provsec_networks:
  admin_subnets: ["198.18.0.0/28"]
  dc_ranges: ["198.18.0.0/24"]
  agency_ranges: ["198.18.1.0/24"]
"""


def write_inventory(root: Path, hosts: str, model: str) -> Path:
    (root / "group_vars" / "all").mkdir(parents=True)
    (root / "hosts.yml").write_text(hosts, encoding="utf-8")
    (root / "group_vars" / "all" / "province.yml").write_text(model, encoding="utf-8")
    return root


def run_levels(inventory: Path, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    """Run the playbook with the JSON callback; return (exit code, the callback's JSON, stderr)."""
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        # replaces ansible.cfg's callbacks_enabled, whose timing output would corrupt the JSON on stdout
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-c", "local", "-i", str(inventory), str(PLAYBOOK)],
        cwd=REPO,  # ansible.cfg of the repository applies
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, data, proc.stderr


def task_results(data: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                hosts: dict[str, dict[str, Any]] = task["hosts"]
                return hosts
    raise AssertionError(f"task {name!r} not in the playbook output")


def test_ansible_level_is_the_highest_level_of_the_systems_a_host_serves(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", HOSTS, MODEL)

    rc, data, stderr = run_levels(inventory, tmp_path)

    assert rc == 0, stderr
    levels = {
        host: result["provsec_security_level"] for host, result in task_results(data, SHOW_TASK).items()
    }
    # both: levels 2 and 3 -> 3; low: 2 only; high: 4 only
    assert levels == {"both": 3, "low": 2, "high": 4}
    assert all(type(level) is int for level in levels.values())
    # and the Python model agrees, host by host
    model = load_inventory(inventory)
    assert levels == {h.name: model.effective_level(h.name) for h in model.hosts}


def test_ansible_fails_loudly_for_a_host_that_serves_no_system(tmp_path: Path) -> None:
    hosts = HOSTS.replace(
        "    web_servers:",
        '        spare1:\n          ansible_host: 198.18.0.40\n          provsec_agency: "000.00.15.H48"\n'
        "    web_servers:",
    )
    assert "spare1" in hosts
    inventory = write_inventory(tmp_path / "inv", hosts, MODEL)

    rc, data, _ = run_levels(inventory, tmp_path)

    assert rc != 0
    assert data["stats"]["spare1"]["failures"] == 1
    assert data["stats"]["both"]["failures"] == 0
    spare = task_results(data, "Check that the host's security level is an integer from 1 to 5")["spare1"]
    assert spare["failed"] is True
    assert "host spare1 serves no information system" in spare["msg"]


def test_ansible_and_the_model_agree_on_the_phuyen_example(tmp_path: Path) -> None:
    inventory = REPO / "inventory" / "phuyen"

    rc, data, stderr = run_levels(inventory, tmp_path)

    assert rc == 0, stderr
    levels = {
        host: result["provsec_security_level"] for host, result in task_results(data, SHOW_TASK).items()
    }
    model = load_inventory(inventory)
    assert levels == {h.name: h.level for h in model.hosts}
    assert levels["web2"] == 3  # ioffice (3) and thu-cong-vu (2)
    assert levels["mail1"] == 2
