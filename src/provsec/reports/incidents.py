"""Incident figures of a month: counts per severity, category, host and day; MTTA and MTTR on the wall clock and
in working hours; the share answered within 2 working hours; the hosts that alerted most.

Definitions (README.md has them with the articles):
- an incident belongs to the month when the register received it (opened_at) within the local month;
- the answer is the register's: the first acknowledgement, else a resolution by a person (Incident.responded_at);
- wall clock: from opened_at; working hours: from the effective start of Điều 8.3b (out of hours, the clock starts
  at the next working period), counting only working time (workhours.py, through register.response);
- within 2 working hours (Điều 9.2b): answered by the deadline. The share is met / (met + missed): an incident
  that Alertmanager resolved before its deadline with nobody answering needed no answer, and one whose deadline
  is still ahead at `as_of` cannot be judged yet; both are counted apart, never in the share.

Every figure is a Traced value: it keeps the ids (`incident:N`) of the incidents it was computed from."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from provsec.notify.payload import host_of
from provsec.notify.register import Response, response
from provsec.reports.month import Month, Traced
from provsec.reports.prometheus import Series
from provsec.reports.sources import IncidentRecord
from provsec.reports.workhours import WorkCalendar


@dataclass(frozen=True)
class SlaShare:
    met: Traced[int]
    missed: Traced[int]
    pending: Traced[int]
    not_needed: Traced[int]
    share: Traced[float | None]  # met / (met + missed); None when nothing could be judged


@dataclass(frozen=True)
class IncidentStats:
    month: Month
    total: Traced[int]
    by_severity: dict[str, Traced[int]]
    by_category: dict[str, Traced[int]]
    by_host: dict[str, Traced[int]]
    by_day: dict[date, Traced[int]]
    mtta_wall_s: Traced[float | None]
    mtta_work_s: Traced[float | None]
    mttr_wall_s: Traced[float | None]
    mttr_work_s: Traced[float | None]
    within_2h: SlaShare
    top_hosts: list[tuple[str, Traced[int]]]


def in_month(records: Iterable[IncidentRecord], month: Month) -> list[IncidentRecord]:
    return sorted((r for r in records if month.contains(r.incident.opened_at)), key=lambda r: r.incident.opened_at)


def count_by(records: Sequence[IncidentRecord], keys: Callable[[IncidentRecord], Iterable[str]]) -> \
        dict[str, Traced[int]]:
    """Incidents per key, most first (ties by key); an incident with several keys (hosts) counts once for each."""
    ids: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for key in dict.fromkeys(keys(record)):
            ids[key].append(record.id)
    ordered = sorted(ids.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {key: Traced(len(sources), tuple(sources)) for key, sources in ordered}


def _mean(pairs: Sequence[tuple[str, float]]) -> Traced[float | None]:
    if not pairs:
        return Traced(None)
    return Traced(sum(v for _, v in pairs) / len(pairs), tuple(i for i, _ in pairs))


def _select(pairs: Iterable[tuple[IncidentRecord, Response]], sla: str) -> Traced[int]:
    ids = tuple(r.id for r, resp in pairs if resp.sla == sla)
    return Traced(len(ids), ids)


def incident_stats(records: Iterable[IncidentRecord], month: Month, calendar: WorkCalendar, as_of: datetime,
                   top: int = 10) -> IncidentStats:
    """The month's figures. `as_of`: the moment the data were collected (an unanswered incident is pending or
    missed as of then), so a report re-run later gives the same numbers."""
    chosen = in_month(records, month)
    responses = [(r, response(r.incident, calendar, as_of)) for r in chosen]

    days: dict[date, list[str]] = {day: [] for day in month.days()}
    for r in chosen:
        days[month.local_day(r.incident.opened_at)].append(r.id)

    acked = [(r.id, (r.incident.responded_at - r.incident.opened_at).total_seconds())
             for r in chosen if r.incident.responded_at is not None]
    resolved = [(r.id, (r.incident.resolved_at - r.incident.opened_at).total_seconds())
                for r in chosen if r.incident.resolved_at is not None]
    acked_work = [(r.id, resp.to_respond_s) for r, resp in responses if resp.to_respond_s is not None]
    resolved_work = [(r.id, resp.to_resolve_s) for r, resp in responses if resp.to_resolve_s is not None]

    met, missed = _select(responses, "met"), _select(responses, "missed")
    judged = met.value + missed.value
    share = Traced(met.value / judged if judged else None, met.sources + missed.sources)

    alerts: dict[str, list[str]] = defaultdict(list)
    for r in chosen:
        for a in r.alerts:
            alerts[a.host or "(không rõ máy chủ)"].append(f"{r.id}/{a.fingerprint}")
    counts = Counter({host: len(ids) for host, ids in alerts.items()})
    top_hosts = [(host, Traced(n, tuple(alerts[host])))
                 for host, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]

    return IncidentStats(
        month=month, total=Traced(len(chosen), tuple(r.id for r in chosen)),
        by_severity=count_by(chosen, lambda r: (r.severity,)), by_category=count_by(chosen, lambda r: (r.category,)),
        by_host=count_by(chosen, lambda r: r.hosts),
        by_day={day: Traced(len(ids), tuple(ids)) for day, ids in days.items()},
        mtta_wall_s=_mean(acked), mtta_work_s=_mean(acked_work), mttr_wall_s=_mean(resolved),
        mttr_work_s=_mean(resolved_work),
        within_2h=SlaShare(met=met, missed=missed, pending=_select(responses, "pending"),
                           not_needed=_select(responses, "not_needed"), share=share),
        top_hosts=top_hosts)


def daily_events(series: Iterable[Series], month: Month, label: str = "instance") -> dict[str, dict[date, float]]:
    """A collected daily query (collect.QUERIES: each point is the increase over the local day that ends at its
    timestamp) as host → local day → count; the host is `label` without its port. Days without a point are 0."""
    out: dict[str, dict[date, float]] = {}
    for s in series:
        host = host_of({"instance": s.labels.get(label, "")}) or "(không rõ máy chủ)"
        days = out.setdefault(host, dict.fromkeys(month.days(), 0.0))
        for at, value in s.points:
            day = month.local_day(at - timedelta(seconds=1))  # the point closes the day before its timestamp
            if day in days and not math.isnan(value):
                days[day] += value
    return dict(sorted(out.items()))
