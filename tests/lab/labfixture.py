"""The handle lab tests use: hosts, their inventory, ssh as the admin, playbooks, resets."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provsec.lab import Lab

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


@dataclass
class LabHandle:
    """What a lab test uses: the hosts, their inventory, ssh as the admin, playbooks, resets."""

    lab: Lab
    inventory_dir: Path
    hosts: list[str]

    def ssh(self, host: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.lab.ssh(host, command, timeout=timeout)

    def playbook(self, name: str, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return self.ansible("ansible-playbook", str(REPO / "playbooks" / name), *args, timeout=timeout)

    def ansible(self, tool: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_NOCOLOR="1")
        return subprocess.run(
            [str(VENV_BIN / tool), "-i", str(self.inventory_dir), *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )

    def reset(self, host: str) -> None:
        self.lab.reset(host)
