"""The integrity role (AIDE) on a real lab host (db1 only): check mode is harmless on a fresh host; the first run
installs AIDE without a mail server and starts the baseline build in the background without waiting for it; a
second run while the build is still running starts no second build and changes nothing; the baseline becomes
root:root 0600; Debian's daily check, started by its own unit, reports a changed and an added file under /etc by
path in the journal and nothing else; a broken AIDE rule never reaches /etc/aide; the audit passes
PS-INTEGRITY-01 and -02.

Run with PROVSEC_LAB_KEEP=1 on a shared lab; every play is limited to db1."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle

HOST = "db1"
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "roles_integrity.yml"
DB = "/var/lib/aide/aide.db"
UNIT = "provsec-aide-init"
CANARY = "/etc/provsec-integrity-canary"  # in the baseline, then changed
ADDED = "/etc/provsec-integrity-added"  # not in the baseline
INIT_WAIT_S = 300


@dataclass
class Integrity:
    """The host after the role ran twice and the baseline was built."""

    lab: LabHandle
    first_run_s: float
    second_run: dict[str, int]
    second_run_s: float
    init_was_running: bool
    init_wait_s: float
    init_run_time: str


def play(lab: LabHandle, *args: str) -> subprocess.CompletedProcess[str]:
    """The role's playbook on HOST."""
    return lab.play(PLAYBOOK, [HOST], *args)


def ok_run(lab: LabHandle, *args: str) -> dict[str, int]:
    """The role's playbook on HOST, which must succeed; HOST's recap."""
    return lab.play_ok(PLAYBOOK, [HOST], *args)[HOST]


def sh(lab: LabHandle, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """command as root on HOST."""
    return lab.root(HOST, command, timeout=timeout)


@pytest.fixture(scope="module")
def integrity(lab: LabHandle) -> Iterator[Integrity]:
    lab.reset_waiting(HOST)
    # --check --diff on a fresh host: succeeds and installs or writes nothing.
    ok_run(lab, "--check", "--diff")
    assert sh(lab, "dpkg-query -W -f '${db:Status-Status}' aide").stdout != "installed"
    assert sh(lab, "test -e /etc/aide || test -e /usr/local/sbin/provsec-aide-init").returncode == 1

    # A file under /etc that the baseline will hold, to change later.
    assert sh(lab, f"echo 'provsec integrity canary' > {CANARY}").returncode == 0

    started = time.monotonic()
    ok_run(lab)
    first = time.monotonic() - started

    # The play did not wait for the baseline: the build is still running; a second run now starts no second one.
    init_was_running = sh(lab, f"systemctl is-active {UNIT}.service").stdout.strip() == "active"
    started = time.monotonic()
    second = ok_run(lab)
    second_s = time.monotonic() - started

    # Wait (bounded) for the baseline.
    started = time.monotonic()
    while sh(lab, f"test -f {DB} && ! systemctl -q is-active {UNIT}.service").returncode != 0:
        if time.monotonic() - started > INIT_WAIT_S:
            log = sh(lab, f"journalctl -u {UNIT} --no-pager | tail -20").stdout
            pytest.fail(f"no AIDE baseline after {INIT_WAIT_S} s:\n{log}")
        time.sleep(5)
    waited = time.monotonic() - started
    run_time = re.search(r"run time: ([^)]*)", sh(lab, "cat /var/log/aide/aideinit.log").stdout)
    print(f"\nfirst run {first:.1f} s; second run {second_s:.1f} s, changed={second['changed']} "
          f"(baseline build running: {init_was_running}); waited {waited:.0f} s more for the baseline; "
          f"aide --init run time {run_time.group(1) if run_time else '?'}")
    yield Integrity(lab, first, second, second_s, init_was_running, waited, run_time.group(1) if run_time else "")


def test_a_second_run_during_the_baseline_build_changes_nothing(integrity: Integrity) -> None:
    assert integrity.init_was_running, "the baseline build had already finished: the play waited for it?"
    assert integrity.second_run["changed"] == 0, integrity.second_run
    # one build only, and it ended well
    journal = sh(integrity.lab, f"journalctl -u {UNIT} --no-pager -o cat").stdout
    assert journal.count("Started provsec-aide-init.service") == 1, journal
    assert f"AIDE baseline written: {DB}" in journal, journal
    # and once built, neither a run nor a check run has anything to do
    assert ok_run(integrity.lab)["changed"] == 0
    assert ok_run(integrity.lab, "--check", "--diff")["changed"] == 0


def test_the_baseline_is_root_only_and_no_mail_server_was_installed(integrity: Integrity) -> None:
    lab = integrity.lab
    assert sh(lab, f"stat -c '%a %U %G' {DB}").stdout.split() == ["600", "root", "root"]
    status = sh(lab, "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' exim4-daemon-light exim4-base "
                     "bsd-mailx s-nail cron 2>/dev/null").stdout
    assert " installed" not in status, status
    rules = sh(lab, "cat /etc/aide/aide.conf.d/90_provsec").stdout
    assert "!/var/log(/|$)" in rules and "!/run(/|$)" in rules
    # the drop-in is read: AIDE leaves an excluded path out and still watches /etc
    assert "negative rule" in sh(lab, "aide -c /etc/aide/aide.conf -p f:/var/log/syslog").stdout
    assert "selective rule" in sh(lab, f"aide -c /etc/aide/aide.conf -p f:{CANARY}").stdout


def test_the_daily_check_timer_is_on_with_a_random_delay(integrity: Integrity) -> None:
    lab = integrity.lab
    assert sh(lab, "systemctl is-enabled dailyaidecheck.timer").stdout.strip() == "enabled"
    assert sh(lab, "systemctl is-active dailyaidecheck.timer").stdout.strip() == "active"
    shown = sh(lab, "systemctl show dailyaidecheck.timer -p RandomizedDelayUSec -p TimersCalendar").stdout
    assert "RandomizedDelayUSec=2h" in shown and "01:50:00" in shown, shown


def test_the_daily_check_reports_changed_and_added_files_in_the_journal(integrity: Integrity) -> None:
    lab = integrity.lab
    assert sh(lab, f"echo tampered >> {CANARY} && echo new > {ADDED}").returncode == 0
    # Debian's own unit, as the timer starts it (User=_aide); it allows one start per 2 hours, hence one start here.
    since = sh(lab, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    started = time.monotonic()
    run = sh(lab, "systemctl start dailyaidecheck.service", timeout=600)
    took = time.monotonic() - started
    print(f"\ndaily check (dailyaidecheck.service): {took:.0f} s")
    journal = sh(lab, f"journalctl -u dailyaidecheck.service --since {shlex.quote(since)} --no-pager -o cat").stdout
    assert run.returncode == 0, run.stderr + journal[-3000:]
    assert sh(lab, "systemctl show -p Result --value dailyaidecheck.service").stdout.strip() == "success"
    assert "mail or s-nail not installed" not in journal and "cannot send mail" not in journal
    assert "Added and changed entries detected!" in journal, journal[-3000:]
    entries = re.findall(r"^([fdlbcps?!][ :l<>=bpugamcinHAXSEC.+-]{17}): (\S+)$", journal, re.MULTILINE)
    paths = {path for _, path in entries}
    # The two files and nothing else: nothing else changed on the host between the baseline and the check (/etc
    # itself is watched without its mtime). The root directory may show a new ctime once: overlayfs can mark the
    # container's root directory during the first full scan (a lab artifact; its ctime only).
    extra = {(flags, path) for flags, path in entries if path not in (CANARY, ADDED)}
    assert extra <= {("d =.... .c.. .. . ", "/")}, f"unexpected differences: {sorted(extra)}\n{journal[-3000:]}"
    assert paths >= {CANARY, ADDED}, entries
    assert any(flags.startswith("f+++") for flags, path in entries if path == ADDED)
    changed = next(flags for flags, path in entries if path == CANARY)
    assert changed.startswith("f >") and "H" in changed, changed  # bigger, new checksums


def test_a_broken_rule_is_refused_and_never_installed(integrity: Integrity, tmp_path: Path) -> None:
    lab = integrity.lab
    before = sh(lab, "sha1sum /etc/aide/aide.conf.d/90_provsec").stdout
    extra = tmp_path / "broken.json"
    extra.write_text(json.dumps({"integrity_extra_rules": ["/srv NoSuchGroup"]}))
    res = play(lab, "-e", f"@{extra}")
    assert res.returncode != 0
    assert "failed validation" in res.stdout or "validat" in res.stdout.lower(), res.stdout[-3000:]
    assert sh(lab, "sha1sum /etc/aide/aide.conf.d/90_provsec").stdout == before


def test_the_audit_passes_the_integrity_controls(integrity: Integrity, tmp_path: Path) -> None:
    results = integrity.lab.audit([HOST], tmp_path)[HOST]
    for cid in ("PS-INTEGRITY-01", "PS-INTEGRITY-02"):
        assert results[cid]["status"] == "pass", results[cid]
