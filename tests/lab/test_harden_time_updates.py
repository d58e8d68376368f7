"""The time and updates roles on a real lab host (agency1 only), from a fresh state with systemd-timesyncd
installed, as on a Debian VM: without time servers the play stops before changing anything; check mode is
harmless; a first run configures chrony (parsed by chronyd itself) and unattended-upgrades (parsed by apt); a second
run changes nothing; a broken chrony value is refused by chronyd's parser and leaves the old file; timesyncd is
masked and gone; unattended-upgrade allows the security archive only; the audit passes PS-TIME-01/03/04 and
PS-UPDATES-01/02 and reports PS-TIME-02 not applicable in the container.

Run with PROVSEC_LAB_KEEP=1 on a shared lab; every play is limited to agency1."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle, recap

HOST = "agency1"
NTP_SERVER = "198.18.0.20"  # mon1, as the lab inventory says
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "roles_time_updates.yml"
SERVERS = json.dumps({"provsec_ntp_servers": [NTP_SERVER]})
CHRONY_CONF = "/etc/chrony/chrony.conf"
APT_CONF = "/etc/apt/apt.conf.d/60provsec-unattended-upgrades"


@dataclass
class Applied:
    """The lab after the roles ran on HOST."""

    lab: LabHandle
    first_run_s: float


def play(lab: LabHandle, *args: str) -> subprocess.CompletedProcess[str]:
    """The roles' playbook on HOST (no time server given)."""
    return lab.play(PLAYBOOK, [HOST], *args)


def ok_run(lab: LabHandle, *args: str) -> dict[str, int]:
    """The roles' playbook on HOST with the time server, which must succeed; HOST's recap."""
    return lab.play_ok(PLAYBOOK, [HOST], "-e", SERVERS, *args)[HOST]


def sh(lab: LabHandle, command: str) -> subprocess.CompletedProcess[str]:
    """command as root on HOST."""
    return lab.root(HOST, command)


def installed(lab: LabHandle, package: str) -> bool:
    status = sh(lab, f"dpkg-query -W -f '${{db:Status-Status}}' {package} 2>/dev/null").stdout
    return status == "installed"


@pytest.fixture(scope="module")
def applied(lab: LabHandle) -> Iterator[Applied]:
    lab.reset_waiting(HOST)
    # A Debian VM's default time daemon, to be replaced.
    prep = sh(lab, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd-timesyncd >/dev/null")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    assert sh(lab, "systemctl is-enabled systemd-timesyncd").stdout.strip() == "enabled"

    # No time server in the inventory (the lab's names mon1; empty it): the play stops, naming the variable,
    # before changing anything.
    res = play(lab, "-e", json.dumps({"provsec_ntp_servers": []}))
    assert res.returncode != 0
    assert "provsec_ntp_servers" in res.stdout and "time_ntp_servers is empty" in res.stdout, res.stdout[-3000:]
    assert recap(res.stdout)[HOST]["changed"] == 0
    assert sh(lab, "systemctl is-enabled systemd-timesyncd").stdout.strip() == "enabled"

    # --check --diff on the fresh host: succeeds and installs or writes nothing.
    ok_run(lab, "--check", "--diff")
    assert not installed(lab, "chrony") and not installed(lab, "unattended-upgrades")
    assert sh(lab, f"test -e {APT_CONF}").returncode == 1

    started = time.monotonic()
    ok_run(lab)
    first = time.monotonic() - started
    print(f"\nfirst run on {HOST}: {first:.1f} s")
    yield Applied(lab, first)


def test_a_second_run_changes_nothing(applied: Applied) -> None:
    started = time.monotonic()
    counts = ok_run(applied.lab)
    print(f"\nsecond run: {time.monotonic() - started:.1f} s (first {applied.first_run_s:.1f} s)")
    assert counts["changed"] == 0, counts


def test_chronyd_parses_the_provincial_server_only_and_serves_no_client(applied: Applied) -> None:
    lab = applied.lab
    parsed = sh(lab, "chronyd -p")  # chronyd's own parser, on the installed /etc/chrony/chrony.conf
    assert parsed.returncode == 0, parsed.stderr
    lines = parsed.stdout.splitlines()
    sources = [line for line in lines if line.split()[:1] in (["server"], ["pool"], ["peer"], ["sourcedir"])]
    assert sources == [f"server {NTP_SERVER} iburst"], sources
    for wanted in ("port 0", "cmdport 0", "makestep 1.0 3", "rtcsync"):
        assert wanted in lines, f"{wanted!r} not in chronyd -p:\n{parsed.stdout}"
    # enabled at boot; inside nspawn not started: chrony.service's ConditionCapability=CAP_SYS_TIME is not met
    assert sh(lab, "systemctl is-enabled chrony").stdout.strip() == "enabled"
    show = sh(lab, "systemctl show -p ActiveState,ConditionResult chrony").stdout.split()
    assert sorted(show) == ["ActiveState=inactive", "ConditionResult=no"], show
    bounding = sh(lab, "sed -n 's/^CapBnd:[[:space:]]*//p' /proc/1/status").stdout.strip()
    assert int(bounding, 16) >> 25 & 1 == 0, f"CAP_SYS_TIME in PID 1's bounding set ({bounding})"


def test_a_broken_chrony_value_is_refused_and_the_file_kept(applied: Applied) -> None:
    lab = applied.lab
    before = sh(lab, f"sha1sum {CHRONY_CONF}").stdout
    res = play(lab, "-e", SERVERS, "-e", json.dumps({"time_chrony_extra_config": ["makestep 1"]}), "--tags", "time")
    assert res.returncode != 0
    assert "Missing arguments for makestep directive" in res.stdout, res.stdout[-3000:]
    assert sh(lab, f"sha1sum {CHRONY_CONF}").stdout == before


def test_timesyncd_is_masked_and_removed(applied: Applied) -> None:
    lab = applied.lab
    assert sh(lab, "systemctl is-enabled systemd-timesyncd").stdout.strip() == "masked"
    assert sh(lab, "systemctl is-active systemd-timesyncd").stdout.strip() == "inactive"
    assert not installed(lab, "systemd-timesyncd")  # chrony's package conflicts with it


def test_apt_reads_security_only_daily_and_no_reboot(applied: Applied) -> None:
    lab = applied.lab
    dump = sh(lab, "apt-config dump").stdout
    patterns = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', dump, re.MULTILINE)
    assert patterns == ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security"], patterns
    for line in ('APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";',
                 'Unattended-Upgrade::Automatic-Reboot "false";',
                 'Unattended-Upgrade::Remove-Unused-Dependencies "true";'):
        assert line in dump.splitlines(), line
    assert "Unattended-Upgrade::Allowed-Origins::" not in dump
    assert sh(lab, "systemctl is-enabled unattended-upgrades apt-daily.timer apt-daily-upgrade.timer"
              ).stdout.split() == ["enabled"] * 3
    assert sh(lab, "systemctl is-active unattended-upgrades").stdout.strip() == "active"
    assert "$nrconf{restart} = 'l';" in sh(lab, "cat /etc/needrestart/conf.d/60provsec.conf").stdout
    # Automatic reboot only when asked, then at the time given (check mode: shown, not written).
    res = play(lab, "-e", SERVERS, "--tags", "updates", "--check", "--diff",
               "-e", json.dumps({"updates_automatic_reboot": True, "updates_automatic_reboot_time": "03:30"}))
    assert res.returncode == 0, res.stdout[-3000:]
    assert '+Unattended-Upgrade::Automatic-Reboot "true";' in res.stdout
    assert '+Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in res.stdout
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in sh(lab, f"cat {APT_CONF}").stdout


def test_unattended_upgrade_picks_from_the_security_archive_only(applied: Applied) -> None:
    lab = applied.lab
    # A dry run on the lab's mirror: bounded, since on a busy machine it checks every upgradable package slowly;
    # the origins, the archives it rules out and the first packages it checks come early.
    res = sh(lab, "timeout 20 unattended-upgrade --dry-run -d 2>&1")
    assert res.returncode in (0, 124), res.stdout[-3000:]
    out = res.stdout
    allowed = re.findall(r"^Allowed origins are: (.*)$", out, re.MULTILINE)
    assert allowed == ["origin=Debian,codename=bookworm-security,label=Debian-Security"], allowed
    ruled_out = re.findall(r"^Marking not allowed .*?filename:'([^']+)'", out, re.MULTILINE)
    assert any("_dists_bookworm-updates_" in f for f in ruled_out), ruled_out
    assert any("_dists_bookworm_main_" in f for f in ruled_out), ruled_out
    assert not any("bookworm-security" in f for f in ruled_out), ruled_out
    for line in re.findall(r"^Checking: .*$", out, re.MULTILINE):
        assert "label:'Debian-Security'" in line, line


def test_the_audit_passes_time_and_updates(applied: Applied, tmp_path: Path) -> None:
    results = applied.lab.audit([HOST], tmp_path)[HOST]
    for cid in ("PS-TIME-01", "PS-TIME-03", "PS-TIME-04", "PS-UPDATES-01", "PS-UPDATES-02"):
        assert results[cid]["status"] == "pass", results[cid]
    assert results["PS-TIME-03"]["evidence"] == f"chrony sources: server {NTP_SERVER}"
    assert results["PS-TIME-02"]["status"] == "not_applicable", results["PS-TIME-02"]
    assert "systemd-nspawn" in results["PS-TIME-02"]["reason"]
