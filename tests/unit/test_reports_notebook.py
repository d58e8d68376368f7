"""notebooks/monthly_incidents.ipynb executed by papermill on a fixture folder collected from a real register:
every figure it prints equals the value worked out by hand below (default calendar, October 2026: 2/10 is a
Friday, 5/10 a Monday, 6/10 a Tuesday)."""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import papermill
import pytest

from provsec.notify.register import Register
from provsec.reports.collect import Sources, collect
from provsec.reports.month import Month

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "monthly_incidents.ipynb"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn(d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 10, d, hh, mm, tzinfo=VN)


def webhook(group: str, alertname: str, severity: str, host: str, status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "oncall",
            "groupLabels": {"alertname": alertname}, "commonLabels": {"alertname": alertname, "severity": severity},
            "commonAnnotations": {"summary": alertname}, "externalURL": "http://mon1:9093",
            "alerts": [{"status": status, "labels": {"alertname": alertname, "instance": f"{host}:9100"},
                        "annotations": {}, "startsAt": "2026-10-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": f"fp-{group}"}]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("notebook")
    reg = Register(root / "incidents.sqlite")
    # A: Mon 5/10 09:00, acknowledged 09:30, resolved by a person 10:00
    a = reg.record_webhook(webhook("A", "ProvsecHostDown", "critical", "db1"), now=vn(5, 9)).id
    reg.acknowledge(a, "an", now=vn(5, 9, 30))
    reg.resolve(a, "an", "khởi động lại dịch vụ", now=vn(5, 10))
    # B: Fri 2/10 17:05 (out of hours), acknowledged Mon 5/10 10:00, unresolved
    b = reg.record_webhook(webhook("B", "ProvsecSecuritySshBruteForce", "critical", "web1"), now=vn(2, 17, 5)).id
    reg.acknowledge(b, "binh", now=vn(5, 10))
    # C: Tue 6/10 14:00, acknowledged 14:30, resolved by Alertmanager 15:00
    c = reg.record_webhook(webhook("C", "ProvsecBackupFailed", "warning", "bak1"), now=vn(6, 14)).id
    reg.acknowledge(c, "an", now=vn(6, 14, 30))
    reg.record_webhook(webhook("C", "ProvsecBackupFailed", "warning", "bak1", "resolved"), now=vn(6, 15))
    out = root / "data"
    collect(Month.parse("2026-10"), out, Sources(register=root / "incidents.sqlite"))
    return out


@pytest.fixture(autouse=True)
def kernel_imports_this_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel inherits the environment: it imports provsec from this work tree, as the test process does
    (an installed provsec, or PYTHONPATH=src relative to a directory the kernel does not run in)."""
    paths = [str(REPO / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def run(tmp_path: Path, **parameters: str) -> list[str]:
    """Execute the notebook; the Markdown and text it displayed, cell by cell."""
    if importlib.util.find_spec("ipykernel") is None:
        pytest.fail("ipykernel is not installed in this environment: papermill has no Python kernel to run the "
                    "notebook in (pyproject.toml lists it: run scripts/bootstrap)")
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(output), parameters=parameters, kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False)
    shown = []
    for cell in json.loads(output.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            shown.append("".join(data.get("text/markdown") or data.get("text/plain") or out.get("text") or ""))
    return shown


def test_the_committed_notebook_has_parameters_first_and_no_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code[0]["metadata"]["tags"] == ["parameters"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    source = "".join(code[0]["source"])
    for line in ('month: str = "2026-10"  #', 'agency: str = "all"  #', 'security_level: str = "all"  #',
                 'data_dir: str = "data"  #', 'language: str = "vi"  #'):
        assert line in source
    # papermill reads each type and comment (--help-notebook); it drops a line with a second "=", even in a comment
    assert list(papermill.inspect_notebook(str(NOTEBOOK))) == ["month", "agency", "security_level", "data_dir",
                                                               "language", "working_hours"]


def test_figures_equal_the_hand_computed_ones(tmp_path: Path, data_dir: Path) -> None:
    text = "\n".join(run(tmp_path, month="2026-10", data_dir=str(data_dir)))
    assert "| Số sự cố | 3 |" in text
    # MTTA wall: A 0.5 h, B Fri 17:05 → Mon 10:00 = 64 h 55 min, C 0.5 h → 65.9167 / 3 = 21.97 h
    assert "| Thời gian tiếp nhận trung bình (MTTA) | 21,97 giờ |" in text
    # working hours: A 0.5, B Mon 07:30 (Điều 8.3b) → 10:00 = 2.5, C 0.5 → 3.5 / 3 = 1.17
    assert "| MTTA tính theo giờ làm việc | 1,17 giờ làm việc |" in text
    # resolved: A 09:00 → 10:00, C 14:00 → 15:00: 1 h each, on the wall clock and in working hours
    assert "| Thời gian khắc phục trung bình (MTTR) | 1,00 giờ |" in text
    assert "| MTTR tính theo giờ làm việc | 1,00 giờ làm việc |" in text
    # A and C answered within 2 working hours, B due Mon 09:30 and answered 10:00: 2 of 3
    assert "| Tỷ lệ phản hồi trong 02 giờ làm việc (Điều 9.2b) | 66,7 % |" in text
    assert "| Đạt / không đạt / đang chờ / không cần phản hồi | 2 / 1 / 0 / 0 |" in text
    assert "| nghiêm trọng | 2 |\n| cảnh báo | 1 |" in text
    for category in ("| máy chủ | 1 |", "| an toàn thông tin | 1 |", "| sao lưu | 1 |"):
        assert category in text
    assert ("| ngày 02 tháng 10 năm 2026 | 1 |\n| ngày 05 tháng 10 năm 2026 | 1 |\n"
            "| ngày 06 tháng 10 năm 2026 | 1 |") in text
    assert "| db1 | 1 |" in text and "| web1 | 1 |" in text  # host names as they are, never translated
    assert "không có số liệu Prometheus" in text


def test_a_bad_parameter_stops_the_run_naming_it(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(papermill.PapermillExecutionError, match=r"parameter month: '2026-13' is not a month"):
        run(tmp_path, month="2026-13", data_dir=str(data_dir))
    with pytest.raises(papermill.PapermillExecutionError, match=r"parameter data_dir: .*2026-09 not found"):
        run(tmp_path, month="2026-09", data_dir=str(data_dir))
