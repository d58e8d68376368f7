"""`provsec notify serve`: the Alertmanager webhook receiver.

    POST /alertmanager                 Alertmanager webhook v4 (optional bearer token or basic auth)
    GET  /ack/<id>/<expiry>/<sig>      confirmation page (changes nothing: link scanners prefetch URLs)
    POST /ack/<id>/<expiry>/<sig>      acknowledge as the person the link was made for; escalation stops
    GET  /metrics                      provsec_notify_* (own registry, never the global one)
    GET  /-/healthy                    200 while the process serves

A webhook is validated (400 with the reason, nothing stored; 413 past the size cap), recorded in the incident
register (one incident per groupKey) and answered at once; notifications go out from one worker thread, so a slow
SMTP server never holds Alertmanager up. A repeat of a group (Alertmanager re-sends it every repeat_interval) updates
the register but notifies only when it carries a firing fingerprint the incident had not seen firing; a resolved
group tells the people already notified, in a short message. The dead man's switch alert (heartbeat.py) never
opens an incident.

The escalation loop (one thread; sleeps at most `check_interval`, stops at once on stop()) takes the register's
unacknowledged open incidents and notifies every rota level whose delay has passed (escalation.py), and checks the
heartbeat. Deliveries and escalation share one lock, so a level is never sent twice by the two threads. Every
delivery is a `notified` event (channel, recipient, result) and every step up the rota an `escalated` event.

Working hours (a severity with `working_hours_only`, warning by default) hold back the first notification and the
escalation steps until working time. Two messages are not held back: the resolution (the people already told may
stop working on it; warnings go by email, which wakes nobody) and the dead man's switch (critical). A new alert in
a warning group outside working hours is recorded (a `notified` event says it was not sent) but not sent later."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec.errors import InputError
from provsec.notify.ack import AckError, page, parse_path, verify
from provsec.notify.ack import make_link as make_ack_link
from provsec.notify.channels import Channel, DeliveryResult, EmailChannel, SmsGatewayChannel, ZaloChannel
from provsec.notify.config import Level, NotifyConfig, Person, SeverityPolicy
from provsec.notify.escalation import due_levels, group_from_register, level_reached
from provsec.notify.heartbeat import Heartbeat
from provsec.notify.messages import (
    SMS_LIMIT,
    ZALO_TEXT_LIMIT,
    Notification,
    build_notification,
    email_subject,
    gsm7_text,
    local_time,
    shorten,
    sms_text,
    zalo_text,
)
from provsec.notify.metrics import NotifyMetrics
from provsec.notify.payload import AlertGroup, parse_webhook
from provsec.notify.register import Incident, Register, RegisterError

log = logging.getLogger("provsec.notify")

WHO = "provsec-notify"
WEBHOOK_RESULTS = ("accepted", "duplicate", "heartbeat", "invalid", "too_large", "unauthorized", "error")
DRAIN_LIMIT = 16 << 20  # a too-large body is read (and dropped) up to this, so the client sees the 413


class ServerMetrics(Collector):
    """provsec_notify_webhooks_total{result}, provsec_notify_escalations_total and
    provsec_notify_heartbeat_last_timestamp_seconds (absent until a heartbeat is known)."""

    def __init__(self, heartbeat_last: Callable[[], datetime | None],
                 registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._webhooks = dict.fromkeys(WEBHOOK_RESULTS, 0.0)
        self._escalations = 0.0
        self._heartbeat_last = heartbeat_last
        if registry is not None:
            registry.register(self)

    def webhook(self, result: str) -> None:
        with self._lock:
            self._webhooks[result] += 1

    def escalation(self) -> None:
        with self._lock:
            self._escalations += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            webhooks, escalations = sorted(self._webhooks.items()), self._escalations
        family = CounterMetricFamily("provsec_notify_webhooks", "Alertmanager webhook calls by result (accepted, "
                                     "duplicate: recorded without notifying, heartbeat, invalid, too_large, "
                                     "unauthorized, error: the register could not be written).", labels=["result"])
        for result, value in webhooks:
            family.add_metric([result], value)
        yield family
        yield CounterMetricFamily("provsec_notify_escalations", "Unacknowledged incidents escalated to the next "
                                  "level of the on-call rota.", value=escalations)
        last = self._heartbeat_last()
        if last is not None:
            yield GaugeMetricFamily("provsec_notify_heartbeat_last_timestamp_seconds", "When the last "
                                    "dead man's switch heartbeat (the always-firing watchdog alert) arrived, Unix "
                                    "time.", value=last.timestamp())


def build_channels(config: NotifyConfig, metrics: NotifyMetrics | None) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if config.email is not None:
        channels["email"] = EmailChannel(config.email, metrics=metrics, policy=config.retry)
    if config.sms is not None:
        channels["sms"] = SmsGatewayChannel(config.sms, metrics=metrics, policy=config.retry)
    if config.zalo is not None:
        channels["zalo"] = ZaloChannel(config.zalo, metrics=metrics, policy=config.retry)
    return channels


def _minutes(level: Level) -> str:
    return f"{level.after.total_seconds() / 60:g}"


class NotifyService:
    """Everything but HTTP: webhooks in, notifications out, acknowledgement links, escalation, the heartbeat."""

    def __init__(self, config: NotifyConfig, *, register: Register | None = None,
                 channels: Mapping[str, Channel] | None = None, now: Callable[[], datetime] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.now = now or (lambda: datetime.now(UTC))
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.delivery_metrics = NotifyMetrics(self.registry)
        self.register = register or config.open_register()
        self.channels = dict(channels) if channels is not None else build_channels(config, self.delivery_metrics)
        self.heartbeat = Heartbeat(config.heartbeat, self.now())
        self.metrics = ServerMetrics(lambda: self.heartbeat.state.last, self.registry)
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._lock = threading.RLock()          # deliveries and escalation, one at a time
        self._webhook_lock = threading.Lock()   # read-before-write of a group's fingerprints
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- threads ------------------------------------------------------------------------------------------------------
    def start(self, *, escalation_loop: bool = True) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._work, name="notify-worker", daemon=True)]
        if escalation_loop:
            self._threads.append(threading.Thread(target=self._loop, name="notify-escalation", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def drain(self) -> None:
        """Wait until every queued notification has been handled (tests; a clean shutdown)."""
        self._queue.join()

    def _enqueue(self, job: Callable[[], None]) -> None:
        self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                with self._lock:
                    job()
            except Exception:  # one bad job must not end the deliveries of all others
                log.exception("notification job failed")
            finally:
                self._queue.task_done()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.check_interval):
            try:
                self.tick()
            except Exception:  # the register locked for a while, a channel bug: try again next round
                log.exception("escalation round failed")

    # -- webhooks -----------------------------------------------------------------------------------------------------
    def is_heartbeat(self, group: AlertGroup) -> bool:
        return all(a.name == self.config.heartbeat.alertname for a in group.alerts)

    def handle_webhook(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON reply) for one webhook body."""
        try:
            group = parse_webhook(body)
        except InputError as exc:
            self.metrics.webhook("invalid")
            log.warning("webhook rejected: %s", exc)
            return 400, {"status": "invalid", "error": str(exc)}
        now = self.now()
        if self.is_heartbeat(group):
            self.metrics.webhook("heartbeat")
            if group.resolved:  # the watchdog stopped firing: its silence will raise the alarm when due
                log.warning("the heartbeat alert %s was resolved by Alertmanager", self.config.heartbeat.alertname)
                return 200, {"status": "heartbeat", "resolved": True}
            before = self.heartbeat.beat(now)
            if before.alarm_since is not None:
                self._enqueue(lambda: self._send_heartbeat_message(recovered=True, since=before.last, now=now))
            return 200, {"status": "heartbeat"}
        try:
            with self._webhook_lock:
                before_incident = self.register.find_open(group.group_key)
                seen = set() if before_incident is None else {
                    a["fingerprint"] for a in self.register.alerts(before_incident.id) if a["status"] == "firing"}
                incident = self.register.record_webhook(group, now=now)
        except RegisterError as exc:
            self.metrics.webhook("error")
            log.warning("webhook not recorded: %s", exc)
            return 500, {"status": "error", "error": str(exc)}
        action: str | None = None
        if group.resolved:
            action = "resolved" if before_incident is not None else None
        elif before_incident is None:
            action = "new"
        elif {a.fingerprint for a in group.firing} - seen:
            action = "update"
        self.metrics.webhook("accepted" if action else "duplicate")
        if action == "resolved":
            self._enqueue(lambda: self._notify_resolved(incident.id, group))
        elif action == "new":
            self._enqueue(lambda: self._advance(incident.id))
        elif action == "update":
            self._enqueue(lambda: self._notify_update(incident.id))
        return 200, {"status": "ok", "incident": incident.id, "notify": action or "none"}

    # -- deliveries ---------------------------------------------------------------------------------------------------
    def _link(self, incident_id: int, person: Person) -> str:
        return make_ack_link(self.config.public_base_url, self.config.ack_secret, incident_id, person.id,
                             now=self.now(), lifetime=self.config.ack_expiry)

    def _deliver(self, person: Person, note: Notification,
                 policy: SeverityPolicy) -> list[tuple[str, str, DeliveryResult]]:
        out = []
        for name in policy.channels:
            address = person.address(name)
            channel = self.channels.get(name)
            if name not in person.channels or address is None or channel is None:
                continue
            result = channel.send(note, to=[address])
            if not result.ok:
                log.warning("%s to %s (%s) failed: %s", name, person.id, address, result.error)
            out.append((name, address, result))
        return out

    def _record(self, incident_id: int, prefix: str, person: Person,
                results: Sequence[tuple[str, str, DeliveryResult]], policy: SeverityPolicy) -> None:
        if not results:
            self.register.add_event(incident_id, "notified", WHO, f"{prefix}: {person.id}: không có kênh nào "
                                    f"({', '.join(policy.channels)}) để báo người này", now=self.now())
        for name, address, result in results:
            outcome = "ok" if result.ok else f"lỗi (failed): {result.error}"
            self.register.add_event(incident_id, "notified", WHO, f"{prefix}: {name} → {person.id} ({address}): "
                                    f"{outcome}", now=self.now())

    def _incident_group(self, incident: Incident) -> AlertGroup:
        return group_from_register(incident, self.register.alerts(incident.id))

    def _advance(self, incident_id: int) -> None:
        """Notify every level of the incident that is due now (level 1 at once for a new critical one)."""
        with self._lock:
            incident = self.register.get(incident_id)
            group = self._incident_group(incident)
            policy = self.config.policy(group.severity)
            levels = due_levels(incident, self.register.events(incident_id), self.config.rota, policy,
                                calendar=self.config.calendar, now=self.now())
            for level in levels:
                if self.register.get(incident_id).state != "open":
                    return  # acknowledged or resolved meanwhile
                self._notify_level(incident, group, level, policy)

    def _notify_level(self, incident: Incident, group: AlertGroup, level: Level, policy: SeverityPolicy) -> None:
        prefix = f"Cấp {level.number} ({level.name})"
        intro = ""
        if level.number > 1:
            unit = "phút làm việc" if policy.clock == "working" else "phút"
            intro = (f"CHUYỂN CẤP {level.number}: sự cố số {incident.id} chưa có ai tiếp nhận sau {_minutes(level)} "
                     f"{unit}.")
            self.register.add_event(incident.id, "escalated", WHO, f"{prefix}: chưa ai tiếp nhận sau "
                                    f"{_minutes(level)} {unit}; báo {', '.join(p.id for p in level.people)}",
                                    now=self.now())
            self.metrics.escalation()
            log.info("incident %s escalated to level %s", incident.id, level.number)
        for person in level.people:
            note = build_notification(group, self._link(incident.id, person))
            if intro:
                note = replace(note, subject=shorten(f"[Cấp {level.number}] {note.subject}", 200),
                               email_body=f"{intro}\n\n{note.email_body}",
                               zalo_text=f"{intro}\n" + zalo_text(group, note.ack_url,
                                                                    ZALO_TEXT_LIMIT - len(intro) - 1))
            self._record(incident.id, prefix, person, self._deliver(person, note, policy), policy)

    def _people_notified(self, incident_id: int) -> list[tuple[Level, Person]]:
        reached = level_reached(self.register.events(incident_id))
        return [(lv, p) for lv in self.config.rota[:reached] for p in lv.people]

    def _notify_update(self, incident_id: int) -> None:
        """New firing alerts in a group already notified: tell everyone told so far; nobody yet: the usual steps."""
        with self._lock:
            incident = self.register.get(incident_id)
            people = self._people_notified(incident_id)
            if not people:
                self._advance(incident_id)
                return
            group = self._incident_group(incident)
            policy = self.config.policy(group.severity)
            if policy.working_hours_only and not self.config.calendar.is_working_time(self.now()):
                self.register.add_event(incident_id, "notified", WHO, "Cập nhật (cảnh báo mới trong nhóm) không gửi: "
                                        "ngoài giờ làm việc", now=self.now())
                return
            intro = f"CẬP NHẬT: nhóm cảnh báo của sự cố số {incident_id} có cảnh báo mới."
            for level, person in people:
                note = build_notification(group, self._link(incident_id, person))
                note = replace(note, email_body=f"{intro}\n\n{note.email_body}")
                self._record(incident_id, f"Cập nhật, cấp {level.number}", person,
                             self._deliver(person, note, policy), policy)

    def _notify_resolved(self, incident_id: int, group: AlertGroup) -> None:
        """A short message to everyone notified about the incident; resolving it stopped its escalation."""
        with self._lock:
            people = self._people_notified(incident_id)
            if not people:
                return
            incident = self.register.get(incident_id)
            policy = self.config.policy(group.severity)
            body = (f"Sự cố số {incident_id} đã được hệ thống giám sát báo hết lúc {local_time(incident.resolved_at)}"
                    f" (giờ Việt Nam).\n{incident.title}\nMáy: {', '.join(group.hosts) or '?'}\n\n"
                    "Không cần tiếp nhận nữa. Chi tiết: provsec incident show " + str(incident_id) + "\n\n-- \n"
                    "provsec notify (thư tự động, vui lòng không trả lời thư này)\n")
            note = Notification(subject=email_subject(group), email_body=body, sms_text=sms_text(group, None),
                                zalo_text=zalo_text(group, None, 500), group_key=group.group_key)
            for level, person in people:
                self._record(incident_id, f"Đã khắc phục, cấp {level.number}", person,
                             self._deliver(person, note, policy), policy)

    # -- the escalation round -----------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One round: the heartbeat check, then every unacknowledged open incident's due levels."""
        with self._lock:
            since = self.heartbeat.check(self.now())
            if since is not None:
                self._send_heartbeat_message(recovered=False, since=since, now=self.now())
            for incident in self.register.list(state="open"):
                self._advance(incident.id)

    def _send_heartbeat_message(self, *, recovered: bool, since: datetime | None, now: datetime) -> None:
        alertname = self.config.heartbeat.alertname
        minutes = f"{self.config.heartbeat.timeout.total_seconds() / 60:g}"
        if recovered:
            subject = f"[ĐÃ KHẮC PHỤC] Tín hiệu sống của hệ thống giám sát đã trở lại ({local_time(now)})"
            text = (f"Tín hiệu sống ({alertname}) đã đến lại lúc {local_time(now)}: Prometheus và Alertmanager gửi "
                    "được cảnh báo trở lại. Xem các cảnh báo có thể đã bị lỡ trong lúc mất tín hiệu.")
            sms = f"(DA KHAC PHUC) Tin hieu song giam sat da tro lai luc {local_time(now)}"
        else:
            subject = (f"[KHẨN] Mất tín hiệu sống của hệ thống giám sát: không nhận được {alertname} từ "
                       f"{local_time(since)}")
            text = (f"provsec notify không nhận được tín hiệu sống ({alertname}) từ {local_time(since)} (quá "
                    f"{minutes} phút). Prometheus, các luật cảnh báo, Alertmanager hoặc đường truyền giữa chúng đã "
                    "hỏng: mọi cảnh báo khác cũng sẽ không đến.\n\nXử lý: trên máy giám sát, \"systemctl status "
                    "prometheus prometheus-alertmanager provsec-notify\"; \"journalctl -u prometheus-alertmanager "
                    "-n 50\" xem lỗi gửi webhook.")
            sms = (f"(KHAN) Mat tin hieu song giam sat tu {local_time(since)}: Prometheus/Alertmanager co the da "
                   "dung. Kiem tra may giam sat.")
        note = Notification(subject=subject, email_body=f"{text}\n\n-- \nprovsec notify\n",
                            sms_text=shorten(gsm7_text(sms), SMS_LIMIT),
                            zalo_text=f"{subject}\n{text}"[:ZALO_TEXT_LIMIT])
        policy = self.config.policy("critical")
        for person in self.config.rota[0].people:
            results = self._deliver(person, note, policy)
            log.warning("dead man's switch %s → %s: %s", "recovery" if recovered else "alarm", person.id,
                        ", ".join(f"{n} {'ok' if r.ok else 'failed'}" for n, _, r in results) or "no channel")

    # -- acknowledgement links ----------------------------------------------------------------------------------------
    def ack(self, method: str, path: str) -> tuple[int, bytes]:  # noqa: PLR0911 (one page per state)
        """(HTTP status, HTML page) for GET (confirmation, changes nothing) or POST (acknowledge) of a link."""
        now = self.now()
        try:
            link = parse_path(path)
            who = verify(self.config.ack_secret, link, [p.id for p in self.config.people], now)
        except AckError as exc:
            return 403, page("Liên kết không hợp lệ / Invalid link", str(exc))
        person = next(p for p in self.config.people if p.id == who)
        try:
            incident = self.register.get(link.incident_id)
        except InputError:
            return 404, page("Không tìm thấy sự cố", f"Không có sự cố số {link.incident_id} trong sổ sự cố.")
        title = f"Sự cố số {incident.id}"
        if incident.state == "resolved":
            return (409 if method == "POST" else 200), page(
                title, incident.title, f"Sự cố đã được xử lý xong lúc {local_time(incident.resolved_at)}; không cần "
                "tiếp nhận nữa. / This incident is already resolved.")
        if incident.state == "acknowledged":
            return 200, page(title, incident.title, f"Đã được {incident.acknowledged_by} tiếp nhận lúc "
                             f"{local_time(incident.acknowledged_at)}. / Already acknowledged.")
        if method != "POST":
            return 200, page(title, incident.title, f"Người nhận: {person.name} ({person.id}).",
                             f"Mở lúc {local_time(incident.opened_at)}; {incident.firing_count} cảnh báo đang bật.",
                             "Bấm nút dưới đây để xác nhận bạn tiếp nhận xử lý sự cố; việc chuyển cấp sẽ dừng lại.",
                             button="Tôi tiếp nhận xử lý")
        with self._lock:
            try:
                done = self.register.acknowledge(incident.id, who, now=now)
            except InputError as exc:  # resolved between the two reads
                return 409, page(title, str(exc))
        log.info("incident %s acknowledged by %s through an ack link", incident.id, who)
        return 200, page(title, incident.title, f"Đã ghi nhận: {person.name} ({person.id}) tiếp nhận xử lý lúc "
                         f"{local_time(done.acknowledged_at)}. Việc chuyển cấp đã dừng. / Acknowledged; escalation "
                         "stopped.")


# -- HTTP -------------------------------------------------------------------------------------------------------------
def authorized(config: NotifyConfig, header: str | None) -> bool:
    auth = config.auth
    if not auth.required:
        return True
    header = header or ""
    if auth.bearer_token is not None:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), auth.bearer_token.encode())
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(user.encode(), (auth.username or "").encode())
    password_ok = hmac.compare_digest(password.encode(), (auth.password or "").encode())
    return user_ok and password_ok


def make_server(service: NotifyService) -> ThreadingHTTPServer:
    config = service.config
    host, port = config.listen

    class Handler(BaseHTTPRequestHandler):
        server_version = "provsec-notify"
        sys_version = ""
        timeout = 10  # seconds a client may stay silent

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
            elif path.startswith("/ack/"):
                self._html(*service.ack("GET", path))
            elif path == "/-/healthy":
                self._reply(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._reply(404, b"not found\n", "text/plain; charset=utf-8")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/alertmanager":
                self._webhook()
            elif path.startswith("/ack/"):
                self._read_body(4096)  # a form post: nothing in it is used
                self._html(*service.ack("POST", path))
            else:
                self._reply(404, b"not found\n", "text/plain; charset=utf-8")

        def _read_body(self, limit: int) -> bytes | None:
            """The body when it is at most `limit` bytes; None when larger (drained, up to DRAIN_LIMIT)."""
            length = int(self.headers.get("Content-Length") or 0)
            if length <= limit:
                return self.rfile.read(length)
            left = min(length, DRAIN_LIMIT)
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
            self.close_connection = True
            return None

        def _webhook(self) -> None:
            if not authorized(config, self.headers.get("Authorization")):
                service.metrics.webhook("unauthorized")
                self._json(401, {"status": "unauthorized", "error": "authentication required"},
                           {"WWW-Authenticate": 'Bearer realm="provsec"' if config.auth.bearer_token
                            else 'Basic realm="provsec"'})
                return
            if self.headers.get("Transfer-Encoding") or not (self.headers.get("Content-Length") or "").isdigit():
                service.metrics.webhook("invalid")
                self._json(411, {"status": "invalid", "error": "Content-Length required"})
                return
            body = self._read_body(config.max_body_bytes)
            if body is None:
                service.metrics.webhook("too_large")
                self._json(413, {"status": "too_large",
                                 "error": f"webhook body larger than {config.max_body_bytes} bytes"})
                return
            self._json(*service.handle_webhook(body))

        def _json(self, code: int, data: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
            self._reply(code, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8",
                        headers)

        def _html(self, code: int, body: bytes) -> None:
            self._reply(code, body, "text/html; charset=utf-8",
                        {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                         "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                         "form-action 'self'"})

        def _reply(self, code: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # Alertmanager posts every group_interval; the outcomes are logged where they are decided

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    try:
        return Server((host, port), Handler)
    except OSError as exc:
        raise InputError(f"{config.source}: listen {host}:{port}: cannot listen ({exc.strerror})") from exc


class NotifyServer:
    """The service and its HTTP server, started and stopped together."""

    def __init__(self, service: NotifyService) -> None:
        self.service = service
        self.http = make_server(service)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.service.config.listen[0], self.http.server_address[1]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, *, escalation_loop: bool = True) -> None:
        self.service.start(escalation_loop=escalation_loop)
        self._thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="notify-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        started = time.monotonic()
        self.http.shutdown()
        self.http.server_close()
        self.service.stop(timeout=max(1.0, 10.0 - (time.monotonic() - started)))
