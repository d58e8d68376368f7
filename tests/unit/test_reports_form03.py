"""provsec.reports.form03 (Mẫu 03 of Thông tư 20/2017/TT-BTTTT, the initial incident report) on a real incident
register filled through its own API, with `notified` and `escalated` events written as provsec notify writes them;
then notebooks/monthly_incidents.ipynb run by papermill on folders collected from such registers without scans.

October 2026, Asia/Ho_Chi_Minh (UTC+7, no daylight saving). The data are collected at NOW = 2026-11-02 01:00 UTC =
02/11/2026 08:00 local. Every expected field below is written out by hand, never produced by the code under test."""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import papermill
import pytest

from provsec.errors import InputError
from provsec.notify.register import Register
from provsec.reports.collect import Sources, collect
from provsec.reports.form03 import SystemInfo, form_rows, initial_reports, no_major_sentence, systems_of
from provsec.reports.month import Month
from provsec.reports.scope import HostInfo, ReportInventory, SystemRef
from provsec.reports.sources import IncidentRecord, load_register

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "monthly_incidents.ipynb"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
TZ = "Asia/Ho_Chi_Minh"
OCTOBER = Month.parse("2026-10")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 02/11/2026 08:00 local
NOTIFY = "provsec-notify"  # who provsec notify writes its events as (notify/server.py WHO)

SSH_VI = ("Dò mật khẩu SSH", "Nhiều lần đăng nhập SSH thất bại từ cùng một địa chỉ")
SSH_EN = ("SSH password guessing", "Many failed SSH logins from one address")


def vn(m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=VN)


def webhook(group: str, alertname: str, severity: str, starts: dict[str, str], status: str = "firing", *,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """One Alertmanager group; `starts`: host → the alert's startsAt (UTC)."""
    alerts = [{"status": status, "labels": {"alertname": alertname, "instance": f"{host}:9100", "severity": severity},
               "annotations": {}, "startsAt": at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
               "fingerprint": f"fp-{group}-{host}"} for host, at in starts.items()]
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "provsec-oncall",
            "groupLabels": {"alertname": alertname}, "commonLabels": {"alertname": alertname, "severity": severity},
            "commonAnnotations": annotations if annotations is not None else {"summary": alertname},
            "externalURL": "http://mon1:9093", "alerts": alerts}


def fill(path: Path) -> dict[str, int]:
    """Five incidents received in October (A–E; E is a warning) and one on 1/11 00:30 local (F)."""
    reg = Register(path)
    ids: dict[str, int] = {}
    # A: critical, ProvsecHostDown on db1, alert started 10:00Z = 17:00 local, received Fri 2/10 17:05; level 1
    # e-mailed (ok), SMS failed; nobody answered, escalated to level 2 at 17:20 (an escalated event, then a
    # notified one). Never acknowledged nor resolved: still open when collected.
    a = ids["A"] = reg.record_webhook(webhook("A", "ProvsecHostDown", "critical",
                                              {"db1": "2026-10-02T10:00:00Z"},
                                              annotations={"summary": "Máy chủ db1 không phản hồi"}),
                                      now=vn(10, 2, 17, 5)).id
    reg.add_event(a, "notified", NOTIFY, "Cấp 1 (Trực ban): email → an (an@stttt.example.vn): ok",
                  now=vn(10, 2, 17, 5))
    reg.add_event(a, "notified", NOTIFY, "Cấp 1 (Trực ban): sms → an (0900000001): lỗi (failed): modem không "
                  "phản hồi", now=vn(10, 2, 17, 6))
    reg.add_event(a, "escalated", NOTIFY, "Cấp 2 (Lãnh đạo): chưa ai tiếp nhận sau 15 phút; báo chi",
                  now=vn(10, 2, 17, 20))
    reg.add_event(a, "notified", NOTIFY, "Cấp 2 (Lãnh đạo): email → chi (chi@stttt.example.vn): ok",
                  now=vn(10, 2, 17, 20))
    reg.add_note(a, "an", "đang kiểm tra nguồn điện", now=vn(10, 2, 18))  # a note is not a notification
    # B: critical SSH guessing on web1 (started 4/10 23:50Z = 5/10 06:50 local) and agency1 (23:55Z), received
    # Mon 5/10 07:00, Zalo to binh at 07:00, acknowledged by binh at 08:10; unresolved when collected
    b = ids["B"] = reg.record_webhook(
        webhook("B", "ProvsecSecuritySshBruteForce", "critical",
                {"web1": "2026-10-04T23:50:00Z", "agency1": "2026-10-04T23:55:00Z"},
                annotations={"summary": SSH_VI[0], "description": SSH_VI[1], "summary_en": SSH_EN[0],
                             "description_en": SSH_EN[1]}), now=vn(10, 5, 7)).id
    reg.add_event(b, "notified", NOTIFY, "Cấp 1 (Trực ban): zalo → binh (0900000002): ok", now=vn(10, 5, 7))
    reg.acknowledge(b, "binh", now=vn(10, 5, 8, 10))
    # C: critical backup failure on bak1 (started 06:58Z = 13:58 local), received Tue 6/10 14:00, nothing delivered,
    # resolved by Alertmanager at 15:00 with nobody answering
    ids["C"] = reg.record_webhook(webhook("C", "ProvsecBackupFailed", "critical", {"bak1": "2026-10-06T06:58:00Z"}),
                                  now=vn(10, 6, 14)).id
    reg.record_webhook(webhook("C", "ProvsecBackupFailed", "critical", {"bak1": "2026-10-06T06:58:00Z"}, "resolved"),
                       now=vn(10, 6, 15))
    # D: critical on db1 (started 01:59Z = 08:59 local), received Tue 20/10 09:00, acknowledged by an at 09:15,
    # resolved by an at 10:00
    d = ids["D"] = reg.record_webhook(webhook("D", "ProvsecHostDown", "critical", {"db1": "2026-10-20T01:59:00Z"}),
                                      now=vn(10, 20, 9)).id
    reg.acknowledge(d, "an", now=vn(10, 20, 9, 15))
    reg.resolve(d, "an", "khởi động lại dịch vụ", now=vn(10, 20, 10))
    # E: a warning (not major by default), received 21/10 09:00; F: critical, received 1/11 00:30 local (November)
    ids["E"] = reg.record_webhook(webhook("E", "ProvsecHostDiskFilling", "warning", {"db1": "2026-10-21T01:00:00Z"}),
                                  now=vn(10, 21, 9)).id
    ids["F"] = reg.record_webhook(webhook("F", "ProvsecHostDown", "critical", {"db1": "2026-10-31T17:20:00Z"}),
                                  now=vn(11, 1, 0, 30)).id
    return ids


@pytest.fixture(scope="module")
def register_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("form03") / "incidents.sqlite"
    return path, fill(path)


@pytest.fixture(scope="module")
def records(register_file: tuple[Path, dict[str, int]]) -> list[IncidentRecord]:
    return load_register(register_file[0], OCTOBER)


SYSTEMS: dict[str, SystemInfo | tuple[tuple[str, ...], int]] = {
    "db1": (("Cơ sở dữ liệu dùng chung của tỉnh",), 3),
    "web1": SystemInfo(("Cổng thông tin điện tử tỉnh", "Hệ thống thư điện tử"), 2),
    "bak1": (("Hệ thống sao lưu tập trung",), 2),
}  # agency1 is not listed


def rows_of(records: list[IncidentRecord], ids: dict[str, int], name: str, lang: str = "vi",
            systems: Any = SYSTEMS) -> dict[str, str]:
    reports = {r.incident_id: r for r in initial_reports(records, OCTOBER, NOW, systems)}
    return dict(form_rows(reports[ids[name]], TZ, lang))


def test_major_incidents_are_the_critical_ones_of_the_month(records: list[IncidentRecord],
                                                            register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    # E is a warning, F was received in November (local time): neither
    reports = initial_reports(records, OCTOBER, NOW)
    assert [r.id for r in reports] == [f"incident:{ids[n]}" for n in "ABCD"]
    both = initial_reports(records, OCTOBER, NOW, severities=("critical", "warning"))
    assert [r.incident_id for r in both] == [ids[n] for n in "ABCDE"]
    assert [r.incident_id for r in initial_reports(records, OCTOBER, NOW, severities="warning")] == [ids["E"]]
    with pytest.raises(InputError, match="severities"):
        initial_reports(records, OCTOBER, NOW, severities=())


def test_unresolved_incident_escalated_with_a_failed_delivery(records: list[IncidentRecord],
                                                              register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    assert rows_of(records, ids, "A") == {
        "Số sự cố trong sổ sự cố": f"{ids['A']} (incident:{ids['A']})",
        "Tên hệ thống thông tin bị sự cố": "Cơ sở dữ liệu dùng chung của tỉnh",
        "Cấp độ của hệ thống thông tin": "cấp độ 3",
        "Máy chủ liên quan": "db1",
        "Mức cảnh báo": "nghiêm trọng",
        "Thời điểm phát hiện sự cố": "02/10/2026 17:00 (cảnh báo bắt đầu); 02/10/2026 17:05 (sổ sự cố tiếp nhận)",
        "Mô tả sơ bộ sự cố": "Máy chủ db1 không phản hồi",
        "Tình trạng sự cố": "mới phát hiện (tính đến 02/11/2026 08:00)",
        "Cách thức phát hiện": "giám sát tự động provsec: cảnh báo ProvsecHostDown từ Prometheus/Alertmanager",
        # the three notified events, as recorded (the escalated event and the note are not deliveries)
        "Đã thông báo cho": "Alertmanager chuyển tới provsec-oncall; "
                            "02/10/2026 17:05: Cấp 1 (Trực ban): email → an (an@stttt.example.vn): ok; "
                            "02/10/2026 17:06: Cấp 1 (Trực ban): sms → an (0900000001): lỗi (failed): modem không "
                            "phản hồi; "
                            "02/10/2026 17:20: Cấp 2 (Lãnh đạo): email → chi (chi@stttt.example.vn): ok",
    }


def test_acknowledged_incident_on_a_host_the_inventory_does_not_list(
        records: list[IncidentRecord], register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    rows = rows_of(records, ids, "B")
    # hosts in the order of their alerts' startsAt: web1 23:50Z, agency1 23:55Z
    assert rows["Máy chủ liên quan"] == "web1, agency1"
    assert rows["Tên hệ thống thông tin bị sự cố"] == ("Cổng thông tin điện tử tỉnh; Hệ thống thư điện tử; "
                                                       "chưa xác định: agency1 không có trong inventory")
    assert rows["Cấp độ của hệ thống thông tin"] == ("web1: cấp độ 2; "
                                                     "agency1: chưa xác định: agency1 không có trong inventory")
    # the earliest startsAt: 4/10 23:50Z = 5/10 06:50 local
    assert rows["Thời điểm phát hiện sự cố"] == ("05/10/2026 06:50 (cảnh báo bắt đầu); "
                                                 "05/10/2026 07:00 (sổ sự cố tiếp nhận)")
    assert rows["Mô tả sơ bộ sự cố"] == "Dò mật khẩu SSH. Nhiều lần đăng nhập SSH thất bại từ cùng một địa chỉ"
    assert rows["Tình trạng sự cố"] == "đã tiếp nhận: binh, lúc 05/10/2026 08:10 (tính đến 02/11/2026 08:00)"
    assert rows["Cách thức phát hiện"] == ("giám sát tự động provsec: cảnh báo ProvsecSecuritySshBruteForce từ "
                                           "Prometheus/Alertmanager")
    assert rows["Đã thông báo cho"] == ("Alertmanager chuyển tới provsec-oncall; "
                                        "05/10/2026 07:00: Cấp 1 (Trực ban): zalo → binh (0900000002): ok")
    # both hosts listed, at different levels
    both = rows_of(records, ids, "B", systems={**SYSTEMS, "agency1": (("Hệ thống một cửa điện tử",), 3)})
    assert both["Tên hệ thống thông tin bị sự cố"] == ("Cổng thông tin điện tử tỉnh; Hệ thống thư điện tử; "
                                                       "Hệ thống một cửa điện tử")
    assert both["Cấp độ của hệ thống thông tin"] == "web1: cấp độ 2; agency1: cấp độ 3"
    # a host the inventory ties to no system: its level is known, its system is not
    bare = rows_of(records, ids, "B", systems={**SYSTEMS, "agency1": ((), 2)})
    assert bare["Tên hệ thống thông tin bị sự cố"] == ("Cổng thông tin điện tử tỉnh; Hệ thống thư điện tử; "
                                                       "chưa xác định: inventory không gắn agency1 với hệ thống "
                                                       "thông tin nào")
    assert bare["Cấp độ của hệ thống thông tin"] == "cấp độ 2"


def test_resolved_by_alertmanager_with_nobody_notified(records: list[IncidentRecord],
                                                       register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    rows = rows_of(records, ids, "C")
    assert rows["Tên hệ thống thông tin bị sự cố"] == "Hệ thống sao lưu tập trung"
    assert rows["Cấp độ của hệ thống thông tin"] == "cấp độ 2"
    assert rows["Thời điểm phát hiện sự cố"] == ("06/10/2026 13:58 (cảnh báo bắt đầu); "
                                                 "06/10/2026 14:00 (sổ sự cố tiếp nhận)")
    assert rows["Mô tả sơ bộ sự cố"] == "ProvsecBackupFailed"  # the summary the rule gave
    assert rows["Tình trạng sự cố"] == ("đã xử lý xong: hệ thống giám sát (tự hết cảnh báo), lúc 06/10/2026 15:00 "
                                        "(tính đến 02/11/2026 08:00)")
    assert rows["Đã thông báo cho"] == ("Alertmanager chuyển tới provsec-oncall; "
                                        "sổ sự cố không ghi nhận lần gửi thông báo nào")


def test_resolved_by_a_person_after_acknowledging(records: list[IncidentRecord],
                                                  register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    assert rows_of(records, ids, "D")["Tình trạng sự cố"] == (
        "đã xử lý xong: an, lúc 20/10/2026 10:00; đã tiếp nhận: an, lúc 20/10/2026 09:15 "
        "(tính đến 02/11/2026 08:00)")


def test_without_the_inventory_system_and_level_are_not_determined(
        records: list[IncidentRecord], register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    for name in "ABCD":
        rows = rows_of(records, ids, name, systems=None)
        assert rows["Tên hệ thống thông tin bị sự cố"] == "chưa xác định (thu thập với --inventory)"
        assert rows["Cấp độ của hệ thống thông tin"] == "chưa xác định (thu thập với --inventory)"


def test_status_as_of_an_earlier_moment(records: list[IncidentRecord],
                                        register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    # at 20/10 09:30 D was acknowledged (09:15) but not yet resolved (10:00); at 09:10, newly detected
    at_0930 = {r.incident_id: r for r in initial_reports(records, OCTOBER, vn(10, 20, 9, 30))}[ids["D"]]
    assert dict(form_rows(at_0930, TZ))["Tình trạng sự cố"] == ("đã tiếp nhận: an, lúc 20/10/2026 09:15 "
                                                               "(tính đến 20/10/2026 09:30)")
    at_0910 = {r.incident_id: r for r in initial_reports(records, OCTOBER, vn(10, 20, 9, 10))}[ids["D"]]
    assert (at_0910.status, at_0910.acknowledged_by, at_0910.resolved_at) == ("open", None, None)
    # A at 17:10 on 2/10: only the two level-1 deliveries had been made
    early_a = {r.incident_id: r for r in initial_reports(records, OCTOBER, vn(10, 2, 17, 10))}[ids["A"]]
    assert [e.text[:22] for e in early_a.notified] == ["Cấp 1 (Trực ban): emai", "Cấp 1 (Trực ban): sms "]


def test_english(records: list[IncidentRecord], register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    rows = rows_of(records, ids, "B", lang="en")
    assert rows["Short description"] == "SSH password guessing. Many failed SSH logins from one address"
    assert rows["Status"] == "acknowledged: binh, at 2026-10-05 08:10 (as of 2026-11-02 08:00)"
    assert rows["Time detected"] == "2026-10-05 06:50 (alert started); 2026-10-05 07:00 (received by the register)"
    assert rows_of(records, ids, "A", lang="en", systems=None)["Security level of the system"] == \
        "not determined (collect with --inventory)"


def test_bad_inventory_map_is_one_error_naming_the_host(records: list[IncidentRecord]) -> None:
    with pytest.raises(InputError, match=r"systems: db1: level 6 is not a cấp độ 1–5"):
        initial_reports(records, OCTOBER, NOW, {"db1": (("CSDL",), 6)})
    with pytest.raises(InputError, match=r"systems: web1: system names must be a tuple of names"):
        initial_reports(records, OCTOBER, NOW, {"web1": (("Cổng", " "), 2)})
    with pytest.raises(InputError, match=r"systems: 'bak1': expected host → \(system names, level\)"):
        initial_reports(records, OCTOBER, NOW, {"bak1": "Hệ thống sao lưu"})  # type: ignore[dict-item]


def test_no_major_sentence() -> None:
    assert no_major_sentence(OCTOBER) == ("Trong tháng 10/2026 không có sự cố nào ở mức nghiêm trọng: không có sự cố "
                                          "phải báo cáo ban đầu theo Mẫu 03.")
    assert no_major_sentence(OCTOBER, register=False) == ("Dữ liệu tháng này không có sổ sự cố: không lập được báo "
                                                          "cáo ban đầu theo Mẫu 03.")


# -- the notebook, run by papermill on folders collected without scans -----------------------------------------------
@pytest.fixture(autouse=True)
def kernel_imports_this_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel imports provsec from this work tree, as the test process does."""
    paths = [str(REPO / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def run(tmp_path: Path, data_dir: Path, **parameters: str) -> str:
    """Execute the notebook; the Markdown and text it displayed."""
    if importlib.util.find_spec("ipykernel") is None:
        pytest.fail("ipykernel is not installed in this environment (pyproject.toml lists it: run scripts/bootstrap)")
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(output), parameters={"month": "2026-10", "data_dir": str(data_dir),
                                                                       **parameters},
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    shown = []
    for cell in json.loads(output.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            shown.append("".join(data.get("text/markdown") or data.get("text/plain") or out.get("text") or ""))
    return "\n".join(shown)


NO_SCANS = "Dữ liệu tháng này không có kết quả quét mạng: không có số liệu thay đổi cổng mạng."


@pytest.fixture(scope="module")
def collected(register_file: tuple[Path, dict[str, int]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collected")
    collect(OCTOBER, out, Sources(register=register_file[0]), now=lambda: NOW)
    return out


def test_notebook_shows_the_form_of_each_major_incident(tmp_path: Path, collected: Path,
                                                        register_file: tuple[Path, dict[str, int]]) -> None:
    ids = register_file[1]
    shown = run(tmp_path, collected)
    assert NO_SCANS in shown
    for name in "ABCD":
        assert f"**Sự cố số {ids[name]}**" in shown
    assert f"**Sự cố số {ids['E']}**" not in shown and f"**Sự cố số {ids['F']}**" not in shown
    unknown = "chưa xác định (thu thập với --inventory)"
    a = (f"| Mục (Mẫu 03) | Nội dung |\n|---|---|\n"
         f"| Số sự cố trong sổ sự cố | {ids['A']} (incident:{ids['A']}) |\n"
         f"| Tên hệ thống thông tin bị sự cố | {unknown} |\n"
         f"| Cấp độ của hệ thống thông tin | {unknown} |\n"
         "| Máy chủ liên quan | db1 |\n"
         "| Mức cảnh báo | nghiêm trọng |\n"
         "| Thời điểm phát hiện sự cố | 02/10/2026 17:00 (cảnh báo bắt đầu); 02/10/2026 17:05 (sổ sự cố tiếp nhận) |\n"
         "| Mô tả sơ bộ sự cố | Máy chủ db1 không phản hồi |\n"
         "| Tình trạng sự cố | mới phát hiện (tính đến 02/11/2026 08:00) |\n"
         "| Cách thức phát hiện | giám sát tự động provsec: cảnh báo ProvsecHostDown từ Prometheus/Alertmanager |\n"
         "| Đã thông báo cho | Alertmanager chuyển tới provsec-oncall; "
         "02/10/2026 17:05: Cấp 1 (Trực ban): email → an (an@stttt.example.vn): ok; "
         "02/10/2026 17:06: Cấp 1 (Trực ban): sms → an (0900000001): lỗi (failed): modem không phản hồi; "
         "02/10/2026 17:20: Cấp 2 (Lãnh đạo): email → chi (chi@stttt.example.vn): ok |")
    assert a in shown
    assert "| Tình trạng sự cố | đã tiếp nhận: binh, lúc 05/10/2026 08:10 (tính đến 02/11/2026 08:00) |" in shown
    assert "| Máy chủ liên quan | web1, agency1 |" in shown
    assert ("| Tình trạng sự cố | đã xử lý xong: hệ thống giám sát (tự hết cảnh báo), lúc 06/10/2026 15:00 "
            "(tính đến 02/11/2026 08:00) |") in shown
    assert ("| Tình trạng sự cố | đã xử lý xong: an, lúc 20/10/2026 10:00; đã tiếp nhận: an, lúc 20/10/2026 09:15 "
            "(tính đến 02/11/2026 08:00) |") in shown
    assert "không có sự cố nào ở mức" not in shown


def test_notebook_in_english(tmp_path: Path, collected: Path) -> None:
    shown = run(tmp_path, collected, language="en")
    assert "| Status | acknowledged: binh, at 2026-10-05 08:10 (as of 2026-11-02 08:00) |" in shown
    assert "| Information system affected | not determined (collect with --inventory) |" in shown


def test_notebook_without_scans_nor_major_incident_says_so(tmp_path: Path) -> None:
    reg = Register(tmp_path / "incidents.sqlite")
    # one warning on Wed 7/10, resolved by Alertmanager: an incident, but not a major one
    reg.record_webhook(webhook("W", "ProvsecHostDiskFilling", "warning", {"db1": "2026-10-07T02:00:00Z"}),
                       now=vn(10, 7, 9))
    reg.record_webhook(webhook("W", "ProvsecHostDiskFilling", "warning", {"db1": "2026-10-07T02:00:00Z"}, "resolved"),
                       now=vn(10, 7, 10))
    collect(OCTOBER, tmp_path / "data", Sources(register=tmp_path / "incidents.sqlite"), now=lambda: NOW)
    shown = run(tmp_path, tmp_path / "data")
    assert "| Số sự cố | 1 |" in shown
    assert NO_SCANS in shown
    assert ("Trong tháng 10/2026 không có sự cố nào ở mức nghiêm trọng: không có sự cố phải báo cáo ban đầu theo "
            "Mẫu 03.") in shown
    assert "**Sự cố số" not in shown


def test_the_collected_inventory_names_each_host_s_systems_under_its_name_and_addresses() -> None:
    portal = SystemRef("cong-tt", "Cổng thông tin điện tử tỉnh", "vp-ubnd", 3)
    mail = SystemRef("thu-cv", "Thư điện tử công vụ", "stttt", 2)
    inventory = ReportInventory("inventory/x", (), (
        HostInfo("web1", "stttt", 3, (portal, mail), ("198.18.0.23",)),
        HostInfo("gw1", "stttt", 2, (), ()),
    ))
    assert systems_of(None) is None
    assert systems_of(inventory) == {
        "web1": SystemInfo(("Cổng thông tin điện tử tỉnh", "Thư điện tử công vụ"), 3),
        "198.18.0.23": SystemInfo(("Cổng thông tin điện tử tỉnh", "Thư điện tử công vụ"), 3),
        "gw1": SystemInfo((), 2),
    }
