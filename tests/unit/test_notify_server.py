"""`provsec notify` end to end on 127.0.0.1: the real HTTP server (random port) receives webhook payloads shaped
as Alertmanager 0.25 sends them; a real SMTP server (aiosmtpd, STARTTLS, login, a throwaway CA the client trusts
alone) receives the emails; a local HTTP server plays the SMS gateway and the Zalo OA API and records every
deviation from the exact request shape; the incident register is SQLite in tmp. Time is an injected clock that
the tests move: escalation and the dead man's switch are driven by `service.tick()`, never by sleeping.

The clock starts on Monday 9/3/2026 09:00 in Asia/Ho_Chi_Minh (a working day, working hours 07:30–11:30 and
13:30–17:00)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from localnet import Inbox, Pki, make_pki, smtp_server

from provsec.notify.config import load_config
from provsec.notify.register import Register
from provsec.notify.server import NotifyServer, NotifyService

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BASE = "https://canhbao.stttt.phuyen.gov.vn"
LINK = re.compile(re.escape(BASE) + r"/ack/\d+/\d+/[A-Za-z0-9_-]{22}")
TOKEN = "am-webhook-token-7"  # noqa: S105  (the test's bearer token)
GSM7 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 \n@$_!\"#%&'()*+,-./:;<=>?")


def vn(d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, d, hh, mm, tzinfo=VN)


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


# -- PKI and SMTP (as tests/unit/test_notify_email.py does it) -----------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def smtpd(pki: Pki) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(b"canhbao", b"mk-9")
    with smtp_server(pki, inbox) as port:
        yield inbox, port


# -- SMS gateway and Zalo OA API -------------------------------------------------------------------------------------
@dataclass
class Providers:
    """One local HTTP server for the SMS gateway (/api/v1/sms) and the Zalo OA API (/v3.0/oa/message/cs)."""

    sms: list[dict[str, Any]] = field(default_factory=list)
    zalo: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(message)

    def sms_to(self, phone: str) -> list[str]:
        with self.lock:
            return [m["content"] for m in self.sms if m.get("to") == phone]

    def zalo_to(self, user: str) -> list[str]:
        with self.lock:
            return [m["message"]["text"] for m in self.zalo if m.get("recipient", {}).get("user_id") == user]


@pytest.fixture
def providers() -> Iterator[Providers]:
    fake = Providers()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.loads(body)
            if self.path == "/api/v1/sms":
                fake.check(self.headers.get("Authorization") == "Bearer sms-k3y", "SMS API key header")
                fake.check(self.headers.get("Content-Type") == "application/json; charset=utf-8", "SMS content type")
                fake.check(set(data) == {"to", "content", "brandname"} and data["brandname"] == "STTTT-PY",
                           f"SMS body {data!r}")
                text = data.get("content", "")
                fake.check(len(text) <= 160 and set(text) <= GSM7, f"SMS text not GSM 7 or > 160: {text!r}")
                with fake.lock:
                    fake.sms.append(data)
                reply: dict[str, Any] = {"CodeResult": "100", "SMSID": f"s{len(fake.sms)}"}
            elif self.path == "/v3.0/oa/message/cs":
                fake.check(self.headers.get("access_token") == "AT-1", "Zalo access_token header")
                fake.check(self.headers.get("Content-Type") == "application/json; charset=utf-8", "Zalo content type")
                fake.check(set(data) == {"recipient", "message"} and set(data["recipient"]) == {"user_id"}
                           and set(data["message"]) == {"text"}, f"Zalo body {data!r}")
                with fake.lock:
                    fake.zalo.append(data)
                reply = {"error": 0, "message": "Success", "data": {"message_id": f"z{len(fake.zalo)}"}}
            else:
                fake.violations.append(f"unexpected POST {self.path}")
                reply = {}
            out = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    assert fake.violations == []


# -- the receiver ----------------------------------------------------------------------------------------------------
def secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def write_config(tmp: Path, smtp_port: int, pki: Pki, providers_url: str) -> Path:
    secret(tmp / "ack.key", "k" * 32)
    secret(tmp / "webhook.token", TOKEN)
    secret(tmp / "smtp.pass", "mk-9")
    secret(tmp / "sms.auth", "Bearer sms-k3y")
    secret(tmp / "zalo.key", "zalo-app-secret")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    secret(tmp / "zalo-token.json", json.dumps({"access_token": "AT-1", "refresh_token": "RT-1",
                                                "expires_at": expires}))
    config = f"""
listen: 127.0.0.1:0
db: incidents.sqlite
public_base_url: {BASE}/
ack: {{secret_file: ack.key}}
webhook: {{bearer_token_file: webhook.token}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, sender: canhbao@stttt.phuyen.gov.vn, username: canhbao,
          password_file: smtp.pass, ca_file: {pki.ca_file}, timeout: 5}}
  sms:
    url: {providers_url}/api/v1/sms
    secret_headers: {{Authorization: sms.auth}}
    body_template: '{{"to": "{{phone}}", "content": "{{text}}", "brandname": "STTTT-PY"}}'
    success_field: CodeResult
    success_values: ["100"]
  zalo: {{app_id: "4321", secret_key_file: zalo.key, token_file: zalo-token.json, api_base: "{providers_url}",
          oauth_base: "{providers_url}"}}
retry: {{max_attempts: 1}}
rota:
  - name: Trực ban
    people: [{{id: an, name: Nguyễn Văn An, email: an@stttt.phuyen.gov.vn, phone: "0905123456", zalo: "8490512"}}]
  - name: Trưởng phòng
    people: [{{id: binh, name: Trần Thị Bình, email: binh@stttt.phuyen.gov.vn, phone: "0905765432"}}]
  - name: Lãnh đạo Sở
    people: [{{id: cuong, email: cuong@stttt.phuyen.gov.vn}}]
heartbeat: {{timeout_minutes: 10}}
escalation: {{check_interval_seconds: 300}}
"""
    path = tmp / "notify.yml"
    path.write_text(config, encoding="utf-8")
    return path


@dataclass
class Harness:
    config_path: Path
    clock: Clock
    inbox: Inbox
    providers: Providers
    server: NotifyServer | None = None

    @property
    def service(self) -> NotifyService:
        assert self.server is not None
        return self.server.service

    @property
    def register(self) -> Register:
        return self.service.register

    def start(self) -> None:
        self.server = NotifyServer(NotifyService(load_config(self.config_path), now=self.clock))
        self.server.start()

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        assert self.server is not None
        req = urllib.request.Request(self.server.url + path, data=body, method=method,  # noqa: S310
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310  (http://127.0.0.1 only)
                status, text = resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            with exc:
                status, text = exc.code, exc.read().decode("utf-8")
        self.service.drain()  # the notifications of this request have been sent
        return status, text

    def post(self, payload: dict[str, Any] | bytes, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        status, text = self.request("POST", "/alertmanager", body, headers)
        return status, json.loads(text)

    def tick(self) -> None:
        """An escalation round, after a heartbeat as Alertmanager sends one every repeat interval (the dead man's
        switch tests call service.tick() alone)."""
        assert self.post(WATCHDOG)[0] == 200
        self.service.tick()

    def kinds(self, incident_id: int) -> list[str]:
        return [e.kind for e in self.register.events(incident_id)]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.service.registry.get_sample_value(name, labels or {})


@pytest.fixture
def notify(tmp_path: Path, pki: Pki, smtpd: tuple[Inbox, int], providers: Providers) -> Iterator[Harness]:
    inbox, port = smtpd
    harness = Harness(write_config(tmp_path, port, pki, providers.url), Clock(vn(9, 9)), inbox, providers)
    harness.start()
    yield harness
    harness.stop()


# -- payloads as Alertmanager 0.25 sends them --------------------------------------------------------------------------
GROUP = '{}/{severity="critical"}:{alertname="ProvsecHostDown"}'


def alert(host: str, status: str = "firing", severity: str = "critical",
          name: str = "ProvsecHostDown") -> dict[str, Any]:
    return {"status": status,
            "labels": {"alertname": name, "instance": f"{host}:9100", "job": "node", "severity": severity},
            "annotations": {"summary": f"Máy chủ {host} không phản hồi", "summary_en": f"Host {host} is down",
                            "runbook": f"Kiểm tra nguồn điện và mạng của {host}."},
            "startsAt": "2026-03-09T01:55:00.123456789Z",
            "endsAt": "2026-03-09T02:40:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://mon1:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1",
            "fingerprint": hashlib.sha256(f"{name}/{host}".encode()).hexdigest()[:16]}


def payload(*hosts: str, status: str = "firing", severity: str = "critical", name: str = "ProvsecHostDown",
            group: str = GROUP) -> dict[str, Any]:
    return {"receiver": "provsec-notify", "status": status,
            "alerts": [alert(h, status, severity, name) for h in hosts],
            "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name, "job": "node", "severity": severity},
            "commonAnnotations": {"summary": f"Máy chủ {hosts[0]} không phản hồi"} if len(hosts) == 1 else {},
            "externalURL": "http://mon1:9093", "version": "4", "groupKey": group, "truncatedAlerts": 0}


WATCHDOG: dict[str, Any] = {
    "receiver": "provsec-heartbeat", "status": "firing",
    "alerts": [{"status": "firing", "labels": {"alertname": "ProvsecMonitoringWatchdog", "severity": "warning"},
                "annotations": {"summary": "Tín hiệu sống của giám sát"}, "startsAt": "2026-03-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://mon1:9090/graph?g0.expr=vector%281%29",
                "fingerprint": "a1b2c3d4e5f60718"}],
    "groupLabels": {"alertname": "ProvsecMonitoringWatchdog"},
    "commonLabels": {"alertname": "ProvsecMonitoringWatchdog", "severity": "warning"},
    "commonAnnotations": {"summary": "Tín hiệu sống của giám sát"}, "externalURL": "http://mon1:9093",
    "version": "4", "groupKey": '{}/{alertname="ProvsecMonitoringWatchdog"}:{}', "truncatedAlerts": 0}


def ack_link(mail: EmailMessage) -> str:
    body = mail.get_content()
    match = LINK.search(body)
    assert match, body
    return match.group(0)[len(BASE):]


# -- tests -------------------------------------------------------------------------------------------------------------
def test_first_firing_notifies_level_1_once_and_a_new_alert_again(notify: Harness) -> None:
    status, reply = notify.post(payload("db1"))
    assert (status, reply["notify"]) == (200, "new")
    incident = notify.register.get(reply["incident"])
    assert incident.state == "open"
    (mail,) = notify.inbox.to("an@stttt.phuyen.gov.vn")
    assert all(tls for _, _, tls in notify.inbox.mails)
    assert mail["Subject"].startswith("[KHẨN] ProvsecHostDown — db1")
    link = ack_link(mail)
    assert link.startswith(f"/ack/{incident.id}/")
    (sms,) = notify.providers.sms_to("0905123456")
    assert sms.startswith("(KHAN) ProvsecHostDown db1") and sms.endswith(BASE + link)
    (zalo,) = notify.providers.zalo_to("8490512")
    assert zalo.startswith("[KHẨN] ProvsecHostDown") and zalo.endswith(BASE + link)
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == [] and notify.providers.sms_to("0905765432") == []
    events = notify.register.events(incident.id)
    assert [e.kind for e in events] == ["opened", "notified", "notified", "notified"]
    assert [e.text.split(" → ")[0] for e in events[1:]] == ["Cấp 1 (Trực ban): email", "Cấp 1 (Trực ban): sms",
                                                             "Cấp 1 (Trực ban): zalo"]
    assert all(e.text.endswith(": ok") and e.who == "provsec-notify" for e in events[1:])

    # Alertmanager's repeat_interval: the same group again. Recorded, nobody notified.
    notify.clock.advance(hours=4)
    status, reply = notify.post(payload("db1"))
    assert (status, reply["notify"]) == (200, "none")
    again = notify.register.get(incident.id)
    assert (again.notifications, again.last_seen_at) == (2, notify.clock.now)
    assert len(notify.inbox.mails) == 1 and len(notify.providers.sms) == 1 and len(notify.providers.zalo) == 1

    # A new host in the same group: a new firing fingerprint, so level 1 hears about it.
    status, reply = notify.post(payload("db1", "web1"))
    assert (status, reply["notify"], reply["incident"]) == (200, "update", incident.id)
    mails = notify.inbox.to("an@stttt.phuyen.gov.vn")
    assert len(mails) == 2 and "web1" in mails[1]["Subject"]
    assert mails[1].get_content().startswith("CẬP NHẬT: nhóm cảnh báo của sự cố")
    assert len(notify.providers.sms_to("0905123456")) == 2
    assert notify.register.get(incident.id).alert_count == 2
    # The same two again: nothing new.
    assert notify.post(payload("web1", "db1"))[1]["notify"] == "none"
    assert len(notify.inbox.mails) == 2

    assert notify.metric("provsec_notify_webhooks_total", {"result": "accepted"}) == 2
    assert notify.metric("provsec_notify_webhooks_total", {"result": "duplicate"}) == 2
    assert notify.metric("provsec_notify_deliveries_total", {"channel": "sms", "result": "ok"}) == 2
    assert notify.metric("provsec_notify_deliveries_total", {"channel": "email", "result": "failed"}) == 0


def test_ack_link_get_does_not_acknowledge_post_does_and_escalation_stops(notify: Harness) -> None:
    incident_id = notify.post(payload("db1"))[1]["incident"]
    link = ack_link(notify.inbox.to("an@stttt.phuyen.gov.vn")[0])
    for _ in range(2):  # a link scanner, then the person
        status, html = notify.request("GET", link)
        assert status == 200
        assert '<form method="post">' in html and "Tôi tiếp nhận xử lý" in html and "Nguyễn Văn An (an)" in html
    assert notify.register.get(incident_id).state == "open"

    notify.clock.advance(minutes=5)
    status, html = notify.request("POST", link, b"")
    assert status == 200 and "Đã ghi nhận" in html
    incident = notify.register.get(incident_id)
    assert (incident.state, incident.acknowledged_by, incident.acknowledged_at) == ("acknowledged", "an",
                                                                                   notify.clock.now)
    status, html = notify.request("GET", link)
    assert status == 200 and "Đã được an tiếp nhận" in html and "<form" not in html

    notify.clock.advance(hours=3)  # past every level's delay
    notify.tick()
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == []
    assert "escalated" not in notify.kinds(incident_id)
    assert notify.metric("provsec_notify_escalations_total") == 0


def test_unacknowledged_critical_escalates_on_the_wall_clock(notify: Harness) -> None:
    incident_id = notify.post(payload("db1"))[1]["incident"]
    notify.clock.advance(minutes=29, seconds=59)
    notify.tick()
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == []
    notify.clock.advance(seconds=1)  # 30 minutes
    notify.tick()
    (mail,) = notify.inbox.to("binh@stttt.phuyen.gov.vn")
    assert mail["Subject"].startswith("[Cấp 2] [KHẨN]")
    assert mail.get_content().startswith(f"CHUYỂN CẤP 2: sự cố số {incident_id} chưa có ai tiếp nhận sau 30 phút")
    assert len(notify.providers.sms_to("0905765432")) == 1
    assert notify.kinds(incident_id).count("escalated") == 1
    notify.tick()  # nothing twice
    assert len(notify.inbox.to("binh@stttt.phuyen.gov.vn")) == 1
    assert notify.metric("provsec_notify_escalations_total") == 1

    # Level 2 acknowledges with their own link: the register says who.
    status, _ = notify.request("POST", ack_link(mail))
    assert status == 200
    assert notify.register.get(incident_id).acknowledged_by == "binh"
    notify.clock.advance(hours=2)
    notify.tick()
    assert notify.inbox.to("cuong@stttt.phuyen.gov.vn") == []


def test_escalation_survives_a_restart(notify: Harness) -> None:
    incident_id = notify.post(payload("db1"))[1]["incident"]
    notify.restart()  # nothing in memory; the register knows level 1 was notified
    notify.clock.advance(minutes=31)
    notify.tick()
    assert len(notify.inbox.to("an@stttt.phuyen.gov.vn")) == 1  # level 1 not again
    assert len(notify.inbox.to("binh@stttt.phuyen.gov.vn")) == 1
    notify.restart()
    notify.clock.advance(minutes=60)  # 91 minutes: level 3
    notify.tick()
    assert len(notify.inbox.to("binh@stttt.phuyen.gov.vn")) == 1
    (mail,) = notify.inbox.to("cuong@stttt.phuyen.gov.vn")
    assert mail["Subject"].startswith("[Cấp 3]")
    assert notify.kinds(incident_id).count("escalated") == 2


def test_a_warning_waits_for_working_hours_and_escalates_in_working_time(notify: Harness) -> None:
    group = '{}/{severity="warning"}:{alertname="ProvsecDiskFilling"}'
    notify.clock.now = vn(7, 10)  # Saturday
    reply = notify.post(payload("web1", severity="warning", name="ProvsecDiskFilling", group=group))[1]
    assert reply["notify"] == "new"
    assert notify.inbox.mails == []  # warning: within working hours only
    notify.clock.now = vn(9, 7, 29)
    notify.tick()
    assert notify.inbox.mails == []
    notify.clock.now = vn(9, 7, 30)  # Monday, start of working hours (Điều 8.3b)
    notify.tick()
    (mail,) = notify.inbox.to("an@stttt.phuyen.gov.vn")
    assert mail["Subject"].startswith("[CẢNH BÁO] ProvsecDiskFilling — web1")
    assert notify.providers.sms == [] and notify.providers.zalo == []  # warning: email only

    # Level 2 after 30 working minutes: 08:00 the same morning.
    notify.clock.now = vn(9, 7, 59)
    notify.tick()
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == []
    notify.clock.now = vn(9, 8, 0)
    notify.tick()
    assert len(notify.inbox.to("binh@stttt.phuyen.gov.vn")) == 1
    assert notify.providers.sms == []
    # Level 3 after 90 working minutes: 09:00.
    notify.clock.now = vn(9, 9, 0)
    notify.tick()
    (mail,) = notify.inbox.to("cuong@stttt.phuyen.gov.vn")
    assert "sau 90 phút làm việc" in mail.get_content()
    assert notify.kinds(reply["incident"]).count("escalated") == 2


def test_a_warning_before_lunch_escalates_after_lunch(notify: Harness) -> None:
    group = '{}/{severity="warning"}:{alertname="ProvsecDiskFilling"}'
    notify.clock.now = vn(9, 11, 20)
    notify.post(payload("web1", severity="warning", name="ProvsecDiskFilling", group=group))
    assert len(notify.inbox.to("an@stttt.phuyen.gov.vn")) == 1
    notify.clock.now = vn(9, 12, 30)  # 70 minutes later on the wall clock, 10 working minutes
    notify.tick()
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == []
    notify.clock.now = vn(9, 13, 50)  # 10 minutes before lunch + 20 after
    notify.tick()
    assert len(notify.inbox.to("binh@stttt.phuyen.gov.vn")) == 1


def test_resolved_tells_the_people_notified_and_stops_escalation(notify: Harness) -> None:
    incident_id = notify.post(payload("db1"))[1]["incident"]
    notify.clock.advance(minutes=30)
    notify.tick()  # level 2 notified too
    notify.clock.advance(minutes=10)
    status, reply = notify.post(payload("db1", status="resolved"))
    assert (status, reply["notify"]) == (200, "resolved")
    incident = notify.register.get(incident_id)
    assert (incident.state, incident.resolved_by) == ("resolved", "alertmanager")
    for address in ("an@stttt.phuyen.gov.vn", "binh@stttt.phuyen.gov.vn"):
        mail = notify.inbox.to(address)[-1]
        assert mail["Subject"].startswith("[ĐÃ KHẮC PHỤC] ProvsecHostDown — db1")
        body = mail.get_content()
        assert body.startswith(f"Sự cố số {incident_id} đã được hệ thống giám sát báo hết lúc 09:40 09/03/2026")
        assert "/ack/" not in body and len(body) < 400
    assert notify.providers.sms_to("0905123456")[-1].startswith("(DA KHAC PHUC) ProvsecHostDown db1")
    assert "/ack/" not in notify.providers.sms_to("0905123456")[-1]
    assert notify.providers.zalo_to("8490512")[-1].startswith("[ĐÃ KHẮC PHỤC]")
    assert notify.inbox.to("cuong@stttt.phuyen.gov.vn") == []
    notify.clock.advance(hours=3)
    notify.tick()
    assert notify.inbox.to("cuong@stttt.phuyen.gov.vn") == []  # escalation stopped
    # A repeated resolution: nobody told twice.
    count = len(notify.inbox.mails)
    assert notify.post(payload("db1", status="resolved"))[1]["notify"] == "none"
    assert len(notify.inbox.mails) == count


def test_dead_mans_switch_alarm_once_then_recovery(notify: Harness) -> None:
    status, reply = notify.post(WATCHDOG)
    assert (status, reply) == (200, {"status": "heartbeat"})
    assert notify.register.list() == []  # never an incident
    assert notify.metric("provsec_notify_heartbeat_last_timestamp_seconds") == notify.clock.now.timestamp()
    notify.clock.advance(minutes=5)
    notify.post(WATCHDOG)  # every repeat interval
    beat = notify.clock.now
    notify.clock.advance(minutes=10)
    notify.service.tick()
    assert notify.inbox.mails == []  # exactly the timeout: not yet
    notify.clock.advance(seconds=1)
    notify.service.tick()
    (mail,) = notify.inbox.to("an@stttt.phuyen.gov.vn")
    assert mail["Subject"] == ("[KHẨN] Mất tín hiệu sống của hệ thống giám sát: không nhận được "
                               "ProvsecMonitoringWatchdog từ 09:05 09/03/2026")
    (sms,) = notify.providers.sms_to("0905123456")
    assert sms.startswith("(KHAN) Mat tin hieu song giam sat tu 09:05 09/03/2026")
    assert len(notify.providers.zalo_to("8490512")) == 1  # critical: every channel
    assert notify.inbox.to("binh@stttt.phuyen.gov.vn") == []  # level 1 only
    notify.clock.advance(minutes=30)
    notify.service.tick()
    notify.restart()  # the alarm is out: a restart does not send it again
    notify.service.tick()
    assert len(notify.inbox.mails) == 1
    assert notify.metric("provsec_notify_heartbeat_last_timestamp_seconds") == beat.timestamp()

    notify.post(WATCHDOG)
    (mail, recovered) = notify.inbox.to("an@stttt.phuyen.gov.vn")
    assert recovered["Subject"].startswith("[ĐÃ KHẮC PHỤC] Tín hiệu sống của hệ thống giám sát đã trở lại")
    assert notify.providers.sms_to("0905123456")[-1].startswith("(DA KHAC PHUC) Tin hieu song")
    notify.post(WATCHDOG)
    assert len(notify.inbox.mails) == 2  # recovery once
    assert notify.register.list() == []
    assert notify.metric("provsec_notify_webhooks_total", {"result": "heartbeat"}) == 2  # since the restart


def test_no_heartbeat_ever_counts_from_the_start(notify: Harness) -> None:
    notify.clock.advance(minutes=11)
    notify.service.tick()
    assert len(notify.inbox.to("an@stttt.phuyen.gov.vn")) == 1
    assert notify.metric("provsec_notify_heartbeat_last_timestamp_seconds") is None


def test_tampered_foreign_and_expired_links_get_403(notify: Harness) -> None:
    first = notify.post(payload("db1"))[1]["incident"]
    second = notify.post(payload("gw1", group='{}:{alertname="Other"}'))[1]["incident"]
    link = ack_link(notify.inbox.to("an@stttt.phuyen.gov.vn")[0])
    _, _, number, expiry, signature = link.split("/")
    assert int(number) == first
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    bad = [f"/ack/{first}/{expiry}/{flipped}",            # altered signature
           f"/ack/{second}/{expiry}/{signature}",         # another incident
           f"/ack/{first}/{int(expiry) + 3600}/{signature}",  # expiry pushed back
           f"/ack/{first}/{expiry}/short", "/ack/x"]
    for path in bad:
        for method in ("GET", "POST"):
            status, html = notify.request(method, path, b"" if method == "POST" else None)
            assert status == 403, (path, method)
            assert "không hợp lệ" in html and "not valid" in html
    notify.clock.advance(hours=24, seconds=1)
    for method in ("GET", "POST"):
        status, html = notify.request(method, link, b"" if method == "POST" else None)
        assert status == 403
        assert "hết hạn" in html and "expired" in html
    assert {notify.register.get(i).state for i in (first, second)} == {"open"}


def test_bad_webhooks_store_nothing(notify: Harness) -> None:
    status, reply = notify.post(b"{not json")
    assert status == 400 and reply["error"].startswith("Alertmanager webhook payload: not JSON")
    broken = copy.deepcopy(payload("db1"))
    del broken["alerts"][0]["fingerprint"]
    status, reply = notify.post(broken)
    assert status == 400
    assert reply["error"] == "Alertmanager webhook payload: alerts[0].fingerprint: missing"
    big = json.dumps(payload("db1") | {"pad": "x" * (1 << 20)}).encode()
    status, reply = notify.post(big)
    assert status == 413 and "1048576" in reply["error"]
    assert notify.post(payload("db1"), token=None)[0] == 401
    assert notify.post(payload("db1"), token=TOKEN + "x")[0] == 401
    assert notify.register.list() == [] and notify.inbox.mails == []
    for result, count in (("invalid", 2), ("too_large", 1), ("unauthorized", 2), ("accepted", 0)):
        assert notify.metric("provsec_notify_webhooks_total", {"result": result}) == count
    status, text = notify.request("GET", "/metrics")
    assert status == 200
    assert 'provsec_notify_webhooks_total{result="too_large"} 1.0' in text
    assert "provsec_notify_escalations_total 0.0" in text
    assert 'provsec_notify_delivery_attempts_total{channel="zalo"} 0.0' in text
    assert "process_" not in text and "python_gc" not in text  # own registry, not the global one
    assert notify.request("GET", "/nothing")[0] == 404


def test_the_loop_runs_rounds_and_stops_at_once(tmp_path: Path, pki: Pki, smtpd: tuple[Inbox, int],
                                               providers: Providers) -> None:
    config = load_config(write_config(tmp_path, smtpd[1], pki, providers.url))
    config = replace(config, check_interval=0.02)
    rounds = threading.Event()
    service = NotifyService(config, now=Clock(vn(9, 9)))
    original: Callable[[], None] = service.tick

    def tick() -> None:
        original()
        rounds.set()

    service.tick = tick  # type: ignore[method-assign]
    service.start()
    try:
        assert rounds.wait(5)
    finally:
        service.stop(timeout=2)
    assert all(not t.is_alive() for t in threading.enumerate() if t.name.startswith("notify-"))
