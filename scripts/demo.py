"""`make demo`: the whole mission on the province lab, one step after the other, with what each step showed.

Harden every host and audit it, put the WAN edge's policy on gw1, deploy backups and run them, deploy monitoring
with alerts mailed to a local mailbox, deploy the daily exposure scan and review its first result, then an SSH
password-guessing burst against web1 from inside the admin subnet (the control node playing a compromised admin
workstation: the firewall lets it in, fail2ban never bans the admin subnet, so the alert is what catches it) and
the same attempt from agency1 (dropped by gw1, counted), a restore drill, and this month's reports.

Re-runnable: every playbook is idempotent, the demo's own files live in demo/ (git-ignored) and each run writes
its reports into a new dated folder. The lab stays up; `make lab-down` removes it and stops the mailbox."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from provsec.devtools.transfer import untar  # noqa: E402
from provsec.errors import ProvsecError  # noqa: E402
from provsec.lab import Lab  # noqa: E402
from provsec.lab.topology import CONTROL_ADDR  # noqa: E402

BIN = REPO / ".venv" / "bin"
INVENTORY = REPO / "inventory" / "lab"
DEMO = REPO / "demo"
MAILBOX = DEMO / "mailbox"
ON_CALL = "trucban@stttt.lab"
ALERT = "ProvsecSecuritySshBruteForce"  # what the burst must set off (exporters/rules/security.yml)
PROVSEC = "/opt/provsec/bin/provsec"  # provsec as provsec_runtime installs it on the hosts
REMOTE = "/var/lib/provsec/demo"       # on mon1: where the month's data are gathered
# db1's sample database: a provincial document-management system (ioffice), a few thousand rows
DATABASE = r"""set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends postgresql >/dev/null
systemctl start postgresql
if ! runuser -u postgres -- psql -Atqc "select 1 from pg_database where datname = 'ioffice'" | grep -q 1; then
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE DATABASE ioffice;
\c ioffice
CREATE TABLE van_ban (id serial PRIMARY KEY, so_ky_hieu text NOT NULL, trich_yeu text);
INSERT INTO van_ban (so_ky_hieu, trich_yeu)
  SELECT g || '/QĐ-UBND', 'Quyết định số ' || g || ' của Ủy ban nhân dân tỉnh' FROM generate_series(1, 5000) g;
SQL
fi
"""
STEPS = 10
started = time.monotonic()


def say(text: str) -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\ndemo: {n}/{STEPS} {text}  [{(time.monotonic() - started) / 60:.1f} min]")


def fail(text: str) -> None:
    say(f"demo: FAILED: {text}")
    sys.exit(1)


def run(argv: Sequence[str], *, timeout: float = 3600, quiet: bool = False, ok: tuple[int, ...] = (0,),
        stdin: bytes | None = None) -> bytes:
    """A command on the control node; its output is shown unless quiet; a code outside ok stops the demo."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    res = subprocess.run(list(argv), cwd=REPO, env=env, input=stdin, capture_output=quiet, timeout=timeout,
                         check=False)
    if res.returncode not in ok:
        if quiet:
            sys.stdout.buffer.write((res.stdout or b"")[-4000:] + (res.stderr or b"")[-2000:])
        fail(f"{' '.join(argv[:4])} … exited {res.returncode}")
    return res.stdout or b""


def playbook(name: str, *args: str) -> None:
    run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(REPO / "playbooks" / name), *args])


class Hosts:
    """The lab's hosts over SSH as the admin (the same login `provsec lab ssh` uses)."""

    def __init__(self) -> None:
        self.lab = Lab()

    def run(self, host: str, command: str, *, ok: tuple[int, ...] = (0,), stdin: bytes | None = None,
            timeout: float = 900) -> bytes:
        argv = [*self.lab.ssh_argv(host), command]
        res = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        if res.returncode not in ok:
            sys.stdout.buffer.write(res.stdout[-3000:] + res.stderr[-2000:])
            fail(f"{host}: {command[:120]} … exited {res.returncode}")
        return res.stdout

    def root(self, host: str, command: str, *, ok: tuple[int, ...] = (0,), stdin: bytes | None = None,
             timeout: float = 900) -> bytes:
        return self.run(host, "sudo -n sh -c " + shlex.quote(command), ok=ok, stdin=stdin, timeout=timeout)

    def address(self, host: str) -> str:
        return self.lab.profile().host(host).address


def wait(what: str, check: Callable[[], bool], timeout: float, every: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            fail(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(every)


def secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


# ---------------------------------------------------------------------------------------------------------------

def harden_and_audit(results: Path) -> None:
    playbook("site.yml", "-e", f"provsec_audit_dir={results}", "-e", "harden_serial=100%")
    doc = json.loads((results / "results" / "summary.json").read_text(encoding="utf-8"))
    say("audit after harden.yml (controls per status):")
    for host, info in sorted(doc["hosts"].items()):
        say(f"  {host:10} cấp độ {info['level']}  "
            + "  ".join(f"{k} {v}" for k, v in sorted(info["counts"].items())))


def backups(hosts: Hosts) -> dict[str, bytes]:
    say("db1: PostgreSQL with a sample database (ioffice: 5.000 văn bản)")
    hosts.root("db1", DATABASE, timeout=1200)
    password = DEMO / "vault-password"
    if not password.exists():
        secret_file(password, os.urandom(24).hex() + "\n")
    vault = DEMO / "backup-vault.yml"
    run([str(BIN / "provsec"), "backup", "vault", "-i", str(INVENTORY), "--vault-password-file", str(password),
         "--file", str(vault)])
    settings = secret_file(DEMO / "backup-vars.json", json.dumps({
        "backup_vault_file": str(vault),
        "backup_clients": ["db1", "web1"],
        "demo_jobs": {"db1": [{"name": "ioffice-db", "kind": "postgresql", "class": "databases",
                               "database": "ioffice"}]},
        "backup_extra_jobs": "{{ demo_jobs[inventory_hostname] | default([]) }}",
    }))
    playbook("backup.yml", "-l", "bak1,db1,web1", "--vault-password-file", str(password), "-e", f"@{settings}")
    status = {}
    for host in ("db1", "web1"):
        hosts.root(host, f"{PROVSEC} backup run", timeout=1800)
        status[host] = hosts.root(host, f"{PROVSEC} backup status --json")
        for row in json.loads(status[host]):
            say(f"  {host:5} job {row['job']:11} {row.get('state', '?'):8} snapshots {row.get('snapshots', '?')}")
    say("bak1: the second-site copy of both clients' repositories (its daily timer does the same)")
    status["copies"] = hosts.root("bak1", f"{PROVSEC} backup copy --json", timeout=1800)
    for row in json.loads(status["copies"]):
        say(f"  copy {row.get('copy')}: {row.get('state')}, {row.get('snapshots')} snapshots")
    return status


def start_mailbox() -> dict[str, str]:
    """The local mailbox (provsec.devtools.mailbox) on the control node's lab address, 4 hours at most."""
    pid_file = MAILBOX / "pid"
    if pid_file.exists():  # a previous demo's mailbox: its password is stale
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            time.sleep(1)
        except (ProcessLookupError, ValueError):
            pass
    for name in ("port", "login", "password", "ca.pem"):
        (MAILBOX / name).unlink(missing_ok=True)
    MAILBOX.mkdir(parents=True, exist_ok=True)
    log = (MAILBOX / "log").open("ab")
    proc = subprocess.Popen([str(BIN / "python"), "-m", "provsec.devtools.mailbox", "--host", CONTROL_ADDR,
                             "--dir", str(MAILBOX), "--lifetime", str(4 * 3600)], stdout=log, stderr=log,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    pid_file.write_text(str(proc.pid))
    wait("the local mailbox", (MAILBOX / "ca.pem").exists, 30, every=0.5)
    return {name: (MAILBOX / name).read_text() for name in ("port", "login", "password", "ca.pem")}


def monitoring(mailbox: dict[str, str]) -> None:
    settings = secret_file(DEMO / "monitoring-vars.json", json.dumps({
        # fast enough to watch: scrape and evaluate every 15 s
        "monitoring_server_scrape_interval": "15s",
        "monitoring_server_evaluation_interval": "15s",
        # every hour is working time here, so that the burst's warning is delivered whenever the demo runs; a site
        # keeps its real hours and Alertmanager holds warnings until they start (Điều 8.3b)
        "provsec_working_hours": {"timezone": "Asia/Ho_Chi_Minh",
                                  "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                  "periods": ["00:00-23:59"], "holidays_country": None},
        "notify_settings": {
            "channels": {"email": {"host": CONTROL_ADDR, "port": int(mailbox["port"]),
                                   "sender": "canhbao@stttt.lab", "username": mailbox["login"],
                                   "password_file": "{{ notify_credentials }}/smtp.pass",
                                   "ca_file": "/etc/provsec/notify/smtp-ca.pem"}},
            "severities": {"critical": {"channels": ["email"], "working_hours_only": False, "clock": "wall"},
                           "warning": {"channels": ["email"], "working_hours_only": False, "clock": "working"}},
            "rota": [{"name": "Trực ban", "people": [{"id": "truc-ban", "name": "Cán bộ trực ban",
                                                      "email": ON_CALL}]}],
        },
        "notify_secrets": {"smtp.pass": mailbox["password"]},
        "notify_files": {"smtp-ca.pem": mailbox["ca.pem"]},
    }, ensure_ascii=False))
    playbook("monitoring.yml", "-e", f"@{settings}")


def scan(hosts: Hosts) -> None:
    playbook("scan.yml")
    say("the scan's drift report (mon1's journal):")
    say(hosts.root("mon1", "journalctl -u provsec-scan.service -o cat --no-pager "
                           "_SYSTEMD_INVOCATION_ID=$(systemctl show -P InvocationID provsec-scan.service) "
                           "| head -40").decode())
    say("reviewing it: what is open now is approved into the baseline (the review the department signs):")
    say(hosts.root("mon1", f"{PROVSEC} scan baseline -i /etc/provsec/inventory --accept --approver "
                           "'Trưởng phòng CNTT (demo)' --reason 'Rà soát lần đầu: dịch vụ đã đăng ký'",
                   ok=(0, 1)).decode())


def wan_dropped(hosts: Hosts) -> float:
    text = hosts.root("gw1", "cat /var/lib/prometheus/node-exporter/provsec_wan.prom").decode()
    for line in text.splitlines():
        if line.startswith('provsec_wan_forward_dropped_packets_total{from_zone="agency",to_zone="dc"}'):
            return float(line.split()[-1])
    return 0.0


def mails() -> list[Path]:
    folder = MAILBOX / "mail"
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def alert_mails(after: int) -> list[Path]:
    """The mails received after the first `after` that are about the brute-force alert."""
    found = []
    for path in mails()[after:]:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = mail.get_body(preferencelist=("plain",))
        if ALERT in str(mail["Subject"]) + (body.get_content() if body is not None else ""):
            found.append(path)
    return found


def burst(hosts: Hosts) -> None:
    web1 = hosts.address("web1")
    before_mails = len(mails())
    say(f"control node ({CONTROL_ADDR}, admin subnet) → web1 ({web1}): 25 SSH logins as unknown users")
    for i in range(25):  # bounded: 25 attempts, 5 s each at most
        subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                        f"admin{i}@{web1}", "true"], capture_output=True, timeout=15, check=False)
    dropped = wan_dropped(hosts)
    say("agency1 (agency network) → web1: the same attempt, through the WAN edge gw1")
    res = hosts.run("agency1", f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                               f"-o ConnectTimeout=5 admin@{web1} true 2>&1; echo rc=$?", ok=(0,))
    say("  " + res.decode().strip().replace("\n", "\n  "))
    wait("gw1's drop counter (agency → dc)", lambda: wan_dropped(hosts) > dropped, 90)
    say(f"  gw1 provsec_wan_forward_dropped_packets_total{{from_zone=agency,to_zone=dc}}: {dropped:.0f} → "
        f"{wan_dropped(hosts):.0f} (dropped by the edge's default policy)")
    say(f"waiting for Prometheus ({ALERT}) → Alertmanager → provsec notify → mail …")
    wait("the brute-force alert's mail in the local mailbox", lambda: bool(alert_mails(before_mails)), 420)
    for path in mails()[before_mails:]:  # every mail since the burst: other alerts of the lab may be among them
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        say(f"  mail {path.relative_to(REPO)}: To {mail['To']} — {mail['Subject']}")
    say(hosts.run("mon1", f"sudo -n -u provsec-notify {PROVSEC} incident list").decode())


def drills(hosts: Hosts) -> dict[str, bytes]:
    records = {}
    for host, jobs in (("db1", "ioffice-db postgresql-roles"), ("web1", "etc")):
        records[host] = hosts.root(host, f"{PROVSEC} backup drill {jobs} --json", timeout=1800)
        for rec in json.loads(records[host]):
            rto, rpo = rec.get("rto_s"), rec.get("rpo_s")
            say(f"  {host:5} {rec.get('job')}: {rec.get('state')} — {rec.get('reason')}; RTO "
                f"{'?' if rto is None else f'{rto:.0f}'} s, RPO {'?' if rpo is None else f'{rpo:.0f}'} s")
    return records


def reports(hosts: Hosts, audit: Path, status: dict[str, bytes], drill: dict[str, bytes]) -> Path:
    month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    hosts.root("mon1", f"rm -rf {REMOTE} && mkdir -p -m 0700 {REMOTE}/audit")
    for name, rows in status.items():
        hosts.root("mon1", f"cat > {REMOTE}/{name}-status.json", stdin=rows)
    for host, records in drill.items():
        hosts.root("mon1", f"cat > {REMOTE}/{host}-drill.json", stdin=records)
    tar = BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        archive.add(audit, arcname="audit")
    hosts.root("mon1", f"tar -C {REMOTE} -xf -", stdin=tar.getvalue())
    say(f"on mon1 (where Prometheus, the incident register and the scans are): provsec report collect --month "
        f"{month}")
    hosts.root("mon1", f"{PROVSEC} report collect --month {month} --out {REMOTE}/reports "
                       f"--register /var/lib/provsec/notify/incidents.sqlite "
                       f"--backup-status db1={REMOTE}/db1-status.json web1={REMOTE}/web1-status.json "
                       f"--drill db1={REMOTE}/db1-drill.json web1={REMOTE}/web1-drill.json "
                       f"--backup-copy {REMOTE}/copies-status.json --inventory /etc/provsec/inventory "
                       f"--audit-results {REMOTE}/audit --prometheus http://127.0.0.1:9090 "
                       f"--scans /var/lib/provsec/scans --scan-baseline /etc/provsec/inventory/scan_baseline.yml")
    data = REPO / "reports" / f"demo-{stamp}" / "data"
    untar(hosts.root("mon1", f"tar -C {REMOTE}/reports -cf - {month}"), data, f"mon1:{REMOTE}/reports/{month}")
    out = data.parent / "out"
    run([str(BIN / "provsec"), "report", "monthly", "--month", month, "--data", str(data / month),
         "--out", str(out)])
    return out / month


def main() -> int:
    if os.geteuid() != 0:
        say("make demo: the lab boots real hosts and needs root; run: sudo make demo")
        return 2
    DEMO.mkdir(exist_ok=True)
    step(1, "bringing up the province lab (mon1, bak1, db1, web1, gw1, agency1)")
    run([str(BIN / "provsec"), "lab", "up", "--profile", "province"])
    hosts = Hosts()
    step(2, "checking the lab inventory")
    run([str(BIN / "provsec"), "inventory", "check", str(INVENTORY)])
    step(3, "hardening every host and auditing it (playbooks/site.yml: harden.yml, then audit.yml)")
    audit = REPO / "audit-results" / f"demo-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    harden_and_audit(audit)
    step(4, "the WAN edge's policy on gw1, its configuration backed up from mon1 (playbooks/wan.yml)")
    playbook("wan.yml")
    step(5, "backups: repository on bak1, clients db1 (PostgreSQL) and web1, one run each (playbooks/backup.yml)")
    status = backups(hosts)
    step(6, "monitoring: exporters everywhere, Prometheus + Alertmanager + notify on mon1 (playbooks/monitoring.yml)")
    say(f"alerts go by mail to {ON_CALL} through a local mailbox on {CONTROL_ADDR} ({MAILBOX.relative_to(REPO)}/)")
    monitoring(start_mailbox())
    step(7, "the daily exposure scan from mon1 (playbooks/scan.yml), and the review of its first result")
    scan(hosts)
    step(8, "an SSH password-guessing burst against web1")
    burst(hosts)
    step(9, "a restore drill on db1 and web1 (restore the latest snapshot, verify it, measure RTO/RPO)")
    drill = drills(hosts)
    step(10, "this month's reports (provsec report collect on mon1, provsec report monthly here)")
    folder = reports(hosts, audit, status, drill)
    run([str(BIN / "provsec"), "lab", "status"])
    say(f"\ndemo: done in {(time.monotonic() - started) / 60:.1f} min. The reports:")
    for path in sorted(folder.glob("*")):
        if path.suffix in (".pdf", ".html"):
            say(f"  {path.relative_to(REPO)}")
    say(f"""Audit results: {audit.relative_to(REPO)}/results/. Alert mail: {(MAILBOX / 'mail').relative_to(REPO)}/.
The lab stays up so you can look around:
  .venv/bin/provsec lab ssh mon1          log in to a host as the admin user
  .venv/bin/provsec lab status            list the hosts
  make lab-down                           stop the hosts, the mailbox, and remove everything the lab made""")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ProvsecError as exc:
        say(f"demo: {exc}")
        sys.exit(2)
    except subprocess.TimeoutExpired as exc:
        say(f"demo: {' '.join(map(str, exc.cmd))[:200]} timed out after {exc.timeout:.0f} s")
        sys.exit(1)
