"""The generated alertmanager.yml on a real Alertmanager (Debian's prometheus-alertmanager), on loopback.

amtool ignores time intervals (alertmanager#3889), so this starts the real daemon (random port, storage in a
temp directory, clustering off), posts alerts to its API v2 as Prometheus would (with the labels the generated
prometheus.yml gives the targets) and receives its webhooks on a local HTTP server standing in for
`provsec notify`. Checked: a critical alert is delivered at once with the bearer token; the hosts behind a WAN
gateway that is down are inhibited; a WAN cut is one group; the Watchdog goes to the heartbeat receiver; a
warning is delivered when the working-hours interval (computed from the current time in Asia/Ho_Chi_Minh) is
active and not when it is not. Test configs use 1 s group_wait/group_interval; every wait is bounded and
every Alertmanager is killed at the end.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
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

from provsec.controls import load_catalogue
from provsec.inventory import load_inventory
from provsec.lab import inventory as lab_inventory
from provsec.lab.topology import profile
from provsec.monitoring import AlertmanagerSettings, Timing, WorkingHours, build_targets, render, write
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Alertmanager not found: install Debian's prometheus-alertmanager package (scripts/bootstrap)")


@contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (random port, no clustering); yields its base URL; killed at the end."""
    port = _free_port()
    log = (workdir / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [_binary(), f"--config.file={config}", f"--storage.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Alertmanager exited {proc.returncode}:\n{(workdir / 'alertmanager.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:  # noqa: S310 - loopback
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Alertmanager not ready in 15 s:\n{(workdir / 'alertmanager.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


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
