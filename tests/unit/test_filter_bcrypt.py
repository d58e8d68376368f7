"""The `provsec_bcrypt` Ansible filter (playbooks/filter_plugins/provsec_bcrypt.py): the hash in an exporter's web
config is stable across runs (no restart at every run), differs between hosts, and is a bcrypt hash of the
password that the bcrypt library itself accepts."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = Path(__file__).resolve().parents[2] / "playbooks" / "filter_plugins" / "provsec_bcrypt.py"
PASSWORD = secrets.token_urlsafe(24)  # 32 characters, like the generated scrape password; made per run


def _load() -> Callable[[str, str], str]:
    """The filter as Ansible loads it: from its file, not from an installed package."""
    spec = importlib.util.spec_from_file_location("provsec_bcrypt", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[[str, str], str] = module.provsec_bcrypt
    return function


provsec_bcrypt = _load()


def test_same_password_and_host_give_the_same_hash() -> None:
    assert provsec_bcrypt(PASSWORD, "web1/provsec-exporter") == provsec_bcrypt(PASSWORD, "web1/provsec-exporter")


def test_the_hash_verifies_the_password_and_nothing_else() -> None:
    hashed = provsec_bcrypt(PASSWORD, "web1/provsec-exporter").encode()
    assert hashed.startswith(b"$2b$10$") and len(hashed) == 60
    assert bcrypt.checkpw(PASSWORD.encode(), hashed)
    assert not bcrypt.checkpw((PASSWORD + "x").encode(), hashed)


def test_another_host_or_password_gets_another_salt() -> None:
    base = provsec_bcrypt(PASSWORD, "web1/provsec-exporter")
    others = {provsec_bcrypt(PASSWORD, "db1/provsec-exporter"), provsec_bcrypt(PASSWORD, "web1/node"),
              provsec_bcrypt(PASSWORD[::-1], "web1/provsec-exporter")}
    salts = {h[:29] for h in others}  # "$2b$10$" + 22 characters of salt
    assert base[:29] not in salts and len(salts) == 3


@pytest.mark.parametrize(("password", "seed", "message"), [
    ("short", "web1", "at least 16"),
    ("x" * 73, "web1", "72 bytes"),
    (PASSWORD, "", "seed"),
])
def test_bad_input_is_refused_with_a_reason(password: str, seed: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        provsec_bcrypt(password, seed)
