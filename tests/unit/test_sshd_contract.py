"""The sshd contract: what roles declare in meta/sshd.yml reaches the sshd_config that role ssh writes, on exactly
the hosts of the declared group, and sshd accepts and applies it (checked with the real sshd -t / -T)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from provsec.errors import InputError
from provsec.sshd import MATCH_KEYWORDS, blocks_for, load_blocks

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "playbooks" / "roles"
TEMPLATE = ROLES / "ssh" / "templates" / "sshd_config.j2"
GROUPS = {"all": ["bak1", "db1", "web1"], "backup_repo": ["bak1"], "dc_servers": ["db1", "web1"]}


def role_values() -> dict[str, Any]:
    """role ssh's own values, with the ones that come from the control catalogue filled in as level 3 sets them."""
    return {"ssh_port": 22, "ssh_host_key_types": ["ed25519"], "ssh_permit_root_login": "no",
            "ssh_allow_groups": ["ssh-users"], "ssh_password_authentication": "no", "ssh_max_auth_tries": 4,
            "ssh_max_sessions": 10, "ssh_login_grace_time": 30, "ssh_client_alive_interval": 300,
            "ssh_client_alive_count_max": 1, "ssh_tcp_keepalive": "no", "ssh_channel_timeout": "session=15m",
            "ssh_log_level": "VERBOSE",
            "ssh_banner": "/etc/issue.net", "ssh_x11_forwarding": "no", "ssh_allow_tcp_forwarding": "no",
            "ssh_allow_agent_forwarding": "no", "ssh_kex_algorithms": ["curve25519-sha256"],
            "ssh_ciphers": ["chacha20-poly1305@openssh.com"], "ssh_macs": ["hmac-sha2-512-etm@openssh.com"],
            "ssh_host_key_algorithms": ["ssh-ed25519"], "ssh_sftp_subsystem": "internal-sftp",
            "ssh_extra_config": ""}


def render(host: str, roles_dir: Path = ROLES, **over: Any) -> str:
    blocks = [b.as_dict() for b in blocks_for(load_blocks(sorted(roles_dir.glob("*/meta/sshd.yml"))), host, GROUPS)]
    values = {**role_values(), "__ssh_blocks": blocks, **over}
    return str(Templar(loader=DataLoader(), variables=values).template(trust_as_template(TEMPLATE.read_text())))


def sshd(config: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real sshd on the rendered file: -t (syntax) or -T -C … (effective values); a throwaway host key."""
    key = tmp / "hostkey"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    path = tmp / "sshd_config"
    path.write_text(config)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    return subprocess.run(["/usr/sbin/sshd", "-f", str(path), "-h", str(key), *args],
                          capture_output=True, text=True, timeout=30, check=False)


def test_the_repository_host_gets_the_backup_accounts_block_and_other_hosts_do_not(tmp_path: Path) -> None:
    bak1, web1 = render("bak1"), render("web1")
    assert "AllowGroups ssh-users provsec-backup\n" in bak1
    block = "\nMatch Group provsec-backup\n    ChrootDirectory /srv/provsec-backup/%u\n    ForceCommand internal-sftp\n"
    assert block in bak1
    assert "    PasswordAuthentication no\n" in bak1.split("Match Group provsec-backup", 1)[1]
    assert "AllowGroups ssh-users\n" in web1
    assert "Match" not in web1.replace("# Match", "")
    for config in (bak1, web1):
        checked = sshd(config, tmp_path, "-t")
        assert checked.returncode == 0, checked.stderr


def test_a_declared_block_is_what_sshd_applies_to_the_matching_account(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    (roles / "probe" / "meta").mkdir(parents=True)
    (roles / "probe" / "meta" / "sshd.yml").write_text(yaml.safe_dump({"sshd": [{
        "name": "probe", "hosts": "backup_repo", "allow_groups": ["probe-users"], "match": "User root",
        "settings": {"ChrootDirectory": "/srv/probe/%u", "ForceCommand": "internal-sftp", "PermitTTY": False},
        "reason": "test"}]}))
    config = render("bak1", roles)
    effective = sshd(config, tmp_path, "-T", "-C", "user=root,host=db1,addr=198.18.0.22")
    assert effective.returncode == 0, effective.stderr
    lines = effective.stdout.splitlines()
    assert {"chrootdirectory /srv/probe/%u", "forcecommand internal-sftp", "permittty no"} <= set(lines)
    assert [line for line in lines if line.startswith("allowgroups ")] == ["allowgroups ssh-users",
                                                                           "allowgroups probe-users"]
    other = sshd(config, tmp_path, "-T", "-C", "user=nobody,host=db1,addr=198.18.0.22").stdout.splitlines()
    assert "chrootdirectory none" in other and "forcecommand none" in other


def test_extra_config_stays_global_when_roles_add_match_blocks(tmp_path: Path) -> None:
    config = render("bak1", ssh_extra_config="MaxStartups 5:30:20")
    assert config.index("MaxStartups 5:30:20") < config.index("Match Group provsec-backup")
    assert sshd(config, tmp_path, "-t").returncode == 0


def test_every_role_declaration_in_the_repository_loads() -> None:
    blocks = load_blocks(sorted(ROLES.glob("*/meta/sshd.yml")))
    assert [(b.origin, b.name, b.hosts) for b in blocks] == [("backup/meta/sshd.yml", "backup-sftp-accounts",
                                                              "backup_repo")]
    assert all(key in MATCH_KEYWORDS for b in blocks for key, _ in b.settings)


GOOD: dict[str, Any] = {"name": "x", "hosts": "backup_repo", "match": "Group g", "settings": {"PermitTTY": "no"},
                        "reason": "r"}


@pytest.mark.parametrize(("over", "message"), [
    ({"match": "Group g\nPasswordAuthentication yes"}, "'match' must be one sshd Match criterion"),
    ({"settings": {"PasswordAuthentication": "no\nPermitRootLogin yes"}}, "must be one line"),
    ({"settings": {"Include": "/tmp/x"}}, "'Include' is not an sshd keyword allowed"),
    ({"settings": {"PermitRootLogin": "yes"}}, "'PermitRootLogin' is not an sshd keyword allowed"),
    ({"settings": {}}, "'settings' must be a non-empty mapping"),
    ({"allow_groups": ["Bad Group"]}, "'allow_groups' must be a list of group names"),
    ({"reason": " "}, "'reason' is required"),
    ({"hosts": ""}, "'hosts' must name an inventory group"),
    ({"name": "Bad name"}, "'name' must be lower-case"),
    ({"chroot": "/"}, "unknown key"),
])
def test_a_malformed_declaration_names_the_file_and_the_block(tmp_path: Path, over: dict[str, Any],
                                                             message: str) -> None:
    path = tmp_path / "role" / "meta" / "sshd.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"sshd": [{**GOOD, **over}]}))
    with pytest.raises(InputError, match=message) as err:
        load_blocks([path])
    assert str(err.value).startswith(f"{path}: sshd[0]")


def test_unreadable_or_misshapen_files_and_duplicate_names_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a" / "meta" / "sshd.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("sshd: [unclosed\n")
    with pytest.raises(InputError, match=r"a/meta/sshd.yml: line 2 not valid YAML"):
        load_blocks([bad])
    bad.write_text("blocks: []\n")
    with pytest.raises(InputError, match="expected a mapping with a list 'sshd'"):
        load_blocks([bad])
    bad.write_text(yaml.safe_dump({"sshd": [GOOD]}))
    other = tmp_path / "b" / "meta" / "sshd.yml"
    other.parent.mkdir(parents=True)
    other.write_text(yaml.safe_dump({"sshd": [GOOD]}))
    with pytest.raises(InputError, match="declared twice: x"):
        load_blocks([bad, other])


def test_a_group_the_inventory_lacks_applies_to_no_host() -> None:
    blocks = load_blocks([ROLES / "backup" / "meta" / "sshd.yml"])
    assert blocks_for(blocks, "bak1", {"all": ["bak1"]}) == []
    assert blocks_for(blocks, "bak1", {"backup_repo": ["bak1"]}) == blocks
