"""`provsec report monthly` end to end on a folder collected by collect() from a real register, backup status and
drill files and two monthly audit runs: the three notebooks run by papermill, HTML without code, and the PDF
checked with poppler (pdfinfo: A4; pdffonts: Liberation Serif embedded; pdftotext: the frame of Nghị định
30/2020 and the figures as text). Every figure is worked out by hand below. October 2026 in Asia/Ho_Chi_Minh is
[2026-09-30T17:00Z, 2026-10-31T17:00Z); the data were collected at NOW, after the month's end."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import papermill
import pytest

from provsec import cli
from provsec.errors import InputError
from provsec.notify.register import Register
from provsec.reports.collect import Sources, collect
from provsec.reports.document import (
    DocumentConfig,
    Frame,
    document_date,
    font_face_css,
    font_files,
    frame_html,
    write_pdf,
)
from provsec.reports.month import Month
from provsec.reports.monthly import monthly

REPO = Path(__file__).resolve().parents[2]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
MM = 72 / 25.4  # PDF points per millimetre


def webhook(group: str, host: str) -> dict[str, Any]:
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": "firing", "receiver": "oncall",
            "groupLabels": {"alertname": "ProvsecHostDown"},
            "commonLabels": {"alertname": "ProvsecHostDown", "severity": "critical"},
            "commonAnnotations": {"summary": "Máy chủ không phản hồi"}, "externalURL": "http://mon1:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "ProvsecHostDown", "instance": f"{host}:9100"},
                        "annotations": {}, "startsAt": "2026-10-05T02:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": f"fp-{group}"}]}


def status_row(state: str, finished: str, last_success: str, snapshot: str | None) -> list[dict[str, Any]]:
    """A file as `provsec backup status --json` prints it (one row per job, its last run)."""
    return [{"job": "pg", "kind": "database", "state": state, "reason": state, "snapshot": snapshot,
             "finished_at": finished, "started_at": finished, "duration_s": 60.0, "bytes_added": 1000,
             "last_success_at": last_success, "snapshots": 3}]


def store_scan(store: Path, started: str, ports: dict[int, str]) -> None:
    """One stored scan (scan store JSON) of web1 (10.0.0.11), TCP ports 22, 443 and 8080."""
    doc = {"format": "provsec-scan/1", "started_at": started, "finished_at": started, "nmap_version": "7.93",
           "command": "nmap -sT", "targets": ["10.0.0.11"], "ports_scanned": "22,443,8080",
           "hosts": [{"address": "10.0.0.11", "name": "web1", "status": "up", "ports": [
               {"port": port, "proto": "tcp", "state": state} for port, state in ports.items()]}]}
    stamp = started.replace("-", "").replace(":", "")
    (store / f"scan-{stamp}.json").write_text(json.dumps(doc), encoding="utf-8")


SCAN_BASELINE = """hosts:
  web1:
    - {port: 22, proto: tcp, reason: "SSH", approved_by: "An", approved_at: "2026-09-01T00:00:00Z"}
    - {port: 443, proto: tcp, reason: "HTTPS", approved_by: "Bình", approved_at: "2026-09-01T00:00:00Z"}
"""


def audit_run(root: Path, stamp: str, hosts: dict[str, dict[str, str]]) -> None:
    """One `provsec audit evaluate` run: RESULTS/<host>.json per host (and summary.json, which is not read)."""
    results = root / stamp / "results"
    results.mkdir(parents=True)
    for host, statuses in hosts.items():
        rows = [{"id": control, "title": {"vi": f"Biện pháp {control}", "en": control}, "status": status,
                 "reason": "exception until 2026-12-31: ứng dụng cũ" if status == "excepted" else "",
                 "tcvn": {"TCVN 11930:2017": ["8.1.2"] if control == "PS-SSH-02" else []}}
                for control, status in statuses.items()]
        doc = {"host": host, "evaluated_at": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T02:00:00Z", "results": rows}
        (results / f"{host}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (results / "summary.json").write_text("{}", encoding="utf-8")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monthly")
    reg = Register(root / "incidents.sqlite")
    # one incident: Mon 5/10 09:00 (working hours), acknowledged 09:30, resolved by a person 10:00
    a = reg.record_webhook(webhook("A", "db1"), now=datetime(2026, 10, 5, 9, tzinfo=VN)).id
    reg.acknowledge(a, "an", now=datetime(2026, 10, 5, 9, 30, tzinfo=VN))
    reg.resolve(a, "an", "khởi động lại", now=datetime(2026, 10, 5, 10, tzinfo=VN))
    # db1/pg: ok 2/10 02:00 local (snapshot aa11), failed 3/10 02:00, ok 4/10 02:00 (bb22); nothing after
    t1, t2, t3 = "2026-10-01T19:00:00.000Z", "2026-10-02T19:00:00.000Z", "2026-10-03T19:00:00.000Z"
    files = [status_row("ok", t1, t1, "aa11"), status_row("failed", t2, t1, None), status_row("ok", t3, t3, "bb22")]
    status = []
    for i, doc in enumerate(files):
        path = root / f"status-{i}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        status.append(("db1", path))
    drill = root / "pg-drill.json"  # 10/10 10:00 local, passed, RTO 5400 s
    drill.write_text(json.dumps({"job": "pg", "state": "ok", "reason": "ok", "snapshot": "bb22", "rto_s": 5400.0,
                                 "rpo_s": 100.0, "finished_at": "2026-10-10T03:00:00.000Z"}), encoding="utf-8")
    audits = root / "audit-results"
    audit_run(audits, "20260920T020000Z", {
        "web1": {"PS-SSH-02": "fail", "PS-SSH-03": "fail", "PS-SYS-01": "fail", "PS-AUD-01": "not_applicable"},
        "db1": {"PS-SSH-02": "pass", "PS-SSH-03": "pass"}})
    audit_run(audits, "20261030T020000Z", {
        "web1": {"PS-SSH-02": "pass", "PS-SSH-03": "fail", "PS-SYS-01": "excepted", "PS-AUD-01": "not_applicable"},
        "db1": {"PS-SSH-02": "pass", "PS-SSH-03": "pass"}})
    scans = root / "scans"
    scans.mkdir()
    store_scan(scans, "2026-09-29T02:00:00Z", {22: "open", 443: "open", 8080: "closed"})  # as approved
    store_scan(scans, "2026-10-05T02:00:00Z", {22: "open", 443: "open", 8080: "open"})  # 8080 not approved
    store_scan(scans, "2026-10-06T08:30:00Z", {22: "open", 443: "open", 8080: "closed"})  # closed again
    store_scan(scans, "2026-10-20T01:00:00Z", {22: "open", 443: "filtered", 8080: "closed"})  # 443 not open
    (root / "scan_baseline.yml").write_text(SCAN_BASELINE, encoding="utf-8")
    out = root / "data"
    collect(Month.parse("2026-09"), out, Sources(audit_results=audits), now=lambda: NOW)
    collect(Month.parse("2026-10"), out, Sources(register=root / "incidents.sqlite", backup_status=status,
                                                 drills=[("db1", drill)], audit_results=audits, scans=scans,
                                                 scan_baseline=root / "scan_baseline.yml"), now=lambda: NOW)
    return out / "2026-10"


@pytest.fixture(scope="module")
def kernel_env() -> Iterator[None]:
    """The kernels inherit the environment: they import provsec from this work tree, as the test process does."""
    with pytest.MonkeyPatch.context() as mp:
        paths = [str(REPO / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        mp.setenv("PYTHONPATH", os.pathsep.join(paths))
        yield


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, kernel_env: None) -> Path:
    out = tmp_path_factory.mktemp("reports")
    assert cli.main(["report", "monthly", "--month", "2026-10", "--data", str(data_dir), "--out", str(out),
                     "--date", "2026-11-05"]) == 0
    return out / "2026-10"


class Rows(HTMLParser):
    """Each table row of an HTML page as the list of its cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows(page: Path) -> list[list[str]]:
    parser = Rows()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.rows


def poppler(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout


def test_the_report_folder_holds_the_executed_notebooks_html_and_pdf(report: Path) -> None:
    assert sorted(p.name for p in report.iterdir()) == [
        "bao-cao-2026-10.html", "bao-cao-2026-10.pdf", "compliance.html", "compliance.ipynb",
        "monthly_backups.html", "monthly_backups.ipynb", "monthly_incidents.html", "monthly_incidents.ipynb"]
    assert [p.name for p in report.parent.iterdir()] == ["2026-10"]  # no temp folder left
    executed = json.loads((report / "monthly_backups.ipynb").read_text(encoding="utf-8"))
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert 'month = "2026-10"' in "".join(injected[0]["source"])  # the audit trail says what ran


def test_html_has_no_code_and_the_hand_computed_figures(report: Path) -> None:
    for page in report.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for code in ("open_month(", "import ", "display(", "jp-InputArea", "input_area"):
            assert code not in text, f"{page.name} shows code: {code}"
    table = rows(report / "bao-cao-2026-10.html")
    # incidents: one, answered after 30 min, resolved after 60 min, within 2 working hours
    assert ["Số sự cố", "1"] in table
    assert ["Thời gian tiếp nhận trung bình (MTTA)", "0,50 giờ"] in table
    assert ["Thời gian khắc phục trung bình (MTTR)", "1,00 giờ"] in table
    assert ["Tỷ lệ phản hồi trong 02 giờ làm việc (Điều 9.2b)", "100,0 %"] in table
    # backups, db1/pg: 3 runs in October (ok, failed, ok) → 2/3 = 66,7 %; last good bb22 at 2026-10-03T19:00Z =
    # 04/10 02:00 local. RPO gaps: month start 30/9 17:00Z → 1/10 19:00Z = 26 h; → 3/10 19:00Z = 48 h; → the
    # month's end 31/10 17:00Z = 27 d 22 h = 670 h, the worst, above the 24 h target
    assert ["db1", "pg", "3", "2", "66,7 %", "bb22 (04/10/2026 02:00)", "670,00 giờ", "24 giờ", "không đạt"] in table
    # drill 2026-10-10T03:00Z = 10:00 local, passed, RTO 5400 s = 1,5 h ≤ 4 h
    assert ["db1", "pg", "10/10/2026 10:00", "thành công", "1,50 giờ", "4 giờ", "đạt"] in table
    # compliance, October: pass = web1 SSH-02 + db1 SSH-02, SSH-03 = 3; fail = web1 SSH-03 = 1; N/A = web1 AUD-01;
    # excepted = web1 SYS-01. September: pass 2 (db1), fail 3 (web1), N/A 1, excepted 0.
    assert ["Đạt", "3", "2"] in table and ["Không đạt", "1", "3"] in table
    assert ["Không áp dụng", "1", "1"] in table and ["Ngoại lệ", "1", "0"] in table
    # pass share = pass / (pass + fail + excepted): 3/5 = 60 % now, 2/5 = 40 % in September
    assert ["Tỷ lệ đạt", "60,0 %", "40,0 %"] in table
    assert ["db1", "2", "0", "0", "0"] in table and ["web1", "1", "1", "1", "1"] in table
    # TCVN: clause 8.1.2 is PS-SSH-02 only (2 pass); the standard itself the rest: 1 / 1 / 1 / 1
    assert ["TCVN 11930:2017 8.1.2", "2", "0", "0", "0"] in table
    assert ["TCVN 11930:2017", "1", "1", "1", "1"] in table
    assert ["web1", "PS-SYS-01", "exception until 2026-12-31: ứng dụng cũ", "ngày 31 tháng 12 năm 2026"] in table
    # changed since September: web1 SSH-02 fail → pass, SYS-01 fail → excepted
    assert ["web1", "PS-SSH-02", "không đạt", "đạt"] in table
    assert ["web1", "PS-SYS-01", "không đạt", "ngoại lệ"] in table
    # scans of web1 in October: 5/10 02:00Z, 6/10 08:30Z, 20/10 01:00Z (3; the 29/9 one only tells what was open on
    # the 1st: nothing). 8080 open on 5/10 = 09:00 local, closed on 6/10 = 15:30 local; 443 filtered on 20/10 =
    # 08:00 local, still so at the month's end. Found 2, resolved 1, unresolved 1, carried 0.
    assert "Thay đổi cổng mạng (quét nmap): phát hiện và đã xử lý" in (report / "bao-cao-2026-10.html").read_text(
        encoding="utf-8")
    assert ["Số lần quét trong tháng", "3"] in table and ["Thay đổi phát hiện trong tháng", "2"] in table
    assert ["Đã xử lý", "1"] in table and ["Chưa xử lý đến cuối tháng", "1"] in table
    assert ["Tồn từ tháng trước (còn mở ngày 01)", "0"] in table
    assert ["web1", "8080/tcp", "cổng mở chưa được phê duyệt", "05/10/2026 09:00", "06/10/2026 15:30",
            "đã đóng cổng"] in table
    assert ["web1", "443/tcp", "cổng đã phê duyệt nhưng không mở", "20/10/2026 08:00", "-", "chưa xử lý"] in table


def test_pdf_is_a4_with_liberation_serif_embedded_and_the_frame_as_text(report: Path) -> None:
    pdf = str(report / "bao-cao-2026-10.pdf")
    pages = int(re.search(r"^Pages:\s+(\d+)", poppler("pdfinfo", pdf), re.M).group(1))  # type: ignore[union-attr]
    assert pages >= 2
    sizes = re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", poppler("pdfinfo", "-f", "1", "-l",
                                                                               str(pages), pdf), re.M)
    assert len(sizes) == pages
    assert all(abs(float(w) - 595.28) < 0.5 and abs(float(h) - 841.89) < 0.5 for w, h in sizes)  # 210 × 297 mm

    fonts = poppler("pdffonts", pdf).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts)  # column emb: every font embedded
    # only Liberation Serif: no glyph fell back to another font (a code span, a letter the font lacks)
    names = {line.split()[0].split("+")[-1].replace("-", "") for line in fonts}
    assert names >= {"LiberationSerif", "LiberationSerifBold"}
    assert all(name.startswith("LiberationSerif") for name in names), names
    text = poppler("pdftotext", "-layout", pdf, "-")
    for line in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "SỞ THÔNG TIN VÀ TRUYỀN",
                 "Phú Yên, ngày 05 tháng 11 năm 2026", "/BC-STTTT", "BÁO CÁO", "Nơi nhận:", "GIÁM ĐỐC",
                 "66,7 %", "60,0 %"):
        assert line in text, line

    # margins (Nghị định 30/2020: left 30–35 mm, right 15–20 mm, top and bottom 20–25 mm), and the page number
    # centred in the top margin from page 2 on, never on page 1
    words = re.findall(r'<page width|<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<',
                       poppler("pdftotext", "-bbox", pdf, "-"))
    page, in_top_margin = 0, []
    for x0, y0, x1, y1, word in words:
        if not x0:
            page += 1
            continue
        assert float(x0) >= 30 * MM - 0.5 and float(x1) <= 595.28 - 15 * MM + 0.5, (page, word)
        assert float(y1) <= 841.89 - 20 * MM + 0.5, (page, word)
        if float(y0) < 20 * MM:
            in_top_margin.append((page, word))
    assert in_top_margin == [(p, str(p)) for p in range(2, pages + 1)]


def test_the_charts_are_in_the_html_and_drawn_in_the_pdf(report: Path) -> None:
    page = (report / "bao-cao-2026-10.html").read_text(encoding="utf-8")
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, re.S)]  # noqa: S314 - our own report
    charts = {svg.get("aria-label"): svg for svg in svgs}
    titles = ["Số sự cố theo ngày, tháng 10/2026", "Sự kiện an toàn thông tin theo ngày (tất cả máy chủ)",
              "Số lần sao lưu trong tháng theo máy chủ và tác vụ", "Biện pháp kiểm soát theo máy chủ và kết quả"]
    assert list(charts) == titles

    def of(title: str, cls: str) -> list[ET.Element]:
        return [e for e in charts[title].iter() if e.get("class") == cls]

    def words(title: str, cls: str) -> list[str]:
        return ["".join(e.itertext()) for e in of(title, cls)]

    # the one incident, received on 5/10: 31 bars, only the fifth drawn, reaching the top of a 0..1 axis
    bars = of(titles[0], "bar")
    assert len(bars) == 31 and [i for i, b in enumerate(bars, 1) if float(b.get("height", 0)) > 0] == [5]
    assert words(titles[0], "tick") == ["0", "1"] and words(titles[0], "value") == ["1"]
    assert words(titles[1], "no-data") == ["Không có dữ liệu"]  # no Prometheus data collected
    # db1/pg: 3 runs, 2 ok and 1 failed
    assert words(titles[2], "label") == ["db1 / pg"] and words(titles[2], "total") == ["3"]
    assert [e.get("data-series") for e in of(titles[2], "segment")] == ["0", "1"]
    # controls: db1 2 pass; web1 one of each status, in the order pass, fail, not applicable, excepted
    assert words(titles[3], "label") == ["db1", "web1"] and words(titles[3], "total") == ["2", "4"]
    assert [e.get("data-series") for e in of(titles[3], "segment")] == ["0", "0", "1", "2", "3"]

    # drawn in the PDF as text in the document's font (the font and margin checks above cover the charts too)
    text = poppler("pdftotext", "-layout", str(report / "bao-cao-2026-10.pdf"), "-")
    for line in [*titles, "Không có dữ liệu", "db1 / pg", "không thành công", "không áp dụng"]:
        assert line in text, line
    assert re.search(r"1 +2 +3 +4 +5 +6 +7 +8 +9 +10 +11 .* 29 +30 +31", text)  # the days under the bars


def test_a_failing_notebook_stops_the_report_naming_it(tmp_path: Path, data_dir: Path, kernel_env: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    missing = tmp_path / "gio-lam-viec.yml"  # read by the incidents notebook only: its cell fails
    assert cli.main(["report", "monthly", "--month", "2026-10", "--data", str(data_dir), "--out", str(out),
                     "--working-hours", str(missing)]) == 3
    err = capsys.readouterr().err
    assert "monthly_incidents.ipynb: cell" in err and f"InputError: {missing}: working-hours file not found" in err
    assert list(out.iterdir()) == []  # nothing that could pass for a report, no temp folder
    # an agency needs a folder collected with --inventory: refused before any kernel starts
    assert cli.main(["report", "monthly", "--month", "2026-10", "--data", str(data_dir), "--out", str(out),
                     "--agency", "Sở Y tế"]) == 2
    assert "--agency: the collected folder has no inventory" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_timings_are_given_for_each_step_when_asked(tmp_path: Path, data_dir: Path, kernel_env: None) -> None:
    # one notebook whose only cell sleeps 0,5 s: its execution step lasts at least that; every step is reported
    source = tmp_path / "sleep.ipynb"
    source.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "import time\ntime.sleep(0.5)"},
        {"cell_type": "markdown", "id": "b", "metadata": {}, "source": "# Ngủ"}]}), encoding="utf-8")
    timings: dict[str, float] = {}
    report = monthly(Month.parse("2026-10"), data_dir, tmp_path / "out", notebooks=[source], timings=timings,
                     issued=date(2026, 11, 5))
    assert report.pdf.is_file()
    assert sorted(timings) == ["document html", "execute sleep.ipynb", "html sleep.ipynb", "pdf", "verify"]
    assert timings["execute sleep.ipynb"] >= 0.5
    assert all(0 < seconds < 120 for seconds in timings.values())


def test_bad_input_is_one_error_naming_it(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    assert cli.main(["report", "monthly", "--month", "2026-10", "--data", str(tmp_path), "--out",
                     str(tmp_path / "o")]) == 2
    assert f"{tmp_path}: not a collected report folder" in capsys.readouterr().err
    assert cli.main(["report", "monthly", "--month", "2026-09", "--data", str(data_dir), "--out",
                     str(tmp_path / "o")]) == 2
    assert "holds 2026-10, not 2026-09" in capsys.readouterr().err
    settings = tmp_path / "document.yml"
    settings.write_text("issuing_body: SỞ KHOA HỌC VÀ CÔNG NGHỆ\nsigner: x\n", encoding="utf-8")
    assert cli.main(["report", "monthly", "--month", "2026-10", "--data", str(data_dir), "--out",
                     str(tmp_path / "o"), "--document", str(settings)]) == 2
    assert f"{settings}: 'signer' is not a document setting" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_document_date_and_the_example_settings() -> None:
    # Nghị định 30/2020: a 0 before days under 10 and before months 1 and 2 only
    assert document_date(date(2026, 11, 5)) == "ngày 05 tháng 11 năm 2026"
    assert document_date(date(2026, 3, 15)) == "ngày 15 tháng 3 năm 2026"
    assert document_date(date(2027, 2, 1)) == "ngày 01 tháng 02 năm 2027"
    # the example inventory's file spells out the defaults: the two cannot drift apart
    assert DocumentConfig.load(REPO / "inventory" / "phuyen" / "report_document.yml") == DocumentConfig()


@pytest.mark.parametrize(("name", "parameters"), [
    ("monthly_incidents.ipynb", ["month", "agency", "security_level", "data_dir", "language", "working_hours"]),
    ("monthly_backups.ipynb", ["month", "agency", "security_level", "data_dir", "language", "rpo_target_hours",
                               "rto_target_hours"]),
    ("compliance.ipynb", ["month", "agency", "security_level", "data_dir", "language"])])
def test_the_new_notebooks_have_typed_parameters_first_and_no_outputs(name: str, parameters: list[str]) -> None:
    path = REPO / "notebooks" / name
    code = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"]["tags"] == ["parameters"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    declared = papermill.inspect_notebook(str(path))
    assert list(declared) == parameters
    assert all(p["inferred_type_name"] in ("str", "float") and p["help"] for p in declared.values())  # typed, commented


# write_pdf on its own: the document frame around a small body, printed by the installed WeasyPrint

def png_data_url(width: int, height: int) -> str:
    from PIL import Image  # WeasyPrint's own dependency

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 0, 0)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def print_pdf(body: str, target: Path) -> list[str]:
    """`body` printed as the report's only section; WeasyPrint's log records of WARNING and above."""
    frame = Frame(DocumentConfig(), "10/2026", date(2026, 11, 5), [body])
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keep = Keep(logging.WARNING)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(keep)
    try:
        write_pdf(frame_html(frame, font_face_css(font_files())), target)
    finally:
        logger.removeHandler(keep)
    return records


def test_pdf_loads_the_font_files_and_prints_a_data_url_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.chdir(tmp_path)  # a relative target, as `--out reports` gives
    warnings = print_pdf(f'<p>Ảnh biểu đồ:</p><img src="{png_data_url(40, 20)}" alt="biểu đồ">', Path("a.pdf"))
    pdf = tmp_path / "a.pdf"
    # the @font-face rules were loaded from the files fc-list found: WeasyPrint says nothing (it warns
    # "Font-face 'Liberation Serif' cannot be loaded" when its URL fetcher fails, then takes a font by name)
    assert warnings == []
    fonts = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts)
    assert {line.split()[0].split("+")[-1] for line in fonts} >= {"Liberation-Serif", "Liberation-Serif-Bold"}
    assert all(line.split()[0].split("+")[-1].startswith("Liberation-Serif") for line in fonts)
    # the notebook's inline PNG (how nbconvert embeds a matplotlib figure) is in the PDF, 40 × 20 pixels
    images = poppler("pdfimages", "-list", str(pdf)).splitlines()[2:]
    assert [line.split()[3:5] for line in images] == [["40", "20"]]
    assert "Ảnh biểu đồ:" in poppler("pdftotext", str(pdf), "-")


def test_pdf_never_fetches_from_the_network_and_says_which_url(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hinh.png"
    missing = (tmp_path / "khong-co.png").as_uri()
    pdf = tmp_path / "b.pdf"
    try:
        with pytest.raises(InputError) as failed:
            print_pdf(f'<link rel="stylesheet" href="{url}.css"><p>Ảnh:</p><img src="{url}">'
                      f'<img src="{missing}">', pdf)
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):  # nobody came: the URL was refused before any connection
            listener.accept()
    finally:
        listener.close()
    message = str(failed.value)
    assert "\n" not in message  # one line, naming each URL left out
    assert f"{url}.css" in message and f"{url}," in message and missing in message
    assert not pdf.exists()  # nothing that could pass for the report


def test_pdf_table_rows_are_not_split_and_field_names_keep_their_width(tmp_path: Path) -> None:
    # 12 rows of 8 lines (8 × 12 pt × 1.3 ≈ 125 pt each; a page has 257 mm - header ≈ 700 pt): rows must
    # cross page ends unless kept whole
    lines = [" ".join(f"h{r}d{k}" for k in range(8)) for r in range(12)]
    long_value = "Mô tả " + "x" * 120  # one word wider than the page: breaks inside the cell
    cells = "".join(f'<tr><td>Mục {r}</td><td>{"<br>".join(lines[r].split())}</td></tr>' for r in range(12))
    body = (f"<table><thead><tr><th>Mục (Mẫu 03)</th><th>Nội dung</th></tr></thead><tbody>"
            f"<tr><td>Mô tả sơ bộ sự cố</td><td>{long_value}</td></tr>{cells}</tbody></table>")
    pdf = tmp_path / "c.pdf"
    assert print_pdf(body, pdf) == []
    words = re.findall(r'<page width|<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<',
                       poppler("pdftotext", "-bbox", str(pdf), "-"))
    page, where = 0, dict[str, list[tuple[int, float, float]]]()
    for x0, x1, word in words:
        if not x0:
            page += 1
            continue
        where.setdefault(word, []).append((page, float(x0), float(x1)))
        assert float(x1) <= 595.28 - 15 * MM + 0.5, word  # nothing beyond the right margin
    assert page >= 2
    for r in range(12):
        pages = {where[f"h{r}d{k}"][0][0] for k in range(8)}
        assert len(pages) == 1, (r, pages)  # the row on one page
    # the first column of a two-column table: 30 % of the text width (210 - 30 - 15 mm), not squeezed by the
    # long value: the second column starts there (plus the cell's 2 × 5 pt padding and the 0.5 pt border)
    text_width = (210 - 30 - 15) * MM
    second = where["Nội"][0][1] - 30 * MM
    assert 0.3 * text_width <= second <= 0.3 * text_width + 12, second
    assert where["Mô"][0][1] < where["Nội"][0][1]  # the field name stays in the first column
