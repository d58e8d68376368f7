"""The control catalogue: the shipped files load and are at least as strict as issue 3 asks; each kind of
malformed entry is refused with a message naming the file, the control and the key; the Ansible filter."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from provsec.controls import Catalogue, load_catalogue, parse_timespan
from provsec.errors import InputError

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "playbooks" / "controls"
CONCERNS = {"ssh", "firewall", "accounts", "kernel", "banner", "services", "time", "logging", "audit",
            "updates", "integrity", "fail2ban"}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(CATALOGUE)


def test_shipped_catalogue_covers_every_concern(catalogue: Catalogue) -> None:
    assert {c.concern for c in catalogue.controls} == CONCERNS
    assert 50 <= len(catalogue.controls) <= 130
    assert catalogue.levels == (2, 3)
    for control in catalogue.controls:
        assert control.source.stem == control.concern
        assert control.id.startswith(f"PS-{control.concern.upper()}-")
        assert "TCVN 11930:2017" in control.tcvn


def _by_check(catalogue: Catalogue, kind: str, key: str) -> str:
    return next(c.id for c in catalogue.controls if c.check.type == kind and c.check.key == key)


def test_values_at_least_as_strict_as_the_issue(catalogue: Catalogue) -> None:
    for level in (2, 3):
        assert int(str(catalogue.value(_by_check(catalogue, "pwquality", "minlen"), level))) >= 14
        assert catalogue.value(_by_check(catalogue, "pwquality", "minclass"), level) == 4
        assert 0 < int(str(catalogue.value(_by_check(catalogue, "faillock", "deny"), level))) <= 5
        assert int(str(catalogue.value(_by_check(catalogue, "useradd_default", "INACTIVE"), level))) <= 45
        assert catalogue.value(_by_check(catalogue, "sshd", "permitrootlogin"), level) == "no"
        assert catalogue.value(_by_check(catalogue, "sshd", "passwordauthentication"), level) == "no"
        assert int(str(catalogue.value(_by_check(catalogue, "sshd", "maxauthtries"), level))) <= 4
        assert catalogue.value(_by_check(catalogue, "sshd", "clientaliveinterval"), level) == 300
        assert catalogue.value("PS-ACCOUNTS-10", level) is True  # shell idle timeout
        assert any(c.check.type == "chrony" and c.levels[level] for c in catalogue.controls)  # NTP everywhere
    assert int(str(catalogue.value(_by_check(catalogue, "login_defs", "PASS_MAX_DAYS"), 3))) <= 60
    retention = _by_check(catalogue, "journald", "MaxRetentionSec")
    month = 30 * 86400
    assert (parse_timespan(str(catalogue.value(retention, 2))) or 0) >= month
    assert (parse_timespan(str(catalogue.value(retention, 3))) or 0) >= 3 * month


def test_values_for_levels_outside_the_catalogue(catalogue: Catalogue) -> None:
    assert catalogue.value("PS-ACCOUNTS-06", 1) == catalogue.value("PS-ACCOUNTS-06", 2) == 90
    assert catalogue.value("PS-ACCOUNTS-06", "5") == catalogue.value("PS-ACCOUNTS-06", 3) == 60
    with pytest.raises(InputError, match="not an integer from 1 to 5"):
        catalogue.value("PS-SSH-02", 6)
    with pytest.raises(InputError, match="no control 'PS-SSH-99'"):
        catalogue.value("PS-SSH-99", 2)


def test_checks_request_lists_what_to_read(catalogue: Catalogue) -> None:
    request = catalogue.checks_request()
    assert request["version"] == 1 and request["sshd"] and request["nft"]
    assert "kernel.randomize_va_space" in request["sysctl"]
    assert "/etc/shadow" in request["files"]
    assert "ufw" in request["packages"] and "chrony" in request["services"]
    assert all({"path", "regex"} == set(r) for r in request["file_regex"])


GOOD = """\
controls:
  - id: PS-SSH-01
    concern: ssh
    title: {vi: "Cấm root", en: "No root"}
    cis: "5.1.20"
    tcvn: {"TCVN 11930:2017": [], "TCVN 14423": []}
    levels: {2: "no", 3: "no"}
    check: {type: sshd, key: permitrootlogin, op: eq}
    container: applies
"""


def _load(tmp_path: Path, text: str, name: str = "ssh.yml") -> Catalogue:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_catalogue(tmp_path)


def test_minimal_catalogue_loads(tmp_path: Path) -> None:
    catalogue = _load(tmp_path, GOOD)
    assert catalogue.value("PS-SSH-01", 3) == "no"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("id: PS-SSH-01", "id: PS-SHH-01", "PS-SHH-01: id: 'PS-SHH-01' is not PS-SSH-NN"),
        ("concern: ssh", "concern: kernel", "PS-SSH-01: concern: 'kernel' must be 'ssh'"),
        ('cis: "5.1.20"', "cis: 5.1", "PS-SSH-01: cis: 5.1 must be a quoted section number"),
        ("levels: {2: \"no\", 3: \"no\"}", "levels: {2: \"no\"}", "PS-SSH-01: levels: no value for cấp độ 3"),
        ("levels: {2: \"no\", 3: \"no\"}", "levels: {2: null, 3: null}", "levels: null at every level"),
        ("op: eq}", "op: equals}", "check.op: 'equals' is not an op of a sshd check"),
        ("type: sshd,", "type: ssh,", "check.type: unknown check type 'ssh' (did you mean 'sshd'?)"),
        ("key: permitrootlogin", "key: PermitRootLogin", "check.key: 'PermitRootLogin' is not a sshd key"),
        ("container: applies", "container: maybe", "PS-SSH-01: container: must be `applies`"),
        ("    container: applies\n", "", "PS-SSH-01: container: missing"),
        ("    cis:", "    cis_note: x\n    cis:", "PS-SSH-01: cis_note: unknown key"),
        ('title: {vi: "Cấm root", en: "No root"}', 'title: {vi: "Cấm root"}', "PS-SSH-01: title: must be"),
        ('tcvn: {"TCVN 11930:2017": [], "TCVN 14423": []}', 'tcvn: {"TCVN 14423": []}',
         "tcvn: must be a mapping"),
        ("levels: {2: \"no\", 3: \"no\"}", "levels: {2: false, 3: false}", "levels.2: False: write the value"),
    ],
)
def test_malformed_control_names_file_id_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    with pytest.raises(InputError) as info:
        _load(tmp_path, GOOD.replace(old, new))
    message = str(info.value)
    assert f"{tmp_path / 'ssh.yml'}: " in message
    assert expected in message


@pytest.mark.parametrize(
    ("check", "levels", "expected"),
    [
        ("{type: file, path: /etc/shadow, mode_max: \"0640\", op: eq}", "{2: true, 3: true}",
         "check.op: not a field of a file check (this type takes no op"),
        ("{type: file, path: /etc/shadow, mode_max: 640}", "{2: true, 3: true}", "check.mode_max: 640 must be"),
        ("{type: file_regex, path: /etc/x, regex: '(', op: present}", "{2: true, 3: true}",
         "check.regex: '(' is not a regular expression"),
        ("{type: service, name: chrony, op: eq}", "{2: running, 3: active}", "levels.2: 'running' must be one state"),
        ("{type: service, name: chrony, op: superset}", "{2: active, 3: [active]}",
         "levels.2: 'active' must be a list"),
        ("{type: nft, kind: ssh_only}", "{2: true, 3: true}", "check.kind: 'ssh_only' is not an nft check"),
        ("{type: sysctl, key: net.ipv4.tcp_syncookies, op: le}", "{2: one, 3: 1}", "levels.2: 'one' must be a number"),
        ("{type: package_absent, name: [telnetd, 'Bad Name']}", "{2: true, 3: true}", "check.name:"),
        ("{type: sshd, key: ciphers, op: subset}", "{2: aes128-ctr, 3: [aes128-ctr]}",
         "levels.2: 'aes128-ctr' must be a non-empty list for subset"),
        ("{type: sysctl, op: eq}", "{2: 1, 3: 1}", "check.key: missing"),
    ],
)
def test_malformed_check(tmp_path: Path, check: str, levels: str, expected: str) -> None:
    text = GOOD.replace("{type: sshd, key: permitrootlogin, op: eq}", check).replace(
        '{2: "no", 3: "no"}', levels)
    with pytest.raises(InputError, match=None) as info:
        _load(tmp_path, text)
    assert expected in str(info.value)


def test_duplicate_ids_and_keys_and_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "ssh.yml").write_text(GOOD + GOOD.replace("controls:\n", ""), encoding="utf-8")
    (tmp_path / "kernel.yml").write_text("controls: [\n", encoding="utf-8")
    (tmp_path / "time.yml").write_text("controls: []\ncontrols: []\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_catalogue(tmp_path)
    message = str(info.value)
    assert "PS-SSH-01: id: duplicate id (first given in" in message
    assert f"{tmp_path / 'kernel.yml'}: not valid YAML" in message
    assert "duplicate key 'controls'" in message
    assert "3 problems" in message


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no control files"):
        load_catalogue(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_catalogue(tmp_path / "nope")


def test_timespans() -> None:
    assert parse_timespan("3month") == pytest.approx(3 * 2629800)
    assert parse_timespan("1w 2d") == 9 * 86400
    assert parse_timespan("300") == 300
    assert parse_timespan("5min") == 300
    assert parse_timespan("soon") is None
    assert parse_timespan("") is None


def _filter_module() -> ModuleType:
    path = REPO / "playbooks" / "filter_plugins" / "provsec_controls.py"
    spec = importlib.util.spec_from_file_location("provsec_controls_filter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ansible_filter() -> None:
    from ansible.errors import AnsibleFilterError

    module = _filter_module()
    provsec_control = module.FilterModule().filters()["provsec_control"]
    assert provsec_control("PS-SSH-04", 3) == 3
    assert provsec_control("PS-ACCOUNTS-06", "2") == 90
    with pytest.raises(AnsibleFilterError, match="no control 'PS-SSH-4'"):
        provsec_control("PS-SSH-4", 3)
    with pytest.raises(AnsibleFilterError, match="not an integer from 1 to 5"):
        provsec_control("PS-SSH-04", "high")


def test_wan_catalogue_is_separate_from_the_servers() -> None:
    from provsec.controls import WAN_CHECK_TYPES

    wan = load_catalogue(CATALOGUE / "wan", WAN_CHECK_TYPES)
    assert {c.concern for c in wan.controls} == {"wan"}
    assert all(c.check.type == "router" and c.check.rule for c in wan.controls)
    assert wan.value("PS-WAN-01", 3) is True
    assert not any(c.concern == "wan" for c in load_catalogue(CATALOGUE).controls)  # subdirectory not read
    with pytest.raises(InputError, match=re.escape("PS-WAN-01: check.type: unknown check type 'router'")):
        load_catalogue(CATALOGUE / "wan")  # the servers' vocabulary refuses router checks


def test_wan_check_needs_a_rule_name(tmp_path: Path) -> None:
    from provsec.controls import WAN_CHECK_TYPES

    text = GOOD.replace("PS-SSH-01", "PS-WAN-01").replace("concern: ssh", "concern: wan").replace(
        '{2: "no", 3: "no"}', "{2: true, 3: true}")
    (tmp_path / "wan.yml").write_text(text.replace("{type: sshd, key: permitrootlogin, op: eq}",
                                                   "{type: router, rule: No-Telnet}"), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("check.rule: 'No-Telnet' is not a rule name")):
        load_catalogue(tmp_path, WAN_CHECK_TYPES)
    (tmp_path / "wan.yml").write_text(text.replace("{type: sshd, key: permitrootlogin, op: eq}",
                                                   "{type: router, rule: no_telnet}"), encoding="utf-8")
    assert load_catalogue(tmp_path, WAN_CHECK_TYPES).get("PS-WAN-01").check.rule == "no_telnet"
