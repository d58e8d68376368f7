"""provsec.reports.scans and `report collect --scans/--scan-baseline`: drift episodes over a month of stored scans.

October 2026 in Asia/Ho_Chi_Minh is [2026-09-30T17:00Z, 2026-10-31T17:00Z). The scans are written as the scan store
holds them (ScanResult JSON, format provsec-scan/1) from dicts built here; every expected episode is worked out by
hand in the comments, never by calling the code under test.

Hosts: web1 10.0.0.11, db1 10.0.0.21, new1 10.0.0.31 (inventory names, as the scanner records them), and the
address 10.0.0.41 (listed in the baseline by address, reviewed with nothing open, never answering). Baseline:
web1 22 and 443 approved 1/9, 8080 approved 12/10 03:00Z; db1 22 approved 1/9; new1 9100 approved 20/10
(so new1 was not reviewed before 20/10); 10.0.0.41: [] (reviewed all along)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from provsec import cli
from provsec.errors import InputError
from provsec.reports.collect import Sources, collect, load_collected
from provsec.reports.month import Month
from provsec.reports.scans import Episode, ScanData, baseline_as_of, parse_baseline, parse_scan, scan_drift

OCTOBER = Month.parse("2026-10")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
ADDR = {"web1": "10.0.0.11", "db1": "10.0.0.21", "new1": "10.0.0.31"}
PORTS = "22,80,443,3306,8080,9100"
BASELINE = """\
# reviewed
---
hosts:
  web1:
    - {port: 22, proto: tcp, reason: "SSH", approved_by: "An", approved_at: "2026-09-01T00:00:00Z"}
    - {port: 443, proto: tcp, reason: "HTTPS", approved_by: "Bình", approved_at: "2026-09-01T00:00:00Z"}
    - {port: 8080, proto: tcp, reason: "API mới", approved_by: "Bình", approved_at: "2026-10-12T03:00:00Z"}
  db1:
    - {port: 22, proto: tcp, reason: "SSH", approved_by: "An", approved_at: "2026-09-01T00:00:00Z"}
  new1:
    - {port: 9100, proto: tcp, reason: "node_exporter", approved_by: "An", approved_at: "2026-10-20T00:00:00Z"}
  10.0.0.41: []
"""


def host(name: str, status: str = "up", **ports: str) -> dict[str, Any]:
    """host("web1", p22="open") → a host of a stored scan; ports named p<number>, TCP."""
    return {"address": ADDR[name], "name": name, "status": status,
            "ports": [{"port": int(p[1:]), "proto": "tcp", "state": state, "reason": "", "service": "",
                       "product": "", "version": ""} for p, state in ports.items()]}


def scan(started: str, hosts: list[dict[str, Any]], targets: list[str] | None = None,
         ports: str = PORTS) -> dict[str, Any]:
    return {"format": "provsec-scan/1", "started_at": started, "finished_at": started, "nmap_version": "7.93",
            "command": "nmap -sT", "targets": targets if targets is not None else [h["address"] for h in hosts],
            "ports_scanned": ports, "hosts": hosts}


def name(doc: dict[str, Any]) -> str:
    return "scan-" + str(doc["started_at"]).replace("-", "").replace(":", "") + ".json"


SCANS = [
    scan("2026-09-20T02:00:00Z", [host("db1", p22="open", p3306="closed")]),  # older: not collected
    # S0, the last before October: db1 3306 open, not approved → open on the 1st (carried)
    scan("2026-09-28T02:00:00Z", [host("web1", p22="open", p443="open"), host("db1", p22="open", p3306="open")]),
    # S1 1/10: web1 8080 open, approved only on 12/10 → found; db1 3306 closed → the carried one resolved, closed
    scan("2026-10-01T02:00:00Z", [host("web1", p22="open", p443="open", p8080="open"),
                                  host("db1", p22="open", p3306="closed")]),
    # S2 5/10: web1 443 filtered → approved-not-open; db1 down → host-disappeared; new1 up, not reviewed yet →
    # host-appeared, 9100 and 80 unexpected-open; 10.0.0.41 in the scanned range but not reported → disappeared
    scan("2026-10-05T02:00:00Z", [host("web1", p22="open", p443="filtered", p8080="open"), host("db1", "down"),
                                  host("new1", p80="open", p9100="open")],
         targets=["10.0.0.11", "10.0.0.21", "10.0.0.31", "10.0.0.40/29"]),
    # S3 15/10: 8080 approved since 12/10 → resolved, approved; 443 open → reopened; db1 up → host back;
    # new1 80 closed → closed; new1 9100 still open and new1 still not reviewed: stay open
    scan("2026-10-15T02:00:00Z", [host("web1", p22="open", p443="open", p8080="open"),
                                  host("db1", p22="open", p3306="closed"), host("new1", p80="closed", p9100="open")]),
    # S4 25/10: web1 only, ports 22 and 443: new1 and 10.0.0.41 not looked at, their episodes stay open
    scan("2026-10-25T02:00:00Z", [host("web1", p22="open", p443="open")], ports="22,443"),
    # S5 31/10 23:00 local: new1 reviewed since 20/10 with 9100 → host-appeared and 9100 resolved, approved;
    # db1 3306 open again → a new episode, open at the month's end
    scan("2026-10-31T16:00:00Z", [host("web1", p22="open", p443="open", p8080="open"),
                                  host("db1", p22="open", p3306="open"), host("new1", p9100="open")]),
    # S6 1/11 01:00 local: November; db1 3306 closed, but after the month
    scan("2026-10-31T18:00:00Z", [host("db1", p22="open", p3306="closed")]),
]
S = [name(d) for d in SCANS]


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def at(i: int | None) -> str | None:
    """The started_at of SCANS[i] (an expected found or resolved time); None: not resolved."""
    return None if i is None else str(SCANS[i]["started_at"])


def row(e: Episode) -> tuple[Any, ...]:
    def iso(m: datetime | None) -> str | None:
        return None if m is None else m.strftime("%Y-%m-%dT%H:%M:%SZ")

    return (e.host, e.port, e.kind, iso(e.found_at), iso(e.resolved_at), e.resolution)


# in the order found, then host ("10.…" before letters), port (host findings first), kind
EXPECTED = [
    ("web1", 8080, "unexpected-open", at(2), at(4), "approved"),
    ("10.0.0.41", None, "host-disappeared", at(3), None, None),
    ("db1", None, "host-disappeared", at(3), at(4), "host-back"),
    ("new1", None, "host-appeared", at(3), at(6), "approved"),
    ("new1", 80, "unexpected-open", at(3), at(4), "closed"),
    ("new1", 9100, "unexpected-open", at(3), at(6), "approved"),
    ("web1", 443, "approved-not-open", at(3), at(4), "reopened"),
    ("db1", 3306, "unexpected-open", at(6), None, None),
]


def data(docs: list[dict[str, Any]]) -> ScanData:
    scans = tuple(parse_scan(d, name(d), name(d)) for d in docs)
    return ScanData(scans, parse_baseline(BASELINE.encode(), Path("scan_baseline.yml"), scans))


def test_episodes_found_and_resolved_in_the_month() -> None:
    drift = scan_drift(data(SCANS[1:]), OCTOBER)  # S6 is there too: after the month, it resolves nothing
    assert [row(e) for e in drift.episodes] == EXPECTED
    # 8 found; resolved: web1 8080, db1, new1, new1 80, new1 9100, web1 443 = 6; open: 10.0.0.41, db1 3306 = 2
    assert (drift.found.value, drift.resolved.value, drift.unresolved.value) == (8, 6, 2)
    assert drift.scans.value == 5  # S1–S5
    assert drift.scans.sources == tuple(f"scan:{n}" for n in S[2:7])
    assert [row(e) for e in drift.carried] == [("db1", 3306, "unexpected-open", at(1), at(2), "closed")]
    assert drift.unresolved.sources == ("scan-drift:10.0.0.41/host-disappeared@" + S[3],
                                        "scan-drift:db1:3306/tcp/unexpected-open@" + S[6])
    assert [e.port_label for e in drift.episodes[:2]] == ["8080/tcp", ""]


def test_a_scan_that_did_not_look_resolves_nothing() -> None:
    # S4 scans only web1's 22 and 443; had it scanned new1 with nothing open, 9100 would be closed there
    drift = scan_drift(data(SCANS[1:6]), OCTOBER)  # up to S4: the new1 episodes and 10.0.0.41 are still open
    open_ = [(e.host, e.port, e.kind) for e in drift.episodes if e.resolved_at is None]
    assert open_ == [("10.0.0.41", None, "host-disappeared"), ("new1", None, "host-appeared"),
                     ("new1", 9100, "unexpected-open")]


def test_a_port_counts_as_approved_from_its_approved_at() -> None:
    base = parse_baseline(BASELINE.encode(), Path("b.yml"), [parse_scan(SCANS[1], S[1], S[1])])
    # names resolved through the scan: web1 and db1 are in S0; new1 is not, so it has no address there
    assert base.addresses == {"web1": "10.0.0.11", "db1": "10.0.0.21", "10.0.0.41": "10.0.0.41"}
    before = baseline_as_of(base, t("2026-10-12T02:59:59"))
    after = baseline_as_of(base, t("2026-10-12T03:00:00"))  # approved_at ≤ started_at: approved
    assert [a.port for a in before.hosts["web1"]] == [22, 443]
    assert [a.port for a in after.hosts["web1"]] == [22, 443, 8080]
    # new1's only port is approved on 20/10: before that new1 was not reviewed; [] is reviewed all along
    assert "new1" not in after.hosts and after.hosts["10.0.0.41"] == ()
    assert baseline_as_of(base, t("2026-10-20T00:00:00")).hosts["new1"][0].port == 9100


def test_reports_do_not_import_python_nmap() -> None:
    probe = ("import sys, provsec.reports.collect, provsec.reports.scans\n"
             "print(sorted(m for m in sys.modules if 'nmap' in m or m == 'paramiko'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# -- collect -----------------------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    root.mkdir()
    for doc in SCANS:
        (root / name(doc)).write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    (root / "metrics.json").write_text("{}", encoding="utf-8")  # the store's metrics state: not a scan
    (tmp_path / "scan_baseline.yml").write_text(BASELINE, encoding="utf-8")
    return root


def test_collect_copies_the_months_scans_and_the_baseline(tmp_path: Path, store: Path) -> None:
    baseline = tmp_path / "scan_baseline.yml"
    folder = collect(OCTOBER, tmp_path / "out", Sources(scans=store, scan_baseline=baseline), now=lambda: NOW)
    files = {e["path"]: e for e in json.loads((folder / "manifest.json").read_bytes())["files"]}
    # S0 (the last before October) and S1–S5; not 20/9 (older) nor S6 (November)
    assert sorted(files) == sorted([f"scans/{n}" for n in S[1:7]] + ["scans/baseline.yml"])
    for rel, entry in files.items():
        source = store / rel.removeprefix("scans/") if rel != "scans/baseline.yml" else baseline
        assert (folder / rel).read_bytes() == source.read_bytes()  # byte for byte
        assert (entry["sha256"], entry["source"]) == (hashlib.sha256(source.read_bytes()).hexdigest(), str(source))
        assert entry["kind"] == ("scan_baseline" if rel.endswith(".yml") else "scan")
    back = load_collected(folder)
    assert back.scans is not None and [s.name for s in back.scans.scans] == S[1:7]
    assert [row(e) for e in scan_drift(back.scans, OCTOBER).episodes] == EXPECTED


def test_without_scans_the_folder_has_no_scan_data(tmp_path: Path, store: Path) -> None:
    status = tmp_path / "db1.json"
    status.write_text("[]", encoding="utf-8")
    folder = collect(OCTOBER, tmp_path / "out", Sources(backup_status=[("db1", status)]), now=lambda: NOW)
    assert load_collected(folder).scans is None  # "no scan data", not zero drift


@pytest.mark.parametrize(("bad", "message"), [
    ("scan", r"--scans .*scan-20261005T020000Z\.json: malformed provsec scan \(KeyError: 'hosts'\)"),
    ("json", r"--scans .*scan-20261005T020000Z\.json: not JSON"),
    ("stamp", r"--scans .*scan-20261005T020000Z\.json: started_at 2026-10-05T03:00:00Z is not the time in the file"),
    ("baseline", r"--scan-baseline .*scan_baseline\.yml: hosts\.web1\[0\]: missing approved_at"),
    ("yaml", r"--scan-baseline .*scan_baseline\.yml: line 3 not valid YAML"),  # the end of input
    ("alone", r"--scans and --scan-baseline: give both"),
    ("empty", r"--scans .*: no scan started in 2026-10"),
])
def test_a_malformed_scan_or_baseline_is_one_error_and_leaves_nothing(tmp_path: Path, store: Path, bad: str,
                                                                      message: str) -> None:
    target, baseline = store / S[3], tmp_path / "scan_baseline.yml"
    sources = Sources(scans=store, scan_baseline=baseline)
    if bad == "scan":
        target.write_text(json.dumps({k: v for k, v in SCANS[3].items() if k != "hosts"}), encoding="utf-8")
    elif bad == "json":
        target.write_text("{", encoding="utf-8")
    elif bad == "stamp":
        target.write_text(json.dumps({**SCANS[3], "started_at": "2026-10-05T03:00:00Z"}), encoding="utf-8")
    elif bad == "baseline":
        baseline.write_text(BASELINE.replace(', approved_at: "2026-09-01T00:00:00Z"', "", 1), encoding="utf-8")
    elif bad == "yaml":
        baseline.write_text("hosts:\n  web1: [\n", encoding="utf-8")
    elif bad == "alone":
        sources = Sources(scans=store)
    else:
        sources = Sources(scans=store, scan_baseline=baseline)
        for n in S[2:]:
            (store / n).unlink()
    with pytest.raises(InputError, match=message):
        collect(OCTOBER, tmp_path / "out", sources)
    assert list((tmp_path / "out").iterdir()) == []  # neither the folder nor a temp folder


def test_cli_options(tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "out"), "--scans",
                     str(store), "--scan-baseline", str(tmp_path / "scan_baseline.yml")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "2026-10")
    assert (tmp_path / "out" / "2026-10" / "scans" / "baseline.yml").is_file()
    assert cli.main(["report", "collect", "--month", "2026-10", "--out", str(tmp_path / "o2"), "--scans",
                     str(tmp_path / "nope"), "--scan-baseline", str(tmp_path / "scan_baseline.yml")]) == 2
    assert "--scans " + str(tmp_path / "nope") + ": directory not found" in capsys.readouterr().err
