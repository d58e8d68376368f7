"""Role logging on real lab hosts: mon1 is the central log host, bak1 forwards to it over mutual TLS.

Proven here: check mode on fresh hosts writes nothing; a first run sets journald's retention and the forwarding,
a second run changes nothing; a message logged on bak1 is stored on mon1 under bak1's name; messages logged
while mon1's rsyslog is down arrive once it is back (none lost); a TLS client without a certificate from the
provincial CA is refused while the same line with bak1's certificate is stored; the log port is closed to an
address that is not a managed host; received logs older than the level's retention are deleted and younger
ones kept; the audit passes PS-LOGGING-01 to -04 on both hosts.

Only mon1 and bak1 are used; both are reset first."""

from __future__ import annotations

import math
import re
import secrets
import shlex
import socket
import time
from pathlib import Path

import pytest
from labfixture import REPO, LabHandle

SERVER, CLIENT = "mon1", "bak1"
HOSTS = (SERVER, CLIENT)
PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "roles_pki_logging.yml"
REMOTE = "/var/log/remote"


def play(lab: LabHandle, *args: str) -> dict[str, dict[str, int]]:
    """The roles' playbook on HOSTS, which must succeed; the recap."""
    return lab.play_ok(PLAYBOOK, HOSTS, *args)


def split(token: str) -> str:
    """token as a shell word that never appears whole on a command line: sudo logs command lines, and bak1's
    logs travel to the log host, so a whole token there would be "stored" by the very command that looks."""
    return f"'{token[:9]}''{token[9:]}'"


def stored(lab: LabHandle, token: str) -> bool:
    return lab.root(SERVER, f"grep -rqF {split(token)} {REMOTE}").returncode == 0


def wait_stored(lab: LabHandle, token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stored(lab, token):
            return True
        time.sleep(1)
    return False


@pytest.fixture(scope="module")
def logging_lab(lab: LabHandle) -> LabHandle:
    for host in HOSTS:
        lab.reset(host)
    play(lab, "--check", "--diff")
    for host in HOSTS:
        assert lab.root(host, "test -e /etc/systemd/journald.conf.d/60-provsec.conf "
                              "|| test -e /etc/rsyslog.d/60-provsec.conf").returncode == 1, f"{host}: check mode wrote"
    started = time.monotonic()
    play(lab)
    print(f"\npki+logging+firewall, first run on {', '.join(HOSTS)}: {time.monotonic() - started:.1f} s")
    return lab


def test_second_run_changes_nothing(logging_lab: LabHandle) -> None:
    counts = play(logging_lab)
    assert {h: c["changed"] for h, c in counts.items()} == dict.fromkeys(HOSTS, 0)


def test_a_message_reaches_the_log_host_under_the_senders_name(logging_lab: LabHandle) -> None:
    token = f"provsec-forward-{secrets.token_hex(6)}"
    assert logging_lab.ssh(CLIENT, f"logger -p auth.warning {split(token)}").returncode == 0
    assert wait_stored(logging_lab, token, 30), f"{token} never reached {SERVER}"
    where = logging_lab.root(SERVER, f"grep -rlF {split(token)} {REMOTE}").stdout.strip()
    assert re.fullmatch(rf"{REMOTE}/{CLIENT}(\.[a-z.]+)?/\d{{4}}-\d\d-\d\d\.log", where), where
    mode = logging_lab.root(SERVER, f"stat -c '%a %U %G' {shlex.quote(where)}").stdout.split()
    assert mode == ["640", "root", "adm"]
    # the log host keeps what it receives apart from its own logs
    assert logging_lab.root(SERVER, f"grep -qF {split(token)} /var/log/syslog /var/log/auth.log").returncode == 1


def test_messages_logged_while_the_log_host_is_down_arrive_later(logging_lab: LabHandle) -> None:
    # syslog.socket too: any local message (sudo's own) would start rsyslog again through it
    assert logging_lab.root(SERVER, "systemctl stop syslog.socket rsyslog.service").returncode == 0
    tokens = [f"provsec-queued-{i}-{secrets.token_hex(4)}" for i in range(20)]
    try:
        logged = logging_lab.ssh(CLIENT, " && ".join(f"logger {split(t)}" for t in tokens))
        assert logged.returncode == 0
        time.sleep(2)
        assert not any(stored(logging_lab, t) for t in tokens[:1])
    finally:
        assert logging_lab.root(SERVER, "systemctl start syslog.socket rsyslog.service").returncode == 0
    assert wait_stored(logging_lab, tokens[-1], 90), "the queued messages never arrived"
    missing = [t for t in tokens if not stored(logging_lab, t)]
    assert missing == [], f"lost while the log host was down: {missing}"


def test_only_clients_with_a_certificate_from_the_provincial_ca_are_heard(logging_lab: LabHandle) -> None:
    address = "198.18.0.20"
    unsigned, signed = (f"provsec-tls-{kind}-{secrets.token_hex(5)}" for kind in ("nocert", "cert"))
    send = ("printf '<13>1 - bak1 provsec - - - %s\\n' {token} | timeout 10 openssl s_client -quiet -connect "
            f"{address}:6514 -CAfile /etc/provsec/pki/ca.crt {{cert}} >/dev/null 2>&1; true")
    # a self-signed certificate: TLS works, but the provincial CA did not sign it
    selfsigned = ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bak1 "
                  "-addext subjectAltName=DNS:bak1 -keyout /tmp/ps-rogue.key -out /tmp/ps-rogue.crt 2>/dev/null")
    assert logging_lab.root(CLIENT, selfsigned).returncode == 0
    try:
        rogue = "-cert /tmp/ps-rogue.crt -key /tmp/ps-rogue.key"
        logging_lab.root(CLIENT, send.format(token=split(unsigned), cert=rogue))
        logging_lab.root(CLIENT, send.format(token=split(signed),
                                             cert="-cert /etc/provsec/pki/host.crt -key /etc/provsec/pki/host.key"))
    finally:
        logging_lab.root(CLIENT, "rm -f /tmp/ps-rogue.key /tmp/ps-rogue.crt")
    assert wait_stored(logging_lab, signed, 20), "a line sent with bak1's certificate was not stored"
    assert not stored(logging_lab, unsigned), "a client with a self-signed certificate was heard"


def test_the_log_port_is_closed_to_an_address_that_is_not_a_managed_host(logging_lab: LabHandle) -> None:
    # the test process runs on the control node (198.18.0.1): not a managed host, so not in group:all
    with pytest.raises(OSError), socket.create_connection(("198.18.0.20", 6514), timeout=3):
        pass
    listening = logging_lab.root(SERVER, "ss -Htln 'sport = :6514' | wc -l").stdout.strip()
    assert listening != "0", "rsyslog does not listen on 6514 at all"


def test_received_logs_are_kept_for_the_retention_then_deleted(logging_lab: LabHandle) -> None:
    rule = logging_lab.root(SERVER, "cat /etc/tmpfiles.d/provsec-remote-logs.conf").stdout
    days = int(re.search(r" m:(\d+)d$", rule, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
    journal = logging_lab.root(SERVER, "cat /etc/systemd/journald.conf.d/60-provsec.conf").stdout
    months = int(re.search(r"^MaxRetentionSec=(\d+)month$", journal, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert months in (1, 3)  # cấp độ 2 or 3
    assert days >= math.ceil(months * 30.44), f"{months} month(s) required, {days} days kept"
    old, young = f"{REMOTE}/ps-retention/old.log", f"{REMOTE}/ps-retention/young.log"
    prepare = (f"install -d -m 0750 {REMOTE}/ps-retention && touch -d '{days + 2} days ago' {old} "
               f"&& touch -d '{days - 2} days ago' {young}")
    assert logging_lab.root(SERVER, prepare).returncode == 0
    try:
        assert logging_lab.root(SERVER, "systemd-tmpfiles --clean /etc/tmpfiles.d/provsec-remote-logs.conf"
                                ).returncode == 0
        assert logging_lab.root(SERVER, f"test -e {old}").returncode == 1, "a file older than the retention stayed"
        assert logging_lab.root(SERVER, f"test -e {young}").returncode == 0, "a file within the retention went"
    finally:
        logging_lab.root(SERVER, f"rm -rf {REMOTE}/ps-retention")


def test_the_audit_passes_the_logging_controls(logging_lab: LabHandle, tmp_path: Path) -> None:
    by_host = logging_lab.audit(HOSTS, tmp_path)
    for host in HOSTS:
        results = by_host[host]
        for cid in ("PS-LOGGING-01", "PS-LOGGING-02", "PS-LOGGING-03", "PS-LOGGING-04"):
            assert results[cid]["status"] == "pass", (host, results[cid])
