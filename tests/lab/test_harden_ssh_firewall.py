"""harden.yml's ssh and firewall roles on a real lab host, from a weak legacy state: the baseline is reached,
runs are idempotent, and no change (even one that passes sshd -t / nft -c) locks the admin out."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labfixture import LabHandle, recap

HOST = "bak1"  # the backup repository host; web1 (outside the admin subnet, not its backup client) probes it
# bak1's backup clients here: db1 only. The firewall opens bak1's SSH port to them (role backup's meta/ports.yml);
# every play and audit of this module says so, or the firewall would change between runs.
CLIENTS = ("-e", '{"backup_clients": ["db1"]}')


def offered_methods(lab: LabHandle, user: str) -> str:
    """The authentication methods sshd offers to user (BatchMode: no password is ever typed)."""
    argv = lab.lab.ssh_argv(HOST)
    argv[-1] = f"{user}@{argv[-1].split('@')[1]}"
    res = subprocess.run([*argv, "-o", "PubkeyAuthentication=no", "true"], capture_output=True, text=True,
                         timeout=30, check=False)
    found = re.search(r"Permission denied \(([^)]*)\)", res.stderr)
    assert found, res.stderr
    return found.group(1)


def fingerprint(lab: LabHandle) -> str:
    res = lab.ssh(HOST, "sudo -n sha256sum /etc/ssh/sshd_config /etc/nftables.conf 2>/dev/null; "
                        "sudo -n nft -s list ruleset | sha256sum")
    assert res.returncode == 0, res.stderr
    return res.stdout


def audit_statuses(lab: LabHandle, where: Path) -> dict[str, dict[str, Any]]:
    """audit.yml on HOST (it must change nothing); the results by control id."""
    return lab.audit([HOST], where, *CLIENTS, unchanged=True)[HOST]


@dataclass
class Legacy:
    lab: LabHandle
    before: dict[str, dict[str, Any]]  # the audit of the legacy host, before harden.yml


@pytest.fixture(scope="module")
def legacy_hardened(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Legacy:
    lab.reset(HOST)
    legacy = lab.playbook("lab_legacy.yml", "-l", HOST)
    assert legacy.returncode == 0, legacy.stdout[-3000:]
    assert "password" in offered_methods(lab, "root")  # the legacy host really is weak
    before = audit_statuses(lab, tmp_path_factory.mktemp("audit-before"))
    started = time.monotonic()
    first = lab.playbook("harden.yml", "-l", HOST, *CLIENTS)
    print(f"\nharden.yml, first run on the legacy {HOST}: {time.monotonic() - started:.1f} s")
    assert first.returncode == 0, first.stdout[-5000:]
    return Legacy(lab, before)


@pytest.fixture(scope="module")
def hardened(legacy_hardened: Legacy) -> LabHandle:
    return legacy_hardened.lab


def test_audit_fails_the_legacy_host_and_passes_every_applicable_control_after(legacy_hardened: Legacy,
                                                                              tmp_path: Path) -> None:
    lab, before = legacy_hardened.lab, legacy_hardened.before
    failed_before = sorted(cid for cid, r in before.items() if r["status"] == "fail")
    for cid in ("PS-SSH-01", "PS-SSH-02", "PS-SERVICES-01", "PS-SERVICES-03", "PS-FIREWALL-02"):
        assert cid in failed_before, (cid, before[cid])
    # AIDE's first database is built in the background (role integrity); wait for it, bounded
    deadline = time.monotonic() + 600
    while lab.ssh(HOST, "systemctl is-active --quiet provsec-aide-init").returncode == 0:
        assert time.monotonic() < deadline, "AIDE's first database took more than 10 minutes"
        time.sleep(5)
    after = audit_statuses(lab, tmp_path)
    failing = {cid: (r.get("evidence"), r.get("reason")) for cid, r in after.items()
               if r["status"] not in ("pass", "not_applicable")}
    assert failing == {}, f"controls still failing after harden.yml: {failing}"
    for cid in failed_before:
        assert after[cid]["status"] == "pass" or "systemd-nspawn" in after[cid]["reason"], after[cid]
    print(f"\naudit of {HOST}: {len(failed_before)} controls failed before harden.yml, 0 after; "
          f"{sum(r['status'] == 'not_applicable' for r in after.values())} not applicable in the container")


def test_second_run_changes_nothing(hardened: LabHandle) -> None:
    again = hardened.playbook("harden.yml", "-l", HOST, *CLIENTS)
    assert again.returncode == 0, again.stdout[-5000:]
    assert recap(again.stdout)[HOST]["changed"] == 0, again.stdout[-5000:]


def test_root_and_passwords_are_refused_and_the_admin_still_works(hardened: LabHandle) -> None:
    assert offered_methods(hardened, "root") == "publickey"
    assert offered_methods(hardened, "labadmin") == "publickey"
    res = hardened.ssh(HOST, "sudo -n sshd -T")
    assert res.returncode == 0, res.stderr
    live = dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)
    assert live["permitrootlogin"] == "no"
    assert live["passwordauthentication"] == "no"
    assert int(live["maxauthtries"]) <= 4
    # sshd -T prints one allowgroups line per group; on bak1 role backup's meta/sshd.yml adds provsec-backup
    allowed = [line.split()[1] for line in res.stdout.splitlines() if line.startswith("allowgroups ")]
    assert allowed == ["ssh-users", "provsec-backup"], allowed
    assert "aes128-cbc" not in live["ciphers"] and "hmac-sha1" not in live["macs"].split(",")


def test_firewall_allows_ssh_from_the_admin_subnet_and_the_backup_client_only(hardened: LabHandle) -> None:
    address = "198.18.0.21"
    listener = hardened.ssh(HOST, "sudo -n systemd-run --unit=provsec-probe-http python3 -m http.server 8081")
    assert listener.returncode == 0, listener.stderr
    try:
        time.sleep(1)
        local = hardened.ssh(HOST, "timeout 5 bash -c '</dev/tcp/127.0.0.1/8081' && echo open")
        assert local.stdout.strip() == "open"  # the service runs: only the firewall stands between
        for port in (8081, 22):  # web1 (198.18.0.23) is outside the admin subnet 198.18.0.0/28
            probe = hardened.ssh("web1", f"timeout 5 bash -c '</dev/tcp/{address}/{port}' && echo open")
            # 124: timeout's own code, the SYN got no answer at all (dropped, not refused); 255 would be ssh failing
            assert probe.returncode == 124, f"port {port} from web1: rc {probe.returncode} {probe.stdout}{probe.stderr}"
        # db1, bak1's backup client, reaches its SSH port (restic over sftp), and nothing else
        for port, expected in ((22, 0), (8081, 124)):
            probe = hardened.ssh("db1", f"timeout 5 bash -c '</dev/tcp/{address}/{port}' && echo open")
            assert probe.returncode == expected, f"port {port} from db1: rc {probe.returncode} {probe.stderr}"
        ruleset = json.loads(hardened.ssh(HOST, "sudo -n nft -j list table inet provsec_filter").stdout)
        chains = [x["chain"] for x in ruleset["nftables"] if "chain" in x]
        assert any(c["name"] == "input" and c["policy"] == "drop" for c in chains)
    finally:
        hardened.ssh(HOST, "sudo -n systemctl stop provsec-probe-http")
    assert hardened.ssh(HOST, "true").returncode == 0  # the admin subnet still gets in


def test_allowgroups_without_the_admins_group_is_rolled_back(hardened: LabHandle) -> None:
    before = fingerprint(hardened)
    bad = hardened.playbook("harden.yml", "-l", HOST, *CLIENTS, "--tags", "ssh", "-e",
                            json.dumps({"ssh_allow_groups": ["break-glass-only"], "ssh_admin_users": []}))
    assert bad.returncode != 0
    assert "a new SSH login as labadmin failed" in bad.stdout
    assert "The previous configuration was restored" in bad.stdout
    assert fingerprint(hardened) == before
    assert hardened.ssh(HOST, "sudo -n true").returncode == 0


def test_a_ruleset_that_drops_the_admin_subnet_is_rolled_back(hardened: LabHandle) -> None:
    before = fingerprint(hardened)
    networks = {"admin_subnets": ["198.18.0.128/28"], "dc_ranges": ["198.18.0.0/24"],
                "agency_ranges": ["198.18.1.0/24"]}
    bad = hardened.playbook("harden.yml", "-l", HOST, *CLIENTS, "--tags", "firewall", "-e",
                            json.dumps({"provsec_networks": networks}))
    assert bad.returncode != 0
    assert "a new SSH login as labadmin failed" in bad.stdout
    assert fingerprint(hardened) == before
    assert hardened.ssh(HOST, "sudo -n true").returncode == 0
    timers = hardened.ssh(HOST, "systemctl list-timers --all --no-legend 'provsec-safeguard-*'")
    assert "provsec-safeguard" not in timers.stdout  # nothing left to fire later


def test_check_mode_on_a_fresh_host_changes_nothing(lab: LabHandle) -> None:
    lab.reset(HOST)
    before = fingerprint(lab)
    check = lab.playbook("harden.yml", "-l", HOST, *CLIENTS, "--check", "--diff")
    assert check.returncode == 0, check.stdout[-5000:]
    assert fingerprint(lab) == before
