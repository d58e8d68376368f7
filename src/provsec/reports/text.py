"""How the reports write numbers, durations, dates and labels, in Vietnamese (1.234,5; ngày 05 tháng 11 năm 2026)
or English. Kept here, not in the notebooks, so the figures a test computes by hand can be compared with the text."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from provsec.errors import InputError

LANGUAGES = ("vi", "en")

LABELS: dict[str, dict[str, str]] = {
    "vi": {"critical": "nghiêm trọng", "warning": "cảnh báo", "host": "máy chủ", "backup": "sao lưu",
           "security": "an toàn thông tin", "monitoring": "giám sát", "other": "khác", "none": "không có",
           "hours": "giờ", "working_hours": "giờ làm việc",
           "pass": "đạt", "fail": "không đạt", "not_applicable": "không áp dụng", "excepted": "ngoại lệ",
           "ok": "thành công", "failed": "thất bại", "partial": "không đầy đủ", "met": "đạt", "not_met": "không đạt",
           "unknown": "chưa rõ",
           "not_ok": "không thành công",
           "unexpected-open": "cổng mở chưa được phê duyệt", "approved-not-open": "cổng đã phê duyệt nhưng không mở",
           "host-disappeared": "máy chủ đã rà soát không phản hồi", "host-appeared": "máy chủ chưa được rà soát",
           "closed": "đã đóng cổng", "approved": "đã phê duyệt", "reopened": "cổng mở lại",
           "host-back": "máy chủ phản hồi trở lại", "host-gone": "máy chủ không còn phản hồi",
           "unresolved": "chưa xử lý", "no_data": "không có dữ liệu", "never": "chưa có"},
    "en": {"critical": "critical", "warning": "warning", "host": "host", "backup": "backup", "security": "security",
           "monitoring": "monitoring", "other": "other", "none": "none", "hours": "h", "working_hours": "working h",
           "pass": "pass", "fail": "fail", "not_applicable": "not applicable", "excepted": "excepted", "ok": "ok",
           "failed": "failed", "partial": "partial", "met": "met", "not_met": "not met", "unknown": "unknown",
           "not_ok": "not successful",
           "unexpected-open": "unapproved open port", "approved-not-open": "approved port not open",
           "host-disappeared": "reviewed host not answering", "host-appeared": "host never reviewed",
           "closed": "port closed", "approved": "approved", "reopened": "port open again", "host-back": "host back",
           "host-gone": "host gone", "unresolved": "unresolved",
           "no_data": "no data", "never": "none yet"},
}


def language(value: object) -> str:
    if value not in LANGUAGES:
        raise InputError(f"parameter language: {value!r} is not one of {', '.join(LANGUAGES)}")
    return str(value)


def label(key: str, lang: str) -> str:
    return LABELS[lang].get(key, key)


def number(value: float | None, digits: int = 0, lang: str = "vi") -> str:
    """1234.5 → "1.234,5" (vi) or "1,234.5" (en); None → "-"."""
    if value is None:
        return "-"
    text = f"{value:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def percent(share: float | None, digits: int = 1, lang: str = "vi") -> str:
    return "-" if share is None else f"{number(share * 100, digits, lang)} %"


SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")


def size(value: float | None, lang: str = "vi") -> str:
    """Bytes in decimal units (1 kB = 1 000 B, 1 MB = 10^6 B), the largest unit keeping the figure at or above 1,
    one decimal (bytes whole): 1234500000 → "1,2 GB", 1234567 → "1,2 MB" (vi) or "1.2 MB" (en); a signed change
    keeps its sign (-2500 → "-2,5 kB"); None → "-"."""
    if value is None:
        return "-"
    unit = 0
    while unit < len(SIZE_UNITS) - 1 and abs(value) >= 1000 ** (unit + 1):
        unit += 1
    if unit and unit < len(SIZE_UNITS) - 1 and round(abs(value) / 1000 ** unit, 1) >= 1000:
        unit += 1  # 999 960 B is "1,0 MB", not "1.000,0 kB"
    return f"{number(value / 1000 ** unit, 1 if unit else 0, lang)} {SIZE_UNITS[unit]}"


def hours(seconds: float | None, digits: int = 2, lang: str = "vi", unit: str = "hours") -> str:
    return "-" if seconds is None else f"{number(seconds / 3600, digits, lang)} {label(unit, lang)}"


def day(value: date, lang: str = "vi") -> str:
    return f"ngày {value:%d} tháng {value:%m} năm {value:%Y}" if lang == "vi" else value.isoformat()


def moment(value: datetime | None, timezone: str, lang: str = "vi") -> str:
    """An instant in the report's time zone: 31/10/2026 23:30 (vi) or 2026-10-31 23:30 (en); None → "-"."""
    if value is None:
        return "-"
    local = value.astimezone(ZoneInfo(timezone))
    return f"{local:%d/%m/%Y %H:%M}" if lang == "vi" else f"{local:%Y-%m-%d %H:%M}"


def met(value: bool | None, lang: str = "vi") -> str:
    """A target met, not met, or not judged (None)."""
    return label("unknown" if value is None else "met" if value else "not_met", lang)
