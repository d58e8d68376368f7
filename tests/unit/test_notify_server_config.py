"""`provsec notify` configuration (errors name the key), secret files, ack-link signatures, webhook auth, and the
escalation arithmetic, without servers."""

from __future__ import annotations

import argparse
import base64
import copy
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provsec.errors import InputError
from provsec.notify import ack
from provsec.notify import cli as notify_cli
from provsec.notify.config import NotifyConfig, WebhookAuth, load_config, parse_config, read_secret
from provsec.notify.escalation import due_at
from provsec.notify.server import authorized
from provsec.reports.workhours import WorkCalendar

SECRET = b"s" * 32
DSN_PASSWORD = secrets.token_urlsafe(18)  # made per run: an error or repr must never show it
NOW = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)


@pytest.fixture
def base(tmp_path: Path) -> dict[str, Any]:
    for name, text in (("ack.key", "k" * 32), ("smtp.pass", "pw"), ("short.key", "k" * 8)):
        (tmp_path / name).write_text(text + "\n")
        (tmp_path / name).chmod(0o600)
    (tmp_path / "open.key").write_text("k" * 32)
    (tmp_path / "open.key").chmod(0o644)
    return {"public_base_url": "https://canhbao.example", "ack": {"secret_file": "ack.key"},
            "channels": {"email": {"host": "mail.example", "sender": "canhbao@example.vn"},
                         "sms": {"url": "https://sms.example/api"}},
            "rota": [{"people": [{"id": "an", "email": "an@example.vn", "phone": "0905123456"}]},
                     {"people": [{"id": "binh", "email": "binh@example.vn"}]},
                     {"people": [{"id": "cuong", "email": "cuong@example.vn"}]}]}


def parse(data: dict[str, Any], tmp_path: Path) -> NotifyConfig:
    return parse_config(data, "notify.yml", tmp_path)


def test_defaults(base: dict[str, Any], tmp_path: Path) -> None:
    config = parse(base, tmp_path)
    assert config.listen == ("127.0.0.1", 9848)
    assert config.db == Path("/var/lib/provsec/notify/incidents.sqlite")
    assert config.ack_secret == b"k" * 32 and "kkkk" not in repr(config)
    assert config.ack_expiry == timedelta(hours=24)
    assert [lv.after for lv in config.rota] == [timedelta(0), timedelta(minutes=30), timedelta(minutes=90)]
    assert config.rota[0].people[0].channels == ("email", "sms")  # the configured channels it has an address for
    assert config.policy("critical").channels == ("email", "sms", "zalo")
    assert config.policy("critical").clock == "wall" and not config.policy("critical").working_hours_only
    assert config.policy("warning").channels == ("email",) and config.policy("warning").working_hours_only
    assert config.policy("info") == config.policy("warning")
    assert config.max_body_bytes == 1 << 20 and not config.auth.required
    assert config.heartbeat.alertname == "ProvsecMonitoringWatchdog"
    assert config.heartbeat.timeout == timedelta(minutes=10)
    assert config.heartbeat.state_file == Path("/var/lib/provsec/notify/notify-heartbeat.json")


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return mutate


BAD: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("notify.yml: unknown key(s) colour", _set("blue", "colour")),
    ("notify.yml: listen: '9848': expected ADDRESS:PORT", _set("9848", "listen")),
    ("notify.yml: public_base_url: missing", lambda d: d.pop("public_base_url")),
    ("notify.yml: public_base_url: 'canhbao.example' must start with https://", _set("canhbao.example",
                                                                                     "public_base_url")),
    ("notify.yml: ack.secret_file: missing", _set({}, "ack")),
    ("notify.yml: ack.secret_file: secret file", _set({"secret_file": "nothing.key"}, "ack")),
    ("is readable by others (mode 0644): chmod 600", _set({"secret_file": "open.key"}, "ack")),
    ("notify.yml: ack.secret_file: secret file", _set({"secret_file": "short.key"}, "ack")),
    ("notify.yml: ack: unknown key(s) secret", _set({"secret": "inline", "secret_file": "ack.key"}, "ack")),
    ("notify.yml: channels.email.sender: missing", lambda d: d["channels"]["email"].pop("sender")),
    ("notify.yml: channels.email.password_file: username and password_file go together",
     _set("canhbao", "channels", "email", "username")),
    ("notify.yml: channels.email.port: expected a number", _set("smtp", "channels", "email", "port")),
    ("notify.yml: channels.sms: notify sms: url must start with https://", _set("ftp://x", "channels", "sms", "url")),
    ("notify.yml: channels: configure at least one", _set({}, "channels")),
    ("notify.yml: channels: unknown key(s) telegram", _set({}, "channels", "telegram")),
    ("notify.yml: rota: expected a non-empty list", _set([], "rota")),
    ("notify.yml: rota[0].after_minutes: level 1 is notified at once", _set(5, "rota", 0, "after_minutes")),
    ("notify.yml: rota[2].after_minutes: 20 is not after level 2's 30", _set(20, "rota", 2, "after_minutes")),
    ("notify.yml: rota[3].after_minutes: missing", lambda d: d["rota"].append({"people": [{"id": "d",
                                                                                           "email": "d@x.vn"}]})),
    ("notify.yml: rota[1].people[0].email: 'binh' is not an email address",
     _set("binh", "rota", 1, "people", 0, "email")),
    ("notify.yml: rota[0].people[0].phone: notify sms: not a phone number",
     _set("09-05", "rota", 0, "people", 0, "phone")),
    ("notify.yml: rota[0].people[0].channels: zalo needs zalo",
     _set(["zalo"], "rota", 0, "people", 0, "channels")),
    ("notify.yml: rota[1].people[0].channels: sms needs phone", _set(["sms"], "rota", 1, "people", 0, "channels")),
    ("notify.yml: rota[2].people[0].id: 'an' is on the rota twice", _set("an", "rota", 2, "people", 0, "id")),
    ("notify.yml: rota[0].people[0].id: 'An Nguyen': lower-case", _set("An Nguyen", "rota", 0, "people", 0, "id")),
    ("notify.yml: severities.critical.clock: 'sometimes' is not wall or working",
     _set({"critical": {"clock": "sometimes"}}, "severities")),
    ("notify.yml: severities.warning.channels: 'fax' is not one of", _set({"warning": {"channels": ["fax"]}},
                                                                         "severities")),
    ("notify.yml: severities: warning: none of its channels (zalo) is configured",
     _set({"warning": {"channels": ["zalo"]}}, "severities")),
    ("notify.yml: webhook: bearer_token_file and basic_auth", _set({"bearer_token_file": "ack.key", "basic_auth": {
        "username": "am", "password_file": "smtp.pass"}}, "webhook")),
    ("notify.yml: webhook.max_body_bytes: expected a number from 1024", _set({"max_body_bytes": 10}, "webhook")),
    ("notify.yml: heartbeat.timeout_minutes: expected a number", _set({"timeout_minutes": "10m"}, "heartbeat")),
    ("notify.yml: escalation.check_interval_seconds: expected a number from 0.01 to 300",
     _set({"check_interval_seconds": 3600}, "escalation")),
    ("notify.yml: db_dsn: give one of db (SQLite), db_dsn, db_dsn_file (PostgreSQL), not db and db_dsn",
     lambda d: d.update(db="/tmp/x.sqlite", db_dsn="host=db1 dbname=provsec")),
    ("notify.yml: db_dsn_file: give one of db (SQLite), db_dsn, db_dsn_file (PostgreSQL), not db_dsn and db_dsn_file",
     lambda d: d.update(db_dsn="host=db1 dbname=provsec", db_dsn_file="pg.dsn")),
    ("notify.yml: db_dsn: holds a password: this file is no place for secrets",
     _set("host=db1 dbname=provsec user=notify password=" + DSN_PASSWORD, "db_dsn")),
    ("notify.yml: db_dsn: holds a password", _set(f"postgresql://notify:{DSN_PASSWORD}@db1/provsec", "db_dsn")),
    ("notify.yml: db_dsn: not a PostgreSQL connection string", _set("host=db1 dbname", "db_dsn")),
    ("notify.yml: db_dsn_file: secret file", _set("missing.dsn", "db_dsn_file")),
    ("is readable by others (mode 0644): chmod 600", _set("open.key", "db_dsn_file")),
    ("notify.yml: db_dsn_file: not a PostgreSQL connection string", _set("ack.key", "db_dsn_file")),
]


@pytest.mark.parametrize(("message", "mutate"), BAD, ids=[m[:60] for m, _ in BAD])
def test_bad_configuration_names_the_key(base: dict[str, Any], tmp_path: Path, message: str,
                                         mutate: Callable[[dict[str, Any]], None]) -> None:
    data = copy.deepcopy(base)
    mutate(data)
    with pytest.raises(InputError) as info:
        parse(data, tmp_path)
    assert message in str(info.value)
    assert DSN_PASSWORD not in str(info.value)


def test_postgresql_register_dsn(base: dict[str, Any], tmp_path: Path) -> None:
    inline = parse({**base, "db_dsn": "host=db1 dbname=provsec user=notify sslmode=verify-full"}, tmp_path)
    assert inline.db_dsn == "host=db1 dbname=provsec user=notify sslmode=verify-full"
    dsn = f"postgresql://notify:{DSN_PASSWORD}@db1.example:5433/provsec"
    (tmp_path / "pg.dsn").write_text(dsn + "\n")
    (tmp_path / "pg.dsn").chmod(0o600)
    from_file = parse({**base, "db_dsn_file": "pg.dsn"}, tmp_path)
    assert from_file.db_dsn == dsn
    assert DSN_PASSWORD not in repr(from_file)
    assert parse(base, tmp_path).db_dsn is None


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="notify configuration not found"):
        load_config(tmp_path / "missing.yml")
    (tmp_path / "bad.yml").write_text("rota: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(tmp_path / "bad.yml")
    (tmp_path / "list.yml").write_text("- 1\n")
    with pytest.raises(InputError, match=r"list\.yml: expected a mapping"):
        load_config(tmp_path / "list.yml")


def test_check_config_command(base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "notify.yml"
    path.write_text(yaml.safe_dump(base, allow_unicode=True))
    parser = argparse.ArgumentParser()
    notify_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["notify", "serve", "--config", str(path), "--check-config"])
    assert args.handler(args) == 0
    assert "ok; channels email, sms; rota 1: 1 person(s) after 0 min" in capsys.readouterr().out


# -- ack links -------------------------------------------------------------------------------------------------------
def test_ack_link_round_trip_and_recipient() -> None:
    url = ack.make_link("https://canhbao.example/", SECRET, 42, "binh", now=NOW, lifetime=timedelta(hours=24))
    path = url.removeprefix("https://canhbao.example")
    link = ack.parse_path(path)
    assert link.incident_id == 42 and link.expiry == int((NOW + timedelta(hours=24)).timestamp())
    assert len(link.signature) == 22  # 128 bits, URL-safe base64: fits an SMS whole
    assert ack.verify(SECRET, link, ["an", "binh", "cuong"], NOW) == "binh"
    with pytest.raises(ack.AckError, match="not valid"):
        ack.verify(SECRET, link, ["an", "cuong"], NOW)  # binh left the rota
    with pytest.raises(ack.AckError, match="not valid"):
        ack.verify(b"another secret of 32 bytes......", link, ["binh"], NOW)
    with pytest.raises(ack.AckError, match="expired"):
        ack.verify(SECRET, link, ["binh"], NOW + timedelta(hours=24, seconds=1))


def test_ack_page_escapes() -> None:
    html = ack.page("<b>", "a & <script>", button="OK").decode()
    assert "&lt;b&gt;" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert '<form method="post">' in html


# -- webhook auth ----------------------------------------------------------------------------------------------------
def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_webhook_auth(base: dict[str, Any], tmp_path: Path) -> None:
    config = parse(base, tmp_path)
    assert authorized(config, None)
    bearer = replace(config, auth=WebhookAuth(bearer_token="t0k"))  # noqa: S106  (a test token)
    assert authorized(bearer, "Bearer t0k") and authorized(bearer, "bearer t0k")
    assert not authorized(bearer, "Bearer t0kx") and not authorized(bearer, None)
    assert not authorized(bearer, _basic("am", "t0k"))
    basic = replace(config, auth=WebhookAuth(username="am", password="pw:1"))  # noqa: S106  (test credentials)
    assert authorized(basic, _basic("am", "pw:1"))
    assert not authorized(basic, _basic("am", "pw"))
    assert not authorized(basic, _basic("xx", "pw:1"))
    assert not authorized(basic, "Basic !!!") and not authorized(basic, "Bearer pw:1")


def test_basic_auth_from_config(base: dict[str, Any], tmp_path: Path) -> None:
    data = base | {"webhook": {"basic_auth": {"username": "am", "password_file": "smtp.pass"}}}
    config = parse(data, tmp_path)
    assert config.auth == WebhookAuth(username="am", password="pw")  # noqa: S106  (from the test file)
    assert "pw" not in repr(config.auth)


# -- escalation arithmetic -------------------------------------------------------------------------------------------
def test_due_times_wall_and_working(base: dict[str, Any], tmp_path: Path) -> None:
    config = parse(base, tmp_path)
    calendar = WorkCalendar()
    friday_1650 = datetime(2026, 3, 6, 9, 50, tzinfo=UTC)  # 16:50 in Asia/Ho_Chi_Minh
    level2 = config.rota[1]
    assert due_at(level2, friday_1650, config.policy("critical"), calendar) == friday_1650 + timedelta(minutes=30)
    # Warning: 10 working minutes on Friday, 20 on Monday from 07:30.
    assert due_at(level2, friday_1650, config.policy("warning"), calendar) == datetime(2026, 3, 9, 0, 50,
                                                                                      tzinfo=UTC)


def test_a_systemd_credential_is_accepted_whatever_mode_systemd_gave_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 13's systemd makes LoadCredential= files 0440 (Debian 12's: 0400) in a directory private to the
    service: a secret there is accepted; the same mode anywhere else is still refused."""
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o500)
    inside = credentials / "ack.key"
    inside.write_text("0123456789abcdef0123456789abcdef\n")
    inside.chmod(0o440)
    outside = tmp_path / "ack.key"
    outside.write_text("0123456789abcdef0123456789abcdef\n")
    outside.chmod(0o440)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert read_secret(inside, "test", 16) == "0123456789abcdef0123456789abcdef"
    with pytest.raises(InputError, match=r"readable by others \(mode 0440\)"):
        read_secret(outside, "test", 16)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(InputError, match=r"readable by others \(mode 0440\)"):
        read_secret(inside, "test", 16)
