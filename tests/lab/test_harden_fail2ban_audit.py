"""The fail2ban and audit roles (then the firewall role, as in harden.yml) on a real lab host, web1, from fresh:
check mode is harmless, a first run hardens, a second run changes nothing; fail2ban really bans an address that
keeps failing SSH logins through nftables and never bans the admin subnet; its bans survive the firewall's
reload and an nftables restart; the audit rules and auditd.conf are written and checked offline, auditd is
enabled but not started inside nspawn; playbooks/audit.yml reports PS-FAIL2BAN-* passing and PS-AUDIT-* not
applicable (systemd-nspawn).

Run with PROVSEC_LAB_KEEP=1 on a shared lab; every play is limited to web1."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle

HOST = "web1"  # 198.18.0.23, outside the admin subnet 198.18.0.0/28
ADDRESS = "198.18.0.23"
PROBER = "198.18.0.222"  # a source outside the admin subnet that is not web1's own (fail2ban ignores itself)
ADMIN = "198.18.0.14"  # a source inside the admin subnet
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "roles_fail2ban_audit.yml"
JAIL = "/etc/fail2ban/jail.local"
RULES = "/etc/audit/rules.d/provsec.rules"


@dataclass
class Hardened:
    """The lab after the roles ran on HOST."""

    lab: LabHandle
    first_run_s: float


def play(lab: LabHandle, *args: str) -> subprocess.CompletedProcess[str]:
    """The roles' playbook on HOST."""
    return lab.play(PLAYBOOK, [HOST], *args)


def ok_run(lab: LabHandle, *args: str) -> dict[str, int]:
    """The roles' playbook on HOST, which must succeed; HOST's recap."""
    return lab.play_ok(PLAYBOOK, [HOST], *args)[HOST]


def sh(lab: LabHandle, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """command as root on HOST, through bash."""
    return lab.root(HOST, command, timeout=timeout, interpreter="bash")


def fail_logins(lab: LabHandle, source: str, count: int) -> None:
    """count SSH logins to web1 from source as a user that does not exist (sshd logs "Invalid user")."""
    one = (f"timeout 10 ssh -n -b {source} -o BatchMode=yes -o StrictHostKeyChecking=no "
           f"-o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o ConnectTimeout=5 -o LogLevel=QUIET "
           f"provsec-nosuch@{ADDRESS} true")
    sh(lab, f"for i in $(seq {count}); do {one}; done; true", timeout=30 + 12 * count)


def connects_from(lab: LabHandle, source: str) -> str:
    """A new TCP connection from source to web1's SSH port: "open" or the error."""
    code = (f"import socket\ns = socket.socket(); s.settimeout(5); s.bind(({source!r}, 0))\n"
            f"try:\n    s.connect(({ADDRESS!r}, 22)); print('open')\n"
            "except OSError as e:\n    print(type(e).__name__)\n")
    return sh(lab, f"python3 -c {shlex.quote(code)}").stdout.strip()


def banned(lab: LabHandle) -> tuple[str, str]:
    """fail2ban's list of banned addresses of jail sshd, and the elements of its nftables set."""
    jail = sh(lab, "fail2ban-client status sshd").stdout
    found = re.search(r"Banned IP list:\s*(.*)$", jail, re.MULTILINE)
    nft = sh(lab, "nft list set inet f2b-table addr-set-sshd 2>/dev/null | grep elements").stdout
    return (found.group(1).strip() if found else ""), nft


def wait_banned(lab: LabHandle, seconds: int = 30) -> tuple[str, str]:
    """Poll (bounded) until PROBER is banned in fail2ban and in the nftables set."""
    state = ("", "")
    for _ in range(seconds):
        state = banned(lab)
        if PROBER in state[0] and PROBER in state[1]:
            break
        time.sleep(1)
    return state


@pytest.fixture(scope="module")
def hardened(lab: LabHandle) -> Iterator[Hardened]:
    lab.reset_waiting(HOST)
    # --check --diff on a fresh host: succeeds and installs or writes nothing.
    ok_run(lab, "--check", "--diff")
    wrote = sh(lab, "test -e /etc/fail2ban || test -e /etc/audit || dpkg -s auditd >/dev/null 2>&1 "
                    "|| dpkg -s fail2ban >/dev/null 2>&1")
    assert wrote.returncode != 0, "check mode installed or wrote something"
    started = time.monotonic()
    ok_run(lab)
    first = time.monotonic() - started
    print(f"\nfail2ban+audit+firewall, first run on {HOST}: {first:.1f} s")
    yield Hardened(lab, first)


def test_a_second_run_changes_nothing(hardened: Hardened) -> None:
    started = time.monotonic()
    counts = ok_run(hardened.lab)
    print(f"\nsecond run: {time.monotonic() - started:.1f} s (first {hardened.first_run_s:.1f} s)")
    assert counts["changed"] == 0, counts


def test_the_jail_is_ours_alone_and_loaded(hardened: Hardened) -> None:
    lab = hardened.lab
    jail = sh(lab, f"cat {JAIL}").stdout
    for line in ("banaction = nftables-multiport", "banaction_allports = nftables-allports", "backend = systemd",
                 "maxretry = 5", "bantime.increment = true", "[sshd]\nenabled = true"):
        assert line in jail, f"{line!r} not in {JAIL}:\n{jail}"
    # jail.conf is the package's, untouched (dpkg lists modified conffiles)
    assert "jail.conf" not in sh(lab, "dpkg --verify fail2ban").stdout
    # what the running server uses
    assert sh(lab, "systemctl is-active fail2ban").stdout.strip() == "active"
    ignore = sh(lab, "fail2ban-client get sshd ignoreip").stdout
    assert "198.18.0.0/28" in ignore and "127.0.0.0/8" in ignore, ignore
    assert sh(lab, "fail2ban-client get sshd maxretry").stdout.strip() == "5"
    assert "nftables-multiport" in sh(lab, "fail2ban-client get sshd actions").stdout


def test_an_old_jail_file_and_a_stopped_fail2ban_are_put_right(hardened: Hardened) -> None:
    # The re-run reads by presence whether the jail file of earlier provsec versions exists and whether fail2ban is
    # enabled and running: both must still be acted on.
    lab = hardened.lab
    old = "/etc/fail2ban/jail.d/provsec.conf"
    assert sh(lab, f"printf '[sshd]\\nmaxretry = 9\\n' > {old} && systemctl stop fail2ban").returncode == 0
    counts = ok_run(lab)
    assert counts["changed"] >= 1, counts
    assert sh(lab, f"test -e {old}").returncode != 0, f"{old} is still there"
    assert sh(lab, "systemctl is-active fail2ban").stdout.strip() == "active"
    assert sh(lab, "fail2ban-client get sshd maxretry").stdout.strip() == "5"


@pytest.fixture
def sources(hardened: Hardened) -> Iterator[LabHandle]:
    """PROBER and ADMIN as extra addresses of web1 (on lo, so nothing reaches the bridge); undone afterwards,
    with every ban lifted and the firewall's table loaded again."""
    lab = hardened.lab
    assert sh(lab, f"ip addr add {PROBER}/32 dev lo && ip addr add {ADMIN}/32 dev lo").returncode == 0
    try:
        yield lab
    finally:
        sh(lab, f"fail2ban-client unban --all; ip addr del {PROBER}/32 dev lo; ip addr del {ADMIN}/32 dev lo; "
                "nft list table inet provsec_filter >/dev/null 2>&1 || nft -f /etc/nftables.conf")


def test_fail2ban_bans_a_prober_through_nftables_and_never_an_admin(sources: LabHandle) -> None:
    lab = sources
    # From the admin subnet: failures are seen, and ignored.
    fail_logins(lab, ADMIN, 7)
    ignored = ""
    for _ in range(20):
        ignored = sh(lab, f"grep -c 'Ignore {ADMIN} by ip' /var/log/fail2ban.log").stdout.strip()
        if ignored.isdigit() and int(ignored) >= 5:
            break
        time.sleep(1)
    assert ignored.isdigit() and int(ignored) >= 5, f"fail2ban did not see the admin's failures: {ignored!r}"
    assert ADMIN not in banned(lab)[0]
    assert connects_from(lab, ADMIN) == "open"

    # From outside it: banned after maxretry failures, in fail2ban and in nftables, and SSH refused.
    assert connects_from(lab, PROBER) == "open"
    fail_logins(lab, PROBER, 7)
    jail, nft = wait_banned(lab)
    assert PROBER in jail and PROBER in nft, f"not banned: jail {jail!r}, nft {nft!r}"
    assert connects_from(lab, PROBER) == "ConnectionRefusedError"
    assert connects_from(lab, ADDRESS) == "open"  # sshd is up: the refusal is the ban

    # The firewall role loading its table again (here: after it was removed) leaves fail2ban's table alone.
    assert sh(lab, "nft delete table inet provsec_filter").returncode == 0
    counts = ok_run(lab, "--tags", "firewall")
    assert counts["changed"] >= 1, counts
    assert "table inet provsec_filter" in sh(lab, "nft list tables").stdout
    jail, nft = banned(lab)
    assert PROBER in jail and PROBER in nft, f"the firewall's load removed the ban: {nft!r}"
    assert connects_from(lab, PROBER) == "ConnectionRefusedError"

    # `systemctl restart nftables` flushes every table; fail2ban restarts with it and puts the ban back.
    assert sh(lab, "systemctl restart nftables").returncode == 0
    jail, nft = wait_banned(lab)
    assert PROBER in jail and PROBER in nft, f"ban lost on an nftables restart: jail {jail!r}, nft {nft!r}"
    assert connects_from(lab, PROBER) == "ConnectionRefusedError"

    # Unbanned, it can connect again.
    assert sh(lab, f"fail2ban-client set sshd unbanip {PROBER}").returncode == 0
    assert connects_from(lab, PROBER) == "open"


def test_audit_rules_and_settings_are_written_and_auditd_waits_for_a_kernel_of_its_own(hardened: Hardened) -> None:
    lab = hardened.lab
    rules = sh(lab, f"cat {RULES}").stdout
    for key in ("identity", "time-change", "scope", "logins", "perm_mod", "mounts", "session", "delete",
                "MAC-policy", "kernel_modules", "user_emulation", "access", "system-locale"):
        assert f"-k {key}\n" in rules, f"no rule with key {key}"
    assert "-w /etc/shadow -p wa -k identity" in rules
    assert re.search(r"^-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change$", rules,
                     re.MULTILINE)
    assert "-F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change" in rules
    assert rules.rstrip().endswith("-e 2")  # web1 is cấp độ 3: rules immutable until reboot
    # augenrules merged them (offline) into the file auditd loads at start
    merged = sh(lab, "cat /etc/audit/audit.rules").stdout
    assert "-k identity" in merged and merged.rstrip().endswith("-e 2")
    conf = sh(lab, "cat /etc/audit/auditd.conf").stdout
    assert re.search(r"^max_log_file_action = KEEP_LOGS$", conf, re.MULTILINE)
    assert re.search(r"^admin_space_left_action = SINGLE$", conf, re.MULTILINE)
    # enabled, but skipped inside the container (condition), not failing or restarting in a loop
    shown = sh(lab, "systemctl show auditd -p UnitFileState -p ActiveState -p ConditionResult").stdout.split()
    state = dict(line.split("=", 1) for line in shown)
    assert state == {"ActiveState": "inactive", "UnitFileState": "enabled", "ConditionResult": "no"}, state
    assert sh(lab, "systemctl is-system-running").stdout.strip() == "running"


def test_a_faulty_file_is_refused_before_it_is_installed(hardened: Hardened) -> None:
    lab = hardened.lab
    before = sh(lab, f"sha1sum {RULES} {JAIL}").stdout
    bad = play(lab, "--tags", "audit_rules", "-e", "audit_sudo_log_file=var/log/sudo.log")
    assert bad.returncode != 0 and "a watch needs an absolute path" in bad.stdout, bad.stdout[-3000:]
    bad = play(lab, "--tags", "fail2ban_jail", "-e", "fail2ban_banaction=nftables-nosuch")
    assert bad.returncode != 0 and "Unable to read action" in bad.stdout, bad.stdout[-3000:]
    assert sh(lab, f"sha1sum {RULES} {JAIL}").stdout == before
    assert sh(lab, "systemctl is-active fail2ban").stdout.strip() == "active"


def test_the_audit_reports_fail2ban_passing_and_auditd_not_applicable(hardened: Hardened, tmp_path: Path) -> None:
    results = hardened.lab.audit([HOST], tmp_path, unchanged=True)[HOST]
    for cid in ("PS-FAIL2BAN-01", "PS-FAIL2BAN-02", "PS-FAIL2BAN-03"):
        assert results[cid]["status"] == "pass", results[cid]
    assert "/etc/fail2ban/jail.local" in results["PS-FAIL2BAN-03"]["evidence"]
    audit = sorted(cid for cid in results if cid.startswith("PS-AUDIT-"))
    assert audit[:5] == [f"PS-AUDIT-0{n}" for n in range(1, 6)], audit
    for cid in audit:
        assert results[cid]["status"] == "not_applicable", results[cid]
        assert "systemd-nspawn" in results[cid]["reason"], results[cid]
