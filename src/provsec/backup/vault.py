"""Repository passwords in ansible-vault: `provsec backup vault -i INVENTORY --vault-password-file FILE`.

playbooks/backup.yml writes each client's repository password to the client (0600) and the second-site
passwords to the backup site, and takes them from ONE encrypted file, `INVENTORY/backup-vault.yml`:

```yaml
vault_backup_passwords:              # the repository of each backup client
  db1: "…"
vault_backup_second_site_passwords:  # the second-site copy of each client's repository (held by the backup site)
  db1: "…"
```

This command adds a random password (32 bytes from `secrets`, URL-safe) for every host that has none and never
changes one that exists: a changed password would lock the host out of its own repository. The file is read
and written only through ansible-vault's own library, re-encrypted whole, written to a temporary file and
renamed (0600), so an interrupted run leaves the previous file. It is outside group_vars on purpose: plays
other than backup.yml never need the vault password.

Disaster recovery needs exactly two things: this file with its vault password, and the repository."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError

KEYS = ("vault_backup_passwords", "vault_backup_second_site_passwords")
FILENAME = "backup-vault.yml"


def _vault(password_file: Path) -> Any:
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        secret = password_file.read_bytes().strip()
    except OSError as exc:
        raise InputError(f"{password_file}: cannot read the vault password ({exc.strerror})") from exc
    if not secret:
        raise InputError(f"{password_file}: the vault password file is empty")
    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(secret))])


def read(path: Path, password_file: Path) -> dict[str, dict[str, str]]:
    """The passwords in the vault file ({} for a file that does not exist yet)."""
    from ansible.errors import AnsibleError

    if not path.exists():
        return {key: {} for key in KEYS}
    vault = _vault(password_file)
    raw = path.read_bytes()
    if not vault.is_encrypted(raw):
        raise InputError(f"{path}: not encrypted with ansible-vault; refusing to use or rewrite it")
    try:
        text = vault.decrypt(raw)
    except AnsibleError as exc:
        raise InputError(f"{path}: cannot decrypt with {password_file} (wrong vault password?)") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: decrypted content is not valid YAML") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with {', '.join(KEYS)}")
    result: dict[str, dict[str, str]] = {}
    for key in KEYS:
        value = data.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise InputError(f"{path}: {key}: expected a mapping host → non-empty password")
        result[key] = {str(k): v for k, v in value.items()}
    return result


def ensure(path: Path, password_file: Path, clients: Sequence[str]) -> list[str]:
    """Give every client a repository and a second-site password; return the hosts that got new ones."""
    data = read(path, password_file)
    added: list[str] = []
    for host in clients:
        new = False
        for key in KEYS:
            if host not in data[key]:
                data[key][host] = secrets.token_urlsafe(32)
                new = True
        if new:
            added.append(host)
    if not added and path.exists():
        return []
    text = "# provsec backup passwords; edit with ansible-vault, never change an existing one\n" + yaml.safe_dump(
        {key: dict(sorted(data[key].items())) for key in KEYS}, default_flow_style=False
    )
    encrypted = _vault(password_file).encrypt(text.encode())
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encrypted)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return added


def backup_clients(inventory: Path) -> list[str]:
    """Every host of the inventory except the backup repository hosts (group backup_repo)."""
    from provsec.inventory.load import load_inventory

    model = load_inventory(inventory)
    return sorted(h.name for h in model.hosts if "backup_repo" not in h.groups)
