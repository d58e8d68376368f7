"""The initial incident report (báo cáo ban đầu sự cố, Mẫu 03 of Thông tư 20/2017/TT-BTTTT) of each major incident of
the month, filled from the incident register so it can be filed: the information system and its security level,
the hosts concerned, the time detected, a description, the status, how it was detected and who was notified.

- major: severity (label `severity`) in `severities`, `critical` by default; the incidents are those of the month
  (received by the register within the local month, as everywhere in the reports);
- system and level (cấp độ 1–5 of Nghị định 85/2016/NĐ-CP) come only from the caller's map host → systems, level
  (the inventory); without it the fields say "chưa xác định (thu thập với --inventory)", never a guess;
- hosts: the hosts of the incident's alerts (IncidentRecord.hosts, as the counts per host);
- time detected: the earliest alert's startsAt (Prometheus) and the moment the register received the group;
- description: the register's title (common `summary`, else the alert name) and the common `description`
  (`summary_en` / `description_en` for lang en when the rule has them);
- status as of `as_of` (the collection time): mới phát hiện, đã tiếp nhận (by whom, when), đã xử lý xong (by whom,
  when; "hệ thống giám sát" when Alertmanager resolved it);
- notified: exactly what the register recorded: the Alertmanager receiver the group was routed to, and each
  `notified` event of provsec notify (channel → person (address): result) up to `as_of`, with its time.

Each report keeps its incident's id (`incident:N`): every field is read from that one register entry."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from provsec.errors import InputError
from provsec.notify.register import ALERTMANAGER, Event
from provsec.reports import text
from provsec.reports.incidents import in_month
from provsec.reports.month import Month

if TYPE_CHECKING:
    from provsec.reports.scope import ReportInventory
from provsec.reports.sources import IncidentRecord

MAJOR: tuple[str, ...] = ("critical",)
LEVELS = range(1, 6)  # cấp độ 1–5 (Nghị định 85/2016/NĐ-CP)
NO_HOST = "(không rõ máy chủ)"  # IncidentRecord.hosts when no alert names a host


@dataclass(frozen=True)
class SystemInfo:
    """What the inventory says of a host: the information systems it serves and their security level."""

    names: tuple[str, ...]
    level: int  # cấp độ 1–5


Systems = Mapping[str, SystemInfo | tuple[tuple[str, ...], int]]


def systems_of(inventory: ReportInventory | None) -> dict[str, SystemInfo] | None:
    """The map host → SystemInfo from a collected inventory.json (None: not collected), each host under its name and
    its addresses (an alert may name a host by address); the level is the host's effective one."""
    if inventory is None:
        return None
    out: dict[str, SystemInfo] = {}
    for host in inventory.hosts:
        info = SystemInfo(tuple(s.name for s in host.systems), host.level)
        for key in (host.name, *host.addresses):
            out[key] = info
    return out


def check_systems(systems: Systems | None, where: str = "systems") -> dict[str, SystemInfo] | None:
    """The caller's map host → SystemInfo or (names, level), checked: names a tuple of non-empty texts (empty: the
    inventory ties the host to no system), level 1–5."""
    if systems is None:
        return None
    out: dict[str, SystemInfo] = {}
    for host, value in systems.items():
        info = value if isinstance(value, SystemInfo) else None
        if info is None and isinstance(value, tuple) and len(value) == 2:
            info = SystemInfo(value[0], value[1])
        if info is None or not isinstance(host, str) or not host:
            raise InputError(f"{where}: {host!r}: expected host → (system names, level), got {value!r}")
        names, level = info.names, info.level
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n.strip() for n in names):
            raise InputError(f"{where}: {host}: system names must be a tuple of names, got {names!r}")
        if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
            raise InputError(f"{where}: {host}: level {level!r} is not a cấp độ 1–5")
        out[host] = SystemInfo(tuple(n.strip() for n in names), level)
    return out


@dataclass(frozen=True)
class HostSystem:
    host: str
    system: SystemInfo | None  # None: the inventory (when given) does not list the host


@dataclass(frozen=True)
class InitialReport:
    """The Mẫu 03 fields of one incident, as of `as_of`."""

    incident_id: int
    severity: str
    alertnames: tuple[str, ...]
    hosts: tuple[HostSystem, ...]
    systems_known: bool            # False: no inventory was given, system and level are not determined
    started_at: datetime           # the earliest alert's startsAt
    received_at: datetime          # the register received the group's first notification
    title: str
    summary_en: str | None
    description: str | None
    description_en: str | None
    status: str                    # open (mới phát hiện), acknowledged, resolved — as of `as_of`
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    receiver: str                  # the Alertmanager receiver the group was routed to
    notified: tuple[Event, ...]    # the register's `notified` events up to `as_of`, in time order
    as_of: datetime

    @property
    def id(self) -> str:
        return f"incident:{self.incident_id}"


def _severities(severities: Collection[str] | str) -> frozenset[str]:
    chosen = frozenset((severities,) if isinstance(severities, str) else severities)
    if not chosen or not all(isinstance(s, str) and s for s in chosen):
        raise InputError(f"severities: {severities!r}: give the severities that make an incident major "
                         "(e.g. critical)")
    return chosen


def initial_report(record: IncidentRecord, as_of: datetime, systems: Mapping[str, SystemInfo] | None) -> \
        InitialReport:
    incident = record.incident
    acked = incident.acknowledged_at is not None and incident.acknowledged_at <= as_of
    resolved = incident.resolved_at is not None and incident.resolved_at <= as_of
    names = tuple(dict.fromkeys(a.name for a in record.alerts if a.name))
    common = incident.common_labels.get("alertname") or incident.group_labels.get("alertname")
    annotations = incident.common_annotations
    return InitialReport(
        incident_id=incident.id, severity=record.severity, alertnames=(common,) if common else names,
        hosts=tuple(HostSystem(h, None if systems is None or h == NO_HOST else systems.get(h)) for h in record.hosts),
        systems_known=systems is not None, started_at=incident.started_at, received_at=incident.opened_at,
        title=incident.title, summary_en=annotations.get("summary_en") or None,
        description=annotations.get("description") or None,
        description_en=annotations.get("description_en") or None,
        status="resolved" if resolved else "acknowledged" if acked else "open",
        acknowledged_at=incident.acknowledged_at if acked else None,
        acknowledged_by=incident.acknowledged_by if acked else None,
        resolved_at=incident.resolved_at if resolved else None, resolved_by=incident.resolved_by if resolved else None,
        receiver=incident.receiver,
        notified=tuple(sorted((e for e in record.events if e.kind == "notified" and e.at <= as_of),
                              key=lambda e: (e.at, e.id))),
        as_of=as_of)


def initial_reports(records: Iterable[IncidentRecord], month: Month, as_of: datetime, systems: Systems | None = None,
                    severities: Collection[str] | str = MAJOR) -> list[InitialReport]:
    """One report per major incident of the month (received within it), oldest first. `as_of`: the moment the
    data were collected (the status is the one at that moment). `systems`: host → (system names, level) from the
    inventory, or None when it was not collected."""
    chosen = _severities(severities)
    known = check_systems(systems)
    return [initial_report(r, as_of, known) for r in in_month(records, month) if r.incident.severity in chosen]


# -- the form as text -----------------------------------------------------------------------------------------------
FIELDS: dict[str, dict[str, str]] = {
    "vi": {"id": "Số sự cố trong sổ sự cố", "system": "Tên hệ thống thông tin bị sự cố",
           "level": "Cấp độ của hệ thống thông tin", "hosts": "Máy chủ liên quan", "severity": "Mức cảnh báo",
           "detected": "Thời điểm phát hiện sự cố", "description": "Mô tả sơ bộ sự cố",
           "status": "Tình trạng sự cố", "how": "Cách thức phát hiện", "notified": "Đã thông báo cho"},
    "en": {"id": "Incident number in the register", "system": "Information system affected",
           "level": "Security level of the system", "hosts": "Hosts concerned", "severity": "Alert severity",
           "detected": "Time detected", "description": "Short description", "status": "Status",
           "how": "How it was detected", "notified": "Notified"},
}
_WORDS: dict[str, dict[str, str]] = {
    "vi": {"unknown": "chưa xác định (thu thập với --inventory)",
           "not_listed": "chưa xác định: {host} không có trong inventory",
           "no_system": "chưa xác định: inventory không gắn {host} với hệ thống thông tin nào",
           "level": "cấp độ {n}", "started": "{t} (cảnh báo bắt đầu)", "received": "{t} (sổ sự cố tiếp nhận)",
           "open": "mới phát hiện", "acknowledged": "đã tiếp nhận: {who}, lúc {t}",
           "resolved": "đã xử lý xong: {who}, lúc {t}", "monitoring": "hệ thống giám sát (tự hết cảnh báo)",
           "as_of": "(tính đến {t})",
           "how": "giám sát tự động provsec: cảnh báo {names} từ Prometheus/Alertmanager",
           "receiver": "Alertmanager chuyển tới {r}", "none_notified": "sổ sự cố không ghi nhận lần gửi thông báo nào",
           "no_major": "Trong tháng {mm}/{yyyy} không có sự cố nào ở mức {levels}: không có sự cố phải báo cáo ban "
                       "đầu theo Mẫu 03.",
           "no_register": "Dữ liệu tháng này không có sổ sự cố: không lập được báo cáo ban đầu theo Mẫu 03."},
    "en": {"unknown": "not determined (collect with --inventory)",
           "not_listed": "not determined: {host} is not in the inventory",
           "no_system": "not determined: the inventory ties {host} to no information system",
           "level": "level {n}", "started": "{t} (alert started)", "received": "{t} (received by the register)",
           "open": "newly detected", "acknowledged": "acknowledged: {who}, at {t}",
           "resolved": "resolved: {who}, at {t}", "monitoring": "the monitoring system (alert ended)",
           "as_of": "(as of {t})",
           "how": "provsec automated monitoring: alert {names} from Prometheus/Alertmanager",
           "receiver": "routed by Alertmanager to {r}", "none_notified": "the register records no notification sent",
           "no_major": "No incident of severity {levels} in {mm}/{yyyy}: no initial report (Mẫu 03) to file.",
           "no_register": "This month's data have no incident register: no initial report (Mẫu 03) can be made."},
}


def no_major_sentence(month: Month, severities: Collection[str] | str = MAJOR, lang: str = "vi",
                      register: bool = True) -> str:
    """What section 7 says when there is nothing to report (`register` False: the register was not collected)."""
    words = _WORDS[text.language(lang)]
    if not register:
        return words["no_register"]
    levels = ", ".join(text.label(s, lang) for s in sorted(_severities(severities)))
    return words["no_major"].format(mm=f"{month.month:02d}", yyyy=month.year, levels=levels)


def _system_rows(report: InitialReport, lang: str) -> tuple[str, str]:
    words = _WORDS[lang]
    if not report.systems_known:
        return words["unknown"], words["unknown"]
    names: list[str] = []
    levels: list[tuple[str, str]] = []
    for h in report.hosts:
        if h.system is None:
            missing = words["not_listed"].format(host=h.host)
            names.append(missing)
            levels.append((h.host, missing))
        else:
            names.extend(n for n in h.system.names if n not in names)
            if not h.system.names:
                names.append(words["no_system"].format(host=h.host))
            levels.append((h.host, words["level"].format(n=h.system.level)))
    distinct = list(dict.fromkeys(v for _, v in levels))
    level = distinct[0] if len(distinct) == 1 else "; ".join(f"{host}: {v}" for host, v in levels)
    return "; ".join(names), level


def form_rows(report: InitialReport, timezone: str, lang: str = "vi") -> list[tuple[str, str]]:
    """The report as (field of Mẫu 03, value) rows, times in `timezone` (Vietnamese dd/mm/yyyy HH:MM)."""
    lang = text.language(lang)
    words, fields = _WORDS[lang], FIELDS[lang]

    def at(moment: datetime | None) -> str:
        return text.moment(moment, timezone, lang)

    system, level = _system_rows(report, lang)
    title = (report.summary_en or report.title) if lang == "en" else report.title
    description = (report.description_en or report.description) if lang == "en" else report.description
    if report.status == "resolved":
        who = words["monitoring"] if report.resolved_by == ALERTMANAGER else report.resolved_by
        status = words["resolved"].format(who=who, t=at(report.resolved_at))
        if report.acknowledged_at is not None:
            status += "; " + words["acknowledged"].format(who=report.acknowledged_by, t=at(report.acknowledged_at))
    elif report.status == "acknowledged":
        status = words["acknowledged"].format(who=report.acknowledged_by, t=at(report.acknowledged_at))
    else:
        status = words["open"]
    notified = [words["receiver"].format(r=report.receiver)]
    notified += [f"{at(e.at)}: {e.text}" for e in report.notified] or [words["none_notified"]]
    return [
        (fields["id"], f"{report.incident_id} ({report.id})"),
        (fields["system"], system),
        (fields["level"], level),
        (fields["hosts"], ", ".join(h.host for h in report.hosts)),
        (fields["severity"], text.label(report.severity, lang)),
        (fields["detected"], words["started"].format(t=at(report.started_at)) + "; "
         + words["received"].format(t=at(report.received_at))),
        (fields["description"], title if not description else f"{title.rstrip('. ')}. {description}"),
        (fields["status"], f"{status} {words['as_of'].format(t=at(report.as_of))}"),
        (fields["how"], words["how"].format(names=", ".join(report.alertnames) or "?")),
        (fields["notified"], "; ".join(notified)),
    ]
