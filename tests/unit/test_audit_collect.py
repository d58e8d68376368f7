"""The collector's parsers on sample outputs of the real tools, and its behaviour when a tool is missing."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from provsec.audit import collect
from provsec.controls import load_catalogue

SSHD_T = """\
port 22
addressfamily any
permitrootlogin no
maxauthtries 6
allowgroups provsec-admins
allowgroups wheel
kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256
loglevel VERBOSE
banner none
"""


def test_parse_sshd_t() -> None:
    values = collect.parse_sshd_t(SSHD_T)
    assert values["permitrootlogin"] == ["no"]
    assert values["allowgroups"] == ["provsec-admins", "wheel"]
    assert values["kexalgorithms"] == ["sntrup761x25519-sha512@openssh.com,curve25519-sha256"]
    assert values["loglevel"] == ["VERBOSE"]


def test_parse_login_defs_last_wins() -> None:
    text = "# comment\nPASS_MAX_DAYS\t99999\nUMASK 022\n\nPASS_MAX_DAYS 60\nENCRYPT_METHOD SHA512\n"
    assert collect.parse_login_defs(text) == {"PASS_MAX_DAYS": "60", "UMASK": "022", "ENCRYPT_METHOD": "SHA512"}


def test_parse_conf_equals_flags_and_comments() -> None:
    text = "# minlen = 8\nminlen = 14\nminclass=4 # inline\nenforce_for_root\n"
    assert collect.parse_conf_equals(text) == {"minlen": "14", "minclass": "4", "enforce_for_root": ""}


def test_parse_useradd_defaults() -> None:
    text = "GROUP=100\nHOME=/home\nINACTIVE=-1\nEXPIRE=\nSHELL=/bin/sh\n"
    assert collect.parse_shell_assignments(text)["INACTIVE"] == "-1"


def test_parse_journald_cat_config() -> None:
    text = """# /etc/systemd/journald.conf
[Journal]
#Storage=auto
Storage=volatile

# /etc/systemd/journald.conf.d/50-provsec.conf
[Journal]
Storage=persistent
MaxRetentionSec=3month
[Other]
Storage=none
"""
    assert collect.parse_ini_section(text, "Journal") == {"Storage": "persistent", "MaxRetentionSec": "3month"}


def test_parse_pam_module() -> None:
    text = """# common-password
password\trequisite\t\t\tpam_pwquality.so retry=3 minlen=12
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
# password requisite pam_pwquality.so minlen=99
"""
    found = collect.parse_pam_module(text, "pam_pwquality.so")
    assert found["present"] is True
    assert found["args"] == {"retry": "3", "minlen": "12"}
    assert collect.parse_pam_module(text, "pam_faillock.so")["present"] is False
    auth = ("auth required pam_faillock.so preauth deny=4\n"
            "auth [default=die] /usr/lib/x86_64-linux-gnu/security/pam_faillock.so authfail unlock_time=900\n")
    args = collect.parse_pam_module(auth, "pam_faillock.so")["args"]
    assert args == {"preauth": "", "deny": "4", "authfail": "", "unlock_time": "900"}


def test_parse_systemctl_show() -> None:
    text = """Id=chrony.service
Names=chrony.service chronyd.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=enabled

Id=telnet.service
Names=telnet.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
"""
    units = collect.parse_systemctl_show(text)
    assert units["chrony.service"]["UnitFileState"] == "enabled"
    assert units["telnet.service"]["LoadState"] == "not-found"


def test_parse_dpkg_query() -> None:
    text = "telnetd\tinstalled\t0.17+2.4-2\nufw\tconfig-files\t0.36.2-1\nlibc6:amd64\tinstalled\t2.36-9\n"
    packages = collect.parse_dpkg_query(text)
    assert packages["telnetd"] == {"installed": True, "status": "installed", "version": "0.17+2.4-2"}
    assert packages["ufw"]["installed"] is False  # only its configuration files are left
    assert packages["libc6"]["installed"] is True


def test_parse_chrony() -> None:
    text = """# Debian's chrony.conf
confdir /etc/chrony/conf.d
pool 2.debian.pool.ntp.org iburst
server ntp1.tinh.gov.vn iburst prefer
! server commented.example
sourcedir /run/chrony-dhcp /etc/chrony/sources.d
"""
    sources, includes = collect.parse_chrony(text, "/etc/chrony/chrony.conf")
    assert [(s["kind"], s["address"]) for s in sources] == [("pool", "2.debian.pool.ntp.org"),
                                                           ("server", "ntp1.tinh.gov.vn")]
    assert includes == [("confdir", "/etc/chrony/conf.d"), ("sourcedir", "/run/chrony-dhcp"),
                        ("sourcedir", "/etc/chrony/sources.d")]


def test_parse_auditctl() -> None:
    text = """-w /etc/passwd -p wa -k identity
-a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change
-w /etc/sudoers -p wa -k scope
"""
    parsed = collect.parse_auditctl(text)
    assert parsed["keys"] == ["identity", "scope", "time-change"]
    assert len(parsed["rules"]) == 3
    assert collect.parse_auditctl("No rules\n") == {"rules": [], "keys": []}


def test_missing_tools_are_evidence_not_crashes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(collect, "SBIN_PATH", str(tmp_path))  # no tool is found there
    assert collect.guarded(collect.probe_sshd) == {"error": "sshd not installed (package openssh-server)"}
    assert collect.guarded(collect.probe_nft) == {"error": "nft not installed (package nftables)"}
    assert collect.guarded(collect.probe_auditd) == {"error": "auditctl not installed (package auditd)"}
    assert "error" in collect.guarded(collect.probe_useradd_default)
    evidence = collect.collect({"version": 1, "sshd": True, "nft": True, "packages": ["telnetd"]})
    assert evidence["sshd"]["error"].startswith("sshd not installed")
    assert evidence["packages"]["error"].startswith("dpkg-query not installed")
    assert evidence["virtualization"]["container"]  # from /run/systemd/container or "none"


def test_file_probes(tmp_path: Path) -> None:
    conf = tmp_path / "jail.d"
    conf.mkdir()
    (conf / "provsec.conf").write_text("[sshd]\nport = ssh\nenabled = true\n\n[other]\nenabled = false\n")
    secret = tmp_path / "secret"
    secret.write_text("TOKEN=abc\n")
    secret.chmod(0o600)
    found = collect.probe_file_regex([
        {"path": f"{conf}/*.conf", "regex": r"^\[sshd\][^\[]*^\s*enabled\s*=\s*(true|yes|1)\s*$"},
        {"path": str(secret), "regex": "TOKEN"},
        {"path": f"{tmp_path}/none/*.conf", "regex": "x"},
    ])
    assert found[0]["matches"][0]["line_number"] == 1
    assert found[1]["matches"][0]["line"] == "(not world-readable: line not shown)"
    assert found[2]["files"] == [] and found[2]["matches"] == []
    stat = collect.probe_files([str(secret), str(tmp_path / "missing")])
    assert stat[str(secret)]["mode"] == "0600"
    assert stat[str(tmp_path / "missing")] == {"exists": False}


def test_executables_probe_resolves_symlinks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sbin, bin_ = tmp_path / "sbin", tmp_path / "bin"
    sbin.mkdir()
    bin_.mkdir()
    real = bin_ / "x86_64-linux-gnu-gcc-12"
    real.write_text("#!/bin/sh\n")
    real.chmod(0o750)
    (bin_ / "gcc").symlink_to(real.name)
    (sbin / "cc").symlink_to(bin_ / "gcc")
    monkeypatch.setattr(collect, "COMMAND_DIRS", (str(sbin), str(bin_)))
    found = collect.probe_executables(["cc", "gcc", "clang"])["executables"]
    assert found["cc"]["path"] == found["gcc"]["path"] == str(real)
    assert found["cc"]["mode"] == "0750"
    assert found["clang"] == {"exists": False}


def test_main_reads_the_request_in_every_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    request = json.dumps({"version": 1, "files": ["/etc/hostname"]})
    path = tmp_path / "checks.json"
    path.write_text(request)
    assert collect.main([str(path)]) == 0
    assert "/etc/hostname" in json.loads(capsys.readouterr().out)["files"]
    assert collect.main(["--checks-b64", base64.b64encode(request.encode()).decode()]) == 0
    assert json.loads(capsys.readouterr().out)["collector"]["version"] == 1
    monkeypatch.setattr("sys.stdin", io.StringIO(request))
    assert collect.main(["-"]) == 0
    capsys.readouterr()
    path.write_text('{"files": []}')
    assert collect.main([str(path)]) == 2
    assert "version" in capsys.readouterr().err


def test_file_regex_names_the_line_the_match_is_about(tmp_path: Path) -> None:
    # a leading \s* runs across blank lines: the line shown is the first one with text in the match
    limits = tmp_path / "limits.conf"
    limits.write_text("# limits\n\n\n*  hard  core  0\n")
    found = collect.probe_file_regex([{"path": str(limits), "regex": r"^\s*\*\s+hard\s+core\s+0\s*$"}])
    assert [(m["line_number"], m["line"]) for m in found[0]["matches"]] == [(4, "*  hard  core  0")]
    # PS-ACCOUNTS-11 as the catalogue writes it, on a stack pam-auth-update wrote after an upgrade of libpam-runtime
    catalogue = load_catalogue(Path(__file__).resolve().parents[2] / "playbooks" / "controls")
    check = catalogue.get("PS-ACCOUNTS-11").check
    auth = tmp_path / "common-auth"
    auth.write_text("# here are the per-package modules\nauth\trequisite\tpam_faillock.so preauth\n"
                    "auth\t[success=2 default=ignore]\tpam_unix.so nullok\n# auth pam_unix.so nullok\n")
    found = collect.probe_file_regex([{"path": str(auth), "regex": check.regex}])
    assert [(m["line_number"], m["line"]) for m in found[0]["matches"]] == [
        (3, "auth\t[success=2 default=ignore]\tpam_unix.so nullok")]
