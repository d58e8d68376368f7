"""Ansible filters of the pki role (logic in provsec.pki): whether the CA on the control node and a host's
certificate and trust entry are already good, so that a re-run skips the tasks that would only confirm it.

    {{ pki_ca_dir | provsec_pki_ca_redo(common_name=..., organization=..., curve=..., renew_days=...,
                                        passphrase=...) }}
    {{ __pki_probe.stdout_lines | provsec_pki_probe }}
    {{ parsed | provsec_pki_host_redo(pki_ca_dir ~ '/ca.crt', common_name=..., subject_alt_names=..., curve=...,
                                      renew_days=...) }}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from provsec.pki import ca_redo_reason, host_redo, parse_probe


def provsec_pki_probe(lines: list[str]) -> dict[str, Any]:
    try:
        return parse_probe(lines)
    except ValueError as exc:
        raise AnsibleFilterError(f"provsec: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "provsec_pki_ca_redo": ca_redo_reason,
            "provsec_pki_probe": provsec_pki_probe,
            "provsec_pki_host_redo": host_redo,
        }
