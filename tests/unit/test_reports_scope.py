"""Reports for one agency and/or one security level (scope.py): `report collect --inventory` writes inventory.json
(hashed in the manifest), the agency is found by code or by its NFC-normalised name, and every kind of data is
restricted to the hosts of the scope. The month below is collected from a real register, backup and drill files,
two monthly audit runs, a real Prometheus (backfilled) and two stored scans, with the inventory
tests/unit/data/report_inventory:

    db1   agency 000.00.15.H48 (Sở TT&TT)   level 3 (ioffice 3, giam-sat 2)   198.18.0.21
    bak1  agency 000.00.15.H48 (Sở TT&TT)   level 2 (giam-sat 2)              198.18.0.12
    web1  agency 000.00.31.H48 (UBND Tuy Hòa) level 3 (mot-cua 3)             198.18.1.11

and agency 000.00.07.H48 (Sở Tài chính) operates no host. Every expected count is worked out by hand here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import papermill
import pytest
from promdata import openmetrics, prometheus_with

from provsec import cli
from provsec.errors import InputError
from provsec.notify.register import Register
from provsec.reports import scope
from provsec.reports.collect import Sources, collect, load_collected
from provsec.reports.incidents import daily_events
from provsec.reports.month import Month
from provsec.reports.notebook import open_month
from provsec.reports.prometheus import Series
from provsec.reports.scans import scan_drift

REPO = Path(__file__).resolve().parents[2]
INVENTORY = Path(__file__).parent / "data" / "report_inventory"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
OCTOBER = Month.parse("2026-10")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
STTTT, TUYHOA, STC = "000.00.15.H48", "000.00.31.H48", "000.00.07.H48"
TUYHOA_NAME = "Ủy ban nhân dân thành phố Tuy Hòa"


def webhook(group: str, instances: list[str]) -> dict[str, Any]:
    """One Alertmanager notification with one alert per instance (host:port, or address:port)."""
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": "firing", "receiver": "oncall",
            "groupLabels": {"alertname": "ProvsecHostDown"},
            "commonLabels": {"alertname": "ProvsecHostDown", "severity": "critical"},
            "commonAnnotations": {"summary": "Máy chủ không phản hồi"}, "externalURL": "http://mon1:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "ProvsecHostDown", "instance": instance},
                        "annotations": {}, "startsAt": "2026-10-05T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": f"fp-{group}-{k}"} for k, instance in enumerate(instances)]}


def status(path: Path, finished: str) -> tuple[str, Path]:
    path.write_text(json.dumps([{"job": "pg", "kind": "database", "state": "ok", "reason": "", "snapshot": "s1",
                                 "finished_at": finished, "last_success_at": finished}]), encoding="utf-8")
    return path.stem.split("-")[0], path


def drill(path: Path) -> tuple[str, Path]:
    path.write_text(json.dumps({"job": "pg", "state": "ok", "reason": "", "snapshot": "s1", "rto_s": 60.0,
                                "rpo_s": 10.0, "finished_at": "2026-10-11T03:00:00.000Z"}), encoding="utf-8")
    return path.stem.split("-")[0], path


def audit_run(root: Path, stamp: str, hosts: dict[str, list[str]]) -> None:
    results = root / stamp / "results"
    results.mkdir(parents=True)
    for host, statuses in hosts.items():
        rows = [{"id": f"PS-X-{k:02d}", "title": {"vi": "x", "en": "x"}, "status": s, "reason": "", "tcvn": {}}
                for k, s in enumerate(statuses)]
        (results / f"{host}.json").write_text(json.dumps({"host": host, "evaluated_at": "2026-10-01T00:00:00Z",
                                                          "results": rows}), encoding="utf-8")
    (results / "summary.json").write_text("{}", encoding="utf-8")


def store_scan(store: Path, started: str, targets: list[str], hosts: list[tuple[str, str, dict[int, str]]]) -> None:
    doc = {"format": "provsec-scan/1", "started_at": started, "finished_at": started, "nmap_version": "7.93",
           "command": "nmap -sT", "targets": targets, "ports_scanned": "22,443,8080,8443",
           "hosts": [{"address": address, "name": name, "status": "up", "ports": [
               {"port": port, "proto": "tcp", "state": state} for port, state in ports.items()]}
               for name, address, ports in hosts]}
    (store / f"scan-{started.replace('-', '').replace(':', '')}.json").write_text(json.dumps(doc), encoding="utf-8")


BASELINE = """hosts:
  db1:
    - {port: 22, proto: tcp, reason: "SSH", approved_by: "An", approved_at: "2026-09-01T00:00:00Z"}
  web1:
    - {port: 443, proto: tcp, reason: "HTTPS", approved_by: "Bình", approved_at: "2026-09-01T00:00:00Z"}
"""


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ssh_failed rises by 5 at noon on 3/10 on db1 and web1, and by 7 on bak1, which reports as its address."""
    start = datetime(2026, 10, 1, tzinfo=VN).timestamp()
    series = []
    for instance, step in (("db1:9847", 5.0), ("web1:9847", 5.0), ("198.18.0.12:9847", 7.0)):
        samples = [(start + 3600 * k, step if k >= 2 * 24 + 12 else 0.0) for k in range(31 * 24 + 1)]
        series.append(({"event": "ssh_failed", "method": "password", "user": "other", "instance": instance},
                       samples))
    with prometheus_with(openmetrics("provsec_auth_events", "counter", series),
                         tmp_path_factory.mktemp("prometheus")) as url:
        yield url


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, prom: str) -> Path:
    root = tmp_path_factory.mktemp("scope")
    reg = Register(root / "incidents.sqlite")
    # I1 db1; I2 web1; I3 db1 and web1 (two alerts); I4 bak1, named by its address
    for day, (group, instances) in enumerate((("I1", ["db1:9100"]), ("I2", ["web1:9100"]),
                                              ("I3", ["db1:9100", "web1:9100"]), ("I4", ["198.18.0.12:9100"])), 5):
        reg.record_webhook(webhook(group, instances), now=datetime(2026, 10, day, 10, tzinfo=VN))
    runs = [status(root / "db1-a.json", "2026-10-02T19:00:00.000Z"), status(root / "db1-b.json",
            "2026-10-03T19:00:00.000Z"), status(root / "web1-a.json", "2026-10-02T19:00:00.000Z")]
    drills = [drill(root / "db1-drill.json"), drill(root / "web1-drill.json")]
    audits = root / "audit-results"
    audit_run(audits, "20260920T020000Z", {"db1": ["fail", "fail"], "web1": ["fail", "fail", "fail"]})
    audit_run(audits, "20261030T020000Z", {"db1": ["pass", "pass"], "web1": ["pass", "fail", "fail"],
                                           "bak1": ["pass"]})
    scans = root / "scans"
    scans.mkdir()
    # 5/10: the data centre and the agency range; db1 has 8080 open and web1 8443, neither approved
    store_scan(scans, "2026-10-05T02:00:00Z", ["198.18.0.0/24", "198.18.1.0/24"], [
        ("db1", "198.18.0.21", {22: "open", 8080: "open"}), ("web1", "198.18.1.11", {443: "open", 8443: "open"})])
    # 20/10: web1 only; 8443 closed again
    store_scan(scans, "2026-10-20T02:00:00Z", ["198.18.1.11"], [("web1", "198.18.1.11", {443: "open",
                                                                                        8443: "closed"})])
    (root / "scan_baseline.yml").write_text(BASELINE, encoding="utf-8")
    out = root / "data"
    collect(OCTOBER.previous, out, Sources(audit_results=audits), now=lambda: NOW)  # no inventory in September
    collect(OCTOBER, out, Sources(register=root / "incidents.sqlite", backup_status=runs, drills=drills,
                                  audit_results=audits, prometheus=prom, scans=scans,
                                  scan_baseline=root / "scan_baseline.yml", inventory=INVENTORY), now=lambda: NOW)
    return out


def test_collect_writes_the_derived_inventory_listed_in_the_manifest(data_dir: Path) -> None:
    folder = data_dir / "2026-10"
    entry = next(e for e in json.loads((folder / "manifest.json").read_bytes())["files"]
                 if e["path"] == "inventory.json")
    assert (entry["kind"], entry["source"]) == ("inventory", str(INVENTORY))
    doc = json.loads((folder / "inventory.json").read_bytes())
    assert [(a["code"], a["name"]) for a in doc["agencies"]] == [
        (STTTT, "Sở Thông tin và Truyền thông tỉnh Phú Yên"), (TUYHOA, TUYHOA_NAME), (STC, "Sở Tài chính tỉnh Phú Yên")]
    hosts = {h["name"]: (h["agency"], h["level"], [(s["name"], s["level"]) for s in h["systems"]], h["addresses"])
             for h in doc["hosts"]}
    assert hosts == {
        "db1": (STTTT, 3, [("Hệ thống quản lý văn bản và điều hành", 3), ("Hệ thống giám sát an toàn thông tin", 2)],
                ["198.18.0.21"]),
        "bak1": (STTTT, 2, [("Hệ thống giám sát an toàn thông tin", 2)], ["198.18.0.12"]),
        "web1": (TUYHOA, 3, [("Hệ thống một cửa điện tử thành phố Tuy Hòa", 3)], ["198.18.1.11"])}
    assert "quantri" not in (folder / "inventory.json").read_text(encoding="utf-8")  # no Ansible variable copied
    data = load_collected(folder)
    assert data.inventory is not None and data.inventory.source == str(INVENTORY)


def test_a_tampered_inventory_is_refused(tmp_path: Path) -> None:
    folder = collect(OCTOBER, tmp_path / "out", Sources(inventory=INVENTORY))
    path = folder / "inventory.json"
    text = path.read_text(encoding="utf-8")
    assert '"agency": "000.00.31.H48"' in text
    path.write_text(text.replace('"agency": "000.00.31.H48"', '"agency": "000.00.15.H48"'), encoding="utf-8")
    with pytest.raises(InputError, match=r"inventory\.json: SHA-256 .* differs from the manifest"):
        load_collected(folder)


def test_a_bad_inventory_leaves_no_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--inventory .*nowhere: not an inventory directory"):
        collect(OCTOBER, tmp_path / "out", Sources(inventory=tmp_path / "nowhere"))
    (tmp_path / "inv").mkdir()
    with pytest.raises(InputError, match=r"not a valid inventory"):
        collect(OCTOBER, tmp_path / "out", Sources(inventory=tmp_path / "inv"))
    assert list((tmp_path / "out").iterdir()) == []


def test_the_agency_matches_its_code_or_its_name_in_any_unicode_form_and_case(data_dir: Path) -> None:
    inventory = load_collected(data_dir / "2026-10").inventory
    nfd = unicodedata.normalize("NFD", TUYHOA_NAME)
    assert nfd != TUYHOA_NAME  # the test would prove nothing otherwise (ủ, â, ố, ò decompose)
    for given in (TUYHOA, nfd, TUYHOA_NAME, f"  {TUYHOA_NAME.upper()} ", unicodedata.normalize("NFD", TUYHOA_NAME
                                                                                                .lower())):
        chosen = scope.resolve(inventory, given)
        assert chosen is not None and chosen.agency is not None, given
        assert (chosen.agency.code, chosen.hosts) == (TUYHOA, frozenset({"web1"})), given
    assert scope.resolve(inventory, "all", "all") is None


def test_unknown_agency_bad_level_and_no_inventory_are_errors_naming_the_parameter(data_dir: Path) -> None:
    inventory = load_collected(data_dir / "2026-10").inventory
    with pytest.raises(InputError) as err:
        scope.resolve(inventory, "Sở Y tế")
    assert str(err.value) == (
        "parameter agency: 'Sở Y tế' is neither the code nor the name of an agency of the collected inventory "
        f"({INVENTORY}); known codes: {STTTT} (Sở Thông tin và Truyền thông tỉnh Phú Yên), {TUYHOA} "
        f"({TUYHOA_NAME}), {STC} (Sở Tài chính tỉnh Phú Yên)")
    with pytest.raises(InputError, match=r"^parameter agency: '000\.00\.31' is neither"):
        scope.resolve(inventory, "000.00.31")  # a code matches whole, never a prefix
    for level in ("6", "0", "cao", ""):
        with pytest.raises(InputError, match=r"^parameter security_level: .* is not all or a level 1, 2, 3, 4, 5"):
            scope.resolve(inventory, "all", level)
    with pytest.raises(InputError, match=r"^parameter agency: the collected folder has no inventory.*"
                                         r"provsec report collect --inventory DIR"):
        open_month(str(data_dir), "2026-09", TUYHOA)
    with pytest.raises(InputError, match=r"^parameter security_level: the collected folder has no inventory"):
        open_month(str(data_dir), "2026-09", security_level="2")


# (agency, level) → the scope's hosts, and what each kind of data keeps. Incidents: I1 db1, I2 web1, I3 db1+web1,
# I4 bak1 (by address). Backup runs: db1 2, web1 1; drills db1, web1. Audit in October: db1 2 results, web1 3,
# bak1 1; in September db1 2, web1 3. SSH failures in October: db1 5, web1 5, bak1 7. Scans (5/10: db1 and web1;
# 20/10: web1 only): db1 8080 found and never looked at again; web1 8443 found and closed on 20/10.
CASES = [
    # agency, level, incidents, alerts, runs, drills, audit, previous, ssh per host, scans, found, resolved
    ("all", "all", ["I1", "I2", "I3", "I4"], 5, 3, 2, 6, 5, {"db1": 5.0, "web1": 5.0, "198.18.0.12": 7.0}, 2, 2, 1),
    (STTTT, "all", ["I1", "I3", "I4"], 3, 2, 1, 3, 2, {"db1": 5.0, "198.18.0.12": 7.0}, 1, 1, 0),
    (TUYHOA_NAME, "all", ["I2", "I3"], 2, 1, 1, 3, 3, {"web1": 5.0}, 2, 1, 1),
    ("all", "3", ["I1", "I2", "I3"], 4, 3, 2, 5, 5, {"db1": 5.0, "web1": 5.0}, 2, 2, 1),
    ("all", "2", ["I4"], 1, 0, 0, 1, 0, {"198.18.0.12": 7.0}, 1, 0, 0),
    (STTTT, "3", ["I1", "I3"], 2, 2, 1, 2, 2, {"db1": 5.0}, 1, 1, 0),
    (STC, "all", [], 0, 0, 0, 0, 0, {}, 0, 0, 0),  # an agency operating no host: nothing, not everything
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0][:14]}-{c[1]}" for c in CASES])
def test_every_kind_of_data_is_restricted_to_the_scope(data_dir: Path, case: tuple[Any, ...]) -> None:
    agency, level, incidents, alerts, runs, drills, audit, previous, ssh, scans, found, resolved = case
    data, _ = open_month(str(data_dir), "2026-10", agency, security_level=level)
    assert data.incidents is not None
    assert [r.incident.group_key for r in data.incidents] == incidents
    assert sum(len(r.alerts) for r in data.incidents) == alerts
    assert (len(data.backup_runs), len(data.drills)) == (runs, drills)
    assert data.audit is not None and len(data.audit) == audit
    before = data.previous_audit()
    assert before is not None and len(before) == previous
    per_host = daily_events(data.prometheus["ssh_failures"], OCTOBER)
    assert {host: sum(days.values()) for host, days in per_host.items()} == ssh
    assert data.scans is not None
    drift = scan_drift(data.scans, OCTOBER)
    assert (drift.scans.value, drift.found.value, drift.resolved.value) == (scans, found, resolved)


def test_scans_and_baseline_keep_only_the_scope_hosts(data_dir: Path) -> None:
    data, _ = open_month(str(data_dir), "2026-10", STTTT)
    assert data.scans is not None and data.scope is not None
    assert [[h.name for h in s.result.hosts] for s in data.scans.scans] == [["db1"]]  # 20/10 never looked at db1
    assert set(data.scans.baseline.hosts) == {"db1"}
    assert data.scope.caption() == "Phạm vi: Sở Thông tin và Truyền thông tỉnh Phú Yên (mã 000.00.15.H48)"


def test_series_match_on_host_label_else_instance() -> None:
    chosen = scope.Scope(None, 3, frozenset({"db1"}), frozenset({"198.18.0.21"}))
    series = [Series({"host": "db1", "instance": "10.9.9.9:9100"}, ()), Series({"instance": "db1:9100"}, ()),
              Series({"instance": "198.18.0.21:9100"}, ()), Series({"instance": "web1:9100"}, ()),
              Series({"host": "web1", "instance": "db1:9100"}, ())]
    assert scope.series(series, chosen) == series[:3]  # the host label wins over the instance


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel imports provsec from this work tree, as the test process does."""
    paths = [str(REPO / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def shown(path: Path) -> str:
    out = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            out.append("".join(data.get("text/markdown") or data.get("text/plain") or o.get("text") or ""))
    return "\n".join(out)


def test_the_incidents_notebook_counts_only_the_agency(tmp_path: Path, data_dir: Path, kernel_env: None) -> None:
    notebook = REPO / "notebooks" / "monthly_incidents.ipynb"
    for name, parameters in (("all", {}), ("tuyhoa", {"agency": unicodedata.normalize("NFD", TUYHOA_NAME)}),
                             ("level2", {"security_level": "2"})):
        papermill.execute_notebook(str(notebook), str(tmp_path / f"{name}.ipynb"), kernel_name="python3",
                                   parameters={"month": "2026-10", "data_dir": str(data_dir), **parameters},
                                   cwd=str(tmp_path), progress_bar=False)
    # the province: I1–I4; Tuy Hòa (web1): I2 and I3; level 2 (bak1): I4
    assert "| Số sự cố | 4 |" in shown(tmp_path / "all.ipynb")
    tuyhoa = shown(tmp_path / "tuyhoa.ipynb")
    assert "| Số sự cố | 2 |" in tuyhoa and "| web1 | 2 |" in tuyhoa and "db1" not in tuyhoa
    level2 = shown(tmp_path / "level2.ipynb")
    assert "| Số sự cố | 1 |" in level2 and "| 198.18.0.12 | 1 |" in level2


def test_report_monthly_for_one_agency_and_level(tmp_path: Path, data_dir: Path, kernel_env: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    args = ["report", "monthly", "--month", "2026-10", "--data", str(data_dir / "2026-10"), "--out", str(out),
            "--date", "2026-11-05"]
    assert cli.main([*args, "--agency", "Sở Y tế"]) == 2  # refused before any kernel starts
    assert "provsec: error: --agency: 'Sở Y tế' is neither the code nor the name" in capsys.readouterr().err
    assert cli.main([*args, "--security-level", "6"]) == 2
    assert "--security-level: '6' is not all or a level" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main([*args, "--agency", STTTT, "--security-level", "3"]) == 0
    page = (out / "2026-10" / "bao-cao-2026-10.html").read_text(encoding="utf-8")
    caption = "Phạm vi: Sở Thông tin và Truyền thông tỉnh Phú Yên (mã 000.00.15.H48); hệ thống thông tin cấp độ 3"
    assert f'<p class="scope">{caption}</p>' in page
    assert caption in (out / "2026-10" / "compliance.html").read_text(encoding="utf-8")
    # db1 only: I1 and I3 (the province has 4)
    assert re.search(r"<td>Số sự cố</td>\s*<td>2</td>", page), page
    pdf = subprocess.run(["pdftotext", str(out / "2026-10" / "bao-cao-2026-10.pdf"), "-"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert caption in " ".join(pdf.split())


def test_collect_cli_takes_the_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "out"),
                     "--inventory", str(INVENTORY)]) == 0
    manifest = json.loads((tmp_path / "out" / "2026-10" / "manifest.json").read_bytes())
    assert [(e["path"], e["kind"], e["source"]) for e in manifest["files"]] == [
        ("inventory.json", "inventory", str(INVENTORY))]
    capsys.readouterr()
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "o2"),
                     "--inventory", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"provsec: error: --inventory {tmp_path / 'none'}: not an inventory directory " \
        "(e.g. inventory/phuyen)\n"
