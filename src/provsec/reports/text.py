"""How the reports write numbers, durations, dates and labels, in Vietnamese (1.234,5; ngày 05 tháng 11 năm 2026)
or English. Kept here, not in the notebooks, so the figures a test computes by hand can be compared with the text."""

from __future__ import annotations

from datetime import date

from provsec.errors import InputError

LANGUAGES = ("vi", "en")

LABELS: dict[str, dict[str, str]] = {
    "vi": {"critical": "nghiêm trọng", "warning": "cảnh báo", "host": "máy chủ", "backup": "sao lưu",
           "security": "an toàn thông tin", "monitoring": "giám sát", "other": "khác", "none": "không có",
           "hours": "giờ", "working_hours": "giờ làm việc"},
    "en": {"critical": "critical", "warning": "warning", "host": "host", "backup": "backup", "security": "security",
           "monitoring": "monitoring", "other": "other", "none": "none", "hours": "h", "working_hours": "working h"},
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


def hours(seconds: float | None, digits: int = 2, lang: str = "vi", unit: str = "hours") -> str:
    return "-" if seconds is None else f"{number(seconds / 3600, digits, lang)} {label(unit, lang)}"


def day(value: date, lang: str = "vi") -> str:
    return f"ngày {value:%d} tháng {value:%m} năm {value:%Y}" if lang == "vi" else value.isoformat()
