"""The few variables of a WAN edge host that the inventory model does not carry, read as Ansible would.

The audit's (`provsec_wan_profile`, the device family: linux, cisco_ios, routeros; `provsec_control_exceptions`)
and the backup's (`provsec_wan_user`, `provsec_wan_port`, `provsec_wan_change_windows`) may be given in `vars:`
of hosts.yml, group_vars/all, group_vars/<group>, the host's entries in hosts.yml or host_vars/<host>; a later
source wins, in that order (Ansible's variable precedence). Encrypted files (vault*.yml, `$ANSIBLE_VAULT`) are
skipped: these variables are not secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError

WANTED = ("provsec_wan_profile", "provsec_control_exceptions")
_SUFFIXES = (".yml", ".yaml")
_VAULT = "$ANSIBLE_VAULT"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `!vault` values as a placeholder and `!unsafe` values as plain ones."""


_Loader.add_constructor("!vault", lambda loader, node: "<encrypted with ansible-vault>")
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node)
                        if isinstance(node, yaml.ScalarNode) else None)


def _read(path: Path) -> dict[str, Any]:
    if path.name.startswith("vault"):
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if text.lstrip().startswith(_VAULT):
        return {}
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return doc if isinstance(doc, dict) else {}


def _files(base: Path, name: str) -> Iterator[Path]:
    for suffix in _SUFFIXES:
        if (base / f"{name}{suffix}").is_file():
            yield base / f"{name}{suffix}"
    if (base / name).is_dir():
        yield from sorted(p for p in (base / name).rglob("*") if p.is_file() and p.suffix in _SUFFIXES)


def host_vars(inventory_dir: Path, host: str, groups: tuple[str, ...],
              wanted: tuple[str, ...] = WANTED) -> dict[str, tuple[object, str]]:
    """The `wanted` variables of `host`: name -> (value, where it was given)."""
    found: dict[str, tuple[object, str]] = {}

    def take(mapping: object, where: str) -> None:
        if isinstance(mapping, dict):
            for key in wanted:
                if key in mapping:
                    found[key] = (mapping[key], where)

    hosts_file = inventory_dir / "hosts.yml"
    raw_top = _read(hosts_file).get("all") if hosts_file.is_file() else None
    top: dict[str, Any] = raw_top if isinstance(raw_top, dict) else {}
    raw_children = top.get("children")
    children: dict[str, Any] = raw_children if isinstance(raw_children, dict) else {}
    take(top.get("vars"), f"{hosts_file}: all.vars")
    for group in sorted(groups):
        entry = children.get(group)
        if isinstance(entry, dict):
            take(entry.get("vars"), f"{hosts_file}: all.children.{group}.vars")
    for name in ("all", *sorted(groups)):
        for path in _files(inventory_dir / "group_vars", name):
            take(_read(path), str(path))
    for group in groups:
        entry = children.get(group)
        members = entry.get("hosts") if isinstance(entry, dict) else None
        if isinstance(members, dict):
            take(members.get(host), f"{hosts_file}: all.children.{group}.hosts.{host}")
    for path in _files(inventory_dir / "host_vars", host):
        take(_read(path), str(path))
    return found
