"""`provsec report collect` and load_collected: a month's data gathered from a real incident register, backup
status and drill files, an audit-results tree and a real Prometheus (backfilled with known samples), written
atomically with a manifest of SHA-256 hashes, and refused when anything in it changed afterwards."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from localnet import free_port
from promdata import openmetrics, prometheus_with

from provsec import cli
from provsec.errors import InputError
from provsec.notify.register import Register
from provsec.reports import prometheus
from provsec.reports.collect import Sources, collect, load_collected
from provsec.reports.incidents import daily_events
from provsec.reports.month import Month

VN = ZoneInfo("Asia/Ho_Chi_Minh")
OCTOBER = Month.parse("2026-10")
START = datetime(2026, 10, 1, tzinfo=VN).timestamp()  # local midnight 1/10 = 2026-09-30T17:00Z
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Hourly samples over October (local). web1: ssh_failed rises by 10 at noon of days 1–5, then stays; db1:
    user_added rises by 1 at 12:00 on 31/10."""
    hours = range(31 * 24 + 1)
    ssh = [(START + 3600 * k, 10.0 * min(5, (k + 12) // 24)) for k in hours]
    added = [(START + 3600 * k, 1.0 if k >= 30 * 24 + 12 else 0.0) for k in hours]
    text = openmetrics("provsec_auth_events", "counter", [
        ({"event": "ssh_failed", "method": "password", "user": "other", "instance": "web1:9847"}, ssh),
        ({"event": "user_added", "method": "", "user": "other", "instance": "db1:9847"}, added)])
    with prometheus_with(text, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def webhook(group: str, host: str, status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "oncall",
            "groupLabels": {"alertname": "ProvsecHostDown"},
            "commonLabels": {"alertname": "ProvsecHostDown", "severity": "critical"},
            "commonAnnotations": {"summary": "Máy chủ không phản hồi"}, "externalURL": "http://mon1:9093",
            "alerts": [{"status": status, "labels": {"alertname": "ProvsecHostDown", "instance": f"{host}:9100"},
                        "annotations": {}, "startsAt": "2026-10-05T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": f"fp-{host}"}]}


def audit_run(root: Path, stamp: str, status: str) -> None:
    results = root / stamp / "results"
    results.mkdir(parents=True)
    doc = {"host": "web1", "evaluated_at": "2026-10-30T02:00:00Z", "results": [
        {"id": "PS-SSH-02", "title": {"vi": "Cấm root đăng nhập SSH", "en": "x"}, "status": status, "reason": "",
         "tcvn": {"TCVN 11930:2017": []}}]}
    (results / "web1.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (results / "summary.json").write_text("{}", encoding="utf-8")


@pytest.fixture
def sources(tmp_path: Path, prom: str) -> Sources:
    reg = Register(tmp_path / "incidents.sqlite")
    reg.record_webhook(webhook("g1", "db1"), now=datetime(2026, 10, 5, 9, 0, tzinfo=VN))
    reg.record_webhook(webhook("g2", "web1"), now=datetime(2026, 11, 1, 0, 30, tzinfo=VN))  # November: left out
    status = tmp_path / "db1.json"
    status.write_text(json.dumps([{"job": "pg", "kind": "database", "state": "ok", "reason": "", "snapshot": "ab12",
                                   "finished_at": "2026-10-10T19:00:00.000Z",
                                   "last_success_at": "2026-10-10T19:00:00.000Z"}]), encoding="utf-8")
    drill = tmp_path / "pg-drill.json"
    drill.write_text(json.dumps({"job": "pg", "state": "ok", "reason": "", "snapshot": "ab12", "rto_s": 30.5,
                                 "rpo_s": 100.0, "finished_at": "2026-10-11T03:00:00.000Z"}), encoding="utf-8")
    audits = tmp_path / "audit-results"
    audit_run(audits, "20261015T020000Z", "fail")
    audit_run(audits, "20261030T020000Z", "pass")   # the last run before the end of October: this one
    audit_run(audits, "20261105T020000Z", "fail")   # November
    return Sources(register=tmp_path / "incidents.sqlite", backup_status=[("db1", status)],
                   drills=[("db1", drill)], audit_results=audits, prometheus=prom)


def test_collect_writes_a_dated_folder_with_a_manifest(tmp_path: Path, sources: Sources) -> None:
    folder = collect(OCTOBER, tmp_path / "out", sources, now=lambda: NOW)
    assert folder == tmp_path / "out" / "2026-10"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["2026-10"]  # no temp folder left
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["month"], manifest["collected_at"]) == ("2026-10", "2026-11-02T01:00:00Z")
    files = {e["path"]: e for e in manifest["files"]}
    assert set(files) == {"incidents.json", "backups/status/01-db1.json", "backups/drills/01-db1.json",
                          "audit/web1.json", "prometheus/ssh_failures.json", "prometheus/accounts_added.json",
                          "prometheus/sudo_failures.json"}
    for rel, entry in files.items():
        data = (folder / rel).read_bytes()
        assert (entry["sha256"], entry["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
        assert entry["collected_at"] == "2026-11-02T01:00:00Z"
    # the source files are copied byte for byte, and the host is the one given
    assert (folder / "backups/status/01-db1.json").read_bytes() == sources.backup_status[0][1].read_bytes()
    assert files["backups/status/01-db1.json"]["host"] == "db1"
    assert files["audit/web1.json"]["source"].endswith("20261030T020000Z/results/web1.json")
    # readable by the reports' group, whatever the umask; no temp file left beside them
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        [*files, "manifest.json"])
    assert {oct(stat.S_IMODE((folder / rel).stat().st_mode)) for rel in [*files, "manifest.json"]} == {"0o640"}


def test_load_collected_reads_the_month_back(tmp_path: Path, sources: Sources) -> None:
    data = load_collected(collect(OCTOBER, tmp_path / "out", sources, now=lambda: NOW))
    assert data.month == OCTOBER and data.collected_at == NOW
    assert data.incidents is not None and [r.hosts for r in data.incidents] == [("db1",)]  # g2 is November's
    assert [(r.host, r.job, r.snapshot) for r in data.backup_runs] == [("db1", "pg", "ab12")]
    assert [(d.host, d.rto_s) for d in data.drills] == [("db1", 30.5)]
    assert data.audit is not None and [r.status for r in data.audit] == ["pass"]  # the 30/10 run
    ssh = daily_events(data.prometheus["ssh_failures"], OCTOBER)
    # +10 at noon of days 1–5: each local day's increase is 10 on 1/10–5/10, 0 after
    assert ssh["web1"] == {day: (10.0 if day.day <= 5 else 0.0) for day in OCTOBER.days()}
    added = daily_events(data.prometheus["accounts_added"], OCTOBER)
    assert {day: n for day, n in added["db1"].items() if n} == {date(2026, 10, 31): 1.0}
    assert data.prometheus["sudo_failures"] == []  # no such events: an empty answer, not an error


def test_previous_month_audit_comes_from_the_sibling_folder(tmp_path: Path, sources: Sources) -> None:
    september = Sources(audit_results=sources.audit_results)
    with pytest.raises(InputError, match=r"no audit run .* before the end of 2026-09"):
        collect(OCTOBER.previous, tmp_path / "out", september)
    (tmp_path / "sept-audit").mkdir()
    audit_run(tmp_path / "sept-audit", "20260920T020000Z", "fail")
    collect(OCTOBER.previous, tmp_path / "out", Sources(audit_results=tmp_path / "sept-audit"))
    october = load_collected(collect(OCTOBER, tmp_path / "out", sources, now=lambda: NOW))
    previous = october.previous_audit()
    assert previous is not None and [r.status for r in previous] == ["fail"]


def test_a_changed_added_or_missing_file_is_refused(tmp_path: Path, sources: Sources) -> None:
    folder = collect(OCTOBER, tmp_path / "out", sources, now=lambda: NOW)
    status = folder / "backups/status/01-db1.json"
    original = status.read_bytes()
    status.write_bytes(original.replace(b"ab12", b"ab13"))  # same size, one character changed
    with pytest.raises(InputError, match=r"01-db1\.json: SHA-256 .* differs from the manifest"):
        load_collected(folder)
    status.write_bytes(original)
    (folder / "audit" / "db9.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match=r"audit/db9\.json: not in the manifest"):
        load_collected(folder)
    (folder / "audit" / "db9.json").unlink()
    (folder / "incidents.json").unlink()
    with pytest.raises(InputError, match=r"incidents\.json: listed in the manifest but missing"):
        load_collected(folder)


def test_a_failing_source_leaves_no_folder(tmp_path: Path, sources: Sources) -> None:
    out = tmp_path / "out"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    bad = Sources(register=sources.register, backup_status=sources.backup_status, prometheus=down)
    with pytest.raises(InputError, match=r"Prometheus http://127\.0\.0\.1:\d+ query_range .* cannot reach"):
        collect(OCTOBER, out, bad)
    missing = Sources(register=sources.register, backup_status=[("db1", tmp_path / "nope.json")])
    with pytest.raises(InputError, match=r"--backup-status .*nope\.json: file not found"):
        collect(OCTOBER, out, missing)
    assert list(out.iterdir()) == []  # neither the folder nor a temp folder


def test_an_existing_month_is_never_replaced(tmp_path: Path, sources: Sources) -> None:
    folder = collect(OCTOBER, tmp_path / "out", Sources(drills=sources.drills), now=lambda: NOW)
    before = (folder / "manifest.json").read_bytes()
    with pytest.raises(InputError, match="2026-10: already collected"):
        collect(OCTOBER, tmp_path / "out", sources)
    assert (folder / "manifest.json").read_bytes() == before


def test_prometheus_errors_are_one_clear_line(prom: str) -> None:
    with pytest.raises(InputError, match=r"query_range 'sum\(': HTTP 400: bad_data: "):
        prometheus.query_range(prom, "sum(", OCTOBER.start, OCTOBER.end, 86400)
    with pytest.raises(InputError, match="not an http"):
        prometheus.query_range("mon1:9090", "up", OCTOBER.start, OCTOBER.end, 86400)
    with pytest.raises(InputError, match=r"x: data\.resultType must be \"matrix\""):
        prometheus.parse_matrix({"status": "success", "data": {"resultType": "vector", "result": []}}, "x")
    with pytest.raises(InputError, match=r"x: data\.result\[0\]\.values\[0\]: sample value 'many' is not a number"):
        prometheus.parse_matrix({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1.0, "many"]]}]}}, "x")


def test_cli(tmp_path: Path, sources: Sources, capsys: pytest.CaptureFixture[str]) -> None:
    status = sources.backup_status[0][1]
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "out"),
                     "--backup-status", f"db1={status}", "--drill", str(sources.drills[0][1]),
                     "--register", str(sources.register)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "2026-10")
    hosts = {e["path"]: e.get("host") for e in json.loads((tmp_path / "out/2026-10/manifest.json").read_bytes())
             ["files"]}
    # --drill FILE without HOST=: the file name is the host
    assert hosts == {"incidents.json": None, "backups/status/01-db1.json": "db1",
                     "backups/drills/01-pg-drill.json": "pg-drill"}
    assert cli.main(["report", "collect", "--month", "2026-13", "--out", str(tmp_path / "o2"),
                     "--register", str(sources.register)]) == 2
    err = capsys.readouterr().err
    assert err == "provsec: error: --month: '2026-13' is not a month YYYY-MM (e.g. 2026-10)\n"
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "o3"),
                     "--register", str(tmp_path / "none.sqlite")]) == 2
    assert "none.sqlite: no incident register here" in capsys.readouterr().err
    assert not (tmp_path / "o3" / "2026-10").exists()


def test_second_site_copy_records_are_collected_and_read_back(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """--backup-copy: the backup site's records (<copy state_dir>/NAME.json, or `backup copy --json`'s list); each
    names its copy, the client host. A malformed one is one error line naming it, and nothing is left."""
    one = {"copy": "db1", "state": "ok", "reason": "2 snapshot(s)", "snapshots": 2, "duration_s": 3.0,
           "started_at": "2026-10-05T20:00:00.000Z", "finished_at": "2026-10-05T20:01:00.000Z",
           "last_success_at": "2026-10-05T20:01:00.000Z"}
    (tmp_path / "db1.json").write_text(json.dumps(one), encoding="utf-8")
    (tmp_path / "all.json").write_text(json.dumps([{**one, "copy": "web1"}, one]), encoding="utf-8")
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "out"),
                     "--backup-copy", str(tmp_path / "db1.json"), str(tmp_path / "all.json")]) == 0
    entries = json.loads((tmp_path / "out/2026-10/manifest.json").read_bytes())["files"]
    assert [(e["path"], e["kind"], e.get("host")) for e in entries] == [
        ("backups/copies/01-db1.json", "backup_copy", "db1"), ("backups/copies/02-copies.json", "backup_copy", None)]
    data = load_collected(tmp_path / "out" / "2026-10")
    assert [(c.host, c.state, c.id) for c in data.copies] == [
        ("db1", "ok", "copy:db1@2026-10-05T20:01:00.000000+00:00"),
        ("web1", "ok", "copy:web1@2026-10-05T20:01:00.000000+00:00"),
        ("db1", "ok", "copy:db1@2026-10-05T20:01:00.000000+00:00")]
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({**one, "started_at": None}), encoding="utf-8")
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "o2"),
                     "--backup-copy", str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err == (f"provsec: error: --backup-copy {tmp_path / 'bad.json'}.started_at: None is "
                                       "not an ISO 8601 time with an offset\n")
    assert not (tmp_path / "o2" / "2026-10").exists()


def test_month_bounds_are_local() -> None:
    # Asia/Ho_Chi_Minh is UTC+7 all year: October runs from 30/9 17:00 UTC to 31/10 17:00 UTC
    assert (OCTOBER.start, OCTOBER.end) == (datetime(2026, 9, 30, 17, tzinfo=UTC), datetime(2026, 10, 31, 17,
                                                                                             tzinfo=UTC))
    assert (str(Month.parse("2026-01").previous), str(Month.parse("2026-12").next)) == ("2025-12", "2027-01")
    assert len(Month.parse("2028-02").days()) == 29
    assert OCTOBER.end - OCTOBER.start == timedelta(days=31)
