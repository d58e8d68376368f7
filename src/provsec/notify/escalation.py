"""Escalation along the on-call rota, computed from the incident register alone (so a restart loses nothing).

An unacknowledged open incident reaches rota level k when level k's delay has passed since the register received
it: in wall-clock time for a severity whose policy says `clock: wall` (critical: at night too), in working time
counted from the effective start of Điều 8.3b for `clock: working` (warning). A severity with
`working_hours_only` is notified and escalated only in working time; outside it, the step waits.

The level an incident has reached is read from its events: none while no `notified` event exists, else 1 plus
the number of `escalated` events (one per level after the first). Every notification of a level writes at least
one `notified` event, even when nobody could be reached, so a level is never sent twice."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from provsec.notify.config import Level, SeverityPolicy
from provsec.notify.payload import Alert, AlertGroup
from provsec.notify.register import Event, Incident, from_iso
from provsec.reports.workhours import WorkCalendar


def level_reached(events: Iterable[Event]) -> int:
    kinds = [e.kind for e in events]
    if "notified" not in kinds:
        return 0
    return 1 + kinds.count("escalated")


def due_at(level: Level, opened_at: datetime, policy: SeverityPolicy, calendar: WorkCalendar) -> datetime:
    if policy.clock == "wall":
        return opened_at + level.after
    return calendar.add_working_time(calendar.effective_start(opened_at), level.after.total_seconds())


def due_levels(incident: Incident, events: Sequence[Event], rota: Sequence[Level], policy: SeverityPolicy, *,
               calendar: WorkCalendar, now: datetime) -> list[Level]:
    """The levels to notify now, in order (several after a long stop of the receiver)."""
    if incident.state != "open":
        return []
    if policy.working_hours_only and not calendar.is_working_time(now):
        return []
    return [lv for lv in rota[level_reached(events):] if due_at(lv, incident.opened_at, policy, calendar) <= now]


def group_from_register(incident: Incident, alerts: Sequence[dict[str, Any]]) -> AlertGroup:
    """The incident as an alert group, as the register holds it (the latest payload's labels and alerts), for
    messages sent when no payload is at hand (escalation)."""
    parsed = tuple(Alert(status=a["status"], labels=_strs(a["labels"]), annotations=_strs(a["annotations"]),
                         starts_at=from_iso(a["starts_at"]),
                         ends_at=None if a["ends_at"] is None else from_iso(a["ends_at"]), fingerprint=a["fingerprint"])
                   for a in alerts)
    return AlertGroup(status="resolved" if incident.state == "resolved" else "firing", receiver=incident.receiver,
                      group_key=incident.group_key, group_labels=incident.group_labels,
                      common_labels=incident.common_labels, common_annotations=incident.common_annotations,
                      external_url=incident.external_url, alerts=parsed)


def _strs(value: Any) -> dict[str, str]:
    data = json.loads(value) if isinstance(value, str) else value
    return {str(k): str(v) for k, v in dict(data).items()}
