"""provsec.reports.incidents on a real incident register (created and filled through its own API).

The fixture month is October 2026 under the default calendar (Mon–Fri 07:30–11:30, 13:30–17:00,
Asia/Ho_Chi_Minh; no Vietnamese public holiday falls in October). Weekdays: 2/10 Fri, 5/10 Mon, 6/10 Tue,
7/10 Wed, 10/10 Sat, 30/10 Fri, 31/10 Sat, 2/11 Mon. Every expected value below is worked out by hand in the
comment beside it, never by calling the code under test."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from provsec.notify.register import Register
from provsec.reports.incidents import IncidentStats, incident_stats
from provsec.reports.month import Month
from provsec.reports.sources import IncidentRecord, incident_from_json, incident_to_json, load_register
from provsec.reports.workhours import WorkCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600.0
OCTOBER = Month.parse("2026-10")
AS_OF = datetime(2026, 11, 2, 8, 0, tzinfo=VN)  # collected on Monday 2/11 at 08:00


def vn(m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=VN)


def payload(group: str, alertname: str, severity: str, hosts: list[str], status: str = "firing") -> dict[str, Any]:
    alerts = [{"status": status, "labels": {"alertname": alertname, "instance": f"{h}:9100", "severity": severity},
               "annotations": {"summary": f"{alertname} {h}"}, "startsAt": "2026-10-01T00:00:00Z",
               "endsAt": "2026-10-01T01:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
               "generatorURL": "http://mon1:9090/graph", "fingerprint": f"fp-{group}-{h}"} for h in hosts]
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "oncall",
            "groupLabels": {"alertname": alertname}, "commonLabels": {"alertname": alertname, "severity": severity},
            "commonAnnotations": {"summary": alertname}, "externalURL": "http://mon1:9093", "alerts": alerts}


def fill(path: Path) -> dict[str, int]:
    """Eight incidents: I1–I6 in October (local time), two just outside it. Returns name → register id."""
    reg = Register(path)
    ids: dict[str, int] = {}

    def opened(name: str, at: datetime, alertname: str, severity: str, hosts: list[str]) -> int:
        ids[name] = reg.record_webhook(payload(name, alertname, severity, hosts), now=at).id
        return ids[name]

    # I1: Friday 17:05 (out of hours), acknowledged Monday 08:00, resolved by a person Monday 10:00
    i1 = opened("I1", vn(10, 2, 17, 5), "ProvsecHostDown", "critical", ["db1"])
    reg.acknowledge(i1, "an", now=vn(10, 5, 8))
    reg.resolve(i1, "an", "khởi động lại", now=vn(10, 5, 10))
    # I2: Tuesday 10:00, acknowledged 13:45, still acknowledged (unresolved)
    reg.acknowledge(opened("I2", vn(10, 6, 10), "ProvsecBackupFailed", "warning", ["bak1"]), "binh",
                    now=vn(10, 6, 13, 45))
    # I3: Wednesday 15:00 on two hosts, acknowledged Thursday 09:00, resolved by Alertmanager Thursday 10:00
    reg.acknowledge(opened("I3", vn(10, 7, 15), "ProvsecSecuritySshBruteForce", "critical", ["web1", "agency1"]),
                    "an", now=vn(10, 8, 9))
    reg.record_webhook(payload("I3", "ProvsecSecuritySshBruteForce", "critical", ["web1", "agency1"], "resolved"),
                       now=vn(10, 8, 10))
    # I4: Saturday 09:00, resolved by Alertmanager at 12:00 the same Saturday, nobody answered
    opened("I4", vn(10, 10, 9), "ProvsecHostDiskFilling", "warning", ["db1"])
    reg.record_webhook(payload("I4", "ProvsecHostDiskFilling", "warning", ["db1"], "resolved"), now=vn(10, 10, 12))
    # I5: Friday 30/10 16:00, unanswered; I6: Saturday 31/10 23:30 (16:30 UTC, still October here), unanswered
    opened("I5", vn(10, 30, 16), "ProvsecHostDown", "critical", ["db1"])
    opened("I6", vn(10, 31, 23, 30), "ProvsecSecuritySudoFailures", "warning", ["web1"])
    # outside October in Asia/Ho_Chi_Minh although inside it in UTC (and the reverse)
    opened("SEP", vn(9, 30, 23, 30), "ProvsecHostDown", "critical", ["db1"])   # 30/9 16:30 UTC
    opened("NOV", vn(11, 1, 0, 30), "ProvsecHostDown", "critical", ["db1"])   # 31/10 17:30 UTC
    return ids


@pytest.fixture(scope="module")
def register_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("register") / "incidents.sqlite"
    return path, fill(path)


@pytest.fixture(scope="module")
def records(register_file: tuple[Path, dict[str, int]]) -> list[IncidentRecord]:
    return load_register(register_file[0], OCTOBER)


@pytest.fixture(scope="module")
def stats(records: list[IncidentRecord]) -> IncidentStats:
    return incident_stats(records, OCTOBER, WorkCalendar(), AS_OF)


def ref(ids: dict[str, int], *names: str) -> tuple[str, ...]:
    return tuple(f"incident:{ids[n]}" for n in names)


def test_the_month_is_local_midnight_to_local_midnight(records: list[IncidentRecord],
                                                       register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    # SEP (30/9 23:30 local) and NOV (1/11 00:30 local) are out, although 1/11 00:30 local is 31/10 in UTC
    assert [r.id for r in records] == list(ref(ids, "I1", "I2", "I3", "I4", "I5", "I6"))


def test_counts_by_severity_category_host_and_day(stats: IncidentStats,
                                                  register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    assert stats.total.value == 6
    # critical: I1, I3, I5; warning: I2, I4, I6 (a tie: ordered by name)
    assert {k: (v.value, v.sources) for k, v in stats.by_severity.items()} == {
        "critical": (3, ref(ids, "I1", "I3", "I5")), "warning": (3, ref(ids, "I2", "I4", "I6"))}
    assert list(stats.by_severity) == ["critical", "warning"]
    # ProvsecHost…: I1, I4, I5; ProvsecSecurity…: I3, I6; ProvsecBackup…: I2
    assert {k: v.sources for k, v in stats.by_category.items()} == {
        "host": ref(ids, "I1", "I4", "I5"), "security": ref(ids, "I3", "I6"), "backup": ref(ids, "I2")}
    assert list(stats.by_category) == ["host", "security", "backup"]
    # instance without its port; I3 counts for web1 and for agency1
    assert {k: v.sources for k, v in stats.by_host.items()} == {
        "db1": ref(ids, "I1", "I4", "I5"), "web1": ref(ids, "I3", "I6"), "agency1": ref(ids, "I3"),
        "bak1": ref(ids, "I2")}
    assert len(stats.by_day) == 31
    busy = {day: v.sources for day, v in stats.by_day.items() if v.value}
    assert busy == {date(2026, 10, 2): ref(ids, "I1"), date(2026, 10, 6): ref(ids, "I2"),
                    date(2026, 10, 7): ref(ids, "I3"), date(2026, 10, 10): ref(ids, "I4"),
                    date(2026, 10, 30): ref(ids, "I5"), date(2026, 10, 31): ref(ids, "I6")}


def test_mtta_and_mttr_on_the_wall_clock(stats: IncidentStats, register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    # answered: I1 Fri 17:05 → Mon 08:00 = 62 h 55 min = 226500 s; I2 10:00 → 13:45 = 13500 s;
    # I3 Wed 15:00 → Thu 09:00 = 64800 s; mean (226500 + 13500 + 64800) / 3 = 101600 s
    assert stats.mtta_wall_s.value == pytest.approx(101600)
    assert stats.mtta_wall_s.sources == ref(ids, "I1", "I2", "I3")
    # resolved: I1 Fri 17:05 → Mon 10:00 = 64 h 55 min = 233700 s; I3 Wed 15:00 → Thu 10:00 = 68400 s;
    # I4 09:00 → 12:00 = 10800 s; mean 312900 / 3 = 104300 s
    assert stats.mttr_wall_s.value == pytest.approx(104300)
    assert stats.mttr_wall_s.sources == ref(ids, "I1", "I3", "I4")


def test_mtta_and_mttr_in_working_hours(stats: IncidentStats) -> None:
    # I1 received Fri 17:05, out of hours: the clock starts Mon 07:30 (Điều 8.3b) → ack 08:00 = 0.5 h;
    # I2 10:00–11:30 + 13:30–13:45 = 1.75 h; I3 15:00–17:00 + Thu 07:30–09:00 = 3.5 h; mean 5.75 / 3 h = 6900 s
    assert stats.mtta_work_s.value == pytest.approx(6900)
    # I1 Mon 07:30 → 10:00 = 2.5 h; I3 15:00–17:00 + 07:30–10:00 = 4.5 h; I4 resolved on Saturday, before its
    # clock started on Monday 07:30 = 0 h; mean 7 / 3 h = 8400 s
    assert stats.mttr_work_s.value == pytest.approx(8400)


def test_share_answered_within_two_working_hours(stats: IncidentStats,
                                                  register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    sla = stats.within_2h
    # I1 due Mon 09:30, answered 08:00: met; I2 due 14:00 (10:00–11:30 + 13:30–14:00), answered 13:45: met;
    # I3 due Wed 17:00, answered Thu 09:00: missed; I4 resolved by Alertmanager before its deadline (Mon 09:30):
    # no answer needed; I5 due Mon 2/11 08:30 (16:00–17:00 + 07:30–08:30), I6 due Mon 2/11 09:30: both still
    # ahead at 08:00 on 2/11, pending
    assert (sla.met.sources, sla.missed.sources) == (ref(ids, "I1", "I2"), ref(ids, "I3"))
    assert (sla.not_needed.sources, sla.pending.sources) == (ref(ids, "I4"), ref(ids, "I5", "I6"))
    assert sla.share.value == pytest.approx(2 / 3)  # met 2 of the 3 that could be judged
    assert sla.share.sources == ref(ids, "I1", "I2", "I3")


def test_the_same_data_collected_later_misses_the_unanswered(records: list[IncidentRecord]) -> None:
    later = incident_stats(records, OCTOBER, WorkCalendar(), vn(11, 2, 10))
    # at 10:00 on 2/11 both deadlines (08:30, 09:30) have passed: I3, I5, I6 missed, share 2 / 5
    assert (later.within_2h.missed.value, later.within_2h.pending.value) == (3, 0)
    assert later.within_2h.share.value == pytest.approx(0.4)


def test_top_alerting_hosts_count_alerts(stats: IncidentStats) -> None:
    # one alert per incident, two in I3 (web1, agency1): db1 I1 I4 I5 = 3; web1 I3 I6 = 2; agency1, bak1 = 1
    assert [(host, n.value) for host, n in stats.top_hosts] == [("db1", 3), ("web1", 2), ("agency1", 1),
                                                                ("bak1", 1)]
    assert all(s.startswith("incident:") and "/fp-" in s for _, n in stats.top_hosts for s in n.sources)


def test_a_month_without_incidents_says_so() -> None:
    empty = incident_stats([], OCTOBER, WorkCalendar(), AS_OF)
    assert (empty.total.value, empty.mtta_wall_s.value, empty.within_2h.share.value) == (0, None, None)
    assert sum(v.value for v in empty.by_day.values()) == 0


def test_json_form_round_trips(records: list[IncidentRecord]) -> None:
    for record in records:
        again = incident_from_json(incident_to_json(record), "test")
        assert again == record
