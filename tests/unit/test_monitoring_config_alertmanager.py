"""The generated alertmanager.yml on a real Alertmanager (Debian's prometheus-alertmanager), on loopback.

amtool ignores time intervals (alertmanager#3889), so this starts the real daemon (random port, storage in a
temp directory, clustering off), posts alerts to its API v2 as Prometheus would (with the labels the generated
prometheus.yml gives the targets) and receives its webhooks on a local HTTP server standing in for
`provsec notify`. Checked: a critical alert is delivered at once with the bearer token; the hosts behind a WAN
gateway that is down are inhibited; a WAN cut is one group; the Watchdog goes to the heartbeat receiver; a
warning is delivered when the working-hours interval (computed from the current time in Asia/Ho_Chi_Minh) is
active and not when it is not. Test configs use 1 s group_wait/group_interval; every wait is bounded and
every Alertmanager is killed at the end.

The last test runs the whole chain on loopback (issue 5 §6): provsec exporter on an auth.log → a real Prometheus
with the repo's rules → the generated alertmanager.yml on a real Alertmanager → `provsec notify serve` → a real
SMTP server (STARTTLS, login) → the incident register → the acknowledgement link.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from localnet import Inbox, daemon, free_port, make_pki, smtp_server

from provsec.controls import load_catalogue
from provsec.inventory import load_inventory
from provsec.lab import inventory as lab_inventory
from provsec.lab.topology import profile
from provsec.monitoring import (
    AlertmanagerSettings,
    MonitoringConfig,
    Timing,
    WorkingHours,
    build_targets,
    render,
    write,
)
from provsec.monitoring.targets import Targets

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "playbooks" / "controls"
PHUYEN = REPO / "inventory" / "phuyen"

TOKEN = "test-token-0123"  # noqa: S105 - a test value, not a secret
FAST = Timing("1s", "1s", "1h")
SETTLE = 3.0  # seconds to wait for a notification that must NOT come (3 group intervals)


@dataclass
class Received:
    path: str
    authorization: str
    body: dict[str, Any]

    @property
    def instances(self) -> list[str]:
        return sorted(a["labels"].get("instance", "") for a in self.body["alerts"])


@dataclass
class Webhook:
    """A local HTTP server standing in for provsec notify: records every POST."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with hook.lock:
                    hook.received.append(Received(self.path, self.headers.get("Authorization", ""), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def wait_for(self, match: Callable[[Received], bool], timeout: float = 15.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.snapshot():
                if match(item):
                    return item
            time.sleep(0.1)
        got = [(r.path, r.body.get("receiver"), r.instances) for r in self.snapshot()]
        pytest.fail(f"no matching notification within {timeout}s; received: {got}")


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, int]]:
    hook = Webhook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), hook.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def lab_inventory_dir(base: Path) -> Path:
    """The inventory `provsec lab up --profile province` writes, without starting any lab host."""
    directory = base / "lab-province"
    lab_inventory.write(profile("province"), directory, base / "key", base / "known_hosts")
    return directory


def _binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Alertmanager not found: install Debian's prometheus-alertmanager package (scripts/bootstrap)")


@contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (random port, no clustering); yields its base URL; killed at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [_binary(), f"--config.file={config}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"]
    with daemon(argv, f"{url}/-/ready", workdir / "alertmanager.log", "Alertmanager"):
        yield url


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    now = datetime.now(UTC)
    body = [
        {"labels": labels, "annotations": {"summary": labels["alertname"]},
         "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
        for labels in alerts
    ]
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/api/v2/alerts", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
        assert resp.status == 200


def alert(targets: Targets, host: str, alertname: str, severity: str, job: str = "node") -> dict[str, str]:
    """The labels Prometheus sends: the target's labels, job, the rule's labels, the external labels."""
    return {**targets.get(host).labels, "job": job, "alertname": alertname, "severity": severity,
            "province": "LAB", "prometheus": "mon1"}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def window(start: int, end: int) -> tuple[tuple[str, str], ...]:
    """Minutes of the day [start, end), wrapped at midnight, as periods that do not cross it."""
    start, end = start % 1440, end % 1440
    if start < end:
        return ((_hhmm(start), _hhmm(end)),)
    return ((_hhmm(start), "24:00"), ("00:00", _hhmm(end))) if end else ((_hhmm(start), "24:00"),)


def working_hours(active_now: bool) -> WorkingHours:
    """Every day of the week; the period is the hour around now in Asia/Ho_Chi_Minh (active) or one six hours
    away (not active), so neither changes state during the test."""
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    minutes = now.hour * 60 + now.minute
    periods = window(minutes - 60, minutes + 60) if active_now else window(minutes + 360, minutes + 420)
    return WorkingHours(weekdays=tuple(range(7)), periods=periods, location="Asia/Ho_Chi_Minh")


def render_am(tmp: Path, port: int, active_now: bool) -> Path:
    token = tmp / "notify.token"
    token.write_text(TOKEN + "\n")
    settings = AlertmanagerSettings(
        webhook_url=f"http://127.0.0.1:{port}/alertmanager",
        heartbeat_url=f"http://127.0.0.1:{port}/heartbeat",
        bearer_token_file=str(token),
        working_hours=working_hours(active_now),
        default=FAST, critical=FAST, warning=FAST, heartbeat=Timing("0s", "1s", "1h"),
    )
    inventory = load_inventory(lab_inventory_dir(tmp))
    config = render(inventory, load_catalogue(CATALOGUE), alertmanager=settings)
    _, path = write(config, tmp / "etc", "test")
    return path


def test_window_wraps_at_midnight() -> None:
    assert window(60, 120) == (("01:00", "02:00"),)
    assert window(1400, 1500) == (("23:20", "24:00"), ("00:00", "01:00"))
    assert window(-30, 30) == (("23:30", "24:00"), ("00:00", "00:30"))


def test_inhibition_critical_warning_and_heartbeat_in_working_hours(
    tmp_path: Path, webhook: tuple[Webhook, int]
) -> None:
    hook, port = webhook
    lab = build_targets(load_inventory(lab_inventory_dir(tmp_path / "inv")))
    config = render_am(tmp_path, port, active_now=True)
    with alertmanager(config, tmp_path) as url:
        # The WAN gateway and the agency host behind it are both down; the Watchdog fires; a disk fills.
        post_alerts(url, [
            alert(lab, "gw1", "ProvsecHostDown", "critical"),
            alert(lab, "agency1", "ProvsecHostDown", "critical"),
            alert(lab, "agency1", "ProvsecMonitoringExporterDown", "critical", job="provsec"),
            alert(lab, "db1", "ProvsecHostDiskFilling", "warning"),
            {"alertname": "ProvsecMonitoringWatchdog", "severity": "warning", "province": "LAB",
             "prometheus": "mon1"},
        ])
        down = hook.wait_for(lambda r: r.body.get("receiver") == "provsec-critical"
                             and r.body["groupLabels"].get("alertname") == "ProvsecHostDown")
        assert down.path == "/alertmanager" and down.authorization == f"Bearer {TOKEN}"
        assert down.instances == ["gw1"], "agency1 must be inhibited while its gateway gw1 is down"
        assert down.body["groupLabels"] == {"alertname": "ProvsecHostDown", "site": "wan:gw1"}

        warning = hook.wait_for(lambda r: r.body.get("receiver") == "provsec-warning")
        assert warning.instances == ["db1"] and warning.path == "/alertmanager"

        beat = hook.wait_for(lambda r: r.body.get("receiver") == "provsec-heartbeat")
        assert beat.path == "/heartbeat" and beat.authorization == f"Bearer {TOKEN}"
        assert [a["labels"]["alertname"] for a in beat.body["alerts"]] == ["ProvsecMonitoringWatchdog"]

        time.sleep(SETTLE)
        everything = hook.snapshot()
        assert not [r for r in everything if "agency1" in r.instances], "an inhibited alert was delivered"
        assert not [r for r in everything if r.path == "/alertmanager"
                    and any(a["labels"]["alertname"] == "ProvsecMonitoringWatchdog" for a in r.body["alerts"])]


def test_warning_held_outside_working_hours_and_wan_cut_is_one_group(
    tmp_path: Path, webhook: tuple[Webhook, int]
) -> None:
    hook, port = webhook
    phuyen = build_targets(load_inventory(PHUYEN))
    config = render_am(tmp_path, port, active_now=False)
    with alertmanager(config, tmp_path) as url:
        # The WAN link beyond gw1 is cut (gw1 itself answers): the agency hosts of two agencies are down.
        post_alerts(url, [
            alert(phuyen, "stc-app1", "ProvsecHostDown", "critical"),
            alert(phuyen, "tuyhoa-app1", "ProvsecHostDown", "critical"),
            alert(phuyen, "db1", "ProvsecHostDiskFilling", "warning"),
        ])
        cut = hook.wait_for(lambda r: r.body.get("receiver") == "provsec-critical")
        assert cut.instances == ["stc-app1", "tuyhoa-app1"], "one WAN cut, one notification"
        assert {a["labels"]["agency"] for a in cut.body["alerts"]} == {"000.00.07.H48", "000.00.31.H48"}
        assert cut.body["groupLabels"] == {"alertname": "ProvsecHostDown", "site": "wan:gw1"}
        time.sleep(SETTLE)
        got = hook.snapshot()
        assert not [r for r in got if r.body.get("receiver") == "provsec-warning"], (
            "a warning was delivered outside working hours")
        assert len([r for r in got if r.body.get("receiver") == "provsec-critical"]) == 1


def probe_alert(config: MonitoringConfig, job: str, address: str, alertname: str, severity: str) -> dict[str, str]:
    """The labels Prometheus sends for a probe alert: the probe target's labels as render() wrote them."""
    scrape = next(j for j in config.prometheus["scrape_configs"] if j["job_name"] == job)
    labels = next(s["labels"] for s in scrape["static_configs"] if s["targets"] == [address])
    return {**labels, "instance": address, "job": job, "alertname": alertname, "severity": severity,
            "province": "LAB", "prometheus": "mon1"}


def test_a_dead_gateway_leg_inhibits_the_link_and_host_alerts_behind_it(
    tmp_path: Path, webhook: tuple[Webhook, int]
) -> None:
    """gw1's agency leg stops answering ping while gw1 is still scraped over its DC leg (no ProvsecHostDown for
    it): agency1's link, service and host alerts are inhibited; gw1's link alert is delivered."""
    hook, port = webhook
    inventory = load_inventory(lab_inventory_dir(tmp_path / "inv"))
    lab = build_targets(inventory)
    rendered = render(inventory, load_catalogue(CATALOGUE))
    config = render_am(tmp_path, port, active_now=True)
    with alertmanager(config, tmp_path) as url:
        post_alerts(url, [
            probe_alert(rendered, "blackbox_icmp", "198.18.1.1", "ProvsecWanLinksDown", "critical"),
            probe_alert(rendered, "blackbox_icmp", "198.18.1.10", "ProvsecWanLinksDown", "critical"),
            alert(lab, "agency1", "ProvsecHostDown", "critical"),
            alert(lab, "db1", "ProvsecHostDown", "critical"),
        ])
        link = hook.wait_for(lambda r: r.body.get("receiver") == "provsec-critical"
                             and r.body["groupLabels"].get("alertname") == "ProvsecWanLinksDown")
        assert link.instances == ["198.18.1.1"], "agency1 must be inhibited while gw1's agency leg is down"
        assert link.body["groupLabels"] == {"alertname": "ProvsecWanLinksDown", "site": "wan:gw1"}
        assert [a["labels"]["host"] for a in link.body["alerts"]] == ["gw1"]
        db1 = hook.wait_for(lambda r: r.body["groupLabels"].get("alertname") == "ProvsecHostDown")
        assert db1.instances == ["db1"]
        time.sleep(SETTLE)
        everything = hook.snapshot()
        assert not [r for r in everything if {"agency1", "198.18.1.10"} & set(r.instances)], (
            "an inhibited alert was delivered")


# -- the whole chain, on loopback ---------------------------------------------------------------------------------
PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["{alertmanager}"]}}]
scrape_configs:
  - job_name: provsec
    static_configs: [{{targets: ["127.0.0.1:{exporter}"], labels: {{instance: web1}}}}]
"""

NOTIFY_CONFIG = """listen: 127.0.0.1:{port}
db: {tmp}/incidents.sqlite
public_base_url: http://127.0.0.1:{port}
ack: {{secret_file: {tmp}/ack.key}}
channels:
  email: {{host: 127.0.0.1, port: {smtp}, sender: canhbao@stttt.test, username: canhbao,
          password_file: {tmp}/smtp.pass, ca_file: {ca}}}
severities:
  critical: {{channels: [email], working_hours_only: false, clock: wall}}
  warning: {{channels: [email], working_hours_only: true, clock: working}}
rota:
  - name: Trực ban
    people: [{{id: an, name: Nguyễn Văn An, email: an@stttt.test}}]
  - name: Trưởng phòng
    people: [{{id: binh, name: Trần Thị Bình, email: binh@stttt.test}}]
"""


def secret(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def incident_list(db: Path) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "provsec", "incident", "--db", str(db), "list", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows

def wait_scraped_twice(port: int) -> None:
    query = f"http://127.0.0.1:{port}/api/v1/query?query=count_over_time(up%5B1m%5D)"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(query, timeout=5) as answer:
            result = json.loads(answer.read())["data"]["result"]
        if result and float(result[0]["value"][1]) >= 2:
            return
        time.sleep(0.5)
    pytest.fail("Prometheus did not scrape the exporter twice in 30 s")


def answer_by_the_mailed_link(inbox: Inbox, notify_port: int, tmp_path: Path) -> None:
    """The on-call person's mail arrives (not the next level's), one incident is open; GET on the mail's link
    acknowledges nothing, POST acknowledges as that person."""
    def critical_mails() -> list[Any]:  # the brute-force warning of the same events may be mailed first: not this one
        return [m for m in inbox.to("an@stttt.test")
                if "ProvsecSecuritySshLoginAfterFailures" in str(m["Subject"]) + m.get_content()]

    deadline = time.monotonic() + 90
    while not critical_mails() and time.monotonic() < deadline:
        time.sleep(0.5)
    mails = critical_mails()
    assert mails, f"no mail of the critical alert in 90 s:\n{(tmp_path / 'notify.log').read_text()[-2000:]}"
    body = mails[0].get_content()
    assert "web1" in body
    assert inbox.to("binh@stttt.test") == [], "level 2 only after the escalation delay"
    links = re.findall(rf"http://127\.0\.0\.1:{notify_port}/ack/\S+", body)
    assert links, body
    incidents = incident_list(tmp_path / "incidents.sqlite")
    critical = [i for i in incidents if i["title"] == "ProvsecSecuritySshLoginAfterFailures"
                or "ProvsecSecuritySshLoginAfterFailures" in json.dumps(i["group_labels"])]
    assert len(critical) == 1 and critical[0]["state"] == "open", incidents
    with urllib.request.urlopen(links[0], timeout=10) as page:  # noqa: S310 - loopback
        assert page.status == 200
    assert incident_list(tmp_path / "incidents.sqlite")[0]["state"] == "open", "GET must not ack"
    request = urllib.request.Request(links[0], data=b"", method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        assert answer.status == 200
    acked = [i for i in incident_list(tmp_path / "incidents.sqlite") if i["id"] == critical[0]["id"]]
    assert acked[0]["state"] == "acknowledged" and acked[0]["acknowledged_by"] == "an", acked


def test_ssh_guessing_reaches_the_on_call_by_email_opens_one_incident_and_the_link_acknowledges_it(
        tmp_path: Path) -> None:
    """Lines of an SSH password-guessing attack that succeeds, appended to an auth.log: provsec exporter counts
    them, a real Prometheus with the repo's rules/security.yml fires ProvsecSecuritySshLoginAfterFailures
    (critical), the generated alertmanager.yml routes it to a real `provsec notify serve`, which opens one
    incident and mails the on-call person through a real SMTP server (STARTTLS, login); GET on the mail's link
    acknowledges nothing, POST acknowledges as that person."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus not found: run scripts/bootstrap (Debian package prometheus)")
    pki = make_pki(tmp_path / "pki")
    password = secrets.token_urlsafe(24)  # made per run
    inbox = Inbox(b"canhbao", password.encode())
    secret(tmp_path / "smtp.pass", password + "\n")
    secret(tmp_path / "ack.key", "0123456789abcdef0123456789abcdef\n")
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    exporter_port, notify_port, prometheus_port = free_port(), free_port(), free_port()
    with smtp_server(pki, inbox) as smtp_port:
        (tmp_path / "notify.yml").write_text(NOTIFY_CONFIG.format(port=notify_port, tmp=tmp_path, smtp=smtp_port,
                                                                  ca=pki.ca_file))
        settings = AlertmanagerSettings(
            webhook_url=f"http://127.0.0.1:{notify_port}/alertmanager",
            heartbeat_url=f"http://127.0.0.1:{notify_port}/alertmanager",
            working_hours=working_hours(True), default=FAST, critical=FAST, warning=FAST,
            heartbeat=Timing("0s", "1s", "1h"))
        config = render(load_inventory(lab_inventory_dir(tmp_path)), load_catalogue(CATALOGUE), alertmanager=settings)
        _, am_config = write(config, tmp_path / "etc", "test")
        py = [sys.executable, "-m", "provsec"]
        with (daemon([*py, "notify", "serve", "--config", str(tmp_path / "notify.yml")],
                     f"http://127.0.0.1:{notify_port}/-/healthy", tmp_path / "notify.log", "provsec notify"),
              daemon([*py, "exporter", "--listen", f"127.0.0.1:{exporter_port}", "--state-dir", str(tmp_path / "ex"),
                      "--source", f"file:{log}"], f"http://127.0.0.1:{exporter_port}/metrics",
                     tmp_path / "exporter.log", "provsec exporter"),
              alertmanager(am_config, tmp_path) as am_url):
            (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(
                rules=REPO / "exporters" / "rules" / "security.yml", alertmanager=am_url.removeprefix("http://"),
                exporter=exporter_port))
            with daemon([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                        f"http://127.0.0.1:{prometheus_port}/-/ready", tmp_path / "prometheus.log", "Prometheus"):
                wait_scraped_twice(prometheus_port)  # increase() must see the counters at 0 first
                attack = b"".join(
                    b"2026-11-26T10:00:%02d+07:00 web1 sshd[%d]: Failed password for invalid user u%d from "
                    b"198.18.1.66 port %d ssh2\n" % (i % 60, 4000 + i, i, 40000 + i) for i in range(25))
                attack += (b"2026-11-26T10:00:30+07:00 web1 sshd[4100]: Accepted password for canbo from 198.18.1.66 "
                           b"port 41000 ssh2\n")
                with log.open("ab") as handle:
                    handle.write(attack)
                answer_by_the_mailed_link(inbox, notify_port, tmp_path)
