"""The sshd contract: what a role needs of the SSH server on the hosts of a group, composed by role ssh.

A role that needs sshd to treat some accounts differently (role backup: one chrooted, sftp-only account per
client on the repository host) declares it in `playbooks/roles/<role>/meta/sshd.yml`:

    sshd:
      - name: backup-sftp-accounts
        hosts: backup_repo                 # an inventory group: the hosts whose sshd gets the block
        allow_groups: [provsec-backup]     # added to AllowGroups on those hosts
        match: Group provsec-backup        # the Match criteria of the block
        settings:                          # sshd keywords allowed in a Match block, in this order
          ChrootDirectory: /srv/provsec-backup/%u
          ForceCommand: internal-sftp
        reason: why (Vietnamese / English)

Role ssh writes the whole sshd_config, so whatever playbook runs it (harden.yml, backup.yml) the declared blocks
are there on the hosts they name: a later hardening run cannot drop them. A malformed declaration is one error
naming the file; nothing is written from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.errors import InputError
from provsec.fileio import role_declarations

# sshd_config(5): the keywords a Match block may set that a role has a use for (no Include, no global-only ones)
MATCH_KEYWORDS = frozenset({
    "AllowAgentForwarding", "AllowTcpForwarding", "AuthorizedKeysFile", "AuthenticationMethods", "Banner",
    "ChrootDirectory", "ClientAliveCountMax", "ClientAliveInterval", "ForceCommand", "KbdInteractiveAuthentication",
    "MaxAuthTries", "MaxSessions", "PasswordAuthentication", "PermitListen", "PermitOpen", "PermitTTY",
    "PermitTunnel", "PubkeyAuthentication", "X11Forwarding",
})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_GROUP = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MATCH = re.compile(r"^(User|Group|Address|Host|LocalPort) [A-Za-z0-9_.,:/*!%-]+$")
_VALUE = re.compile(r"^[^\s#\"'\\][^\n\r#\"'\\]*$")


@dataclass(frozen=True)
class SshdBlock:
    """One role's Match block for the hosts of a group, and the groups it adds to AllowGroups."""

    origin: str
    name: str
    hosts: str
    allow_groups: tuple[str, ...]
    match: str
    settings: tuple[tuple[str, str], ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "name": self.name, "hosts": self.hosts, "allow_groups": list(self.allow_groups),
                "match": self.match, "settings": [list(kv) for kv in self.settings], "reason": self.reason}


def _value(raw: object) -> str:
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    return str(raw).strip()


def _block(path: Path, origin: str, index: int, raw: object) -> SshdBlock:
    where = f"{path}: sshd[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping (name, hosts, allow_groups, match, settings, reason)")
    unknown = set(raw) - {"name", "hosts", "allow_groups", "match", "settings", "reason"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name, hosts, match, reason = (raw.get(k) for k in ("name", "hosts", "match", "reason"))
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{where}: 'name' must be lower-case letters, digits, '-' or '_' (got {name!r})")
    if not isinstance(hosts, str) or not hosts.strip():
        raise InputError(f"{where} ({name}): 'hosts' must name an inventory group")
    if not isinstance(match, str) or not _MATCH.match(match.strip()):
        raise InputError(f"{where} ({name}): 'match' must be one sshd Match criterion such as "
                         f"'Group provsec-backup' (got {match!r})")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(f"{where} ({name}): 'reason' is required (why the role needs it)")
    groups = raw.get("allow_groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and _GROUP.match(g) for g in groups):
        raise InputError(f"{where} ({name}): 'allow_groups' must be a list of group names (got {groups!r})")
    settings = raw.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise InputError(f"{where} ({name}): 'settings' must be a non-empty mapping of sshd keywords to values")
    pairs: list[tuple[str, str]] = []
    for key, value in settings.items():
        if key not in MATCH_KEYWORDS:
            raise InputError(f"{where} ({name}): {key!r} is not an sshd keyword allowed in a Match block here "
                             f"(allowed: {', '.join(sorted(MATCH_KEYWORDS))})")
        text = _value(value)
        if not _VALUE.match(text):
            raise InputError(f"{where} ({name}): the value of {key} must be one line without quotes, '#' or "
                             f"backslashes (got {value!r})")
        pairs.append((str(key), text))
    return SshdBlock(origin, name, hosts.strip(), tuple(groups), match.strip(), tuple(pairs),
                     " ".join(reason.split()))


def load_blocks(files: Sequence[Path]) -> list[SshdBlock]:
    """Every block of roles' meta/sshd.yml files, in file order; a malformed file is one clear error."""
    blocks = [_block(path, f"{path.parent.parent.name}/meta/sshd.yml", i, item)
              for path, i, item in role_declarations(list(files), "sshd")]
    names = [b.name for b in blocks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"sshd declarations: name(s) declared twice: {', '.join(twice)}")
    return blocks


def blocks_for(blocks: Sequence[SshdBlock], host: str, groups: Mapping[str, Sequence[str]]) -> list[SshdBlock]:
    """The blocks that apply to host: those whose group lists it (a group the inventory lacks lists no host)."""
    return [b for b in blocks if host in (groups.get(b.hosts) or [])]
