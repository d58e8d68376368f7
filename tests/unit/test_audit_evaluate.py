"""The evaluator: pass / fail / not_applicable / excepted / expired exception, with evidence; the nftables
reading; `provsec audit evaluate` writes per-host results and the fleet summary, and nothing on bad input."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provsec.audit import collect, nftables
from provsec.audit.evaluate import (
    ControlException,
    HostVars,
    Result,
    evaluate_host,
    today_local,
)
from provsec.cli import main
from provsec.controls import Catalogue, load_catalogue

REPO = Path(__file__).resolve().parents[2]
# `nft -j list ruleset` of this ruleset, loaded in a scratch network namespace:
#   table inet filter { set admin_v4 { type ipv4_addr; flags interval; elements = { 198.18.0.0/28 } }
#     chain input { type filter hook input priority 0; policy drop; ct state established,related accept
#       ct state invalid drop; iifname "lo" accept; ip saddr @admin_v4 tcp dport 22 accept
#       tcp dport { 80, 443 } accept; ip saddr 198.18.0.20 tcp dport 9100 accept; jump extra }
#     chain extra { ip saddr 198.18.0.0/24 tcp dport 22 accept } }
RULESET = json.loads((Path(__file__).parent / "data" / "nft_ruleset_admin_and_web.json").read_text())
TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(REPO / "playbooks" / "controls")


def evidence(**overrides: Any) -> dict[str, Any]:
    """Evidence of a host that meets the whole catalogue at level 3 (a VM, not a container)."""
    doc: dict[str, Any] = {
        "collector": {"version": 1}, "collected_at": "2026-11-25T01:00:00Z", "hostname": "web1",
        "virtualization": {"virt": "kvm", "container": "none"},
        "sshd": {"values": {
            "port": ["22"], "passwordauthentication": ["no"], "permitrootlogin": ["no"],
            "permitemptypasswords": ["no"], "maxauthtries": ["3"], "clientaliveinterval": ["300"],
            "clientalivecountmax": ["3"], "allowgroups": ["provsec-admins"],
            "kexalgorithms": ["sntrup761x25519-sha512@openssh.com,curve25519-sha256,kex-strict-s-v00@openssh.com"],
            "ciphers": ["chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"],
            "macs": ["hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com"],
            "x11forwarding": ["no"], "loglevel": ["VERBOSE"], "banner": ["/etc/issue.net"],
            "logingracetime": ["60"], "tcpkeepalive": ["no"], "maxsessions": ["2"]}},
        "sysctl": {k: {"value": v} for k, v in {
            "kernel.randomize_va_space": "2", "kernel.yama.ptrace_scope": "1", "fs.suid_dumpable": "0",
            "kernel.kptr_restrict": "1", "kernel.dmesg_restrict": "1", "net.ipv4.conf.all.accept_redirects": "0",
            "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.all.accept_source_route": "0",
            "net.ipv4.tcp_syncookies": "1", "net.ipv4.conf.all.log_martians": "1", "kernel.sysrq": "0",
            "kernel.unprivileged_bpf_disabled": "1", "net.core.bpf_jit_harden": "2", "dev.tty.ldisc_autoload": "0",
            "fs.protected_hardlinks": "1", "fs.protected_symlinks": "1", "fs.protected_fifos": "2",
            "fs.protected_regular": "2", "net.ipv4.conf.all.secure_redirects": "0",
            "net.ipv4.icmp_echo_ignore_broadcasts": "1", "net.ipv4.icmp_ignore_bogus_error_responses": "1",
            "net.ipv4.conf.all.rp_filter": "1", "net.ipv6.conf.all.accept_ra": "0"}.items()},
        "login_defs": {"values": {"PASS_MAX_DAYS": "60", "PASS_MIN_DAYS": "1", "UMASK": "027",
                                  "PASS_WARN_AGE": "7", "ENCRYPT_METHOD": "YESCRYPT"},
                       "file": "/etc/login.defs"},
        "pwquality": {"values": {"minlen": "14", "minclass": "4", "enforce_for_root": "", "maxrepeat": "3",
                                 "maxsequence": "3", "difok": "2"},
                      "origin": {}, "files": ["/etc/security/pwquality.conf"],
                      "pam": {"present": True, "args": {"retry": "3"}, "file": "/etc/pam.d/common-password"}},
        "faillock": {"values": {"deny": "5", "unlock_time": "900"}, "origin": {},
                     "files": ["/etc/security/faillock.conf"],
                     "pam": {"present": True, "args": {"preauth": ""}, "file": "/etc/pam.d/common-auth"}},
        "useradd_default": {"values": {"INACTIVE": "45"}},
        "journald": {"values": {"Storage": "persistent", "MaxRetentionSec": "3month"}, "source": "cat-config"},
        "files": {
            "/etc/ssh/sshd_config": {"exists": True, "mode": "0600", "owner": "root", "group": "root"},
            "/etc/shadow": {"exists": True, "mode": "0640", "owner": "root", "group": "shadow"},
            "/var/lib/aide/aide.db": {"exists": True, "mode": "0600", "owner": "root", "group": "root"},
        },
        "file_regex": [],
        "packages": {"packages": {}},
        "services": {"units": {}},
        "executables": {"executables": {
            "as": {"exists": True, "path": "/usr/bin/x86_64-linux-gnu-as", "mode": "0750", "owner": "root",
                   "group": "root"},
            **{n: {"exists": False} for n in ("cc", "c++", "gcc", "g++", "clang", "clang++")}}},
        "nft": {"ruleset": RULESET},
        "chrony": {"sources": [{"kind": "server", "address": "198.18.0.1"}], "files": []},
        "auditd": {"rules": ["-w /etc/passwd -p wa -k identity"],
                   "keys": ["identity", "logins", "scope", "time-change"]},
    }
    return {**doc, **overrides}


def complete(catalogue: Catalogue, doc: dict[str, Any]) -> dict[str, Any]:
    """Fill in the collected lists for every file_regex/package/service control, all meeting the catalogue."""
    doc = copy.deepcopy(doc)
    for control in catalogue.controls:
        check = control.check
        if check.type == "file_regex" and not any(e["path"] == check.path and e["regex"] == check.regex
                                                  for e in doc["file_regex"]):
            matches = [{"file": check.path, "line_number": 1, "line": "ok"}] if check.op == "present" else []
            doc["file_regex"].append({"path": check.path, "regex": check.regex, "files": [check.path],
                                      "matches": matches, "errors": []})
        elif check.type == "package_absent":
            for name in check.names:
                doc["packages"]["packages"].setdefault(name, {"installed": False, "status": "not-installed"})
        elif check.type == "service":
            wanted = control.levels[3]
            states = set(wanted if isinstance(wanted, list) else [wanted])
            doc["services"]["units"].setdefault(check.name, {
                "unit": f"{check.name}.service", "load_state": "loaded",
                "active_state": "inactive" if "inactive" in states else "active", "sub_state": "running",
                "unit_file_state": "disabled" if "disabled" in states else "enabled"})
    return doc


VM = HostVars(level=3, admin_subnets=("198.18.0.0/24",))


def results_by_id(results: list[Result]) -> dict[str, Result]:
    return {r.id: r for r in results}


def test_compliant_host_passes_everything(catalogue: Catalogue) -> None:
    results = evaluate_host(catalogue, VM, complete(catalogue, evidence()), TODAY)
    failing = [(r.id, r.evidence, r.reason) for r in results if r.status != "pass"]
    assert failing == []


def test_live_value_that_differs_fails_with_the_evidence(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["sshd"]["values"]["maxauthtries"] = ["6"]
    doc["sysctl"]["net.ipv4.tcp_syncookies"] = {"value": "0"}
    doc["files"]["/etc/shadow"]["mode"] = "0644"
    doc["sshd"]["values"]["ciphers"] = ["chacha20-poly1305@openssh.com,3des-cbc"]
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    ssh = results["PS-SSH-04"]
    assert (ssh.status, ssh.evidence, ssh.actual) == ("fail", "sshd -T: maxauthtries 6", "6")
    assert ssh.expected == {"op": "le", "value": 3}
    assert "'6' is not ≤ 3" in ssh.reason
    assert results["PS-KERNEL-09"].evidence == "sysctl net.ipv4.tcp_syncookies = 0"
    assert results["PS-ACCOUNTS-12"].reason == "mode 0644 allows more than 0640"
    assert results["PS-SSH-09"].reason == "not allowed: 3des-cbc"


def test_container_marks_kernel_and_audit_not_applicable(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence(virtualization={"virt": "systemd-nspawn", "container": "systemd-nspawn"}))
    del doc["auditd"]
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    for cid in ("PS-KERNEL-01", "PS-AUDIT-01", "PS-AUDIT-02", "PS-TIME-02"):
        assert results[cid].status == "not_applicable"
        assert "container (systemd-nspawn)" in results[cid].reason
    assert results["PS-KERNEL-06"].status == "pass"  # net.* belong to the host's own namespace
    na = {c.id for c in catalogue.controls if not c.applies_in_container}
    assert na == {r.id for r in results.values() if r.status == "not_applicable"}


def test_missing_tool_fails_with_its_evidence(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence(auditd={"error": "auditctl not installed (package auditd)"},
                                       nft={"error": "nft not installed (package nftables)"}))
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-AUDIT-02"].status == "fail"
    assert results["PS-AUDIT-02"].evidence == "auditctl not installed (package auditd)"
    assert results["PS-FIREWALL-02"].evidence == "nft not installed (package nftables)"


def test_pam_module_missing_makes_its_settings_fail(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["pwquality"]["pam"] = {"present": False, "args": {}, "file": "/etc/pam.d/common-password"}
    doc["faillock"]["pam"]["args"]["deny"] = "0"  # the PAM argument overrides faillock.conf; 0 = never lock
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-ACCOUNTS-01"].status == "fail"
    assert "pam_pwquality.so is not in /etc/pam.d/common-password" in results["PS-ACCOUNTS-01"].evidence
    assert results["PS-ACCOUNTS-04"].status == "fail"
    assert "means never" in results["PS-ACCOUNTS-04"].reason
    assert "pam_faillock.so argument" in results["PS-ACCOUNTS-04"].evidence


def test_defaults_and_never_values(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["useradd_default"]["values"]["INACTIVE"] = "-1"
    doc["faillock"]["values"] = {"unlock_time": "0"}  # deny unset: pam_faillock's default 3; 0: admin unlocks
    doc["journald"]["values"] = {"Storage": "persistent", "MaxRetentionSec": "2week"}
    doc["sshd"]["values"]["clientalivecountmax"] = ["0"]  # OpenSSH ≥ 8.2: never drops the session
    doc["sshd"]["values"]["clientaliveinterval"] = ["120"]  # stricter than 300
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-SSH-06"].status == "fail" and "means never" in results["PS-SSH-06"].reason
    assert results["PS-SSH-05"].status == "pass"
    assert results["PS-ACCOUNTS-09"].status == "fail"
    assert results["PS-ACCOUNTS-04"].status == "pass"
    assert "default 3" in results["PS-ACCOUNTS-04"].evidence
    assert results["PS-ACCOUNTS-05"].status == "pass"
    assert results["PS-LOGGING-02"].status == "fail"
    level2 = results_by_id(evaluate_host(catalogue, HostVars(2, admin_subnets=VM.admin_subnets), doc, TODAY))
    assert level2["PS-LOGGING-02"].status == "fail"  # 2 weeks < 1 month


def test_pwquality_limits_zero_means_unchecked_and_defaults(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["pwquality"]["values"].update({"maxrepeat": "0", "maxsequence": "2"})  # 0: repeats not checked at all
    doc["pwquality"]["values"].pop("difok")  # pwquality's default difok is 1
    doc["pwquality"]["pam"]["args"]["dictcheck"] = "0"  # the PAM argument overrides the .conf files
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-ACCOUNTS-13"].status == "fail" and "means never" in results["PS-ACCOUNTS-13"].reason
    assert results["PS-ACCOUNTS-14"].status == "pass"  # 2 is stricter than 3
    assert results["PS-ACCOUNTS-16"].status == "fail" and "default 1" in results["PS-ACCOUNTS-16"].evidence
    assert results["PS-ACCOUNTS-15"].status == "fail"
    assert "pam_pwquality.so argument" in results["PS-ACCOUNTS-15"].evidence
    del doc["pwquality"]["pam"]["args"]["dictcheck"]
    doc["pwquality"]["values"].pop("maxsequence")
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-ACCOUNTS-15"].status == "pass"  # dictcheck is on unless set to 0
    assert results["PS-ACCOUNTS-14"].status == "fail"  # unset: 0, sequences not checked


def test_module_groups_match_the_kernel_roles_modprobe_file(catalogue: Catalogue, tmp_path: Path) -> None:
    """Each module control needs its every module in one modprobe.d file, as the kernel role writes it."""
    defaults = yaml.safe_load((REPO / "playbooks/roles/kernel/defaults/main.yml").read_text(encoding="utf-8"))
    modules = defaults["kernel_disabled_modules"]
    (tmp_path / "60-provsec-disabled.conf").write_text(
        "# Managed by provsec\n" + "".join(f"install {m} /bin/false\nblacklist {m}\n" for m in modules))
    (tmp_path / "other.conf").write_text("install sctp /bin/true\n")
    controls = [c for c in catalogue.controls
                if c.check.type == "file_regex" and c.check.path == "/etc/modprobe.d/*.conf"]
    assert {c.id for c in controls} >= {"PS-KERNEL-11", "PS-KERNEL-26", "PS-KERNEL-27", "PS-KERNEL-28"}
    requests = [{"path": f"{tmp_path}/*.conf", "regex": c.check.regex} for c in controls]
    for control, found in zip(controls, collect.probe_file_regex(requests), strict=True):
        assert found["matches"], control.id
    (tmp_path / "60-provsec-disabled.conf").write_text(
        "".join(f"install {m} /bin/false\n" for m in modules if m not in ("udf", "usb-storage", "tipc")))
    missing = collect.probe_file_regex(requests)
    by_id = {c.id: bool(f["matches"]) for c, f in zip(controls, missing, strict=True)}
    assert by_id == {"PS-KERNEL-11": True, "PS-KERNEL-26": False, "PS-KERNEL-27": False, "PS-KERNEL-28": False}


def test_services(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["services"]["units"]["rpcbind"] = {"unit": "rpcbind.service", "load_state": "not-found",
                                           "active_state": "inactive", "unit_file_state": ""}
    doc["services"]["units"]["chrony"]["unit_file_state"] = "masked"
    results = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))
    assert results["PS-SERVICES-06"].status == "pass"  # absent is neither running nor enabled
    assert results["PS-TIME-01"].status == "fail"
    assert results["PS-TIME-01"].reason == "not enabled"


def test_exceptions_current_expired_and_not_needed(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    doc["sshd"]["values"]["maxauthtries"] = ["6"]
    doc["sshd"]["values"]["x11forwarding"] = ["yes"]
    exceptions = (
        ControlException("PS-SSH-04", "Ứng dụng cũ cần 6 lần thử", dt.date(2026, 11, 25), "Nguyễn Văn A"),
        ControlException("PS-SSH-11", "Tạm thời", dt.date(2026, 11, 24), "Trần Thị B"),
        ControlException("PS-SSH-02", "Không cần", dt.date(2027, 1, 1), "Trần Thị B"),
    )
    host = HostVars(3, exceptions, VM.admin_subnets)
    results = results_by_id(evaluate_host(catalogue, host, doc, TODAY))
    assert results["PS-SSH-04"].status == "excepted"  # valid through its expiry day
    assert "exception until 2026-11-25 approved by Nguyễn Văn A" in results["PS-SSH-04"].reason
    assert results["PS-SSH-04"].evidence == "sshd -T: maxauthtries 6"
    assert results["PS-SSH-11"].status == "fail"
    assert results["PS-SSH-11"].reason.startswith("exception expired on 2026-11-24")
    assert results["PS-SSH-02"].status == "pass"


def test_today_is_a_date_in_vietnam() -> None:
    # 18:30 UTC on the 24th is 01:30 on the 25th in Hà Nội: an exception expiring on the 24th has expired
    assert today_local(dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)) == dt.date(2026, 11, 25)
    assert today_local(dt.datetime(2026, 11, 24, 16, 30, tzinfo=dt.UTC)) == dt.date(2026, 11, 24)


def test_not_required_at_a_level(tmp_path: Path) -> None:
    (tmp_path / "ssh.yml").write_text("""\
controls:
  - id: PS-SSH-01
    concern: ssh
    title: {vi: "Nhật ký chi tiết", en: "Verbose log"}
    cis: ""
    tcvn: {"TCVN 11930:2017": []}
    levels: {2: null, 3: "VERBOSE"}
    check: {type: sshd, key: loglevel, op: eq}
    container: applies
""", encoding="utf-8")
    small = load_catalogue(tmp_path)
    doc = evidence()
    assert evaluate_host(small, HostVars(2), doc, TODAY)[0].status == "not_applicable"
    assert evaluate_host(small, HostVars(3), doc, TODAY)[0].status == "pass"


# --- nftables ----------------------------------------------------------------------------------------


def test_nft_input_policy() -> None:
    assert nftables.input_policy_drop(RULESET)[0] is True
    accept = copy.deepcopy(RULESET)
    for item in accept["nftables"]:
        if "chain" in item and item["chain"].get("hook") == "input":
            item["chain"]["policy"] = "accept"
    ok, text = nftables.input_policy_drop(accept)
    assert not ok and "no drop policy for IPv4 and IPv6" in text
    ok, text = nftables.input_policy_drop({"nftables": [{"metainfo": {}}]})
    assert not ok and "no base chain" in text
    only_ip = copy.deepcopy(RULESET)
    for item in only_ip["nftables"]:
        for kind in ("chain", "rule", "set", "table"):
            if kind in item:
                item[kind]["family"] = "ip"
    ok, text = nftables.input_policy_drop(only_ip)
    assert not ok and "IPv6" in text


def test_nft_ssh_only_from() -> None:
    ok, text = nftables.ssh_only_from(RULESET, ["198.18.0.0/24"], {22})
    assert ok, text
    ok, text = nftables.ssh_only_from(RULESET, ["198.18.0.0/28"], {22})
    assert not ok
    assert "inet filter extra rule handle" in text and "from 198.18.0.0/24" in text  # found through the jump
    ok, text = nftables.ssh_only_from(RULESET, ["198.18.0.0/24"], {2222})
    assert ok and "no rule accepts tcp/2222" in text


def test_nft_open_ssh_rule_fails() -> None:
    opened = copy.deepcopy(RULESET)
    opened["nftables"].append({"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 99,
                                        "expr": [{"match": {"op": "==", "left": {"payload": {
                                            "protocol": "tcp", "field": "dport"}}, "right": 22}},
                                                 {"accept": None}]}})
    ok, text = nftables.ssh_only_from(opened, ["198.18.0.0/24"], {22})
    assert not ok and "rule handle 99 accepts tcp/22 from any source" in text


# --- the CLI -----------------------------------------------------------------------------------------


def write_evidence(directory: Path, catalogue: Catalogue, hosts: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("web1", "db1"):
        (directory / f"{name}.json").write_text(json.dumps(complete(catalogue, evidence())), encoding="utf-8")
    (directory / "_hosts.json").write_text(json.dumps(hosts), encoding="utf-8")


HOSTS = {"hosts": {
    "web1": {"level": 3, "admin_subnets": ["198.18.0.0/24"], "exceptions": []},
    "db1": {"level": "2", "admin_subnets": ["198.18.0.0/24"],
            "exceptions": [{"control": "PS-SSH-04", "reason": "x", "expires": "2099-12-31", "approved_by": "A"}]},
}, "failed_hosts": []}


def test_cli_evaluate_writes_results_and_summary(tmp_path: Path, catalogue: Catalogue,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_evidence(tmp_path / "evidence", catalogue, HOSTS)
    rc = main(["audit", "evaluate", "--catalogue", str(catalogue.directory), "--evidence",
               str(tmp_path / "evidence"), "--results", str(tmp_path / "results")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "audit of 2 host(s)" in out and "web1" in out
    web1 = json.loads((tmp_path / "results" / "web1.json").read_text())
    assert web1["host"] == "web1" and web1["level"] == 3 and web1["collected_at"] == "2026-11-25T01:00:00Z"
    assert web1["counts"]["pass"] == len(catalogue.controls)
    first = web1["results"][0]
    assert set(first) >= {"id", "title", "status", "expected", "actual", "evidence", "reason"}
    assert set(first["title"]) == {"vi", "en"}
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["hosts"]["db1"]["level"] == 2
    assert summary["by_control"]["PS-SSH-04"]["pass"] == 2
    assert summary["hosts_without_evidence"] == {}
    assert not list((tmp_path / "results").glob(".*"))  # no temp file left


def test_cli_evaluate_reports_hosts_without_evidence(tmp_path: Path, catalogue: Catalogue,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    hosts = copy.deepcopy(HOSTS)
    hosts["failed_hosts"] = ["gw1"]
    write_evidence(tmp_path / "evidence", catalogue, hosts)
    rc = main(["audit", "evaluate", "--catalogue", str(catalogue.directory), "--evidence",
               str(tmp_path / "evidence"), "--results", str(tmp_path / "results")])
    assert rc == 1
    assert "gw1: not audited" in capsys.readouterr().err
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert "gw1" in summary["hosts_without_evidence"]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda d: (d / "db1.json").write_text("{not json"), "db1.json: the evidence is not JSON"),
        (lambda d: (d / "db1.json").write_text("[]"), "db1.json: not collector evidence"),
        (lambda d: (d / "_hosts.json").write_text(json.dumps({"hosts": {"db1": {"level": 9}}})),
         "_hosts.json: db1: level: security level 9"),
        (lambda d: (d / "_hosts.json").write_text(json.dumps({"hosts": {"db1": {"level": 2, "exceptions": [
            {"control": "PS-SSH-4", "reason": "x", "expires": "2099-12-31", "approved_by": "A"}]}}})),
         "provsec_control_exceptions[0]: control:"),
        (lambda d: (d / "_hosts.json").write_text(json.dumps({"hosts": {"db1": {"level": 2, "exceptions": [
            {"control": "PS-SSH-04", "reason": "x", "expires": "31/12/2099", "approved_by": "A"}]}}})),
         "expires: '31/12/2099' is not a date YYYY-MM-DD"),
        (lambda d: (d / "_hosts.json").write_text(json.dumps({"hosts": {"db1": {"level": 2, "exceptions": [
            {"control": "PS-SSH-04", "reason": "x", "expires": "2099-12-31"}]}}})),
         "needs exactly the keys control, reason, expires, approved_by"),
        (lambda d: (d / "_hosts.json").unlink(), "hosts file not found"),
    ],
)
def test_cli_evaluate_bad_input_names_it_and_writes_nothing(
    tmp_path: Path, catalogue: Catalogue, capsys: pytest.CaptureFixture[str], break_it: Any, message: str,
) -> None:
    write_evidence(tmp_path / "evidence", catalogue, HOSTS)
    break_it(tmp_path / "evidence")
    rc = main(["audit", "evaluate", "--catalogue", str(catalogue.directory), "--evidence",
               str(tmp_path / "evidence"), "--results", str(tmp_path / "results")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("provsec: error: ") and message in err
    assert not (tmp_path / "results").exists()


def test_cli_checks_output(tmp_path: Path, catalogue: Catalogue) -> None:
    out = tmp_path / "checks.json"
    assert main(["audit", "checks", "--catalogue", str(catalogue.directory), "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == catalogue.checks_request()


def test_nft_ruleset_in_the_firewall_roles_shape() -> None:
    # `nft -j list ruleset` of the firewall role's layout (loaded in a scratch network namespace): ct state,
    # iif "lo", ICMP (nft drops the implied `meta l4proto icmp`), SSH from { 198.18.0.0/28 }, a scrape port
    # from one address, 443 from anywhere, a named counter.
    ruleset = json.loads((Path(__file__).parent / "data" / "nft_ruleset_firewall_role.json").read_text())
    assert nftables.input_policy_drop(ruleset)[0]
    ok, text = nftables.ssh_only_from(ruleset, ["198.18.0.0/28"], {22})
    assert ok and text.endswith("accepts tcp/22 from 198.18.0.0/28"), text
    ok, text = nftables.ssh_only_from(ruleset, ["198.18.0.0/29"], {22})
    assert not ok
    ok, text = nftables.ssh_only_from(ruleset, ["198.18.0.0/28"], {443})
    assert not ok and "accepts tcp/443 from any source" in text


def test_executables_pass_when_root_only_or_absent_and_fail_with_the_file(catalogue: Catalogue) -> None:
    doc = complete(catalogue, evidence())
    ok = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))["PS-SERVICES-09"]
    assert (ok.status, ok.evidence) == ("pass", "as → /usr/bin/x86_64-linux-gnu-as 0750 root:root")
    doc["executables"]["executables"]["as"]["mode"] = "0755"
    doc["executables"]["executables"]["gcc"] = {"exists": True, "path": "/usr/bin/x86_64-linux-gnu-gcc-12",
                                                "mode": "0750", "owner": "staff", "group": "root"}
    bad = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))["PS-SERVICES-09"]
    assert bad.status == "fail"
    assert bad.reason == ("/usr/bin/x86_64-linux-gnu-as mode 0755 allows more than 0750; "
                          "/usr/bin/x86_64-linux-gnu-gcc-12 owner staff is not root")
    for name in doc["executables"]["executables"]:
        doc["executables"]["executables"][name] = {"exists": False}
    none = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))["PS-SERVICES-09"]
    assert (none.status, none.evidence) == ("pass", "none installed: as, cc, c++, gcc, g++, clang, clang++")
    del doc["executables"]["executables"]["clang"]
    missing = results_by_id(evaluate_host(catalogue, VM, doc, TODAY))["PS-SERVICES-09"]
    assert missing.status == "fail" and "no file collected for the command clang" in missing.reason
