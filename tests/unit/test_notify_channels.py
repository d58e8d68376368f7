"""SMS gateway and Zalo OA channels against local HTTP servers (127.0.0.1, random port) that check the request
shape the real APIs expect and answer as they do; retries, backoff and the delivery counters.

Each fake server records every deviation from the expected request in `violations`; a test ends by
asserting there are none, so a wrong header or body field fails the test even when the client would have
accepted the reply."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from provsec.notify.channels import DeliveryResult, SmsGatewayChannel, SmsGatewayConfig, ZaloChannel, ZaloConfig
from provsec.notify.messages import Notification
from provsec.notify.metrics import NotifyMetrics
from provsec.notify.retry import RetryPolicy
from provsec.notify.zalo import TokenStore, ZaloTokens

NOTE = Notification(
    subject="[KHẨN] ProvsecHostDown — db1",
    email_body="…",
    sms_text='(KHAN) ProvsecHostDown db1: "may chu" & ping=0% +1 https://mon1/ack/x?a=1&b=2',
    zalo_text="[KHẨN] ProvsecHostDown\nMáy: db1\nMáy chủ không phản hồi. Xác nhận: https://mon1/ack/x",
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class FakeServer:
    """A threaded HTTP server on 127.0.0.1; `handle(request) -> (status, headers, body)` decides the reply."""

    handle: Callable[[Request], Reply]
    requests: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.violations.append(message)
        return condition


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Request], Reply]], FakeServer]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Callable[[Request], Reply]) -> FakeServer:
        fake = FakeServer(handle)

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urllib.parse.urlsplit(self.path)
                req = Request(self.command, parts.path, urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                fake.requests.append(req)
                try:
                    status, headers, body = fake.handle(req)
                except Exception as exc:  # a bug in the fake must show up as a violation, not a hang
                    fake.violations.append(f"fake server error: {exc!r}")
                    status, headers, body = 500, {}, b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        fake.url = f"http://127.0.0.1:{server.server_address[1]}"
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def json_reply(data: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(data).encode()


class FakeClock:
    """time.monotonic and time.sleep for backoff tests: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- SMS gateway ---------------------------------------------------------------------------------------------

def test_sms_json_template_is_escaped_and_checked(serve: Any) -> None:
    def gateway(req: Request) -> Reply:
        fake.check(req.method == "POST" and req.path == "/api/v1/sms", f"{req.method} {req.path}")
        fake.check(req.headers.get("authorization") == "Bearer k3y", "API key header")
        fake.check(req.headers.get("content-type") == "application/json; charset=utf-8", "content type")
        body = json.loads(req.body)
        fake.check(body == {"to": "0905123456", "content": NOTE.sms_text, "brandname": "STTTT-PY", "type": 2,
                            "options": {"unicode": False}}, f"body {body!r}")
        return json_reply({"CodeResult": "100", "SMSID": "a-1"})

    fake = serve(gateway)
    config = SmsGatewayConfig(
        url=fake.url + "/api/v1/sms", phones=("0905123456",), headers={"Authorization": "Bearer k3y"},
        body_template='{"to": "{phone}", "content": "{text}", "brandname": "STTTT-PY", "type": 2, '
                      '"options": {"unicode": false}}',
        success_field="CodeResult", success_values=("100",))
    result = SmsGatewayChannel(config).send(NOTE)
    assert result == DeliveryResult("sms", True, 1, None, ("0905123456",), ())
    assert fake.violations == []
    assert "k3y" not in repr(config)


def test_sms_form_template_and_json_field_failure(serve: Any) -> None:
    def gateway(req: Request) -> Reply:
        fake.check(req.headers.get("content-type") == "application/x-www-form-urlencoded", "content type")
        form = urllib.parse.parse_qs(req.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        fake.check(form == {"user": ["soyte"], "phone": ["+84905123456"], "msg": [NOTE.sms_text], "unicode": ["0"]},
                   f"form {form!r}")
        return json_reply({"status": "error", "reason": "insufficient balance"})  # 200, but not sent

    fake = serve(gateway)
    config = SmsGatewayConfig(url=fake.url + "/send", phones=("+84905123456",), body_format="form",
                              body_template="user=soyte&phone={phone}&msg={text}&unicode=0",
                              success_field="status", success_values=("ok", "queued"))
    clock = FakeClock()
    result = SmsGatewayChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert not result.ok
    assert result.attempts == 1  # the gateway refused: permanent, not retried
    assert result.failed == ("+84905123456",)
    assert "status='error' (expected ok or queued)" in (result.error or "")
    assert fake.violations == []


def test_sms_get_with_placeholders_in_url(serve: Any) -> None:
    def gateway(req: Request) -> Reply:
        fake.check(req.method == "GET" and req.path == "/sms", "GET /sms")
        fake.check(req.query == {"to": ["0905123456"], "text": [NOTE.sms_text], "key": ["x"]}, f"{req.query!r}")
        fake.check(req.body == b"", "no body")
        return 204, {}, b""

    fake = serve(gateway)
    config = SmsGatewayConfig(url=fake.url + "/sms?to={phone}&text={text}&key=x", method="GET")
    result = SmsGatewayChannel(config).send(NOTE, to=["0905123456"])
    assert result.ok
    assert fake.violations == []


def test_sms_retries_with_backoff_then_succeeds(serve: Any) -> None:
    failures = 3

    def gateway(req: Request) -> Reply:
        if len(fake.requests) <= failures:
            return 503, {}, b"busy"
        return 200, {}, b"OK"

    fake = serve(gateway)
    registry = CollectorRegistry()
    metrics = NotifyMetrics(registry)
    clock = FakeClock()
    channel = SmsGatewayChannel(SmsGatewayConfig(url=fake.url + "/", phones=("0905123456",), body_template="{}"),
                                metrics=metrics, policy=RetryPolicy(max_attempts=5, base_delay=1, max_delay=30),
                                sleep=clock.sleep, clock=clock.clock)
    result = channel.send(NOTE)
    assert result.ok and result.attempts == 4
    assert clock.sleeps == [1, 2, 4]
    assert registry.get_sample_value("provsec_notify_deliveries_total", {"channel": "sms", "result": "ok"}) == 1
    assert registry.get_sample_value("provsec_notify_deliveries_total", {"channel": "sms", "result": "failed"}) == 0
    assert registry.get_sample_value("provsec_notify_delivery_attempts_total", {"channel": "sms"}) == 4
    assert b"_created" not in generate_latest(registry)


def test_sms_gives_up_after_max_attempts_and_counts_the_failure(serve: Any) -> None:
    fake = serve(lambda req: (500, {}, b"down"))
    registry = CollectorRegistry()
    clock = FakeClock()
    channel = SmsGatewayChannel(SmsGatewayConfig(url=fake.url + "/", phones=("0905123456", "0914000111"),
                                                 body_template="{}"),
                                metrics=NotifyMetrics(registry), policy=RetryPolicy(max_attempts=3),
                                sleep=clock.sleep, clock=clock.clock)
    result = channel.send(NOTE)
    assert not result.ok
    assert result.attempts == 6 and len(fake.requests) == 6  # 3 per recipient
    assert result.failed == ("0905123456", "0914000111")
    assert "HTTP 500: down" in (result.error or "")
    assert registry.get_sample_value("provsec_notify_deliveries_total", {"channel": "sms", "result": "failed"}) == 2
    assert registry.get_sample_value("provsec_notify_delivery_attempts_total", {"channel": "sms"}) == 6


def test_backoff_is_bounded_by_total_time(serve: Any) -> None:
    fake = serve(lambda req: (502, {}, b""))
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, base_delay=2, multiplier=2, max_delay=100, max_total=20)
    channel = SmsGatewayChannel(SmsGatewayConfig(url=fake.url + "/", phones=("0905123456",), body_template="{}"),
                                policy=policy, sleep=clock.sleep, clock=clock.clock)
    result = channel.send(NOTE)
    # waits 2, 4, 8 (total 14); the next wait (16) would end past 20 s: stop after 4 attempts.
    assert clock.sleeps == [2, 4, 8]
    assert result.attempts == 4 and not result.ok


def test_permanent_4xx_is_not_retried_but_429_is(serve: Any) -> None:
    fake = serve(lambda req: (401, {}, b'{"error":"bad key"}'))
    clock = FakeClock()
    config = SmsGatewayConfig(url=fake.url + "/", phones=("0905123456",), body_template="{}")
    result = SmsGatewayChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert (result.ok, result.attempts, clock.sleeps) == (False, 1, [])

    def limited(req: Request) -> Reply:
        return (429, {"Retry-After": "7"}, b"") if len(fake2.requests) == 1 else (200, {}, b"")

    fake2 = serve(limited)
    config2 = SmsGatewayConfig(url=fake2.url + "/", phones=("0905123456",), body_template="{}")
    result = SmsGatewayChannel(config2, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert result.ok and result.attempts == 2
    assert clock.sleeps == [7]  # Retry-After honoured (more than the 1 s backoff, under max_delay)


def test_timeout_is_temporary(serve: Any) -> None:
    def slow(req: Request) -> Reply:
        if len(fake.requests) == 1:
            time.sleep(0.6)
        return 200, {}, b""

    fake = serve(slow)
    clock = FakeClock()
    config = SmsGatewayConfig(url=fake.url + "/", phones=("0905123456",), body_template="{}", timeout=0.2)
    result = SmsGatewayChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert result.ok and result.attempts == 2


def test_connection_refused_is_temporary_and_redirect_permanent(serve: Any) -> None:
    clock = FakeClock()
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = SmsGatewayConfig(url=f"http://127.0.0.1:{closed}/", phones=("0905123456",), body_template="{}")
    result = SmsGatewayChannel(config, policy=RetryPolicy(max_attempts=2), sleep=clock.sleep,
                               clock=clock.clock).send(NOTE)
    assert (result.ok, result.attempts) == (False, 2)
    assert "no response" in (result.error or "")

    fake = serve(lambda req: (302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""))
    config = SmsGatewayConfig(url=fake.url + "/", phones=("0905123456",), body_template="{}")
    result = SmsGatewayChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert (result.ok, result.attempts, len(fake.requests)) == (False, 1, 1)
    assert "HTTP 302" in (result.error or "")


def test_bad_phone_fails_only_that_delivery(serve: Any) -> None:
    fake = serve(lambda req: (200, {}, b""))
    config = SmsGatewayConfig(url=fake.url + "/", body_template="{}")
    result = SmsGatewayChannel(config).send(NOTE, to=["0905 12; rm", "0905123456"])
    assert result.failed == ("0905 12; rm",)
    assert "not a phone number" in (result.error or "")
    assert len(fake.requests) == 1


# --- Zalo OA -------------------------------------------------------------------------------------------------

APP_ID = "1234567890123456789"
SECRET = "s3cr3t-app-key"  # noqa: S105  (a test credential for the fake Zalo)
USER = "8412345678901234567"


class FakeZalo:
    """The OA send endpoint and the OAuth v4 refresh endpoint, with Zalo's behaviour: HTTP 200 with a non-zero
    `error` on failure, -216 for an invalid access token, refresh tokens that work once."""

    def __init__(self, token_file: Path, access: str, refresh: str) -> None:
        self.token_file = token_file
        self.access = access
        self.refresh = refresh
        self.generation = 0
        self.sent: list[tuple[str, str]] = []
        self.stale_file_when_used = False
        self.fake: FakeServer

    def __call__(self, req: Request) -> Reply:
        check = self.fake.check
        if req.path == "/v4/oa/access_token":
            check(req.method == "POST", "refresh: POST")
            check(req.headers.get("secret_key") == SECRET, "refresh: secret_key header")
            check(req.headers.get("content-type") == "application/x-www-form-urlencoded", "refresh: form")
            form = urllib.parse.parse_qs(req.body.decode("ascii"), strict_parsing=True)
            check(set(form) == {"app_id", "refresh_token", "grant_type"}, f"refresh fields {sorted(form)}")
            check(form.get("app_id") == [APP_ID] and form.get("grant_type") == ["refresh_token"], "refresh values")
            if form.get("refresh_token") != [self.refresh]:
                return json_reply({"error": -14014, "error_name": "Invalid refresh token",
                                   "error_description": "Refresh token is invalid or expired"})
            self.generation += 1
            self.access, self.refresh = f"acc-{self.generation}", f"ref-{self.generation}"  # old one now dead
            return json_reply({"access_token": self.access, "refresh_token": self.refresh, "expires_in": "90000"})
        if req.path == "/v3.0/oa/message/cs":
            check(req.method == "POST", "send: POST")
            check(req.headers.get("content-type", "").startswith("application/json"), "send: JSON")
            check("authorization" not in req.headers, "send: token goes in the access_token header")
            body = json.loads(req.body)
            check(set(body) == {"recipient", "message"}, f"send: body keys {sorted(body)}")
            check(body.get("recipient") == {"user_id": USER}, f"send: recipient {body.get('recipient')!r}")
            text = body.get("message", {}).get("text")
            check(set(body.get("message", {})) == {"text"} and isinstance(text, str) and 0 < len(text) <= 2000,
                  "send: message.text")
            if req.headers.get("access_token") != self.access:
                return json_reply({"error": -216, "message": "Access token is invalid"})
            # The token in use must already be on disk: a crash now must not lose the new refresh token.
            on_disk = json.loads(self.token_file.read_text(encoding="utf-8"))
            if on_disk["refresh_token"] != self.refresh:
                self.stale_file_when_used = True
            self.sent.append((USER, text))
            return json_reply({"error": 0, "message": "Success", "data": {"message_id": "m1", "user_id": USER}})
        check(False, f"unexpected {req.method} {req.path}")
        return json_reply({"error": 404, "message": "empty api"})


def zalo_setup(serve: Any, tmp_path: Path, *, access: str = "acc-0", expires_in: timedelta = timedelta(hours=20)
               ) -> tuple[FakeZalo, ZaloConfig, TokenStore]:
    token_file = tmp_path / "zalo" / "tokens.json"
    token_file.parent.mkdir(mode=0o700)
    store = TokenStore(token_file)
    store.save(ZaloTokens(access, "ref-0", datetime.now(UTC) + expires_in))
    zalo = FakeZalo(token_file, access="acc-0", refresh="ref-0")
    zalo.fake = serve(zalo)
    config = ZaloConfig(app_id=APP_ID, secret_key=SECRET, token_file=token_file, user_ids=(USER,),
                        api_base=zalo.fake.url, oauth_base=zalo.fake.url)
    return zalo, config, store


def test_zalo_sends_with_the_stored_token(serve: Any, tmp_path: Path) -> None:
    zalo, config, _ = zalo_setup(serve, tmp_path)
    result = ZaloChannel(config).send(NOTE)
    assert result == DeliveryResult("zalo", True, 1, None, (USER,), ())
    assert zalo.sent == [(USER, NOTE.zalo_text)]
    assert zalo.generation == 0  # no refresh needed
    assert zalo.fake.violations == []
    assert SECRET not in repr(config)


def test_zalo_expired_token_refreshes_once_stores_atomically_and_retries(serve: Any, tmp_path: Path) -> None:
    zalo, config, store = zalo_setup(serve, tmp_path)
    zalo.access = "acc-server-side-expired"  # Zalo no longer accepts acc-0: -216
    before = config.token_file.stat()
    registry = CollectorRegistry()
    result = ZaloChannel(config, metrics=NotifyMetrics(registry)).send(NOTE)
    assert result.ok and result.attempts == 1
    paths = [r.path for r in zalo.fake.requests]
    assert paths == ["/v3.0/oa/message/cs", "/v4/oa/access_token", "/v3.0/oa/message/cs"]
    assert [r.headers.get("access_token") for r in zalo.fake.requests if r.path.endswith("/cs")] == ["acc-0", "acc-1"]
    assert zalo.fake.violations == []
    assert not zalo.stale_file_when_used  # the new pair was on disk before the new access token was used
    # Replaced by rename (a new inode), mode 0600, no temp file left, the new single-use refresh token stored.
    after = config.token_file.stat()
    assert after.st_ino != before.st_ino
    assert stat.S_IMODE(after.st_mode) == 0o600
    assert sorted(p.name for p in config.token_file.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]
    tokens = store.load()
    assert (tokens.access_token, tokens.refresh_token) == ("acc-1", "ref-1")
    assert tokens.expires_at is not None and tokens.expires_at > datetime.now(UTC) + timedelta(hours=24)
    assert registry.get_sample_value("provsec_notify_deliveries_total", {"channel": "zalo", "result": "ok"}) == 1


def test_zalo_refreshes_before_sending_when_the_token_is_due(serve: Any, tmp_path: Path) -> None:
    zalo, config, store = zalo_setup(serve, tmp_path, expires_in=timedelta(minutes=1))
    result = ZaloChannel(config).send(NOTE)
    assert result.ok
    assert [r.path for r in zalo.fake.requests] == ["/v4/oa/access_token", "/v3.0/oa/message/cs"]
    assert store.load().refresh_token == "ref-1"  # noqa: S105
    assert zalo.fake.violations == []


def test_zalo_dead_refresh_token_is_a_permanent_failure(serve: Any, tmp_path: Path) -> None:
    zalo, config, store = zalo_setup(serve, tmp_path)
    zalo.access, zalo.refresh = "acc-elsewhere", "ref-elsewhere"  # someone spent our refresh token
    clock = FakeClock()
    result = ZaloChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert not result.ok and result.attempts == 1 and clock.sleeps == []
    assert "authorise the OA for the app again" in (result.error or "")
    assert store.load().refresh_token == "ref-0"  # noqa: S105  (not overwritten by a failed refresh)
    assert zalo.fake.violations == []


def test_zalo_other_errors_are_permanent_and_not_refreshed(serve: Any, tmp_path: Path) -> None:
    zalo, config, _ = zalo_setup(serve, tmp_path)
    config = ZaloConfig(app_id=APP_ID, secret_key=SECRET, token_file=config.token_file, user_ids=("8400000000001",),
                        api_base=zalo.fake.url, oauth_base=zalo.fake.url)

    def user_unknown(req: Request) -> Reply:
        return json_reply({"error": -213, "message": "User has not followed OA"})

    zalo.fake.handle = user_unknown
    result = ZaloChannel(config).send(NOTE)
    assert not result.ok and result.attempts == 1
    assert "error -213: User has not followed OA" in (result.error or "")
    assert [r.path for r in zalo.fake.requests] == ["/v3.0/oa/message/cs"]


def test_zalo_server_error_is_retried(serve: Any, tmp_path: Path) -> None:
    zalo, config, _ = zalo_setup(serve, tmp_path)
    real = zalo.fake.handle
    zalo.fake.handle = lambda req: (502, {}, b"bad gateway") if len(zalo.fake.requests) <= 2 else real(req)
    clock = FakeClock()
    result = ZaloChannel(config, sleep=clock.sleep, clock=clock.clock).send(NOTE)
    assert result.ok and result.attempts == 3 and clock.sleeps == [1, 2]
    assert zalo.fake.violations == []


def test_zalo_missing_token_file_fails_the_delivery_with_a_clear_error(tmp_path: Path) -> None:
    config = ZaloConfig(app_id=APP_ID, secret_key=SECRET, token_file=tmp_path / "none.json", user_ids=(USER,),
                        api_base="http://127.0.0.1:9", oauth_base="http://127.0.0.1:9")
    result = ZaloChannel(config).send(NOTE)
    assert not result.ok and result.attempts == 1
    assert "Zalo token file missing" in (result.error or "")


def test_concurrent_senders_spend_the_refresh_token_once(serve: Any, tmp_path: Path) -> None:
    zalo, config, store = zalo_setup(serve, tmp_path)
    zalo.access = "acc-server-side-expired"
    channels = [ZaloChannel(config) for _ in range(4)]  # separate channels: the file lock, not one object
    results: list[DeliveryResult] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.send(NOTE))) for c in channels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok for r in results) and len(results) == 4
    assert zalo.generation == 1  # one refresh; the others found the new pair on disk
    assert store.load().refresh_token == "ref-1"  # noqa: S105
    assert zalo.fake.violations == []
