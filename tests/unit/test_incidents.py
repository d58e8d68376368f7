"""provsec.notify.register and `provsec incident …`: one incident per Alertmanager group, events, response
times in working hours, validation that stores nothing, and two writers at once — each on both backends: a SQLite
file, and a throwaway database on this machine's REAL PostgreSQL (started for these tests when it is stopped, reached
over TCP with a password as the notify service would reach a database server; one schema per register).

Expected response times are worked out by hand from the default calendar (Mon–Fri 07:30–11:30, 13:30–17:00,
Asia/Ho_Chi_Minh); 9/3/2026 is a Monday, 6/3/2026 a Friday."""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import multiprocessing
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from dbservers import running_servers

from provsec.cli import main
from provsec.errors import InputError
from provsec.notify import incident_cli as cli
from provsec.notify.config import parse_config
from provsec.notify.payload import parse_rfc3339
from provsec.notify.register import Incident, Register, RegisterError, response, summary_vi
from provsec.reports.workhours import WorkCalendar, parse_calendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600.0
GROUP = '{}/{severity="critical"}:{alertname="HostDown"}'


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN)


def alert(instance: str, status: str = "firing", starts: str = "2026-03-09T01:55:00.123456789Z",
          ends: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": "HostDown", "instance": instance, "severity": "critical"},
            "annotations": {"summary": f"{instance} không phản hồi"}, "startsAt": starts, "endsAt": ends,
            "generatorURL": "http://mon1:9090/graph", "fingerprint": f"fp-{instance}"}


def payload(*instances: str, status: str = "firing", group: str = GROUP) -> dict[str, Any]:
    alerts = [alert(i, status, ends="2026-03-09T03:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z")
              for i in instances]
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "oncall",
            "groupLabels": {"alertname": "HostDown"},
            "commonLabels": {"alertname": "HostDown", "severity": "critical"},
            "commonAnnotations": {"summary": "Máy chủ không phản hồi"}, "externalURL": "http://mon1:9093",
            "alerts": alerts}


# -- where the registers live ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A register's place: a SQLite file or a PostgreSQL DSN (picklable, for writer processes)."""

    path: str | None = None
    dsn: str | None = None

    def open(self, *, create: bool = True, busy_timeout: float = 30.0) -> Register:
        return Register(self.path, dsn=self.dsn, create=create, busy_timeout=busy_timeout)


@dataclass
class PgDatabase:
    """A throwaway database and its owner role (with a password) on this machine's PostgreSQL."""

    name: str
    password: str
    port: int
    schemas: Iterator[int] = field(default_factory=itertools.count)

    def dsn(self, schema: str | None = None, *, dbname: str | None = None, password: str | None = None) -> str:
        options = f" options='-c search_path={schema}'" if schema else ""
        return (f"host=127.0.0.1 port={self.port} dbname={dbname or self.name} user={self.name} "
                f"password={password or self.password}{options}")

    def new_schema(self) -> str:
        schema = f"register_{next(self.schemas)}"
        with psycopg.connect(self.dsn(), autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {schema}")
        return schema


@pytest.fixture(scope="module")
def pg() -> Iterator[PgDatabase]:
    """The database lives as long as this module's tests; it and its role are dropped afterwards."""
    with running_servers("postgresql") as servers:
        srv = servers["postgresql"]
        name, password = f"provsec_test_register_{os.getpid()}", secrets.token_hex(16)
        port = int(srv._sql(None, "SHOW port;", about="port", timeout=60)[0])
        drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\nDROP ROLE IF EXISTS {name};\n"
        srv._sql(None, drop + f"CREATE ROLE {name} LOGIN PASSWORD '{password}';\n"
                 f"CREATE DATABASE {name} OWNER {name} TEMPLATE template0;\n", about=name, timeout=60)
        try:
            yield PgDatabase(name, password, port)
        finally:
            srv._sql(None, drop, about=name, timeout=60)


@dataclass
class Store:
    """Where one test's registers live: files in its tmp_path, or schemas of the throwaway PostgreSQL database."""

    kind: str
    tmp: Path
    pg: PgDatabase | None
    targets: dict[str, Target] = field(default_factory=dict)

    def target(self, name: str = "incidents") -> Target:
        if name not in self.targets:
            self.targets[name] = (Target(path=str(self.tmp / f"{name}.sqlite")) if self.pg is None
                                  else Target(dsn=self.pg.dsn(self.pg.new_schema())))
        return self.targets[name]

    def register(self, name: str = "incidents", **kwargs: Any) -> Register:
        return self.target(name).open(**kwargs)

    def rows(self, sql: str, name: str = "incidents") -> list[tuple[Any, ...]]:
        """A query straight to the database, not through the register."""
        target = self.target(name)
        if target.path is not None:
            with closing(sqlite3.connect(target.path)) as db:
                return db.execute(sql).fetchall()
        assert target.dsn is not None
        with psycopg.connect(target.dsn) as pdb:
            return pdb.execute(sql).fetchall()

    @contextmanager
    def write_lock_held(self, name: str = "incidents") -> Iterator[None]:
        """Another writer in the middle of its transaction."""
        target = self.target(name)
        if target.path is not None:
            holder = sqlite3.connect(target.path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            return
        assert target.dsn is not None
        with psycopg.connect(target.dsn, autocommit=True) as pdb:
            pdb.execute("BEGIN")
            pdb.execute("LOCK TABLE incidents IN SHARE ROW EXCLUSIVE MODE")
            try:
                yield
            finally:
                pdb.execute("ROLLBACK")

    def cli_args(self, name: str = "incidents") -> list[str]:
        target = self.target(name)
        if target.path is not None:
            return ["--db", target.path]
        dsn_file = self.tmp / f"{name}.dsn"
        dsn_file.write_text(f"{target.dsn}\n", encoding="utf-8")
        dsn_file.chmod(0o600)
        return ["--dsn-file", str(dsn_file)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    pgdb: PgDatabase | None = request.getfixturevalue("pg") if request.param == "postgresql" else None
    return Store(request.param, tmp_path, pgdb)


@pytest.fixture
def reg(store: Store) -> Register:
    return store.register()


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


# -- one incident per group -----------------------------------------------------------------------------------------
def test_first_firing_opens_and_repeats_update(reg: Register) -> None:
    first = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9, 0))
    assert (first.state, first.alert_count, first.firing_count, first.notifications) == ("open", 1, 1, 1)
    assert first.title == "Máy chủ không phản hồi"
    assert first.severity == "critical"
    assert first.opened_at == vn(2026, 3, 9, 9, 0)
    assert first.started_at == datetime(2026, 3, 9, 1, 55, 0, 123456, tzinfo=UTC)

    again = reg.record_webhook(payload("db1", "web1", "gw1"), now=vn(2026, 3, 9, 9, 5))
    assert again.id == first.id
    assert (again.alert_count, again.firing_count, again.notifications) == (3, 3, 2)
    assert again.opened_at == first.opened_at
    assert again.last_seen_at == vn(2026, 3, 9, 9, 5)
    assert [i.id for i in reg.list()] == [first.id]
    assert [e.kind for e in reg.events(first.id)] == ["opened"]
    assert sorted(a["fingerprint"] for a in reg.alerts(first.id)) == ["fp-db1", "fp-gw1", "fp-web1"]


def test_a_wan_cut_with_200_alerts_is_one_incident(reg: Register) -> None:
    incident = reg.record_webhook(payload(*(f"agency{n}" for n in range(200))), now=vn(2026, 3, 9, 9))
    assert incident.alert_count == 200
    assert len(reg.list()) == 1
    assert len(reg.alerts(incident.id)) == 200


def test_other_groups_are_other_incidents(reg: Register) -> None:
    a = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    b = reg.record_webhook(payload("db1", group='{}:{alertname="DiskFull"}'), now=vn(2026, 3, 9, 9))
    assert a.id != b.id
    assert len(reg.list(state="open")) == 2


def test_resolved_payload_resolves_and_the_next_firing_opens_anew(reg: Register) -> None:
    opened = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    resolved = reg.record_webhook(payload("db1", status="resolved"), now=vn(2026, 3, 9, 9, 40))
    assert resolved.id == opened.id
    assert (resolved.state, resolved.resolved_by, resolved.firing_count) == ("resolved", "alertmanager", 0)
    assert resolved.resolved_at == vn(2026, 3, 9, 9, 40)
    assert [e.kind for e in reg.events(opened.id)] == ["opened", "resolved"]
    assert reg.alerts(opened.id)[0]["status"] == "resolved"

    again = reg.record_webhook(payload("db1"), now=vn(2026, 3, 10, 8))
    assert again.id != opened.id
    assert again.state == "open"


def test_a_resolution_repeated_or_for_a_group_never_seen(reg: Register) -> None:
    only = reg.record_webhook(payload("db1", status="resolved"), now=vn(2026, 3, 9, 9))
    assert only.state == "resolved"
    assert only.resolved_by == "alertmanager"
    again = reg.record_webhook(payload("db1", status="resolved"), now=vn(2026, 3, 9, 9, 5))
    assert again.id == only.id
    assert again.notifications == 2
    assert len(reg.list()) == 1
    assert [e.kind for e in reg.events(only.id)] == ["opened", "resolved"]


def test_partly_resolved_group_stays_open(reg: Register) -> None:
    body = payload("db1", "web1")
    body["alerts"][1]["status"] = "resolved"
    incident = reg.record_webhook(body, now=vn(2026, 3, 9, 9))
    assert (incident.state, incident.alert_count, incident.firing_count) == ("open", 2, 1)


def test_json_text_and_bytes_are_accepted(reg: Register) -> None:
    text = json.dumps(payload("db1"), ensure_ascii=False)
    assert reg.record_webhook(text, now=vn(2026, 3, 9, 9)).notifications == 1
    assert reg.record_webhook(text.encode(), now=vn(2026, 3, 9, 9, 1)).notifications == 2


# -- people ---------------------------------------------------------------------------------------------------------
def test_acknowledge_resolve_and_notes(reg: Register) -> None:
    incident = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    acked = reg.acknowledge(incident.id, "nguyen.van.an", now=vn(2026, 3, 9, 9, 20))
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == (
        "acknowledged", "nguyen.van.an", vn(2026, 3, 9, 9, 20))
    twice = reg.acknowledge(incident.id, "tran.thi.binh", now=vn(2026, 3, 9, 9, 30))
    assert (twice.acknowledged_by, twice.acknowledged_at) == ("nguyen.van.an", vn(2026, 3, 9, 9, 20))

    note = reg.add_note(incident.id, "nguyen.van.an", "Khởi động lại dịch vụ", now=vn(2026, 3, 9, 9, 25))
    assert (note.kind, note.who, note.text) == ("note", "nguyen.van.an", "Khởi động lại dịch vụ")
    reg.add_event(incident.id, "escalated", "provsec-notify", "Chuyển cấp: trưởng phòng", now=vn(2026, 3, 9, 11))

    done = reg.resolve(incident.id, "nguyen.van.an", "Thay ổ đĩa", now=vn(2026, 3, 9, 14))
    assert (done.state, done.resolved_by, done.resolved_at) == ("resolved", "nguyen.van.an", vn(2026, 3, 9, 14))
    events = reg.events(incident.id)
    assert [(e.kind, e.who) for e in events] == [
        ("opened", "alertmanager"), ("acknowledged", "nguyen.van.an"), ("note", "nguyen.van.an"),
        ("escalated", "provsec-notify"), ("resolved", "nguyen.van.an")]
    assert events[-1].text == "Thay ổ đĩa"

    with pytest.raises(InputError, match="already resolved"):
        reg.acknowledge(incident.id, "x")
    with pytest.raises(InputError, match="already resolved"):
        reg.resolve(incident.id, "x", "again")


def test_people_must_say_who_and_what(reg: Register) -> None:
    incident = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    with pytest.raises(InputError, match="who"):
        reg.acknowledge(incident.id, "  ")
    with pytest.raises(InputError, match="note"):
        reg.resolve(incident.id, "an", "")
    with pytest.raises(InputError, match="empty"):
        reg.add_note(incident.id, "an", " ")
    with pytest.raises(InputError, match="no incident 999"):
        reg.acknowledge(999, "an")
    with pytest.raises(InputError, match="only note"):
        reg.add_event(incident.id, "resolved", "an", "bypassing the state")
    assert reg.get(incident.id).state == "open"
    assert [e.kind for e in reg.events(incident.id)] == ["opened"]


def test_list_filters(reg: Register) -> None:
    a = reg.record_webhook(payload("a", group="a"), now=vn(2026, 3, 2, 9))
    b = reg.record_webhook(payload("b", group="b"), now=vn(2026, 3, 9, 9))
    c = reg.record_webhook(payload("c", group="c"), now=vn(2026, 3, 10, 9))
    reg.acknowledge(b.id, "an")
    reg.resolve(c.id, "an", "ok")
    assert [i.id for i in reg.list()] == [c.id, b.id, a.id]
    assert [i.id for i in reg.list(state="open")] == [a.id]
    assert [i.id for i in reg.list(state="unresolved")] == [b.id, a.id]
    assert [i.id for i in reg.list(since=datetime(2026, 3, 9, 0, 0, tzinfo=UTC))] == [c.id, b.id]
    with pytest.raises(InputError, match="state"):
        reg.list(state="closed")
    with pytest.raises(InputError, match="naive"):
        reg.list(since=datetime(2026, 3, 9))


def test_timestamps_are_stored_as_utc_iso_8601(store: Store, reg: Register) -> None:
    incident = reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 8, 0))
    reg.acknowledge(incident.id, "an", now=datetime(2026, 3, 9, 10, 15, tzinfo=ZoneInfo("Asia/Tokyo")))
    [(opened, acked, started)] = store.rows("SELECT opened_at, acknowledged_at, started_at FROM incidents")
    # 08:00 at +07:00 and 10:15 at +09:00
    assert opened == "2026-03-09T01:00:00.000000+00:00"
    assert acked == "2026-03-09T01:15:00.000000+00:00"
    assert started == "2026-03-09T01:55:00.123456+00:00"  # nanoseconds cut to microseconds


def test_rfc3339_times() -> None:
    assert parse_rfc3339("2026-03-09T08:55:00+07:00", "t") == datetime(2026, 3, 9, 1, 55, tzinfo=UTC)
    assert parse_rfc3339("2026-03-09T01:55:00.5Z", "t") == datetime(2026, 3, 9, 1, 55, 0, 500000, tzinfo=UTC)
    assert parse_rfc3339("0001-01-01T00:00:00Z", "t") is None
    with pytest.raises(InputError, match="alerts"):
        parse_rfc3339("2026-03-09 morning", "alerts[0].startsAt")


# -- malformed payloads store nothing --------------------------------------------------------------------------------
def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda p: p.pop(key)


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(p: dict[str, Any]) -> None:
        target: Any = p
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("groupKey", _drop("groupKey")),
    ("groupKey", _set("", "groupKey")),
    ("version", _set("3", "version")),
    ("status", _set("broken", "status")),
    ("receiver", _set(None, "receiver")),
    ("commonLabels.severity", _set(5, "commonLabels", "severity")),
    ("groupLabels", _set(["alertname"], "groupLabels")),
    ("alerts", _set([], "alerts")),
    ("alerts[1].startsAt", _set("yesterday", "alerts", 1, "startsAt")),
    ("alerts[1].endsAt", _set("2026-13-01T00:00:00Z", "alerts", 1, "endsAt")),
    ("alerts[0].fingerprint", lambda p: p["alerts"][0].pop("fingerprint")),
    ("alerts[1].status", _set("pending", "alerts", 1, "status")),
    ("alerts[0].labels", lambda p: p["alerts"][0].pop("labels")),
    ("alerts[1]", _set("not an object", "alerts", 1)),
]


@pytest.mark.parametrize(("field", "mutate"), MALFORMED, ids=[f for f, _ in MALFORMED])
def test_malformed_payload_names_the_field_and_stores_nothing(store: Store, reg: Register, field: str,
                                                              mutate: Callable[[dict[str, Any]], None]) -> None:
    before = reg.record_webhook(payload("db1", group="other"), now=vn(2026, 3, 9, 8))
    body = copy.deepcopy(payload("db1", "web1"))
    mutate(body)
    with pytest.raises(InputError) as info:
        reg.record_webhook(body, now=vn(2026, 3, 9, 9))
    assert f"webhook payload: {field}" in str(info.value)
    assert reg.list() == [before]
    assert store.rows("SELECT COUNT(*) FROM incident_events") == [(1,)]
    assert store.rows("SELECT COUNT(*) FROM incident_alerts") == [(1,)]


def test_not_json_stores_nothing(reg: Register) -> None:
    with pytest.raises(InputError, match="not JSON"):
        reg.record_webhook(b"\xff{not json", now=vn(2026, 3, 9, 9))
    assert reg.list() == []


def test_a_failure_half_way_rolls_everything_back(store: Store, reg: Register,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(Register, "_upsert_alerts", staticmethod(boom))  # after the incident and event INSERTs
    with pytest.raises(RuntimeError):
        reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    counts = [store.rows(f"SELECT COUNT(*) FROM {t}")[0][0]  # noqa: S608
              for t in ("incidents", "incident_events", "incident_alerts")]
    assert counts == [0, 0, 0]


# -- response times in working hours ---------------------------------------------------------------------------------
def _incident(reg: Register, opened: datetime, ack: datetime | None = None, resolved: datetime | None = None,
              by: str = "an") -> Incident:
    incident = reg.record_webhook(payload("db1"), now=opened)
    if ack is not None:
        incident = reg.acknowledge(incident.id, "an", now=ack)
    if resolved is not None and by == "alertmanager":
        incident = reg.record_webhook(payload("db1", status="resolved"), now=resolved)
    elif resolved is not None:
        incident = reg.resolve(incident.id, by, "xong", now=resolved)
    return incident


def test_acknowledged_within_the_morning(reg: Register, cal: WorkCalendar) -> None:
    r = response(_incident(reg, vn(2026, 3, 9, 9), ack=vn(2026, 3, 9, 10), resolved=vn(2026, 3, 9, 15)), cal)
    assert r.to_respond_s == 1 * H
    assert r.to_resolve_s == 4 * H  # 09:00–11:30 (2.5 h) + 13:30–15:00 (1.5 h)
    assert (r.sla, r.met, r.deadline) == ("met", True, vn(2026, 3, 9, 11))


def test_acknowledged_over_the_weekend(reg: Register, cal: WorkCalendar) -> None:
    # Fri 16:30–17:00 (0.5 h) + Mon 07:30–08:30 (1 h); deadline Mon 09:00
    r = response(_incident(reg, vn(2026, 3, 6, 16, 30), ack=vn(2026, 3, 9, 8, 30)), cal)
    assert r.to_respond_s == 1.5 * H
    assert (r.sla, r.deadline) == ("met", vn(2026, 3, 9, 9))


def test_acknowledged_too_late(reg: Register, cal: WorkCalendar) -> None:
    # 09:00–11:30 (2.5 h) + 13:30–14:00 (0.5 h) = 3 h > 2 h
    r = response(_incident(reg, vn(2026, 3, 9, 9), ack=vn(2026, 3, 9, 14)), cal)
    assert r.to_respond_s == 3 * H
    assert (r.sla, r.met) == ("missed", False)


def test_an_answer_after_the_deadline_but_out_of_hours_is_late(reg: Register, cal: WorkCalendar) -> None:
    # received 15:00, due 17:00; answered 18:00 — no working time after 17:00, but the deadline has passed
    r = response(_incident(reg, vn(2026, 3, 9, 15), ack=vn(2026, 3, 9, 18)), cal)
    assert r.to_respond_s == 2 * H
    assert r.sla == "missed"


def test_received_at_lunch_counts_from_the_next_working_day(reg: Register, cal: WorkCalendar) -> None:
    incident = _incident(reg, vn(2026, 3, 9, 12), ack=vn(2026, 3, 9, 15))
    r = response(incident, cal)
    assert r.effective_start == vn(2026, 3, 10, 7, 30)
    assert r.to_respond_s == 0  # answered before the clock started
    assert r.sla == "met"
    lunch_pause = response(incident, parse_calendar({"after_hours": "next_period"}, "test"))
    assert lunch_pause.effective_start == vn(2026, 3, 9, 13, 30)
    assert lunch_pause.to_respond_s == 1.5 * H


def test_unanswered_incidents(reg: Register, cal: WorkCalendar) -> None:
    open_one = _incident(reg, vn(2026, 3, 9, 9))
    assert response(open_one, cal, now=vn(2026, 3, 9, 10, 59)).sla == "pending"
    assert response(open_one, cal, now=vn(2026, 3, 9, 11, 1)).sla == "missed"
    assert response(open_one, cal, now=vn(2026, 3, 9, 11, 1)).to_respond_s is None


def test_auto_resolved_without_an_answer(store: Store, cal: WorkCalendar) -> None:
    quick = _incident(store.register("a"), vn(2026, 3, 9, 9), resolved=vn(2026, 3, 9, 9, 10), by="alertmanager")
    assert response(quick, cal).sla == "not_needed"
    assert response(quick, cal).met is None
    slow = _incident(store.register("b"), vn(2026, 3, 9, 9), resolved=vn(2026, 3, 9, 15), by="alertmanager")
    assert response(slow, cal).sla == "missed"


def test_resolved_by_a_person_without_acknowledging(reg: Register, cal: WorkCalendar) -> None:
    r = response(_incident(reg, vn(2026, 3, 9, 9), resolved=vn(2026, 3, 9, 10, 30)), cal)
    assert r.responded_at == vn(2026, 3, 9, 10, 30)
    assert (r.to_respond_s, r.to_resolve_s, r.sla) == (1.5 * H, 1.5 * H, "met")


def test_summary_for_officials_is_vietnamese(reg: Register, cal: WorkCalendar) -> None:
    incident = _incident(reg, vn(2026, 3, 6, 16, 30), ack=vn(2026, 3, 9, 8, 30))
    text = summary_vi(incident, cal)
    assert f"Sự cố số {incident.id}: Máy chủ không phản hồi" in text
    assert "đã tiếp nhận" in text
    assert "hạn phản hồi 09:00 ngày 09/03/2026" in text
    assert "1.50 giờ làm việc" in text
    assert "đạt" in text


# -- the database ---------------------------------------------------------------------------------------------------
def test_missing_register_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no incident register"):
        Register(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()
    with pytest.raises(InputError, match="does not exist"):
        Register(tmp_path / "no" / "dir.sqlite")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    for create in (False, True):  # never adds its tables to somebody else's database
        with pytest.raises(InputError, match="not an incident register"):
            Register(other, create=create)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegisterError, match=r"garbage\.sqlite"):
        Register(garbage)


def test_postgresql_empty_foreign_and_unreachable_databases(pg: PgDatabase) -> None:
    empty = pg.dsn(pg.new_schema())
    with pytest.raises(InputError, match="no incident register here"):
        Register(dsn=empty, create=False)
    foreign = pg.new_schema()
    with psycopg.connect(pg.dsn(foreign), autocommit=True) as db:
        db.execute("CREATE TABLE t (x integer)")
    for create in (False, True):  # never adds its tables to somebody else's schema
        with pytest.raises(InputError, match="not an incident register"):
            Register(dsn=pg.dsn(foreign), create=create)
    with psycopg.connect(pg.dsn(foreign)) as db:
        assert db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (foreign,)).fetchall() == [("t",)]

    where = f"postgresql://{pg.name}@127.0.0.1:{pg.port}"
    with pytest.raises(RegisterError) as missing:
        Register(dsn=pg.dsn(dbname="provsec_no_such_db"))
    message = str(missing.value)
    assert message.startswith(f"{where}/provsec_no_such_db: cannot connect to the incident register: ")
    assert '"provsec_no_such_db" does not exist' in message
    assert "\n" not in message and pg.password not in message
    with pytest.raises(RegisterError) as refused:
        Register(dsn=pg.dsn(password="wrong-" + pg.password))
    assert str(refused.value).startswith(f"{where}/{pg.name}: cannot connect")
    assert "password authentication failed" in str(refused.value)
    assert pg.password not in str(refused.value)
    with pytest.raises(InputError, match=r"^dsn: not a PostgreSQL connection string"):
        Register(dsn=f"host=127.0.0.1 password={pg.password} dbname")
    with pytest.raises(InputError, match="not both"):
        Register("x.sqlite", dsn=pg.dsn())


def test_cli_dsn_file(pg: PgDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn_file = tmp_path / "register.dsn"
    dsn_file.write_text(pg.dsn(pg.new_schema()) + "\n", encoding="utf-8")
    dsn_file.chmod(0o600)
    with pytest.raises(InputError, match="no incident register here"):  # the notify service has not created it
        _run("list", "--dsn-file", str(dsn_file))
    with pytest.raises(InputError, match="--db and --dsn-file: give one"):
        _run("list", "--dsn-file", str(dsn_file), "--db", str(tmp_path / "x.sqlite"))
    dsn_file.chmod(0o644)
    with pytest.raises(InputError, match=rf"^--dsn-file {dsn_file}: secret file {dsn_file} is readable by others"):
        _run("list", "--dsn-file", str(dsn_file))
    bad = tmp_path / "bad.dsn"
    bad.write_text(f"password={pg.password} host", encoding="utf-8")
    bad.chmod(0o600)
    with pytest.raises(InputError, match=rf"^--dsn-file {bad}: not a PostgreSQL connection string"):
        _run("list", "--dsn-file", str(bad))
    gone = tmp_path / "gone.dsn"
    gone.write_text(pg.dsn(dbname="provsec_no_such_db"), encoding="utf-8")
    gone.chmod(0o600)
    assert main(["incident", "--dsn-file", str(gone), "list"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"provsec: error: postgresql://{pg.name}@127.0.0.1:{pg.port}/provsec_no_such_db: ")
    assert err.count("\n") == 1 and pg.password not in err


def test_notify_configuration_opens_the_postgresql_register(pg: PgDatabase, tmp_path: Path) -> None:
    for name, text in (("ack.key", "k" * 32), ("register.dsn", pg.dsn(pg.new_schema()))):
        (tmp_path / name).write_text(text + "\n", encoding="utf-8")
        (tmp_path / name).chmod(0o600)
    config = parse_config({"public_base_url": "https://canhbao.example", "ack": {"secret_file": "ack.key"},
                           "db_dsn_file": "register.dsn",
                           "channels": {"email": {"host": "mail.example", "sender": "canhbao@example.vn"}},
                           "rota": [{"people": [{"id": "an", "email": "an@example.vn"}]}]}, "notify.yml", tmp_path)
    opened = config.open_register().record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
    again = Register(dsn=(tmp_path / "register.dsn").read_text(encoding="utf-8").strip(), create=False)
    assert again.kind == "postgresql"
    assert again.list() == [opened]


def test_a_lock_held_too_long_is_a_clear_error(store: Store, reg: Register) -> None:
    impatient = store.register(busy_timeout=0.2)
    with store.write_lock_held():
        with pytest.raises(RegisterError, match=r"locked by another writer \(waited up to 0\.2 s\)"):
            impatient.record_webhook(payload("db1"), now=vn(2026, 3, 9, 9))
        assert reg.list() == []  # readers do not wait for a writer
    assert reg.list() == []


GROUPS = [f"group-{n}" for n in range(5)]


def _writer(target: Target, worker: int, start: Any, rounds: int) -> None:
    start.wait()
    reg = target.open()
    for n in range(rounds):
        group = GROUPS[(n + worker) % len(GROUPS)]
        incident = reg.record_webhook(payload(f"h{worker}-{n}", group=group))
        if n % 7 == 0:
            reg.acknowledge(incident.id, f"worker{worker}")
        if n % 11 == 0:
            reg.add_note(incident.id, f"worker{worker}", f"note {n}")


def _check_consistent(store: Store, writers: int, rounds: int) -> None:
    reg = store.register()
    incidents = reg.list()
    assert sorted(i.group_key for i in incidents) == sorted(GROUPS)  # one per group, none duplicated
    assert sum(i.notifications for i in incidents) == writers * rounds
    notes = sum(1 for i in incidents for e in reg.events(i.id) if e.kind == "note")
    assert notes == writers * len(range(0, rounds, 11))
    assert store.rows("SELECT COUNT(*) FROM incident_alerts") == [(writers * rounds,)]
    if store.kind == "sqlite":
        assert store.rows("PRAGMA integrity_check") == [("ok",)]


def test_two_processes_writing_at_once(store: Store) -> None:
    store.register()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    rounds = 60
    procs = [ctx.Process(target=_writer, args=(store.target(), w, start, rounds)) for w in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    _check_consistent(store, 2, rounds)


def _racer(target: Target, worker: int, start: Any, groups: list[str]) -> None:
    reg = target.open()
    start.wait()
    for group in groups:
        reg.record_webhook(payload(f"racer{worker}", group=group))


def test_writers_racing_on_a_groups_first_payload_open_one_incident(store: Store) -> None:
    """Each group's first payload arrives from three processes at once: whoever comes second must see the first
    one's incident (SQLite: BEGIN IMMEDIATE; PostgreSQL: the table lock) instead of opening another or failing on the
    unique index."""
    reg = store.register()
    groups = [f"race-{n}" for n in range(40)]
    writers = 3
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_racer, args=(store.target(), w, start, groups)) for w in range(writers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * writers
    incidents = reg.list()
    assert sorted(i.group_key for i in incidents) == sorted(groups)
    assert {i.notifications for i in incidents} == {writers}
    assert {i.alert_count for i in incidents} == {1}  # each notification carries its writer's one alert
    assert store.rows("SELECT COUNT(*) FROM incident_events WHERE kind = 'opened'") == [(len(groups),)]
    assert store.rows("SELECT COUNT(*) FROM incident_alerts") == [(len(groups) * writers,)]


def test_threads_writing_at_once(store: Store) -> None:
    store.register()
    start = threading.Event()
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            _writer(store.target(), worker, start, 40)
        except BaseException as exc:  # pragma: no cover  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(60)
    assert errors == []
    _check_consistent(store, 4, 40)


# -- CLI ------------------------------------------------------------------------------------------------------------
def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="provsec")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["incident", *argv])
    result: int = args.handler(args)
    return result


@pytest.fixture
def filled(store: Store) -> list[str]:
    """A register with two incidents; the CLI options that name it (--db FILE or --dsn-file FILE)."""
    reg = store.register()
    reg.record_webhook(payload("db1"), now=vn(2026, 3, 9, 12))  # lunch: counts from Tuesday 07:30
    reg.record_webhook(payload("web1", group="web"), now=vn(2026, 3, 10, 9))
    return store.cli_args()


def test_cli_list(filled: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("list", *filled, "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [2, 1]
    assert rows[1]["response"]["effective_start"] == "2026-03-10T00:30:00.000000+00:00"  # Tue 07:30 +07:00
    assert _run(*filled, "list", "--state", "open", "--since", "2026-03-10") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].split()[:2] == ["2", "open"]
    assert "Máy chủ không phản hồi" in out[0]


def test_cli_ack_resolve_note_show(filled: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    db = filled
    assert _run("ack", "1", "--by", "an", *db) == 0
    assert "acknowledged by an" in capsys.readouterr().out
    assert _run("ack", "1", "--by", "binh", *db) == 0
    assert "already acknowledged by an" in capsys.readouterr().out
    assert _run("note", "1", "Đã gọi trung tâm dữ liệu", "--by", "an", *db) == 0
    assert _run("resolve", "1", "--note", "Khởi động lại", "--by", "an", *db) == 0
    capsys.readouterr()
    assert _run("show", "1", "--json", *db) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "resolved"
    assert [(e["kind"], e["who"]) for e in shown["events"]] == [
        ("opened", "alertmanager"), ("acknowledged", "an"), ("note", "an"), ("resolved", "an")]
    assert shown["summary_vi"].startswith("Sự cố số 1: ")
    assert shown["alerts"][0]["labels"]["instance"] == "db1"
    assert _run("show", "1", *db) == 0
    assert "Diễn biến:" in capsys.readouterr().out


def test_cli_working_hours_file(filled: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hours = tmp_path / "hours.yml"
    hours.write_text("after_hours: next_period\n", encoding="utf-8")
    assert _run("show", "1", "--json", *filled, "--hours", str(hours)) == 0
    # received Monday 12:00; the lunch break is a pause: from 13:30 (06:30 UTC)
    assert json.loads(capsys.readouterr().out)["response"]["effective_start"] == "2026-03-09T06:30:00.000000+00:00"


def test_cli_bad_input(filled: list[str], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no incident register"):
        _run("list", "--db", str(tmp_path / "typo.sqlite"))
    with pytest.raises(InputError, match="no incident 42"):
        _run("ack", "42", "--by", "an", *filled)
    with pytest.raises(InputError, match="--since"):
        _run("list", *filled, "--since", "2026-03-10T08:00")
    with pytest.raises(InputError, match="--since"):
        _run("list", *filled, "--since", "last week")
    with pytest.raises(SystemExit):
        _run("resolve", "1", *filled)  # --note is required


def test_writer_time_is_now_by_default(reg: Register) -> None:
    before = datetime.now(UTC)
    incident = reg.record_webhook(payload("db1"))
    assert before <= incident.opened_at <= datetime.now(UTC) + timedelta(seconds=1)
