"""`provsec notify serve --config FILE`: the receiver's configuration (YAML), validated with errors that name the
file and the key (`/etc/provsec/notify.yml: rota[1].people[0].email: …`).

Secrets are never in this file: the ack-link secret, the webhook's bearer token or basic-auth password, the SMTP
password, the SMS gateway's secret headers, the Zalo app secret and a PostgreSQL password are each read from their own
file (`db_dsn` with a password is refused: use `db_dsn_file`, or libpq's passfile), which must be readable by its
owner only (mode 0600 or stricter, as DESIGN.md asks of root-only files). Relative paths are
relative to the directory of the configuration file.

```yaml
listen: 127.0.0.1:9848                  # Alertmanager and the reverse proxy for ack links reach it here
db: /var/lib/provsec/notify/incidents.sqlite   # the incident register (provsec incident … reads the same file)
# or the register in PostgreSQL (the same schema; one of db, db_dsn, db_dsn_file):
# db_dsn: host=db1.stttt.phuyen.gov.vn dbname=provsec user=provsec_notify sslmode=verify-full  # no password here
# db_dsn_file: /etc/provsec/secrets/notify-db.dsn  # the whole DSN, password included, mode 0600
working_hours_file: /etc/provsec/working-hours.yml   # optional; default: the state's hours + VN holidays
public_base_url: https://canhbao.stttt.phuyen.gov.vn # ack links: <base>/ack/<incident>/<expiry>/<signature>
ack:
  secret_file: /etc/provsec/secrets/notify-ack.key   # ≥ 16 bytes, mode 0600
  expiry_hours: 24
webhook:                                # optional: what Alertmanager's http_config sends
  bearer_token_file: /etc/provsec/secrets/notify-webhook.token
  # basic_auth: {username: alertmanager, password_file: /etc/provsec/secrets/notify-webhook.pass}
  max_body_bytes: 1048576               # larger → 413
channels:
  email: {host: mail.stttt.phuyen.gov.vn, port: 587, sender: canhbao@stttt.phuyen.gov.vn,
          username: canhbao, password_file: /etc/provsec/secrets/smtp.pass, ca_file: /etc/provsec/tls/ca.pem}
  sms:
    url: https://sms.vnpt.example/api/v1/sms
    secret_headers: {Authorization: /etc/provsec/secrets/sms-auth-header}
    body_template: '{"to": "{phone}", "content": "{text}", "brandname": "STTTT-PY"}'
    success_field: CodeResult
    success_values: ["100"]
  zalo: {app_id: "1234567890", secret_key_file: /etc/provsec/secrets/zalo.key,
         token_file: /var/lib/provsec/notify/zalo-token.json}
retry: {max_attempts: 4, base_delay: 1, max_delay: 30, max_total: 90}
severities:                             # these are the defaults
  critical: {channels: [email, sms, zalo], working_hours_only: false, clock: wall}
  warning:  {channels: [email], working_hours_only: true, clock: working}
rota:                                   # level 1 at once; next levels after N minutes unacknowledged
  - name: Trực ban
    after_minutes: 0                    # defaults 0, 30, 90: the 2 working hours of Điều 9.2b in three steps
    people:
      - {id: an, name: Nguyễn Văn An, email: an@stttt.phuyen.gov.vn, phone: "0905123456", zalo: "84905123456"}
  - name: Trưởng phòng Kỹ thuật
    people:
      - {id: binh, name: Trần Thị Bình, email: binh@stttt.phuyen.gov.vn, phone: "0905765432", channels: [email, sms]}
  - name: Lãnh đạo Sở
    people: [{id: cuong, name: Lê Văn Cường, email: cuong@stttt.phuyen.gov.vn}]
heartbeat:
  alertname: ProvsecMonitoringWatchdog  # never an incident; its absence is
  timeout_minutes: 10
  state_file: /var/lib/provsec/notify/notify-heartbeat.json  # default: next to db
escalation:
  check_interval_seconds: 30
```
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from provsec.errors import InputError
from provsec.fileio import read_yaml
from provsec.notify.channels import EmailConfig, SmsGatewayConfig, ZaloConfig, check_phone
from provsec.notify.register import DEFAULT_DB, Register, dsn_params
from provsec.notify.retry import RetryPolicy
from provsec.reports.workhours import WorkCalendar, load_calendar

DEFAULT_LISTEN = "127.0.0.1:9848"
DEFAULT_CONFIG = "/etc/provsec/notify.yml"
CHANNELS = ("email", "sms", "zalo")
DEFAULT_AFTER_MINUTES = (0.0, 30.0, 90.0)  # Điều 9.2b: 2 working hours to answer, in three steps
MAX_BODY_BYTES = 1 << 20
MIN_SECRET_BYTES = 16
Clock = Literal["wall", "working"]

TOP_KEYS = {"listen", "db", "db_dsn", "db_dsn_file", "working_hours_file", "public_base_url", "ack", "webhook",
            "channels", "retry", "severities", "rota", "heartbeat", "escalation"}
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


@dataclass(frozen=True)
class Person:
    """Someone on the rota. `id` is what the register records as `who` when they acknowledge (use the login name,
    so that `provsec incident ack` by the same person reads the same)."""

    id: str
    name: str
    channels: tuple[str, ...]
    email: str | None = None
    phone: str | None = None
    zalo: str | None = None

    def address(self, channel: str) -> str | None:
        return {"email": self.email, "sms": self.phone, "zalo": self.zalo}.get(channel)


@dataclass(frozen=True)
class Level:
    number: int  # 1-based
    name: str
    after: timedelta  # since the incident was received; working or wall-clock time by severity
    people: tuple[Person, ...]


@dataclass(frozen=True)
class SeverityPolicy:
    channels: tuple[str, ...]
    working_hours_only: bool  # notify and escalate only in working time (else wait for it)
    clock: Clock  # escalation delays in wall-clock or working time


@dataclass(frozen=True)
class WebhookAuth:
    bearer_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def required(self) -> bool:
        return self.bearer_token is not None or self.username is not None


@dataclass(frozen=True)
class HeartbeatConfig:
    alertname: str
    timeout: timedelta
    state_file: Path
    enabled: bool = True


@dataclass(frozen=True)
class NotifyConfig:
    listen: tuple[str, int]
    db: Path
    calendar: WorkCalendar
    public_base_url: str
    ack_secret: bytes = field(repr=False)
    ack_expiry: timedelta
    auth: WebhookAuth
    max_body_bytes: int
    email: EmailConfig | None
    sms: SmsGatewayConfig | None
    zalo: ZaloConfig | None
    retry: RetryPolicy
    severities: Mapping[str, SeverityPolicy]
    rota: tuple[Level, ...]
    heartbeat: HeartbeatConfig
    check_interval: float
    source: str = "notify config"
    db_dsn: str | None = field(default=None, repr=False)  # PostgreSQL instead of the file db; may hold a password

    def open_register(self) -> Register:
        """The incident register this configuration names (created when it does not exist yet)."""
        return Register(dsn=self.db_dsn) if self.db_dsn is not None else Register(self.db)

    def policy(self, severity: str) -> SeverityPolicy:
        """The policy of `severity`; an unknown severity is treated as warning (the milder one)."""
        return self.severities.get(severity) or self.severities["warning"]

    @property
    def people(self) -> tuple[Person, ...]:
        return tuple(p for level in self.rota for p in level.people)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c, cfg in (("email", self.email), ("sms", self.sms), ("zalo", self.zalo)) if cfg)


class _Reader:
    """Typed access to one mapping of the file, with the key path in every error."""

    def __init__(self, data: Any, where: str, source: str, allowed: set[str], base: Path) -> None:
        self.source, self.where, self.base = source, where, base
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", f"expected a mapping with keys {', '.join(sorted(allowed))}")
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise self.error("", f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
        self.data: Mapping[str, Any] = data

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where and key else (self.where or key)

    def error(self, key: str, text: str) -> InputError:
        return InputError(f"{self.source}: {self.name(key)}: {text}" if self.name(key) else f"{self.source}: {text}")

    def child(self, key: str, allowed: set[str]) -> _Reader:
        return _Reader(self.data.get(key), self.name(key), self.source, allowed, self.base)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing")
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ids and phone numbers that YAML read as numbers
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def required_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None  # noqa: S101  (required=True raises instead)
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.error(key, f"expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def path(self, key: str, default: Path | None = None, *, required: bool = False) -> Path | None:
        text = self.text(key, required=required)
        if text is None:
            return default
        path = Path(text)
        return path if path.is_absolute() else self.base / path

    def names(self, key: str, choices: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of {', '.join(choices)}")
        for item in value:
            if item not in choices:
                raise self.error(key, f"{item!r} is not one of {', '.join(choices)}")
        return tuple(dict.fromkeys(value))

    def secret(self, key: str, *, required: bool = False, min_bytes: int = 1) -> str | None:
        path = self.path(key, required=required)
        return None if path is None else read_secret(path, f"{self.source}: {self.name(key)}", min_bytes)


def _systemd_credential(path: Path) -> bool:
    """Whether path is one of this service's systemd credentials (LoadCredential=, role notify): a file directly in
    $CREDENTIALS_DIRECTORY, which systemd keeps private to the service. Its mode is systemd's choice, not the
    admin's: 0400 on Debian 12's systemd 252, 0440 on Debian 13's systemd 257 (measured on the lab)."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return False
    try:
        return path.resolve().parent == Path(directory).resolve()
    except OSError:
        return False


def read_secret(path: Path, where: str, min_bytes: int = 1) -> str:
    """A secret from a file readable by its owner only (or one of the service's systemd credentials); trailing
    newlines are not part of it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError as exc:
        raise InputError(f"{where}: secret file {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: secret file {path} cannot be read: {exc}") from exc
    if stat.S_IMODE(mode) & 0o077 and not _systemd_credential(path):
        raise InputError(f"{where}: secret file {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
                         f"chmod 600 {path}")
    if len(text.encode("utf-8")) < min_bytes:
        raise InputError(f"{where}: secret file {path} holds less than {min_bytes} bytes")
    return text


def _listen(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"{where}: {text!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def _dsn(r: _Reader) -> str | None:
    """The PostgreSQL register's DSN from db_dsn (no password in it) or db_dsn_file (0600), if either is given."""
    given = [key for key in ("db", "db_dsn", "db_dsn_file") if r.has(key)]
    if len(given) > 1:
        raise r.error(given[1], f"give one of db (SQLite), db_dsn, db_dsn_file (PostgreSQL), not {' and '.join(given)}")
    if r.has("db_dsn"):
        dsn = r.required_text("db_dsn")
        if "password" in dsn_params(dsn, f"{r.source}: db_dsn"):
            raise r.error("db_dsn", "holds a password: this file is no place for secrets; put the whole DSN in a file "
                          "of mode 0600 named by db_dsn_file, or use libpq's passfile")
        return dsn
    if r.has("db_dsn_file"):
        dsn = r.secret("db_dsn_file") or ""
        dsn_params(dsn, f"{r.source}: {r.name('db_dsn_file')}")
        return dsn
    return None


def _email(r: _Reader) -> EmailConfig | None:
    if not r.has("email"):
        return None
    e = r.child("email", {"host", "port", "sender", "username", "password_file", "ca_file", "timeout",
                          "helo_name"})
    username, password = e.text("username"), e.secret("password_file")
    if (username is None) != (password is None):
        raise e.error("password_file", "username and password_file go together (both or neither)")
    try:
        return EmailConfig(host=e.required_text("host"), port=int(e.number("port", 587, 1, 65535)),
                           sender=e.required_text("sender"), to=(), username=username, password=password,
                           ca_file=e.path("ca_file"), timeout=e.number("timeout", 15, 1, 300),
                           helo_name=e.text("helo_name"))
    except InputError as exc:
        raise e.error("", str(exc)) from exc


def _sms(r: _Reader) -> SmsGatewayConfig | None:
    if not r.has("sms"):
        return None
    s = r.child("sms", {"url", "method", "headers", "secret_headers", "body_template", "body_format",
                        "success_field", "success_values", "timeout", "ca_file", "proxy"})
    headers: dict[str, str] = {}
    for key, secret in (("headers", False), ("secret_headers", True)):
        value = s.data.get(key) or {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in value.items()):
            raise s.error(key, "expected a mapping of header names to " + ("files" if secret else "strings"))
        for name, item in value.items():
            if secret:
                path = Path(item) if Path(item).is_absolute() else s.base / item
                headers[name] = read_secret(path, f"{s.source}: {s.name(key)}.{name}")
            else:
                headers[name] = item
    values = s.data.get("success_values") or []
    if not isinstance(values, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise s.error("success_values", "expected a list of strings")
    fmt = s.text("body_format", "json")
    if fmt not in ("json", "form"):
        raise s.error("body_format", f"{fmt!r} is not json or form")
    try:
        return SmsGatewayConfig(url=s.required_text("url"), method=s.text("method", "POST") or "POST",
                                headers=headers, body_template=s.text("body_template"),
                                body_format="json" if fmt == "json" else "form",
                                success_field=s.text("success_field"), success_values=tuple(str(v) for v in values),
                                timeout=s.number("timeout", 10, 1, 300), ca_file=s.path("ca_file"),
                                proxy=s.text("proxy"))
    except InputError as exc:
        raise s.error("", str(exc)) from exc


def _zalo(r: _Reader) -> ZaloConfig | None:
    if not r.has("zalo"):
        return None
    z = r.child("zalo", {"app_id", "secret_key_file", "token_file", "api_base", "oauth_base", "timeout", "ca_file",
                         "proxy"})
    token_file = z.path("token_file", required=True)
    assert token_file is not None  # noqa: S101  (required=True raises instead)
    try:
        return ZaloConfig(app_id=z.required_text("app_id"), secret_key=z.secret("secret_key_file", required=True)
                          or "", token_file=token_file,
                          api_base=z.text("api_base", "https://openapi.zalo.me") or "",
                          oauth_base=z.text("oauth_base", "https://oauth.zaloapp.com") or "",
                          timeout=z.number("timeout", 10, 1, 300), ca_file=z.path("ca_file"), proxy=z.text("proxy"))
    except InputError as exc:
        raise z.error("", str(exc)) from exc


DEFAULT_SEVERITIES: dict[str, SeverityPolicy] = {
    "critical": SeverityPolicy(("email", "sms", "zalo"), working_hours_only=False, clock="wall"),
    "warning": SeverityPolicy(("email",), working_hours_only=True, clock="working"),
}


def _severities(r: _Reader) -> dict[str, SeverityPolicy]:
    raw = r.data.get("severities") or {}
    if not isinstance(raw, Mapping):
        raise r.error("severities", "expected a mapping severity: {channels, working_hours_only, clock}")
    out = dict(DEFAULT_SEVERITIES)
    for severity in raw:
        if not isinstance(severity, str) or not _ID.match(severity):
            raise r.error("severities", f"{severity!r} is not a severity name (lower case)")
        s = r.child("severities", set(raw)).child(severity, {"channels", "working_hours_only", "clock"})
        base = out.get(severity, DEFAULT_SEVERITIES["warning"])
        clock = s.text("clock", base.clock)
        if clock not in ("wall", "working"):
            raise s.error("clock", f"{clock!r} is not wall or working")
        out[severity] = SeverityPolicy(s.names("channels", CHANNELS, base.channels),
                                       s.flag("working_hours_only", base.working_hours_only),
                                       "wall" if clock == "wall" else "working")
    return out


def _person(p: _Reader, configured: tuple[str, ...]) -> Person:
    pid = p.required_text("id")
    if not _ID.match(pid):
        raise p.error("id", f"{pid!r}: lower-case letters, digits, . _ - (a login name)")
    email, phone, zalo = p.text("email"), p.text("phone"), p.text("zalo")
    if email is not None and not _EMAIL.match(email):
        raise p.error("email", f"{email!r} is not an email address")
    if phone is not None:
        try:
            check_phone(phone)
        except InputError as exc:
            raise p.error("phone", str(exc)) from exc
    if zalo is not None and not zalo.isdigit():
        raise p.error("zalo", f"{zalo!r}: expected the OA follower's numeric user id (quote it)")
    addresses = {"email": email, "sms": phone, "zalo": zalo}
    channels = p.names("channels", CHANNELS, tuple(c for c in CHANNELS if addresses[c] and c in configured))
    for channel in channels:
        if addresses[channel] is None:
            raise p.error("channels", f"{channel} needs {'phone' if channel == 'sms' else channel}")
        if channel not in configured:
            raise p.error("channels", f"{channel}: no channels.{channel} is configured")
    if not channels:
        raise p.error("channels", "this person can be reached by no configured channel")
    return Person(id=pid, name=p.text("name", pid) or pid, channels=channels, email=email, phone=phone, zalo=zalo)


def _rota(r: _Reader, configured: tuple[str, ...]) -> tuple[Level, ...]:
    raw = r.data.get("rota")
    if not isinstance(raw, list) or not raw:
        raise r.error("rota", "expected a non-empty list of levels (level 1 is notified at once)")
    levels: list[Level] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        lv = _Reader(item, f"rota[{index}]", r.source, {"name", "after_minutes", "people"}, r.base)
        default = DEFAULT_AFTER_MINUTES[index] if index < len(DEFAULT_AFTER_MINUTES) else None
        if default is None and not lv.has("after_minutes"):
            raise lv.error("after_minutes", "missing (defaults exist for levels 1 to 3 only)")
        after = lv.number("after_minutes", default or 0.0, 0, 7 * 24 * 60)
        if index == 0 and after != 0:
            raise lv.error("after_minutes", "level 1 is notified at once: 0")
        if levels and after <= levels[-1].after.total_seconds() / 60:
            raise lv.error("after_minutes", f"{after:g} is not after level {index}'s "
                           f"{levels[-1].after.total_seconds() / 60:g}")
        people_raw = lv.data.get("people")
        if not isinstance(people_raw, list) or not people_raw:
            raise lv.error("people", "expected a non-empty list of people")
        people = []
        for pi, praw in enumerate(people_raw):
            person = _person(_Reader(praw, f"rota[{index}].people[{pi}]", r.source,
                                     {"id", "name", "email", "phone", "zalo", "channels"}, r.base), configured)
            if person.id in seen:
                raise InputError(f"{r.source}: rota[{index}].people[{pi}].id: {person.id!r} is on the rota twice")
            seen.add(person.id)
            people.append(person)
        levels.append(Level(index + 1, lv.text("name", f"Cấp {index + 1}") or "", timedelta(minutes=after),
                            tuple(people)))
    return tuple(levels)


def parse_config(data: Any, source: str = "notify config", base: Path | None = None) -> NotifyConfig:
    """Validate a decoded configuration; `base` is where relative paths start (the file's directory)."""
    r = _Reader(data, "", source, TOP_KEYS, base or Path.cwd())
    listen = _listen(r.text("listen", DEFAULT_LISTEN) or DEFAULT_LISTEN, f"{source}: listen")
    db = r.path("db", Path(DEFAULT_DB))
    assert db is not None  # noqa: S101  (a default is given)
    dsn = _dsn(r)
    hours = r.path("working_hours_file")
    calendar = load_calendar(hours) if hours is not None else WorkCalendar()
    base_url = r.required_text("public_base_url").rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise r.error("public_base_url", f"{base_url!r} must start with https:// (or http:// in a lab)")
    ack = r.child("ack", {"secret_file", "expiry_hours"})
    secret = ack.secret("secret_file", required=True, min_bytes=MIN_SECRET_BYTES) or ""
    expiry = timedelta(hours=ack.number("expiry_hours", 24, 0.1, 24 * 14))

    hook = r.child("webhook", {"bearer_token_file", "basic_auth", "max_body_bytes"})
    token = hook.secret("bearer_token_file")
    username = password = None
    if hook.has("basic_auth"):
        basic = hook.child("basic_auth", {"username", "password_file"})
        username = basic.required_text("username")
        password = basic.secret("password_file", required=True)
        if token is not None:
            raise hook.error("", "bearer_token_file and basic_auth: Alertmanager sends one of them, give one")
    max_body = int(hook.number("max_body_bytes", MAX_BODY_BYTES, 1024, 64 << 20))

    chans = r.child("channels", set(CHANNELS))
    email, sms, zalo = _email(chans), _sms(chans), _zalo(chans)
    configured = tuple(c for c, cfg in (("email", email), ("sms", sms), ("zalo", zalo)) if cfg)
    if not configured:
        raise r.error("channels", "configure at least one of email, sms, zalo")

    rr = r.child("retry", {"max_attempts", "base_delay", "max_delay", "max_total"})
    retry = RetryPolicy(max_attempts=int(rr.number("max_attempts", 4, 1, 10)),
                        base_delay=rr.number("base_delay", 1, 0, 60), max_delay=rr.number("max_delay", 30, 0, 600),
                        max_total=rr.number("max_total", 90, 0, 900))
    severities = _severities(r)
    for severity, policy in severities.items():
        if not set(policy.channels) & set(configured):
            raise r.error("severities", f"{severity}: none of its channels ({', '.join(policy.channels)}) is "
                          "configured under channels")

    hb = r.child("heartbeat", {"alertname", "timeout_minutes", "state_file", "enabled"})
    heartbeat = HeartbeatConfig(alertname=hb.text("alertname", "ProvsecMonitoringWatchdog") or "",
                                timeout=timedelta(minutes=hb.number("timeout_minutes", 10, 1, 24 * 60)),
                                state_file=hb.path("state_file", db.parent / "notify-heartbeat.json")
                                or db.parent / "notify-heartbeat.json",
                                enabled=hb.flag("enabled", True))
    esc = r.child("escalation", {"check_interval_seconds"})
    return NotifyConfig(listen=listen, db=db, calendar=calendar, public_base_url=base_url,
                        ack_secret=secret.encode("utf-8"), ack_expiry=expiry,
                        auth=WebhookAuth(token, username, password), max_body_bytes=max_body, email=email, sms=sms,
                        zalo=zalo, retry=retry, severities=severities, rota=_rota(r, configured),
                        heartbeat=heartbeat, check_interval=esc.number("check_interval_seconds", 30, 0.01, 300),
                        source=source, db_dsn=dsn)


def load_config(path: str | Path) -> NotifyConfig:
    return parse_config(read_yaml(path, "notify configuration"), str(path), Path(path).resolve().parent)
