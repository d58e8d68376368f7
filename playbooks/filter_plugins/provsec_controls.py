"""Ansible filter `provsec_control`: a control's value for a host's security level, from the catalogue.

    {{ 'PS-SSH-04' | provsec_control(provsec_security_level) }}   # -> 4

The catalogue is playbooks/controls/ (format: its README.md), loaded once per process through
provsec.controls (the same virtualenv runs ansible-playbook). Unknown ids and levels fail the task with a
message naming them; a catalogue that does not load fails with every problem it has.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ansible.errors import AnsibleFilterError

if TYPE_CHECKING:
    from provsec.controls import Catalogue

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "controls"


@lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    try:
        from provsec.controls import load_catalogue
    except ImportError as exc:  # ansible-playbook run from outside the provsec virtualenv
        raise AnsibleFilterError(
            f"provsec_control: cannot import provsec ({exc}); run ansible-playbook from the provsec "
            "virtualenv (.venv/bin/ansible-playbook)"
        ) from exc
    return load_catalogue(CATALOGUE_DIR)


def provsec_control(control_id: object, level: object) -> object:
    """The value control `control_id` requires at security level `level` (None: not required there)."""
    from provsec.errors import InputError

    if not isinstance(control_id, str):
        raise AnsibleFilterError(f"provsec_control: control id must be text like 'PS-SSH-02', not {control_id!r}")
    try:
        catalogue = _catalogue()
        return catalogue.value(control_id, level)
    except InputError as exc:
        raise AnsibleFilterError(f"provsec_control({control_id!r}, level {level!r}): {exc}") from exc


class FilterModule:
    """provsec's filters."""

    def filters(self) -> dict[str, Callable[..., object]]:
        return {"provsec_control": provsec_control}
