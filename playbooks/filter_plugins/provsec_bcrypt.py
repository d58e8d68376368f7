"""Ansible filter `provsec_bcrypt`: the bcrypt hash an exporter-toolkit web config wants, the same on every run.

A bcrypt hash normally takes a random salt, so writing it into a web config would change the file (and restart
the exporter) on every run. Here the salt is derived from the password and a per-host seed with HMAC-SHA-256: the
same password on the same host gives the same hash (a second run changes nothing), another host gets another
hash (one host's web config does not reveal that two hosts share a password), and a new password gives a new
salt. The salt only has to differ between hashes; it does not have to be secret or random.

Cost 10 (about 60 ms per check on a small VM), not 12: the password is 32 random characters, not something a
person chose, so the cost factor protects nothing that length does not, while every scrape Prometheus makes pays
for a check the exporter has not cached yet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import bcrypt
from ansible.errors import AnsibleFilterError

_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = bytes.maketrans(_STD, _BCRYPT)
COST = 10
MIN_LENGTH = 16
MAX_BYTES = 72  # bcrypt ignores the rest


def provsec_bcrypt(password: str, seed: str, cost: int = COST) -> str:
    """bcrypt ($2b$) of password with a salt derived from (password, seed)."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise AnsibleFilterError(f"provsec_bcrypt: the password must be a string of at least {MIN_LENGTH} characters")
    if not isinstance(seed, str) or not seed:
        raise AnsibleFilterError("provsec_bcrypt: give a seed (the host's name)")
    if len(password.encode()) > MAX_BYTES:
        raise AnsibleFilterError(f"provsec_bcrypt: bcrypt reads only the first {MAX_BYTES} bytes of a password; "
                                 "use a shorter one")
    digest = hmac.new(password.encode(), b"provsec exporter web config\0" + seed.encode(), hashlib.sha256).digest()
    # 16 bytes in bcrypt's base64 alphabet: 22 characters, the last one canonical (its low 4 bits zero).
    salt_b64 = base64.b64encode(digest[:16]).rstrip(b"=").translate(_TO_BCRYPT)
    salt = b"$2b$%02d$" % cost + salt_b64
    return bcrypt.hashpw(password.encode(), salt).decode()


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"provsec_bcrypt": provsec_bcrypt}
