"""provsec.reports.backups and .compliance on fixture records, every expected value worked out by hand.

Backups: October 2026 in Asia/Ho_Chi_Minh, i.e. [2026-09-30T17:00Z, 2026-10-31T17:00Z)."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import papermill
import pytest

from provsec.errors import InputError
from provsec.reports import text
from provsec.reports.backups import JobFigures, Targets, backup_figures, check_figures, copy_figures, growth_figures
from provsec.reports.collect import Sources, collect
from provsec.reports.compliance import Change, compliance_figures
from provsec.reports.month import Month
from provsec.reports.sources import (
    BackupRun,
    ControlResult,
    load_backup_status,
    load_copies,
    load_drills,
    parse_audit_host,
)

REPO = Path(__file__).resolve().parents[2]
OCTOBER = Month.parse("2026-10")
AS_OF = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
H = 3600.0


def row(job: str, state: str, finished: str | None, last_success: str | None, snapshot: str | None = None
        ) -> dict[str, Any]:
    """One row as `provsec backup status --json` prints it (backup/state.py status())."""
    return {"job": job, "kind": "database", "state": state, "reason": "never run" if finished is None else state,
            "snapshot": snapshot, "finished_at": finished, "started_at": finished, "duration_s": None,
            "bytes_added": None, "last_success_at": last_success, "snapshots": 3}


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def figures(tmp_path: Path) -> dict[tuple[str, str], JobFigures]:
    r0, r1 = "2026-09-29T19:00:00.000Z", "2026-09-30T19:00:00.000Z"  # local 30/9 02:00 (Sept), 1/10 02:00 (Oct)
    r4, r5, r6 = "2026-10-03T19:00:00.000Z", "2026-10-31T16:30:00.000Z", "2026-10-31T19:00:00.000Z"
    # status files saved after each run (one row per job; a file holds each job's LAST run only)
    files = [
        [row("pg", "ok", r0, r0, "snap0")],
        [row("pg", "ok", r1, r1, "snap1"), row("mariadb", "failed", "2026-10-15T01:00:00.000Z", None)],
        [row("pg", "failed", "2026-10-01T19:00:00.000Z", r1)],
        [row("pg", "partial", "2026-10-02T19:00:00.000Z", r1, "snap3")],
        [row("pg", "ok", r4, r4, "snap4")],
        [row("pg", "ok", r4, r4, "snap4")],  # the same run saved twice: counts once
        [row("pg", "ok", r5, r5, "snap5")],  # 31/10 23:30 local: still October
        [row("pg", "ok", r6, r6, "snap6")],  # 1/11 02:00 local: November
    ]
    runs = [run for i, doc in enumerate(files)
            for run in load_backup_status(write(tmp_path / f"s{i}.json", doc), "db1")]
    runs += load_backup_status(write(tmp_path / "web1.json", [row("www", "failed", None, None)]), "web1")
    drills = load_drills(write(tmp_path / "d1.json", [
        {"job": "pg", "state": "ok", "reason": "ok", "snapshot": "snap4", "rto_s": 1200.0, "rpo_s": 50000.0,
         "files_checked": 0, "tables_checked": 12, "finished_at": "2026-10-20T03:00:00.000Z"},
        {"job": "pg", "state": "failed", "reason": "tables differ", "snapshot": "snap4", "rto_s": None,
         "rpo_s": None, "files_checked": 0, "tables_checked": 12, "finished_at": "2026-10-21T03:00:00.000Z"},
        {"job": "pg", "state": "ok", "reason": "ok", "snapshot": "snap0", "rto_s": 100.0, "rpo_s": 10.0,
         "files_checked": 0, "tables_checked": 12, "finished_at": "2026-09-15T03:00:00.000Z"}]), "db1")
    drills += load_drills(write(tmp_path / "d2.json", {
        "job": "mariadb", "state": "ok", "reason": "ok", "snapshot": "m1", "rto_s": 60.0, "rpo_s": 5.0,
        "files_checked": 0, "tables_checked": 3, "finished_at": "2026-10-22T03:00:00.000Z"}), "db1")
    targets = Targets(per_job={"db1/pg": (None, 900.0)})  # pg: RTO target 15 min, RPO the default 24 h
    return {(f.host, f.job): f for f in backup_figures(runs, drills, OCTOBER, AS_OF, targets)}


def test_success_rate_counts_each_run_of_the_month_once(figures: dict[tuple[str, str], JobFigures]) -> None:
    pg = figures[("db1", "pg")]
    # October runs: r1 ok (1/10 02:00 local), failed, partial, r4 ok, r5 ok → 3 of 5 (r4 seen twice, once;
    # r0 is September, r6 November)
    assert (pg.runs.value, pg.successes.value) == (5, 3)
    assert pg.success_rate.value == pytest.approx(0.6)
    assert "backup:db1/pg@2026-10-31T16:30:00.000000+00:00" in pg.success_rate.sources
    # last good before the month's end: r5, not r6
    assert pg.last_good.value is not None and pg.last_good.value.snapshot == "snap5"


def test_worst_rpo_of_the_month(figures: dict[tuple[str, str], JobFigures]) -> None:
    pg = figures[("db1", "pg")]
    # gaps: r0→r1 24 h; r1→r4 72 h; r4 (4/10 02:00) → r5 (31/10 23:30) = 27 d 21.5 h = 669.5 h;
    # r5 → month end (1/11 00:00) 0.5 h. Worst 669.5 h, well over the 24 h target.
    assert pg.worst_rpo_s.value == pytest.approx(669.5 * H)
    assert pg.worst_rpo_s.sources == ("backup:db1/pg@2026-10-31T16:30:00.000000+00:00",
                                      "backup:db1/pg@2026-10-03T19:00:00.000000+00:00")
    assert (pg.rpo_target_s, pg.rpo_met) == (24 * H, False)


def test_a_job_that_only_failed_and_one_that_never_ran(figures: dict[tuple[str, str], JobFigures]) -> None:
    maria = figures[("db1", "mariadb")]
    # one failed run, no success known: 0 %, and the whole month (31 days) without a backup
    assert (maria.runs.value, maria.success_rate.value) == (1, 0.0)
    assert maria.worst_rpo_s.value == pytest.approx(31 * 24 * H)
    assert maria.rpo_met is False
    www = figures[("web1", "www")]
    # never ran: no rate (not 100 %), no backup at all, so the RPO is not met
    assert (www.runs.value, www.success_rate.value, www.last_good.value, www.rpo_met) == (0, None, None, False)


def test_drills_against_the_rto_target(figures: dict[tuple[str, str], JobFigures]) -> None:
    pg = figures[("db1", "pg")]
    # October drills only (the September one is left out): 1200 s > 900 s target: not met; failed: not met
    assert [(d.drill.rto_s, d.rto_target_s, d.rto_met) for d in pg.drills] == [(1200.0, 900.0, False),
                                                                                 (None, 900.0, False)]
    # mariadb keeps the default target of 4 h: 60 s is met
    assert [(d.rto_target_s, d.rto_met) for d in figures[("db1", "mariadb")].drills] == [(4 * H, True)]
    assert pg.drills[0].drill.id == "drill:db1/pg@2026-10-20T03:00:00.000000+00:00"


def test_bad_backup_files_name_the_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"bad\.json: \[0\]\.state: 'fine' is not one of ok, partial, failed"):
        load_backup_status(write(tmp_path / "bad.json", [row("pg", "fine", None, None)]), "db1")
    with pytest.raises(InputError, match=r"drill\.json\.finished_at: 'yesterday' is not an ISO 8601 time"):
        load_drills(write(tmp_path / "drill.json", {"job": "pg", "state": "ok", "finished_at": "yesterday"}), "db1")
    (tmp_path / "torn.json").write_text("[{", encoding="utf-8")
    with pytest.raises(InputError, match=r"torn\.json: the backup status is not JSON"):
        load_backup_status(tmp_path / "torn.json", "db1")


# -- compliance ------------------------------------------------------------------------------------------------------
def audit(host: str, statuses: dict[str, str]) -> list[ControlResult]:
    """A host's file as `provsec audit evaluate` writes it (audit/evaluate.py evaluate_fleet)."""
    results = []
    for control, status in statuses.items():
        reason = ("exception until 2026-12-31 approved by Giám đốc Sở: máy chủ cũ (fails: PermitRootLogin yes)"
                  if status == "excepted" else "")
        tcvn = {"TCVN 11930:2017": ["8.1.2"], "TCVN 14423": []} if control.startswith("PS-SSH") else \
            {"TCVN 11930:2017": []}
        results.append({"id": control, "concern": "x", "title": {"vi": f"Kiểm soát {control}", "en": control},
                        "status": status, "expected": None, "actual": None, "evidence": "", "reason": reason,
                        "cis": "", "tcvn": tcvn})
    return parse_audit_host({"host": host, "evaluated_at": "2026-10-30T02:00:00Z", "results": results}, host)


def test_compliance_per_host_control_tcvn_and_trend() -> None:
    now = audit("web1", {"PS-SSH-02": "pass", "PS-SSH-03": "fail", "PS-SYS-01": "excepted",
                         "PS-AUD-01": "not_applicable"}) + \
        audit("db1", {"PS-SSH-02": "pass", "PS-SSH-03": "pass", "PS-SYS-01": "fail", "PS-AUD-01": "not_applicable"})
    before = audit("web1", {"PS-SSH-02": "fail", "PS-SSH-03": "fail", "PS-SYS-01": "fail",
                            "PS-AUD-01": "not_applicable"}) + \
        audit("db1", {"PS-SSH-02": "pass", "PS-SSH-03": "pass", "PS-SYS-01": "fail"})
    fig = compliance_figures(now, before)
    # now: pass 3 (web1 SSH-02, db1 SSH-02, SSH-03), fail 2, excepted 1, not applicable 2 → 3 / (3 + 2 + 1)
    assert {s: t.value for s, t in fig.totals.items()} == {"pass": 3, "fail": 2, "not_applicable": 2, "excepted": 1}
    assert fig.pass_share.value == pytest.approx(0.5)
    # before: pass 2 (db1 SSH-02, SSH-03), fail 4, not applicable 1 → 2 / 6
    assert fig.previous_pass_share is not None and fig.previous_pass_share.value == pytest.approx(1 / 3)
    assert {s: t.value for s, t in fig.by_host["web1"].items()} == {"pass": 1, "fail": 1, "not_applicable": 1,
                                                                     "excepted": 1}
    assert fig.by_control["PS-SYS-01"]["fail"].sources == ("audit:db1/PS-SYS-01",)
    # the SSH controls carry clause 8.1.2 of TCVN 11930 and TCVN 14423 without a clause; the others the standard
    assert fig.by_tcvn["TCVN 11930:2017 8.1.2"]["pass"].value == 3
    assert fig.by_tcvn["TCVN 11930:2017"]["fail"].sources == ("audit:db1/PS-SYS-01",)
    assert [(r.control, r.exception_expires) for r in fig.excepted] == [("PS-SYS-01", date(2026, 12, 31))]
    assert fig.changes == [
        Change("db1", "PS-AUD-01", None, "not_applicable", ("audit:db1/PS-AUD-01",)),
        Change("web1", "PS-SSH-02", "fail", "pass", ("previous:audit:web1/PS-SSH-02", "audit:web1/PS-SSH-02")),
        Change("web1", "PS-SYS-01", "fail", "excepted", ("previous:audit:web1/PS-SYS-01", "audit:web1/PS-SYS-01"))]


def test_compliance_without_a_previous_month() -> None:
    fig = compliance_figures(audit("web1", {"PS-AUD-01": "not_applicable"}))
    # nothing required: no share rather than 0 % or 100 %; no trend
    assert (fig.pass_share.value, fig.previous_totals, fig.changes) == (None, None, [])


def test_a_bad_audit_result_names_the_field() -> None:
    with pytest.raises(InputError, match=r"web1: results\[0\]\.status: 'ok' is not one of pass"):
        parse_audit_host({"host": "web1", "evaluated_at": "2026-10-30T02:00:00Z",
                          "results": [{"id": "PS-SSH-02", "status": "ok"}]}, "web1")


# -- repository checks, data growth, second-site copy -----------------------------------------------------------------
C0 = {"state": "ok", "reason": "repository checked", "duration_s": 12.5, "finished_at": "2026-09-28T20:00:00.000Z",
      "read_data_subset": "10%"}
C1 = {"state": "failed", "reason": "repository sftp:bak1:/repo: restic check exited 1: pack 3f2a: not referenced",
      "duration_s": 30.0, "finished_at": "2026-10-02T18:00:00.000Z", "read_data_subset": "10%"}
C2 = {"state": "ok", "reason": "repository checked", "duration_s": 14.0, "finished_at": "2026-10-25T20:00:00.000Z",
      "read_data_subset": None}
C3 = {"state": "ok", "reason": "repository checked", "duration_s": 11.0, "finished_at": "2026-11-01T20:00:00.000Z",
      "read_data_subset": "10%"}


def new_row(state: str, finished: str, last_success: str | None, snapshot: str | None, *, size: int | None,
            added: int, check: dict[str, Any] | None) -> dict[str, Any]:
    """A row of the status --json of this provsec: bytes_processed and last_check included."""
    return {**row("pg", state, finished, last_success, snapshot), "bytes_added": added,
            "bytes_processed": size, "last_check": check}


A0, A1, A2, A3 = ("2026-09-29T19:00:00.000Z", "2026-10-01T19:00:00.000Z", "2026-10-02T19:00:00.000Z",
                  "2026-10-03T19:00:00.000Z")
A4, A5 = "2026-10-30T19:00:00.000Z", "2026-10-31T19:00:00.000Z"  # 31/10 02:00 local (October), 1/11 02:00 local


def status_files() -> list[tuple[str, list[dict[str, Any]]]]:
    """Status files saved after each run: db1 by this provsec, web1 by one that recorded neither the size nor the
    checks (row(): no bytes_processed, no last_check; bytes_added it did record)."""
    files = [
        [new_row("ok", A0, A0, "s0", size=1_000_000_000, added=10_000_000, check=C0)],  # September
        [new_row("ok", A1, A1, "s1", size=1_050_000_000, added=60_000_000, check=C0)],
        [new_row("partial", A2, A1, "s2", size=900_000_000, added=5_000_000, check=C1)],  # partial: its size not used
        [new_row("failed", A3, A1, None, size=None, added=0, check=C1)],  # no snapshot kept: nothing added
        [new_row("ok", A4, A4, "s4", size=1_234_500_000, added=2_000_000, check=C2)],
        [new_row("ok", A4, A4, "s4", size=1_234_500_000, added=2_000_000, check=C2)],  # the same run again: once
        [new_row("ok", A5, A5, "s5", size=2_000_000_000, added=7, check=C3)],  # November
    ]
    old = [row("www", "ok", "2026-10-05T19:00:00.000Z", "2026-10-05T19:00:00.000Z", "w1"),
           row("www", "ok", "2026-10-06T19:00:00.000Z", "2026-10-06T19:00:00.000Z", "w2")]
    old[0]["bytes_added"], old[1]["bytes_added"] = 1000, 500
    return [("db1", doc) for doc in files] + [("web1", [doc]) for doc in old]


@pytest.fixture
def runs(tmp_path: Path) -> list[BackupRun]:
    return [r for i, (host, doc) in enumerate(status_files())
            for r in load_backup_status(write(tmp_path / f"s{i}.json", doc), host)]


def test_checks_of_the_month_per_host(runs: list[BackupRun]) -> None:
    by_host = {c.host: c for c in check_figures(runs, OCTOBER)}
    db1 = by_host["db1"]
    # distinct checks C0 (Sept), C1, C2 (Oct), C3 (Nov): two in October, C1 failed; the last before the end is C2
    assert db1.recorded is True
    assert [(c.state, c.finished_at) for c in db1.checks] == [
        ("failed", datetime(2026, 10, 2, 18, tzinfo=UTC)), ("ok", datetime(2026, 10, 25, 20, tzinfo=UTC))]
    assert db1.failed.value == 1 and db1.failed.sources == ("check:db1@2026-10-02T18:00:00.000000+00:00",)
    assert db1.checks[0].reason.endswith("pack 3f2a: not referenced") and db1.checks[0].read_data_subset == "10%"
    assert db1.last.value is not None and db1.last.value.finished_at == datetime(2026, 10, 25, 20, tzinfo=UTC)
    # web1's status files predate last_check: no data (not "no check")
    web1 = by_host["web1"]
    assert (web1.recorded, web1.checks, web1.last.value) == (False, [], None)


def test_data_growth_over_the_month(runs: list[BackupRun]) -> None:
    by_job = {(g.host, g.job): g for g in growth_figures(runs, OCTOBER)}
    pg = by_job[("db1", "pg")]
    # start: the last ok run before October, A0 (1 000 000 000 B); end: the last ok run of October, A4
    # (1 234 500 000 B; A5 is November, the partial A2 does not count) → 234 500 000 B = 234,5 MB
    assert pg.size_start.value is not None and pg.size_start.value.snapshot == "s0"
    assert pg.size_end.value is not None and pg.size_end.value.snapshot == "s4"
    assert pg.growth.value == 234_500_000
    assert text.size(pg.growth.value) == "234,5 MB" and text.size(pg.growth.value, "en") == "234.5 MB"
    assert pg.growth.sources == ("backup:db1/pg@2026-09-29T19:00:00.000000+00:00",
                                 "backup:db1/pg@2026-10-30T19:00:00.000000+00:00")
    # data added: A1 60 000 000 + A2 (partial, kept) 5 000 000 + A4 2 000 000 (once) = 67 000 000 B
    assert pg.added.value == 67_000_000 and text.size(pg.added.value) == "67,0 MB"
    assert len(pg.added.sources) == 3
    # web1: sizes never recorded → growth unknown; data added known: 1000 + 500 = 1,5 kB
    www = by_job[("web1", "www")]
    assert (www.size_start.value, www.size_end.value, www.growth.value) == (None, None, None)
    assert www.added.value == 1500 and text.size(www.added.value) == "1,5 kB"


def test_size_text() -> None:
    assert [text.size(v) for v in (None, 0, 999, 1000, 1_234_567, 999_960, -2500, 1_234_500_000_000_000)] == [
        "-", "0 B", "999 B", "1,0 kB", "1,2 MB", "1,0 MB", "-2,5 kB", "1.234,5 TB"]


def copy_record(state: str, started: str, finished: str, last_success: str | None, name: str = "db1"
                ) -> dict[str, Any]:
    """A record as `provsec backup copy --json` prints it (backup/copy.py run())."""
    return {"copy": name, "state": state, "reason": "2 snapshot(s) at the second site" if state == "ok" else
            "repository /srv/provsec-second-site/db1: locked", "snapshots": 2 if state == "ok" else None,
            "started_at": started, "finished_at": finished, "duration_s": 60.0, "last_success_at": last_success}


def test_second_site_copy_last_success_failures_and_lag(tmp_path: Path, runs: list[BackupRun]) -> None:
    k1 = copy_record("ok", "2026-10-01T20:00:00.000Z", "2026-10-01T20:30:00.000Z", "2026-10-01T20:30:00.000Z")
    k2 = copy_record("failed", "2026-10-15T20:00:00.000Z", "2026-10-15T20:05:00.000Z", "2026-10-01T20:30:00.000Z")
    # started 30/10 18:00Z, before A4 finished (19:00Z): A4 is not in it
    k3 = copy_record("ok", "2026-10-30T18:00:00.000Z", "2026-10-30T19:30:00.000Z", "2026-10-30T19:30:00.000Z")
    k4 = copy_record("ok", "2026-11-01T02:00:00.000Z", "2026-11-01T02:10:00.000Z", "2026-11-01T02:10:00.000Z")
    copies = load_copies(write(tmp_path / "copies.json", [k1, k2])) + load_copies(write(tmp_path / "k3.json", k3))
    copies += load_copies(write(tmp_path / "k4.json", k4)) + load_copies(write(tmp_path / "k3-again.json", k3))
    by_host = {c.host: c for c in copy_figures(copies, runs, OCTOBER, AS_OF)}
    db1 = by_host["db1"]
    # October: k1, k2, k3 (k3 seen twice, once; k4 is November); k2 failed; the last success k3, 31/10 02:30 local
    assert (db1.recorded, db1.runs.value) == (True, 3)
    assert [(f.state, f.reason) for f in db1.failures] == [("failed", "repository /srv/provsec-second-site/db1: "
                                                                       "locked")]
    assert db1.last_success.value == datetime(2026, 10, 30, 19, 30, tzinfo=UTC)
    assert text.moment(db1.last_success.value, OCTOBER.timezone) == "31/10/2026 02:30"
    # pg: newest good backup before the month's end A4 (30/10 19:00Z); newest at the second site: the newest good
    # backup finished before k3 started (30/10 18:00Z): A1 (1/10 19:00Z) → lag 29 days = 696 h
    [pg] = db1.jobs
    assert (pg.newest.value, pg.copied.value) == (datetime(2026, 10, 30, 19, tzinfo=UTC),
                                                  datetime(2026, 10, 1, 19, tzinfo=UTC))
    assert pg.lag_s.value == pytest.approx(696 * H) and text.hours(pg.lag_s.value) == "696,00 giờ"
    assert "copy:db1@2026-10-30T19:30:00.000000+00:00" in pg.lag_s.sources
    # web1: no copy record collected: no data
    web1 = by_host["web1"]
    assert (web1.recorded, web1.runs.value, web1.last_success.value) == (False, 0, None)
    assert [j.lag_s.value for j in web1.jobs] == [None]


def test_a_failed_copy_alone_still_tells_the_last_success(tmp_path: Path) -> None:
    status = [row("pg", "ok", "2026-10-09T19:00:00.000Z", "2026-10-09T19:00:00.000Z", "a"),
              row("pg", "ok", "2026-10-19T19:00:00.000Z", "2026-10-19T19:00:00.000Z", "b")]
    runs = [r for i, doc in enumerate(status) for r in load_backup_status(write(tmp_path / f"s{i}.json", [doc]),
                                                                             "db1")]
    copies = load_copies(write(tmp_path / "c.json", copy_record(
        "failed", "2026-10-20T00:00:00.000Z", "2026-10-20T00:01:00.000Z", "2026-10-10T00:00:00.000Z")))
    [db1] = copy_figures(copies, runs, OCTOBER, AS_OF)
    # the success of 10/10 00:00Z is known only by its finish, which stands for its start: the backup of 9/10
    # 19:00Z is there, that of 19/10 19:00Z not → 10 days = 240 h
    assert (db1.runs.value, len(db1.failures), db1.last_success.value) == (1, 1, datetime(2026, 10, 10, tzinfo=UTC))
    assert db1.jobs[0].lag_s.value == pytest.approx(240 * H)


def test_bad_copy_and_check_records_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"c\.json: \[0\]\.state: 'done' is not ok or failed"):
        load_copies(write(tmp_path / "c.json", [{**copy_record("ok", A1, A1, A1), "state": "done"}]))
    with pytest.raises(InputError, match=r"c2\.json\.copy: expected text"):
        load_copies(write(tmp_path / "c2.json", {**copy_record("ok", A1, A1, A1), "copy": None}))
    with pytest.raises(InputError, match=r"s\.json: \[0\]\.last_check\.finished_at: 'soon' is not an ISO 8601"):
        bad = new_row("ok", A1, A1, "x", size=1, added=1, check={**C1, "finished_at": "soon"})
        load_backup_status(write(tmp_path / "s.json", [bad]), "db1")
    with pytest.raises(InputError, match=r"s2\.json: \[0\]\.bytes_processed: expected a number of bytes"):
        bad = new_row("ok", A1, A1, "x", size=-1, added=1, check=None)
        load_backup_status(write(tmp_path / "s2.json", [bad]), "db1")


# -- the notebook --------------------------------------------------------------------------------------------------
def copy_files() -> list[Any]:
    """db1's copies: k1 ok, k2 failed (the second site locked), k3 ok but started before A4 finished, k4 November;
    k1 and k2 as `backup copy --json` printed them, k3 and k4 as state files."""
    k1 = copy_record("ok", "2026-10-01T20:00:00.000Z", "2026-10-01T20:30:00.000Z", "2026-10-01T20:30:00.000Z")
    k2 = copy_record("failed", "2026-10-15T20:00:00.000Z", "2026-10-15T20:05:00.000Z", "2026-10-01T20:30:00.000Z")
    k3 = copy_record("ok", "2026-10-30T18:00:00.000Z", "2026-10-30T19:30:00.000Z", "2026-10-30T19:30:00.000Z")
    k4 = copy_record("ok", "2026-11-01T02:00:00.000Z", "2026-11-01T02:10:00.000Z", "2026-11-01T02:10:00.000Z")
    return [[k1, k2], k3, k4]


def run_notebook(tmp_path: Path, files: list[tuple[str, list[dict[str, Any]]]], copies: list[Any],
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """Collect the files into DATA/2026-10 as `provsec report collect` does, run notebooks/monthly_backups.ipynb
    with papermill on it, and return the Markdown it displayed."""
    status = [(host, write(tmp_path / f"status-{i}.json", doc)) for i, (host, doc) in enumerate(files)]
    copy_paths = [write(tmp_path / f"copy-{i}.json", doc) for i, doc in enumerate(copies)]
    collect(OCTOBER, tmp_path / "data", Sources(backup_status=status, copies=copy_paths), now=lambda: AS_OF)
    # the kernel imports provsec from this work tree, as the test process does
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), *filter(None, os.environ.get(
        "PYTHONPATH", "").split(os.pathsep))]))
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "monthly_backups.ipynb"), str(out),
                               parameters={"month": "2026-10", "data_dir": str(tmp_path / "data")},
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    shown = [o.get("data", {}).get("text/markdown", "") for cell in json.loads(out.read_text(encoding="utf-8"))[
        "cells"] for o in cell.get("outputs", [])]
    return "\n".join("".join(s) for s in shown)


def test_the_notebook_shows_checks_growth_and_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = run_notebook(tmp_path, status_files(), copy_files(), monkeypatch)
    # checks of db1 in October: C1 (2/10 18:00Z = 03/10 01:00 local, failed) and C2 (25/10 20:00Z = 26/10 03:00,
    # ok, the last); web1's files say nothing about checks
    assert "| db1 | 2 | 1 | 26/10/2026 03:00 | thành công |" in shown
    assert ("| db1 | 03/10/2026 01:00 | repository sftp:bak1:/repo: restic check exited 1: pack 3f2a: not "
            "referenced |") in shown
    assert "Kiểm tra kho sao lưu của web1: không có dữ liệu" in shown
    # growth of db1/pg: A0 (29/9 19:00Z = 30/09 02:00) 1 000 000 000 B = 1,0 GB → A4 (30/10 19:00Z = 31/10 02:00)
    # 1 234 500 000 B = 1,2 GB: +234,5 MB; data added 67 000 000 B. web1: sizes not recorded; added 1 500 B
    assert "| db1 | pg | 1,0 GB (30/09/2026 02:00) | 1,2 GB (31/10/2026 02:00) | 234,5 MB | 67,0 MB |" in shown
    assert "| web1 | www | không có dữ liệu | không có dữ liệu | không có dữ liệu | 1,5 kB |" in shown
    # copies of db1: 3 in October, 1 failed (15/10 20:05Z = 16/10 03:05), the last success k3 (30/10 19:30Z =
    # 31/10 02:30); pg's newest A4 31/10 02:00, at the second site A1 (1/10 19:00Z = 02/10 02:00): 696 h behind
    assert "| db1 | 3 | 1 | 31/10/2026 02:30 |" in shown
    assert "| db1 | pg | 31/10/2026 02:00 | 02/10/2026 02:00 | 696,00 giờ |" in shown
    assert "| db1 | 16/10/2026 03:05 | repository /srv/provsec-second-site/db1: locked |" in shown
    assert "Bản sao ngoài trụ sở của web1: không có dữ liệu" in shown


def test_the_notebook_says_so_when_old_status_files_hold_none_of_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    old = [(host, doc) for host, doc in status_files() if host == "web1"]
    shown = run_notebook(tmp_path, old, [], monkeypatch)
    assert "Dữ liệu tháng này không có kết quả kiểm tra kho sao lưu" in shown
    assert "Dữ liệu tháng này không có bản ghi sao chép kho sao lưu ra nơi lưu trữ thứ hai" in shown
    assert "| web1 | www | không có dữ liệu | không có dữ liệu | không có dữ liệu | 1,5 kB |" in shown
