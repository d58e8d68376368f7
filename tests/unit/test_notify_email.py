"""Email channel against a real SMTP server (aiosmtpd) with STARTTLS, and TLS verification against an internal
CA: a throwaway CA and server certificate are made for the test; the client trusts only that CA."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from localnet import Inbox, Pki, free_port, make_pki, smtp_server
from prometheus_client import CollectorRegistry

from provsec.notify.channels import EmailChannel, EmailConfig, SmsGatewayChannel, SmsGatewayConfig
from provsec.notify.messages import build_notification
from provsec.notify.metrics import NotifyMetrics
from provsec.notify.payload import parse_webhook
from provsec.notify.retry import RetryPolicy

PAYLOAD: dict[str, Any] = {
    "version": "4", "status": "firing", "receiver": "oncall", "groupKey": "g1",
    "groupLabels": {"alertname": "ProvsecSshBruteForce"},
    "commonLabels": {"alertname": "ProvsecSshBruteForce", "severity": "critical", "instance": "gw1:9100"},
    "commonAnnotations": {
        "summary": "Dò mật khẩu SSH trên gw1: 240 lần đăng nhập thất bại trong 5 phút",
        "description": "Có người đang thử đoán mật khẩu SSH của gw1.",
        "runbook": "Trên gw1: xem \"journalctl -u ssh\", kiểm tra fail2ban đã chặn địa chỉ nguồn chưa.",
    },
    "externalURL": "http://mon1:9093",
    "alerts": [{"status": "firing", "labels": {"alertname": "ProvsecSshBruteForce", "severity": "critical",
                                                "instance": "gw1:9100"},
                "annotations": {}, "startsAt": "2026-10-23T02:30:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "ff01", "generatorURL": ""}],
}
ACK = "https://mon1.phuyen.gov.vn/ack/Zz9"
PASSWORD = "mat-khau-9"  # noqa: S105  (the test SMTP server's account)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def smtpd(pki: Pki) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(b"canhbao", PASSWORD.encode())
    with smtp_server(pki, inbox) as port:
        yield inbox, port


def config(port: int, pki: Pki | None, **kwargs: Any) -> EmailConfig:
    defaults: dict[str, Any] = {"host": "127.0.0.1", "port": port, "sender": "canhbao@stttt.phuyen.gov.vn",
                                "to": ("trucban@stttt.phuyen.gov.vn", "kythuat@stttt.phuyen.gov.vn"),
                                "ca_file": pki.ca_file if pki else None, "timeout": 5.0}
    return EmailConfig(**(defaults | kwargs))


def test_email_over_starttls_with_login_is_received_intact(smtpd: tuple[Inbox, int], pki: Pki) -> None:
    inbox, port = smtpd
    note = build_notification(parse_webhook(PAYLOAD), ACK)
    registry = CollectorRegistry()
    channel = EmailChannel(config(port, pki, username="canhbao", password=PASSWORD),
                           metrics=NotifyMetrics(registry))
    result = channel.send(note)
    assert result.ok, result.error
    assert result.attempts == 1
    assert inbox.logins == [(b"canhbao", b"mat-khau-9")]
    assert inbox.tls_at_data == [True]
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "canhbao@stttt.phuyen.gov.vn"
    assert envelope.rcpt_tos == ["trucban@stttt.phuyen.gov.vn", "kythuat@stttt.phuyen.gov.vn"]
    raw = envelope.original_content or b""
    assert raw.isascii()  # RFC 2047 subject, transfer-encoded UTF-8 body: no SMTPUTF8/8BITMIME needed
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == note.subject
    assert mail["Subject"].startswith("[KHẨN] ProvsecSshBruteForce — gw1: Dò mật khẩu SSH trên gw1")
    assert mail["From"] == "canhbao@stttt.phuyen.gov.vn"
    assert mail["To"] == "trucban@stttt.phuyen.gov.vn, kythuat@stttt.phuyen.gov.vn"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].endswith("@stttt.phuyen.gov.vn>")
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content()
    assert body == note.email_body
    assert "Hướng dẫn xử lý:\nTrên gw1: xem \"journalctl -u ssh\"" in body
    assert ACK in body
    assert "bắt đầu 09:30 23/10/2026" in body  # 02:30 UTC in Asia/Ho_Chi_Minh
    assert registry.get_sample_value("provsec_notify_deliveries_total", {"channel": "email", "result": "ok"}) == 1


def test_email_override_recipients(smtpd: tuple[Inbox, int], pki: Pki) -> None:
    inbox, port = smtpd
    note = build_notification(parse_webhook(PAYLOAD), None)
    result = EmailChannel(config(port, pki, username="canhbao", password=PASSWORD)).send(
        note, to=["lanhdao@stttt.phuyen.gov.vn"])
    assert result.ok and result.recipients == ("lanhdao@stttt.phuyen.gov.vn",)
    assert inbox.envelopes[0].rcpt_tos == ["lanhdao@stttt.phuyen.gov.vn"]


def test_email_refuses_a_certificate_outside_the_configured_ca(smtpd: tuple[Inbox, int]) -> None:
    inbox, port = smtpd
    note = build_notification(parse_webhook(PAYLOAD), None)
    sleeps: list[float] = []
    result = EmailChannel(config(port, None), sleep=sleeps.append).send(note)  # system CAs only
    assert not result.ok
    assert result.attempts == 1 and sleeps == []  # permanent: retrying cannot make the certificate verify
    assert "certificate" in (result.error or "")
    assert inbox.envelopes == []


def test_email_wrong_password_is_permanent(smtpd: tuple[Inbox, int], pki: Pki) -> None:
    inbox, port = smtpd
    sleeps: list[float] = []
    result = EmailChannel(config(port, pki, username="canhbao", password=PASSWORD + "-sai"), sleep=sleeps.append).send(
        build_notification(parse_webhook(PAYLOAD), None))
    assert not result.ok and result.attempts == 1 and sleeps == []
    assert inbox.logins == [(b"canhbao", b"mat-khau-9-sai")]  # one mechanism tried, not PLAIN then LOGIN
    assert "login refused (535)" in (result.error or "")
    assert inbox.envelopes == []


def test_email_server_without_starttls_gets_nothing(pki: Pki) -> None:
    inbox = Inbox(b"canhbao", PASSWORD.encode())
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)  # plain SMTP, no STARTTLS offered
    controller.start()
    try:
        result = EmailChannel(config(port, pki)).send(build_notification(parse_webhook(PAYLOAD), None))
    finally:
        controller.stop()
    assert not result.ok and result.attempts == 1
    assert "does not offer STARTTLS" in (result.error or "")
    assert inbox.envelopes == []


def test_email_server_down_is_retried(pki: Pki) -> None:
    port = free_port()  # nothing listens
    sleeps: list[float] = []
    result = EmailChannel(config(port, pki), policy=RetryPolicy(max_attempts=3), sleep=sleeps.append).send(
        build_notification(parse_webhook(PAYLOAD), None))
    assert not result.ok and result.attempts == 3 and sleeps == [1, 2]
    assert "ConnectionRefusedError" in (result.error or "")


def test_sms_gateway_over_https_with_internal_ca(pki: Pki) -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = b'{"code": 0}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = pki.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/sms"
        note = build_notification(parse_webhook(PAYLOAD), ACK)
        template = '{"phone": "{phone}", "text": "{text}"}'
        ok = SmsGatewayChannel(SmsGatewayConfig(url=url, phones=("0905123456",), body_template=template,
                                                ca_file=pki.ca_file, success_field="code",
                                                success_values=("0",))).send(note)
        refused = SmsGatewayChannel(SmsGatewayConfig(url=url, phones=("0905123456",), body_template=template),
                                    sleep=lambda s: None).send(note)
    finally:
        server.shutdown()
        server.server_close()
    assert ok.ok, ok.error
    assert received == [{"phone": "0905123456", "text": note.sms_text}]
    assert not refused.ok and refused.attempts == 1  # system CAs do not know the internal CA: permanent
    assert "TLS certificate does not verify" in (refused.error or "")
