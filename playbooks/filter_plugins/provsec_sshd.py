"""Ansible filter over the sshd contract of provsec.sshd: `provsec_sshd_blocks`, the Match blocks (and the groups
they add to AllowGroups) that roles' meta/sshd.yml declare for one host.

    {{ role_path | dirname | provsec_sshd_blocks(inventory_hostname, groups) }}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

from provsec.errors import InputError
from provsec.sshd import blocks_for, load_blocks


def provsec_sshd_blocks(roles_dir: str, host: str, groups: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """The blocks of every role's meta/sshd.yml under roles_dir that apply to host, as dicts."""
    try:
        blocks = load_blocks(sorted(Path(roles_dir).glob("*/meta/sshd.yml")))
    except InputError as exc:
        raise AnsibleFilterError(f"provsec: {exc}") from exc
    return [b.as_dict() for b in blocks_for(blocks, host, groups)]


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"provsec_sshd_blocks": provsec_sshd_blocks}
