"""Notification channels: email (SMTP + STARTTLS), SMS through an HTTP gateway, Zalo Official Account.

Every channel has a typed config and `send(message, to=None) -> DeliveryResult`; `to` overrides the config's
recipients (the on-call rota picks people; the config holds the default list). Each delivery runs under a
RetryPolicy (retry.py): temporary errors are retried with exponential backoff, permanent ones are not. The
result says ok only when every recipient got the message; `failed` names the others, so escalation can act
on them. Deliveries and attempts are counted in NotifyMetrics (metrics.py).

Secrets (SMTP password, gateway API key in a header, Zalo secret key) are config values read by the caller from
root-only files; no repr, error message or log line of this module contains them."""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol

from provsec.errors import InputError
from provsec.notify import http
from provsec.notify.messages import Notification
from provsec.notify.metrics import NotifyMetrics
from provsec.notify.retry import DeliveryError, PermanentError, RetryPolicy, TemporaryError, with_retries
from provsec.notify.zalo import DEFAULT_EXPIRED_CODES, TokenStore, ZaloApi, ZaloSession

_PHONE = re.compile(r"^\+?[0-9]{8,15}$")
_PLACEHOLDER = re.compile(r"\{(phone|text)\}")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


@dataclass(frozen=True)
class DeliveryResult:
    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    recipients: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class Channel(Protocol):
    name: str

    def send(self, message: Notification, to: Sequence[str] | None = None) -> DeliveryResult: ...


class _Base:
    """Retries, metrics and the per-recipient loop shared by the channels."""

    name = "?"

    def __init__(self, metrics: NotifyMetrics | None, policy: RetryPolicy | None,
                 sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        if metrics is not None:
            metrics.add_channel(self.name)

    def _deliver(self, action: Callable[[], object]) -> tuple[bool, int, DeliveryError | None]:
        def attempt() -> None:
            try:
                action()
            except InputError as exc:  # bad recipient, unreadable token file: this delivery fails, others go on
                raise PermanentError(str(exc)) from exc

        outcome = with_retries(attempt, self.policy, sleep=self.sleep, clock=self.clock)
        if self.metrics is not None:
            self.metrics.record(self.name, outcome.ok, outcome.attempts)
        return outcome.ok, outcome.attempts, outcome.error

    def _each(self, recipients: tuple[str, ...], one: Callable[[str], object]) -> DeliveryResult:
        if not recipients:
            return DeliveryResult(self.name, False, 0, "no recipient configured or given")
        attempts, failed, errors = 0, [], []
        for recipient in recipients:
            ok, tries, error = self._deliver(lambda r=recipient: one(r))  # type: ignore[misc]
            attempts += tries
            if not ok:
                failed.append(recipient)
                errors.append(str(error))
        return DeliveryResult(self.name, not failed, attempts, "; ".join(errors) or None, recipients, tuple(failed))


def _recipients(given: Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    items = default if given is None else ([given] if isinstance(given, str) else list(given))
    return tuple(dict.fromkeys(item.strip() for item in items if item and item.strip()))


# --- email ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmailConfig:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # internal CA: trust only this file's certificates
    timeout: float = 15.0
    helo_name: str | None = None

    def __post_init__(self) -> None:
        for address in (self.sender, *self.to):
            if not _EMAIL.match(address):
                raise InputError(f"notify email: not an email address: {address!r}")
        if (self.username is None) != (self.password is None):
            raise InputError("notify email: username and password go together (both or neither)")


def _smtp_error(exc: Exception, what: str) -> DeliveryError:
    """SMTP 4xx and lost connections are temporary; 5xx, refused login, no STARTTLS, bad certificate permanent."""
    error_type: type[DeliveryError] = TemporaryError
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        error_type, text = PermanentError, f"login refused ({exc.smtp_code})"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        if not any(400 <= code < 500 for code, _ in exc.recipients.values()):
            error_type = PermanentError
        text = "every recipient refused: " + ", ".join(f"{rcpt} ({code})"
                                                       for rcpt, (code, _) in exc.recipients.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        if not 400 <= exc.smtp_code < 500:
            error_type = PermanentError
        text = f"server said {exc.smtp_code} {reply.strip()}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        error_type, text = PermanentError, str(exc)
    elif isinstance(exc, ssl.SSLCertVerificationError):
        error_type, text = PermanentError, f"TLS certificate does not verify ({exc.verify_message})"
    else:  # SMTPServerDisconnected, other TLS errors, timeouts, refused connections
        text = f"{type(exc).__name__}: {exc}"
    return error_type(f"{what}: {text}")


class EmailChannel(_Base):
    """SMTP submission with STARTTLS, always: a server that does not offer it gets nothing (no clear text).
    One SMTP transaction per send, to all recipients."""

    name = "email"

    def __init__(self, config: EmailConfig, *, metrics: NotifyMetrics | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        super().__init__(metrics, policy, sleep, clock)

    def build(self, message: Notification, to: tuple[str, ...]) -> MIMEText:
        """UTF-8 text/plain (base64), RFC 2047 subject. Built with the legacy (compat32) API on purpose: the
        modern email.policy folding of a long non-ASCII Subject on Python 3.11 puts the space between two
        words at the boundary of two encoded words, where RFC 2047 says it is ignored, so 'Dò mật' arrives as
        'Dòmật'. email.header.Header keeps spaces inside the encoded words (checked by the aiosmtpd test)."""
        mail = MIMEText(message.email_body, "plain", "utf-8")
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(to)
        mail["Subject"] = Header(message.subject, "utf-8", header_name="Subject")  # type: ignore[assignment]
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = make_msgid("provsec-notify", domain=self.config.sender.rsplit("@", 1)[1])
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the alert sender
        return mail

    def _send_once(self, mail: MIMEText, to: tuple[str, ...]) -> None:
        cfg = self.config
        what = f"SMTP {cfg.host}:{cfg.port}"
        try:
            context = http.ssl_context(cfg.ca_file)
            with smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo_name, timeout=cfg.timeout) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise PermanentError(f"{what}: server does not offer STARTTLS; not sending in clear text")
                smtp.starttls(context=context)
                smtp.ehlo()
                if cfg.username is not None and cfg.password is not None:
                    self._login(smtp, cfg.username, cfg.password)
                refused = smtp.send_message(mail, from_addr=cfg.sender, to_addrs=list(to))
        except DeliveryError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_error(exc, what) from exc
        if refused:
            detail = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in refused.items())
            # The others have it: retrying would send them a second copy. Report and stop.
            raise PermanentError(f"{what}: some recipients refused: {detail}")

    @staticmethod
    def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
        """AUTH PLAIN (inside TLS) when offered, one mechanism only: smtplib's login() tries the next mechanism
        after a refusal, with the same wrong password — a second failed login per attempt, which counts twice
        towards the mail server's lockout (fail2ban on the provincial mail relay)."""
        if "PLAIN" in smtp.esmtp_features.get("auth", "").upper().split():
            smtp.user, smtp.password = username, password
            smtp.auth("PLAIN", smtp.auth_plain)
        else:
            smtp.login(username, password)

    def send(self, message: Notification, to: Sequence[str] | None = None) -> DeliveryResult:
        recipients = _recipients(to, self.config.to)
        if not recipients:
            return DeliveryResult(self.name, False, 0, "no recipient configured or given")
        mail = self.build(message, recipients)  # one Message-ID for every attempt: duplicates are recognisable
        ok, attempts, error = self._deliver(lambda: self._send_once(mail, recipients))
        failed = () if ok else recipients
        return DeliveryResult(self.name, ok, attempts, None if ok else str(error), recipients, failed)


# --- SMS through an HTTP gateway ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SmsGatewayConfig:
    """An HTTP SMS gateway. `{phone}` and `{text}` may appear in `url` (percent-encoded there) and in the
    values of `body_template`, which is JSON (placeholders inside string values, the document is re-encoded)
    or a form (`key=value&…`, re-encoded): a text with quotes, & or = cannot change the request's structure.

    Success is a 2xx status and, when `success_field` is set (dotted path into the JSON reply, e.g.
    `data.status`), that field's value as a string is one of `success_values`."""

    url: str
    phones: tuple[str, ...] = ()
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold an API key
    body_template: str | None = None
    body_format: Literal["json", "form"] = "json"
    success_field: str | None = None
    success_values: tuple[str, ...] = ()
    timeout: float = 10.0
    ca_file: Path | None = None
    proxy: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise InputError("notify sms: url must start with https:// or http://")
        if self.method.upper() not in ("GET", "POST", "PUT"):
            raise InputError(f"notify sms: method {self.method!r}: expected GET, POST or PUT")
        for phone in self.phones:
            check_phone(phone)
        if self.body_template is not None:
            if self.body_format == "json":
                try:
                    json.loads(self.body_template)
                except ValueError as exc:
                    raise InputError(f"notify sms: body_template is not JSON ({exc})") from exc
            elif self.body_format == "form":
                try:
                    urllib.parse.parse_qsl(self.body_template, keep_blank_values=True, strict_parsing=True)
                except ValueError as exc:
                    raise InputError(f"notify sms: body_template is not a form (key=value&…): {exc}") from exc
            else:
                raise InputError(f"notify sms: body_format {self.body_format!r}: expected json or form")
        if self.success_field is not None and not self.success_values:
            raise InputError("notify sms: success_field needs success_values")

    def render(self, phone: str, text: str) -> tuple[str, bytes | None, dict[str, str]]:
        """(url, body, headers) of the request for one SMS."""
        values = {"phone": phone, "text": text}

        def fill(template: str, quote: Callable[[str], str] = str) -> str:
            return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)]), template)

        url = fill(self.url, lambda v: urllib.parse.quote(v, safe=""))
        headers = dict(self.headers)
        body: bytes | None = None
        if self.body_template is not None:
            if self.body_format == "json":
                body = json.dumps(_fill_json(json.loads(self.body_template), fill), ensure_ascii=False).encode()
                content_type = "application/json; charset=utf-8"
            else:
                pairs = urllib.parse.parse_qsl(self.body_template, keep_blank_values=True)
                body = urllib.parse.urlencode([(k, fill(v)) for k, v in pairs]).encode("ascii")
                content_type = "application/x-www-form-urlencoded"
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = content_type
        return url, body, headers


def _fill_json(node: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return fill(node)
    if isinstance(node, list):
        return [_fill_json(item, fill) for item in node]
    if isinstance(node, dict):
        return {key: _fill_json(value, fill) for key, value in node.items()}
    return node


def check_phone(phone: str) -> str:
    if not _PHONE.match(phone):
        raise InputError(f"notify sms: not a phone number (digits, optional leading +): {phone!r}")
    return phone


def _field(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


class SmsGatewayChannel(_Base):
    name = "sms"

    def __init__(self, config: SmsGatewayConfig, *, metrics: NotifyMetrics | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        super().__init__(metrics, policy, sleep, clock)

    def _send_once(self, phone: str, text: str) -> None:
        cfg = self.config
        what = f"SMS gateway ({phone})"
        url, body, headers = cfg.render(phone, text)
        resp = http.request(cfg.method, url, what=what, headers=headers, body=body, timeout=cfg.timeout,
                            ca_file=cfg.ca_file, proxy=cfg.proxy)
        http.check_status(resp, what)
        if cfg.success_field is not None:
            value = _field(resp.json(what), cfg.success_field)
            if value is None or str(value) not in cfg.success_values:
                raise PermanentError(f"{what}: HTTP {resp.status} but {cfg.success_field}={value!r} "
                                     f"(expected {' or '.join(cfg.success_values)})")

    def send(self, message: Notification, to: Sequence[str] | None = None) -> DeliveryResult:
        phones = _recipients(to, self.config.phones)
        return self._each(phones, lambda phone: self._send_once(check_phone(phone), message.sms_text))


# --- Zalo Official Account -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZaloConfig:
    app_id: str
    secret_key: str = field(repr=False)
    token_file: Path
    user_ids: tuple[str, ...] = ()
    api_base: str = "https://openapi.zalo.me"
    oauth_base: str = "https://oauth.zaloapp.com"
    timeout: float = 10.0
    expired_codes: frozenset[int] = DEFAULT_EXPIRED_CODES
    temporary_codes: frozenset[int] = frozenset()
    ca_file: Path | None = None
    proxy: str | None = None

    def __post_init__(self) -> None:
        if not self.app_id or not self.secret_key:
            raise InputError("notify zalo: app_id and secret_key are required")
        for user_id in self.user_ids:
            if not user_id.isdigit():
                raise InputError(f"notify zalo: user_id {user_id!r}: expected the OA follower's numeric id")


class ZaloChannel(_Base):
    """Customer-service text messages of a Zalo OA (see zalo.py for the API and the token handling)."""

    name = "zalo"

    def __init__(self, config: ZaloConfig, *, metrics: NotifyMetrics | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        api = ZaloApi(config.app_id, config.secret_key, config.api_base, config.oauth_base, config.timeout,
                      config.ca_file, config.proxy)
        self.session = ZaloSession(api, TokenStore(config.token_file), expired_codes=config.expired_codes,
                                   temporary_codes=config.temporary_codes, now=now)
        super().__init__(metrics, policy, sleep, clock)

    def send(self, message: Notification, to: Sequence[str] | None = None) -> DeliveryResult:
        users = _recipients(to, self.config.user_ids)
        return self._each(users, lambda user: self.session.send(user, message.zalo_text))
