"""Alertmanager webhook payload (JSON, version 4) → the texts on-call staff receive.

One webhook call is one Alertmanager group (alerts sharing the route's group_by labels; parsed and validated by
payload.py); it becomes one `Notification` with three renderings of the same facts:

- email: subject + plain-text body in Vietnamese (UTF-8): severity, status, summary, description, the
  runbook, every alert of the group with its host and start time (Asia/Ho_Chi_Minh), the acknowledgement link;
- SMS: ASCII without Vietnamese diacritics (đ/Đ → d/D), only characters of the GSM 7-bit default alphabet
  (one septet each, so length = septets), at most 160 characters: one segment, one charge, never split by a
  gateway. Severity tag, alert name, host and the acknowledgement link are kept whole; the summary is what
  gets shortened;
- Zalo: Vietnamese with diacritics, at most ZALO_TEXT_LIMIT characters.

The annotations follow exporters/METRICS.md ("Alert rule conventions"): `summary`, `description`, `runbook`
in Vietnamese and `*_en` in English; the `severity` label is critical or warning."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from provsec.notify.payload import AlertGroup, parse_webhook

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

SMS_LIMIT = 160
# Zalo OA "tin tư vấn" text (POST /v3.0/oa/message/cs, message.text): 2 000 characters at most. Source read:
# eSMS's documentation of its Zalo OA consultation-text relay ("Text content to send to users Maximum limit is
# 2,000 characters", developers.esms.vn, send-zalo-message-consulting-in-text-form), consistent with client
# code for the OA API that cuts message.text at 2 000. Zalo's own page (developers.zalo.me) was not in the
# stored sources; check it when the OA is set up and lower this if it says less.
ZALO_TEXT_LIMIT = 2000

SEVERITY_VI = {"critical": "KHẨN", "warning": "CẢNH BÁO"}
SEVERITY_SMS = {"critical": "KHAN", "warning": "CANH BAO"}
SEVERITY_WORDS = {"critical": "nghiêm trọng (critical)", "warning": "cảnh báo (warning)"}
RESOLVED_VI = "ĐÃ KHẮC PHỤC"
RESOLVED_SMS = "DA KHAC PHUC"

# Characters of the GSM 03.38 default alphabet that are also ASCII (one septet each). Left out on purpose:
# the escape-table characters [ ] { } \ ^ ~ | (two septets each) and the backtick (not in GSM 7 at all).
_GSM7_ASCII = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    " \n@$_!\"#%&'()*+,-./:;<=>?"
)
_SMS_REPLACE = {
    "đ": "d", "Đ": "D", "[": "(", "]": ")", "{": "(", "}": ")", "\\": "/", "|": "/", "~": "-", "^": "",
    "`": "'", "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "→": "->", "≥": ">=",
    "≤": "<=", "×": "x", "\t": " ", "\r": "", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss",
}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Notification:
    """What the channels send for one alert group; each channel takes its own rendering."""

    subject: str
    email_body: str
    sms_text: str
    zalo_text: str
    group_key: str = ""
    ack_url: str | None = None


# --- text helpers --------------------------------------------------------------------------------------------

def strip_diacritics(text: str) -> str:
    """Vietnamese without diacritics: 'Đồng Xuân' → 'Dong Xuan'. đ/Đ have no decomposition; map them."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def gsm7_text(text: str) -> str:
    """ASCII text of GSM 7-bit default-alphabet characters only (one septet each); others become '?'."""
    out = []
    for char in strip_diacritics(text):
        if char in _GSM7_ASCII:
            out.append(char)
        else:
            out.append(_SMS_REPLACE.get(char, "?"))
    return "".join(out)


def one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def shorten(text: str, limit: int, marker: str = "...") -> str:
    """At most `limit` characters, cut at a word boundary when one is near, with `marker` when cut."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    cut = text[: limit - len(marker)]
    space = cut.rfind(" ")
    if space >= (limit - len(marker)) * 2 // 3:  # don't throw away more than a third for a nice cut
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + marker


def local_time(when: datetime | None) -> str:
    """'14:03 23/10/2026' in Asia/Ho_Chi_Minh (stored in UTC, shown in local time)."""
    if when is None:
        return "?"
    return when.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def _hosts_text(group: AlertGroup, limit: int = 3) -> str:
    hosts = group.hosts
    if not hosts:
        return "?"
    shown = ", ".join(hosts[:limit])
    return shown + (f" và {len(hosts) - limit} máy khác" if len(hosts) > limit else "")


def _tag_vi(group: AlertGroup) -> str:
    return RESOLVED_VI if group.resolved else SEVERITY_VI.get(group.severity, group.severity.upper() or "CẢNH BÁO")


# --- renderings ----------------------------------------------------------------------------------------------

def email_subject(group: AlertGroup) -> str:
    summary = one_line(group.annotation("summary"))
    count = f" ({group.count} cảnh báo)" if group.count > 1 else ""
    subject = f"[{_tag_vi(group)}] {group.name} — {_hosts_text(group)}{count}"
    return shorten(f"{subject}: {summary}" if summary else subject, 200)


def email_body(group: AlertGroup, ack_url: str | None) -> str:
    severity = group.severity
    lines = [
        f"Cảnh báo: {group.name}",
        f"Mức độ: {SEVERITY_WORDS.get(severity, severity)}",
        "Trạng thái: " + ("đã khắc phục (resolved)" if group.resolved else "đang xảy ra (firing)"),
        f"Máy: {_hosts_text(group, limit=10)}",
        f"Số cảnh báo trong nhóm: {group.count}",
        "",
    ]
    for key, title in (("summary", "Tóm tắt"), ("description", "Mô tả")):
        value = group.annotation(key).strip()
        if value:
            lines += [f"{title}:", value, ""]
    runbook = group.annotation("runbook").strip()
    lines += ["Hướng dẫn xử lý:", runbook or "(cảnh báo này chưa có hướng dẫn xử lý)", ""]
    if ack_url and not group.resolved:
        lines += ["Xác nhận đã nhận xử lý sự cố (mở trên điện thoại):", ack_url, ""]
    lines.append("Các cảnh báo:")
    for index, alert in enumerate(group.alerts, 1):
        state = "đang xảy ra" if alert.status == "firing" else f"đã hết lúc {local_time(alert.ends_at)}"
        summary = one_line(alert.annotations.get("summary", ""))
        lines.append(f"{index:>3}. {alert.name} trên {alert.host or '?'} — bắt đầu {local_time(alert.starts_at)}"
                     f" ({state}){': ' + summary if summary else ''}")
    if group.truncated_alerts:
        lines.append(f"     … và {group.truncated_alerts} cảnh báo khác Alertmanager không gửi kèm.")
    lines += ["", "Giờ hiển thị theo giờ Việt Nam (Asia/Ho_Chi_Minh)."]
    summary_en = group.annotation("summary_en").strip()
    if summary_en:
        lines += ["", f"English: {summary_en}"]
        runbook_en = group.annotation("runbook_en").strip()
        if runbook_en:
            lines.append(f"Runbook: {runbook_en}")
    if group.external_url:
        lines += ["", f"Alertmanager: {group.external_url}"]
    lines += ["", "-- ", "provsec notify (thư tự động, vui lòng không trả lời thư này)"]
    return "\n".join(lines) + "\n"


def sms_text(group: AlertGroup, ack_url: str | None, limit: int = SMS_LIMIT) -> str:
    """'(KHAN) ProvsecHostDown db1 (+2): <summary> <ack link>' — GSM 7 only, at most `limit` characters."""
    # Parentheses, not brackets: [ ] are GSM escape-table characters (two septets each).
    tag = f"({RESOLVED_SMS if group.resolved else SEVERITY_SMS.get(group.severity, 'CANH BAO')})"
    hosts = group.hosts
    more = f" (+{group.count - 1})" if group.count > 1 else ""
    name = gsm7_text(group.name)
    host = gsm7_text(hosts[0]) if hosts else "?"
    link = f" {gsm7_text(ack_url)}" if ack_url and not group.resolved else ""
    fixed = len(tag) + len(more) + len(link) + 2  # two spaces: tag·name·host
    if fixed + len(name) + len(host) > limit:
        # Extreme names: shorten alert name and host (never the link: a cut link does not work).
        room = max(limit - fixed, 2)
        host = shorten(host, max(room // 3, 1), marker=".")
        name = shorten(name, max(room - len(host), 1), marker=".")
    head = f"{tag} {name} {host}{more}"
    summary = one_line(gsm7_text(group.annotation("summary")))
    room = limit - len(head) - len(link) - 2  # ": "
    text = f"{head}: {shorten(summary, room)}" if summary and room >= 8 else head
    return (text + link)[:limit]


def zalo_text(group: AlertGroup, ack_url: str | None, limit: int = ZALO_TEXT_LIMIT) -> str:
    """A chat message: the essentials first, description and runbook shortened to fit `limit`."""
    head = [f"[{_tag_vi(group)}] {group.name}", f"Máy: {_hosts_text(group)}"
            + (f" ({group.count} cảnh báo)" if group.count > 1 else "")]
    summary = one_line(group.annotation("summary"))
    if summary:
        head.append(summary)
    first = min((a.starts_at for a in group.alerts if a.starts_at), default=None)
    head.append(f"Bắt đầu: {local_time(first)}")
    tail = [f"Xác nhận: {ack_url}"] if ack_url and not group.resolved else []
    room = limit - len("\n".join(head + tail)) - 2  # two more line breaks
    lines: dict[str, str] = {}
    # The runbook gets the room first: on a phone, what to do matters more than the long description.
    for prefix, key in (("Xử lý: ", "runbook"), ("Mô tả: ", "description")):
        value = one_line(group.annotation(key))
        if value and room > len(prefix) + 8:
            lines[key] = prefix + shorten(value, room - len(prefix))
            room -= len(lines[key])
    body = [lines[key] for key in ("description", "runbook") if key in lines]
    return "\n".join(head + body + tail)[:limit]


def build_notification(group: AlertGroup, ack_url: str | None = None) -> Notification:
    """All renderings of one alert group; `ack_url` is the signed acknowledgement link (None: none yet)."""
    return Notification(
        subject=email_subject(group),
        email_body=email_body(group, ack_url),
        sms_text=sms_text(group, ack_url),
        zalo_text=zalo_text(group, ack_url),
        group_key=group.group_key,
        ack_url=ack_url,
    )


def notification_from_payload(payload: Any, ack_url: str | None = None) -> Notification:
    return build_notification(parse_webhook(payload), ack_url)

