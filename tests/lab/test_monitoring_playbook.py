"""Monitoring on real hosts (issue 5 §2, §6): playbooks/monitoring.yml on every lab host (Debian 12) — node_exporter
and the security-event exporter everywhere over TLS with basic auth, Prometheus, Alertmanager and provsec notify on
mon1 — then real events: SSH password guesses for unknown users and for root from another lab host (OpenSSH's
client on agency1, through the WAN edge gw1), key logins, sudo, an account added and deleted, counted by the
exporter from the real journal and compared with what the test did; the counts survive a restart; a burst of
guesses makes Prometheus on mon1 fire the brute-force alert, Alertmanager route it to provsec notify, which opens
one incident and mails the on-call person through a real SMTP server started by this test on the control node's
lab address (STARTTLS, login); acknowledging the incident is recorded.

One module fixture resets every host, runs the playbook twice (the second run changes nothing) and lets web1's sshd
take passwords (the lab's base image allows keys only). Working hours are set to the whole day here, so that the
warning is delivered whenever the test runs (the routing by working hours is tested on a real Alertmanager in
tests/unit/test_monitoring_config_alertmanager.py)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paramiko
import pytest
from labfixture import LabHandle
from localnet import Inbox, Pki, make_pki, smtp_server
from prometheus_client.parser import text_string_to_metric_families

from provsec.devtools.transfer import untar
from provsec.inventory.load import load_inventory
from provsec.lab.topology import CONTROL_ADDR

HOST = "web1"
MONITOR = "mon1"
ATTACKER = "agency1"  # in the agency network: its SSH attempts reach web1 through the WAN edge gw1
# One SSH password guess from the attacker: OpenSSH's client takes the password from SSH_ASKPASS (forced), so
# no terminal and no extra tool are needed on the host.
GUESS = ("printf '#!/bin/sh\\necho not-the-password\\n' > /tmp/askpass && chmod 700 /tmp/askpass && "
         "SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force setsid -w ssh -n -o StrictHostKeyChecking=no "
         "-o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 "
         "-o ConnectTimeout=10 {user}@{address} true; true")
# What the playbook generated on the control node (playbooks/group_vars/all/monitoring.yml, role pki); the lab's
# province code is "lab".
SECRETS = Path("/var/lib/provsec/secrets/lab")
CA_FILE = Path("/var/lib/provsec/pki/lab/ca.crt")
ON_CALL = "an@stttt.test"
SMTP_LOGIN = b"canhbao"
SMTP_PASSWORD = secrets.token_urlsafe(24).encode()  # made per run: no password is written in the tests
INCIDENTS = "sudo -n -u provsec-notify /opt/provsec/bin/provsec incident"


def extra_vars(pki: Pki, smtp_port: int) -> dict[str, object]:
    """The inventory settings a site would give: scrape and evaluate fast, the whole day as working hours, mail
    to the on-call person through this test's SMTP server (its CA given to notify)."""
    return {
        "monitoring_server_scrape_interval": "5s",
        "monitoring_server_evaluation_interval": "5s",
        "provsec_working_hours": {"timezone": "Asia/Ho_Chi_Minh",
                                  "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                  "periods": ["00:00-23:59"], "holidays_country": None},
        "notify_settings": {
            "channels": {"email": {"host": CONTROL_ADDR, "port": smtp_port, "sender": "canhbao@stttt.test",
                                   "username": SMTP_LOGIN.decode(),
                                   "password_file": "{{ notify_credentials }}/smtp.pass",
                                   "ca_file": "/etc/provsec/notify/smtp-ca.pem"}},
            "severities": {"critical": {"channels": ["email"], "working_hours_only": False, "clock": "wall"},
                           "warning": {"channels": ["email"], "working_hours_only": True, "clock": "working"}},
            "rota": [{"name": "Trực ban", "people": [{"id": "an", "name": "Nguyễn Văn An", "email": ON_CALL}]}],
        },
        "notify_secrets": {"smtp.pass": SMTP_PASSWORD.decode()},
        "notify_files": {"smtp-ca.pem": pki.ca_file.read_text()},
    }


def scrape_password() -> str:
    """The password the playbook generated (Ansible's password lookup ends the file with a newline)."""
    return (SECRETS / "scrape-password").read_text().strip()


def scrape(url: str, password: str | None) -> tuple[int, str]:
    """GET url from the control node, the provincial CA checked, with the scrape password if given."""
    request = urllib.request.Request(url)  # noqa: S310 - https to a lab host
    if password is not None:
        request.add_header("Authorization", "Basic " + b64encode(f"prometheus:{password}".encode()).decode())
    context = ssl.create_default_context(cafile=str(CA_FILE))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@dataclass
class Monitored:
    lab: LabHandle
    addresses: dict[str, str]
    admin: str
    second_run: dict[str, dict[str, int]]
    inbox: Inbox

    @property
    def address(self) -> str:
        return self.addresses[HOST]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = scrape(f"https://{self.address}:9847/metrics", scrape_password())
        assert status == 200, status
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def event(self, metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], event: str, method: str,
              user: str) -> float:
        return metrics.get(("provsec_auth_events_total", (("event", event), ("method", method), ("user", user))),
                           -1.0)

    def prometheus(self, path: str) -> dict[str, object]:
        """GET path of mon1's Prometheus API (it listens on mon1's loopback only)."""
        res = self.lab.ssh(MONITOR, "python3 -c 'import sys, urllib.request as u; "
                           f"print(u.urlopen(\"http://127.0.0.1:9090{path}\", timeout=10).read().decode())'")
        assert res.returncode == 0, res.stderr
        answer: dict[str, object] = json.loads(res.stdout)
        return answer

    def incidents(self) -> list[dict[str, object]]:
        res = self.lab.ssh(MONITOR, f"{INCIDENTS} list --json")
        assert res.returncode == 0, res.stdout + res.stderr
        rows: list[dict[str, object]] = json.loads(res.stdout)
        return rows


@pytest.fixture(scope="module")
def monitored(lab: LabHandle) -> Iterator[Monitored]:
    started = time.monotonic()
    for host in lab.hosts:  # every host gets the exporters; the path agency1 → gw1 → web1 unhardened
        lab.reset_waiting(host)
    with tempfile.TemporaryDirectory(prefix="provsec-monitoring-") as tmp:
        pki = make_pki(Path(tmp) / "pki", (CONTROL_ADDR,))
        inbox = Inbox(SMTP_LOGIN, SMTP_PASSWORD)
        with smtp_server(pki, inbox, CONTROL_ADDR) as smtp_port:
            settings = Path(tmp) / "vars.json"
            settings.write_text(json.dumps(extra_vars(pki, smtp_port), ensure_ascii=False))
            settings.chmod(0o600)
            lab.play_ok("monitoring.yml", lab.hosts, "-e", f"@{settings}")
            second = lab.play_ok("monitoring.yml", lab.hosts, "-e", f"@{settings}")
            addresses = {h.name: str(h.ansible_host) for h in load_inventory(lab.inventory_dir).hosts}
            admin = lab.root(HOST, "echo $SUDO_USER").stdout.strip()
            # web1 as a server that still takes passwords (not hardened yet): what password guessing aims at. The
            # lab's base image allows keys only, and sshd then logs no "Failed password" at all.
            res = lab.root(HOST, "printf 'PasswordAuthentication yes\\n' > "
                                 "/etc/ssh/sshd_config.d/00-lab-passwords.conf && systemctl reload ssh && "
                                 "sshd -T | grep -x 'passwordauthentication yes'")
            assert res.returncode == 0, res.stdout + res.stderr
            print(f"\nlab: monitoring fixture (reset, 2 runs of monitoring.yml on {len(lab.hosts)} hosts) "
                  f"{(time.monotonic() - started) / 60:.1f} min")
            yield Monitored(lab, addresses, admin, second, inbox)


def guess_password(address: str, user: str) -> None:
    """One SSH connection that tries one wrong password (what a brute-force tool does)."""
    transport = paramiko.Transport((address, 22))
    try:
        transport.start_client(timeout=20)
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_password(user, "not the password, lab test")
    finally:
        transport.close()


def wait_for(monitored: Monitored, check: dict[tuple[str, str, str], float], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metrics = monitored.metrics()
        got = {key: monitored.event(metrics, *key) for key in check}
        if got == check or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got == check


def test_second_run_changes_nothing(monitored: Monitored) -> None:
    assert all(counts["changed"] == 0 for counts in monitored.second_run.values()), monitored.second_run


def test_exporters_answer_only_over_tls_with_the_password(monitored: Monitored) -> None:
    """From the control node (an admin address, not mon1), every host's two exporters: TLS with the provincial
    CA's certificate for the host's address, 401 without the password, 401 with a wrong one, 200 with it."""
    password = scrape_password()
    for host, address in sorted(monitored.addresses.items()):
        for port, series in ((9100, "node_uname_info"), (9847, "provsec_auth_events_total")):
            url = f"https://{address}:{port}/metrics"
            assert scrape(url, None)[0] == 401, url
            assert scrape(url, "not-" + password)[0] == 401, url
            status, text = scrape(url, password)
            assert status == 200 and series in text, (host, url, status)
        with pytest.raises(urllib.error.URLError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://{address}:9100/metrics", timeout=10)


def test_monitoring_host_serves_on_loopback_and_scrapes_every_host(monitored: Monitored) -> None:
    lab = monitored.lab
    lines = lab.root(MONITOR, "ss -Hltn").stdout.splitlines()
    listening = {line.split()[3] for line in lines}
    for port in (9090, 9093, 9848):  # Prometheus, Alertmanager, provsec notify
        assert {a for a in listening if a.endswith(f":{port}")} == {f"127.0.0.1:{port}"}, listening
    assert not [a for a in listening if a.endswith(":9094")], "Alertmanager's cluster port is off"
    deadline = time.monotonic() + 60
    while True:
        targets = monitored.prometheus("/api/v1/targets?state=active")["data"]["activeTargets"]  # type: ignore[index]
        health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
        expected = {(job, host) for job in ("node", "provsec") for host in monitored.addresses}
        if (expected <= set(health) and all(health[k] == "up" for k in expected)) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert expected <= set(health), sorted(set(health))
    assert {k: v for k, v in health.items() if k in expected and v != "up"} == {}, targets
    rules = monitored.prometheus("/api/v1/rules")["data"]["groups"]  # type: ignore[index]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"ProvsecSecuritySshBruteForce", "ProvsecHostDown", "ProvsecMonitoringWatchdog"} <= names
    show = lab.root(HOST, "systemctl show provsec-exporter -p ActiveState -p DynamicUser -p MainPID "
                          "-p ProtectSystem -p CapabilityBoundingSet").stdout
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    assert props["ActiveState"] == "active" and props["DynamicUser"] == "yes" and props["ProtectSystem"] == "strict"
    assert props["CapabilityBoundingSet"] == ""
    owner = lab.root(HOST, f"stat -c %U /proc/{props['MainPID']}").stdout.strip()
    assert owner not in ("", "root"), owner


def test_real_events_are_counted_exactly(monitored: Monitored) -> None:
    before = monitored.metrics()
    keys = [("ssh_invalid_user", "none", "other"), ("ssh_failed", "password", "other"),
            ("user_added", "", "other"), ("user_deleted", "", "other")]
    start = {key: monitored.event(before, *key) for key in keys}
    assert all(value >= 0 for value in start.values()), f"series missing: {start}"
    accepted = monitored.event(before, "ssh_accepted", "publickey", monitored.admin)
    sudo = monitored.event(before, "sudo_command", "", monitored.admin)
    assert accepted >= 0 and sudo >= 0, "every series exists from the start"

    for i in range(4):  # unknown users: each one invalid_user + one failed password
        res = monitored.lab.ssh(ATTACKER, GUESS.format(user=f"ghost{i}", address=monitored.address))
        assert res.returncode == 0, res.stderr
    for _ in range(2):  # a real account, not an admin of the inventory: user "other"
        res = monitored.lab.ssh(ATTACKER, GUESS.format(user="root", address=monitored.address))
        assert res.returncode == 0, res.stderr
    res = monitored.lab.root(HOST, "useradd -M -s /usr/sbin/nologin lab-intruder && userdel lab-intruder")
    assert res.returncode == 0, res.stderr
    wait_for(monitored, {
        ("ssh_invalid_user", "none", "other"): start[("ssh_invalid_user", "none", "other")] + 4,
        ("ssh_failed", "password", "other"): start[("ssh_failed", "password", "other")] + 6,
        ("user_added", "", "other"): start[("user_added", "", "other")] + 1,
        ("user_deleted", "", "other"): start[("user_deleted", "", "other")] + 1,
    })
    after = monitored.metrics()
    assert monitored.event(after, "ssh_accepted", "publickey", monitored.admin) > accepted  # this test's logins
    assert monitored.event(after, "sudo_command", "", monitored.admin) > sudo
    top = {dict(k[1]).get("source"): v for k, v in after.items() if k[0] == "provsec_auth_top_sources"}
    assert top.get("198.18.1.10") == 10, f"agency1's address leads the failing sources with its 10: {top}"


def test_counts_survive_a_restart(monitored: Monitored) -> None:
    lab = monitored.lab
    key = ("ssh_failed", "password", "other")
    before = monitored.event(monitored.metrics(), *key)
    res = lab.root(HOST, "systemctl restart provsec-exporter")
    assert res.returncode == 0, res.stderr
    guess_password(monitored.address, "root")  # while it starts: read from the saved cursor
    time.sleep(2)
    wait_for(monitored, {key: before + 1})


def test_password_guessing_burst_mails_the_on_call_and_opens_one_incident(monitored: Monitored) -> None:
    """25 guesses from agency1 in a few seconds: ProvsecSecuritySshBruteForce (more than 20 in 5 minutes) fires on
    mon1's Prometheus, Alertmanager sends it to provsec notify, which opens one incident and mails the on-call
    person through this test's SMTP server; `provsec incident ack` records the answer."""
    burst = "for i in $(seq 25); do " + GUESS.format(user="burst$i", address=monitored.address) + "; done"
    res = monitored.lab.ssh(ATTACKER, burst, timeout=600)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 300
    while not monitored.inbox.to(ON_CALL) or not [
            m for m in monitored.inbox.to(ON_CALL) if "ProvsecSecuritySshBruteForce" in str(m["Subject"]) + str(
                m.get_content())]:
        assert time.monotonic() < deadline, (
            "no brute-force mail in 5 minutes; notify's log:\n"
            + monitored.lab.root(MONITOR, "journalctl -u provsec-notify --no-pager | tail -30").stdout)
        time.sleep(2)
    mail = next(m for m in monitored.inbox.to(ON_CALL)
                if "ProvsecSecuritySshBruteForce" in str(m["Subject"]) + str(m.get_content()))
    body = str(mail.get_content())
    assert HOST in body and "198.18.1.10" in body, body  # the host, and agency1 as the top source
    assert all(tls for _, _, tls in monitored.inbox.mails), "every mail went over STARTTLS"
    incidents = [i for i in monitored.incidents() if "ProvsecSecuritySshBruteForce" in json.dumps(i)]
    assert len(incidents) == 1 and incidents[0]["state"] == "open", incidents
    ident = incidents[0]["id"]
    assert re.search(rf"/ack/{ident}/", body), "the mail carries the incident's ack link"
    res = monitored.lab.ssh(MONITOR, f"{INCIDENTS} ack {ident} --by an")
    assert res.returncode == 0, res.stdout + res.stderr
    acked = [i for i in monitored.incidents() if i["id"] == ident]
    assert acked[0]["state"] == "acknowledged" and acked[0]["acknowledged_by"] == "an", acked


def test_an_icmp_probe_alert_fires_when_the_gw1_link_goes_down(monitored: Monitored) -> None:
    """Blackbox probes from mon1 (issue 7 §4): gw1's data-centre leg answers, then its link is cut on the
    control node's bridge and ProvsecWanLinksDown (for: 1m) fires for it in mon1's Prometheus."""
    lab = monitored.lab
    edge = lab.lab.profile().host("gw1")
    leg = edge.nics[0].address
    query = f'/api/v1/query?query=probe_success%7Bjob%3D%22blackbox_icmp%22%2Cinstance%3D%22{leg}%22%7D'
    deadline = time.monotonic() + 60
    while True:
        result = monitored.prometheus(query)["data"]["result"]  # type: ignore[index]
        if (result and result[0]["value"][1] == "1") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result and result[0]["value"][1] == "1", f"gw1's leg {leg} never answered the ICMP probe: {result}"
    listening = lab.root(MONITOR, "ss -Hltn").stdout
    assert "127.0.0.1:9115" in listening and not [a for a in listening.split() if a.endswith(":9115")
                                                  and not a.startswith("127.0.0.1")], listening
    link = edge.veth(0)  # gw1's veth into the data-centre bridge, on the control node
    subprocess.run(["ip", "link", "set", link, "down"], check=True)
    cut = time.monotonic()
    try:
        labels: dict[str, str] = {}
        while time.monotonic() - cut < 180 and not labels:
            alerts = monitored.prometheus("/api/v1/alerts")["data"]["alerts"]  # type: ignore[index]
            labels = next((a["labels"] for a in alerts if a["labels"]["alertname"] == "ProvsecWanLinksDown"
                           and a["labels"].get("instance") == leg and a["state"] == "firing"), {})
            time.sleep(3)
        print(f"\nProvsecWanLinksDown for {leg} fired {time.monotonic() - cut:.0f} s after the cut")
        assert labels, "ProvsecWanLinksDown did not fire within 180 s of cutting gw1's link"
        assert labels["host"] == "gw1" and labels["wan_role"] == "edge" and labels["severity"] == "critical", labels
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)


def test_the_month_s_report_is_made_from_what_the_lab_recorded(monitored: Monitored, tmp_path: Path) -> None:
    """Issue 8 §3 on lab data: `provsec report collect` on mon1 (its register, its Prometheus with the real alerts of
    the tests above), the folder brought to the control node, `provsec report monthly` there. The report's incident
    count equals the register's own listing of the month, web1 appears among the security
    events, and each critical incident has its initial report (Mẫu 03), or the report says there is none."""
    lab = monitored.lab
    listed = monitored.incidents()
    brute = next(i for i in listed if "ProvsecSecuritySshBruteForce" in json.dumps(i))
    opened = datetime.fromisoformat(str(brute["opened_at"]).replace("Z", "+00:00"))
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    month = opened.astimezone(local).strftime("%Y-%m")  # the month the register received the burst in
    in_month = [i for i in listed if datetime.fromisoformat(str(i["opened_at"]).replace("Z", "+00:00"))
                .astimezone(local).strftime("%Y-%m") == month]
    out = "/var/lib/provsec/report-test"
    res = lab.root(MONITOR, f"rm -rf {out} && /opt/provsec/bin/provsec report collect --month {month} --out {out} "
                            "--register /var/lib/provsec/notify/incidents.sqlite --prometheus http://127.0.0.1:9090")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    # the folder travels in a call of its own: collect's stdout is its summary, not data
    packed = lab.root(MONITOR, f"tar -C {out} -cf - {month} | base64 -w0")
    assert packed.returncode == 0, packed.stderr[-2000:]
    untar(base64.b64decode(packed.stdout.strip()), tmp_path / "data", f"mon1:{out}/{month}")
    made = subprocess.run([str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "provsec"), "report",
                           "monthly", "--month", month, "--data", str(tmp_path / "data" / month), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=900, check=False)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    page = re.sub(r"<[^>]+>", " ", (tmp_path / "out" / month / "monthly_incidents.html").read_text())
    page = re.sub(r"\s+", " ", page)
    assert re.search(rf"Số sự cố {len(in_month)} ", page), (len(in_month), page[:3000])
    events = page[page.index("5. Sự kiện an toàn thông tin"):page.index("6. Thay đổi cổng mạng")]
    assert "web1" in events, events
    # each critical incident of the month with its initial report (Mẫu 03), in the PDF too; none: the sentence
    # saying so (gw1's link cut above is restored at once, so whether it became an incident depends on timing)
    critical = [i for i in in_month if i["severity"] == "critical"]
    pdf = re.sub(r"\s+", " ", subprocess.run(["pdftotext", str(tmp_path / "out" / month / f"bao-cao-{month}.pdf"),
                                             "-"], capture_output=True, text=True, check=True).stdout)
    for incident in critical:
        assert f"Sự cố số {incident['id']}" in page and f"Sự cố số {incident['id']}" in pdf, incident
    if not critical:
        assert "không có sự cố phải báo cáo ban đầu theo Mẫu 03" in page, page[-3000:]
    assert "web1" in pdf
