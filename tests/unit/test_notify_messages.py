"""Messages built from Alertmanager webhook payloads: parsing, Vietnamese without diacritics, SMS length.

Expected strings are written out by hand (diacritics removed and lengths counted by hand), not computed
with the code under test."""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

import pytest

from provsec.errors import InputError
from provsec.notify.messages import (
    SMS_LIMIT,
    ZALO_TEXT_LIMIT,
    build_notification,
    gsm7_text,
    sms_text,
    strip_diacritics,
    zalo_text,
)
from provsec.notify.payload import parse_webhook

GSM7_BASIC_ASCII = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 \n@$_!\"#%&'()*+,-./:;<=>?"
)
ACK = "https://mon1.phuyen.gov.vn/ack/Q2xU7"

SUMMARY = "Sao lưu etc trên db1.phuyen.gov.vn:9100 quá hạn: không có lần thành công"
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="ProvsecBackupStale"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "oncall",
    "groupLabels": {"alertname": "ProvsecBackupStale"},
    "commonLabels": {"alertname": "ProvsecBackupStale", "severity": "critical", "backup_job": "etc",
                     "instance": "db1.phuyen.gov.vn:9100", "job": "node"},
    "commonAnnotations": {
        "summary": SUMMARY,
        "summary_en": "Backup etc on db1.phuyen.gov.vn:9100 is stale: no successful run",
        "description": "Lần chạy thành công gần nhất của job etc đã cách đây 1d 7h.",
        "runbook": 'Trên db1: chạy "sudo provsec backup status" để xem lý do của lần chạy cuối.',
        "runbook_en": 'On db1: run "sudo provsec backup status" for the last run\'s reason.',
    },
    "externalURL": "http://mon1.phuyen.gov.vn:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ProvsecBackupStale", "severity": "critical", "backup_job": "etc",
                   "instance": "db1.phuyen.gov.vn:9100", "job": "node"},
        "annotations": {"summary": SUMMARY},
        "startsAt": "2026-10-23T07:03:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://mon1.phuyen.gov.vn:9090/graph?g0.expr=x",
        "fingerprint": "a1b2c3d4e5f60708",
    }],
}


def disk_payload() -> dict[str, Any]:
    """Two firing alerts (web1, agency1), warning, no common summary."""
    summary = ("Đĩa / trên web1 sắp đầy: còn 4% dung lượng trống, dự kiến hết trong 3 giờ nữa theo tốc độ ghi "
               "hiện tại")
    alert: dict[str, Any] = {"status": "firing", "labels": {"alertname": "ProvsecDiskFilling", "severity": "warning",
                                            "instance": "web1:9100"},
             "annotations": {"summary": summary}, "startsAt": "2026-10-23T01:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1", "generatorURL": ""}
    other = copy.deepcopy(alert)
    other["labels"]["instance"] = "agency1:9100"
    other["annotations"]["summary"] = "Đĩa / trên agency1 sắp đầy"
    return {"version": "4", "status": "firing", "receiver": "oncall", "groupKey": "k",
            "groupLabels": {"alertname": "ProvsecDiskFilling"},
            "commonLabels": {"alertname": "ProvsecDiskFilling", "severity": "warning"},
            "commonAnnotations": {}, "externalURL": "", "alerts": [alert, other]}


@pytest.mark.parametrize(("text", "expected"), [
    ("Đồng Xuân", "Dong Xuan"),
    ("Sông Cầu, Tuy Hòa, Phú Yên", "Song Cau, Tuy Hoa, Phu Yen"),
    ("Máy chủ đã khởi động lại", "May chu da khoi dong lai"),
    ("ĐẶNG THỊ HƯƠNG", "DANG THI HUONG"),
    ("Ưu tiên ỹ ỷ ự ữ ạ ặ ậ", "Uu tien y y u u a a a"),
    ("đường dây Đắk Lắk", "duong day Dak Lak"),
])
def test_strip_diacritics(text: str, expected: str) -> None:
    assert strip_diacritics(text) == expected
    # The same text in decomposed form (as some keyboards and macOS produce it) gives the same result.
    assert strip_diacritics(unicodedata.normalize("NFD", text)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("{a|b}~[c]^`x`", "(a/b)-(c)'x'"),  # GSM escape-table characters (2 septets) and the backtick replaced
    ("CPU → 95% ≥ 90%", "CPU -> 95% >= 90%"),
    ("“Hà Nội” – 30/4…", '"Ha Noi" - 30/4...'),
    ("tab\there", "tab here"),
    ("日本 🔥", "?? ?"),
])
def test_gsm7_text(text: str, expected: str) -> None:
    assert gsm7_text(text) == expected


def test_parse_webhook() -> None:
    group = parse_webhook(PAYLOAD)
    assert group.status == "firing"
    assert group.name == "ProvsecBackupStale"
    assert group.severity == "critical"
    assert group.hosts == ("db1.phuyen.gov.vn",)  # instance without its port
    alert = group.alerts[0]
    assert alert.starts_at is not None
    assert alert.starts_at.isoformat() == "2026-10-23T07:03:00.123456+00:00"
    assert alert.ends_at is None  # Go's zero time
    assert group.annotation("runbook").startswith("Trên db1")


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(status="burning"), "status: 'burning' is not firing or resolved"),
    (lambda p: p.update(alerts=[]), "alerts: expected a non-empty list"),
    (lambda p: p["alerts"][0].update(labels={"alertname": 3}), "alerts[0].labels.alertname: expected a string"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt: 'yesterday' is not an RFC 3339"),
    (lambda p: p.update(version="3"), "version: '3' is not \"4\""),
    (lambda p: p.pop("version"), "version: None is not \"4\""),
    (lambda p: p.update(truncatedAlerts=-1), "truncatedAlerts: expected a non-negative integer"),
    (lambda p: p.update(groupKey=""), "groupKey: expected a non-empty string"),
    (lambda p: p["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint: missing"),
])
def test_parse_webhook_rejects_bad_input(change: Any, message: str) -> None:
    payload = copy.deepcopy(PAYLOAD)
    change(payload)
    with pytest.raises(InputError, match="Alertmanager webhook payload") as info:
        parse_webhook(payload)
    assert message in str(info.value)


def test_parse_webhook_rejects_non_object() -> None:
    with pytest.raises(InputError, match="expected a JSON object"):
        parse_webhook(["not", "an", "object"])
    with pytest.raises(InputError, match="Alertmanager webhook payload: not JSON"):
        parse_webhook(b"\xff{")


def test_parse_webhook_takes_json_text_and_the_title() -> None:
    group = parse_webhook(json.dumps(PAYLOAD, ensure_ascii=False).encode())
    assert group == parse_webhook(PAYLOAD)
    assert group.title == SUMMARY  # the common summary, as the incident register names the incident


def test_sms_fits_whole() -> None:
    text = sms_text(parse_webhook(PAYLOAD), ACK)
    assert text == ("(KHAN) ProvsecBackupStale db1.phuyen.gov.vn: Sao luu etc tren db1.phuyen.gov.vn:9100 qua han: "
                    "khong co lan thanh cong https://mon1.phuyen.gov.vn/ack/Q2xU7")
    assert len(text) == 154  # counted by hand: 7 + 19 + 19 + 72 + 37


def test_sms_shortens_the_summary_and_keeps_host_name_and_link() -> None:
    link = "https://mon1.phuyen.gov.vn/a/0123456789abcdef0123456789abcdef"  # 61 characters
    text = sms_text(parse_webhook(disk_payload()), link)
    assert text == ("(CANH BAO) ProvsecDiskFilling web1 (+1): Dia / tren web1 sap day: con 4% dung luong trong, du... "
                    "https://mon1.phuyen.gov.vn/a/0123456789abcdef0123456789abcdef")
    assert len(text) == 158


def test_sms_without_link_and_resolved() -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["status"] = "resolved"
    payload["alerts"][0]["status"] = "resolved"
    payload["alerts"][0]["endsAt"] = "2026-10-23T09:00:00Z"
    # Resolved: no acknowledgement link (nothing to acknowledge), tag says it is over.
    assert sms_text(parse_webhook(payload), ACK) == (
        "(DA KHAC PHUC) ProvsecBackupStale db1.phuyen.gov.vn: Sao luu etc tren db1.phuyen.gov.vn:9100 qua han: "
        "khong co lan thanh cong")


def test_sms_extreme_names_still_fit_with_the_whole_link() -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["commonLabels"]["alertname"] = "ProvsecAVeryLongAlertName" * 6
    payload["commonLabels"]["instance"] = "host-with-a-long-name-" * 5 + ":9100"
    payload["alerts"][0]["labels"] = dict(payload["commonLabels"])
    text = sms_text(parse_webhook(payload), ACK)
    assert len(text) <= SMS_LIMIT
    assert text.startswith("(KHAN) ProvsecAVeryLong")
    assert text.endswith(" " + ACK)


def test_every_sms_is_gsm7_basic_and_at_most_160() -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["commonAnnotations"]["summary"] = "Ổ đĩa {root} ~ đầy [99%] | “khẩn” → xử lý ngay … " * 5
    for ack in (None, ACK):
        text = build_notification(parse_webhook(payload), ack).sms_text
        assert len(text) <= SMS_LIMIT
        assert set(text) <= GSM7_BASIC_ASCII, set(text) - GSM7_BASIC_ASCII


def test_email_body_is_vietnamese_with_runbook_ack_and_local_time() -> None:
    note = build_notification(parse_webhook(PAYLOAD), ACK)
    assert note.subject == ("[KHẨN] ProvsecBackupStale — db1.phuyen.gov.vn: Sao lưu etc trên db1.phuyen.gov.vn:9100 "
                            "quá hạn: không có lần thành công")
    body = note.email_body
    assert "Mức độ: nghiêm trọng (critical)" in body
    assert "Trạng thái: đang xảy ra (firing)" in body
    assert 'Hướng dẫn xử lý:\nTrên db1: chạy "sudo provsec backup status"' in body
    assert f"Xác nhận đã nhận xử lý sự cố (mở trên điện thoại):\n{ACK}\n" in body
    # 07:03 UTC is 14:03 in Asia/Ho_Chi_Minh (UTC+7, no daylight saving).
    assert "  1. ProvsecBackupStale trên db1.phuyen.gov.vn — bắt đầu 14:03 23/10/2026 (đang xảy ra)" in body
    assert "English: Backup etc on db1.phuyen.gov.vn:9100 is stale" in body


def test_zalo_text_keeps_diacritics_and_limit() -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["commonAnnotations"]["description"] = "Dữ liệu thay đổi chưa được sao lưu. " * 200  # ~7 000 chars
    text = zalo_text(parse_webhook(payload), ACK)
    assert len(text) <= ZALO_TEXT_LIMIT
    assert text.startswith("[KHẨN] ProvsecBackupStale\nMáy: db1.phuyen.gov.vn\nSao lưu etc trên")
    assert "Bắt đầu: 14:03 23/10/2026" in text
    assert "Xử lý: Trên db1" in text  # the runbook survives a long description
    assert text.endswith(f"\nXác nhận: {ACK}")
