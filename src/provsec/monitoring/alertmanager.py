"""alertmanager.yml: routing by severity, working hours in Asia/Ho_Chi_Minh, inhibition behind WAN gateways.

Route tree (first match wins, no `continue`):
1. `alertname="ProvsecMonitoringWatchdog"` → receiver `provsec-heartbeat` (provsec notify's heartbeat URL), every
   `heartbeat.repeat_interval`; provsec notify raises the alarm through its own channels when it stops coming.
2. `severity="critical"` → `provsec-critical`: at once (short group_wait), repeated often.
3. `severity="warning"` → `provsec-warning`: only within working hours (`active_time_intervals`), never on a
   day off (`mute_time_intervals`: public holidays and extra days off), so a warning raised at night arrives
   at the start of the next working period (Điều 8.3b counts it from then anyway).
4. anything else (a rule without a valid severity) → the root's `provsec-default`, at once: never dropped.

All four are webhooks of `provsec notify`; the receiver name in the payload tells it which route matched.
Grouping `[alertname, site]` (site: targets.py) makes the hosts behind one WAN gateway one group.

Inhibition:
- `ProvsecHostDown` on a gateway (`wan_role="edge"`) mutes every alert of the hosts behind it
  (`wan_role="behind"`) with the same `wan_edge`, their link probe alerts (exporters/rules/wan_links.yml)
  included: those carry the host's labels too;
- `ProvsecWanLinksDown` on a gateway (a leg of it no longer answers ping) does the same: when the agency-side
  leg dies, the gateway's node_exporter may still answer over the DC leg, so ProvsecHostDown does not fire, yet
  every host behind it is cut off;
- a critical alert mutes the warning of the same alertname and instance.

The working-hours calendar is the incident register's (provsec.reports.workhours.WorkCalendar): weekdays and
periods, the public holidays of the `holidays` package and the configured extra days off and make-up
working days. Alertmanager knows no holiday calendar, so the days are written out for `years`; render again
each year (the monitoring role does at every run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provsec.errors import InputError
from provsec.reports.workhours import WorkCalendar

WATCHDOG = "ProvsecMonitoringWatchdog"
HOST_DOWN = "ProvsecHostDown"
LINK_DOWN = "ProvsecWanLinksDown"  # exporters/rules/wan_links.yml: an ICMP probe fails
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9848/alertmanager"
# The Watchdog goes to the same endpoint: `provsec notify` tells it by its alertname and never opens an incident.
DEFAULT_HEARTBEAT_URL = "http://127.0.0.1:9848/alertmanager"
WORKING_HOURS = "provsec-working-hours"
DAYS_OFF = "provsec-days-off"
GROUP_BY = ("alertname", "site")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Timing:
    group_wait: str
    group_interval: str
    repeat_interval: str

    def as_dict(self) -> dict[str, str]:
        return {
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
        }


@dataclass(frozen=True)
class WorkingHours:
    """When warnings may be sent: weekdays × periods, plus make-up working days, minus days off.

    `periods` are ("HH:MM", "HH:MM") pairs in `location`'s wall-clock time; an end of "24:00" is midnight."""

    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # 0 = Monday
    periods: tuple[tuple[str, str], ...] = (("07:30", "11:30"), ("13:30", "17:00"))
    location: str = "Asia/Ho_Chi_Minh"
    working_days: tuple[date, ...] = ()  # make-up working days (a Saturday worked in exchange)
    days_off: tuple[date, ...] = ()  # public holidays and extra days off

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.location)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InputError(f"working hours: unknown time zone {self.location!r}") from exc
        if not self.weekdays or any(d not in range(7) for d in self.weekdays):
            raise InputError(f"working hours: weekdays {self.weekdays!r}: give days 0 (Monday) to 6 (Sunday)")
        if not self.periods:
            raise InputError("working hours: no period")
        for start, end in self.periods:
            if not (_minutes(start) < _minutes(end)):
                raise InputError(f"working hours: period {start}-{end} ends before it starts")


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise InputError(f"working hours: {text!r} is not a time HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise InputError(f"working hours: {text!r} is not a time from 00:00 to 24:00")
    return value


def working_hours_from_calendar(calendar: WorkCalendar, years: Iterable[int]) -> WorkingHours:
    """The calendar's working time as Alertmanager can express it, with the days of `years` written out."""
    working: set[date] = set()
    off: set[date] = set()
    for year in years:
        working.update(d for d in calendar.makeup_working_days if d.year == year)
        off.update(d for d in calendar.extra_days_off if d.year == year)
        off.update(d for d in calendar.public_holidays(year) if d not in calendar.makeup_working_days)
    return WorkingHours(
        weekdays=tuple(sorted(calendar.weekdays)),
        periods=tuple((f"{p.start:%H:%M}", f"{p.end:%H:%M}") for p in calendar.periods),
        location=calendar.timezone,
        working_days=tuple(sorted(working - off)),
        days_off=tuple(sorted(off)),
    )


@dataclass(frozen=True)
class AlertmanagerSettings:
    webhook_url: str = DEFAULT_WEBHOOK_URL
    heartbeat_url: str = DEFAULT_HEARTBEAT_URL
    bearer_token_file: str | None = None  # root-only file holding provsec notify's token
    working_hours: WorkingHours = field(default_factory=WorkingHours)
    default: Timing = Timing("10s", "1m", "30m")  # unmatched severity: treated as urgent
    critical: Timing = Timing("10s", "1m", "30m")
    warning: Timing = Timing("1m", "5m", "4h")
    heartbeat: Timing = Timing("0s", "1m", "1m")
    resolve_timeout: str = "5m"

    def __post_init__(self) -> None:
        for name in ("webhook_url", "heartbeat_url"):
            url = getattr(self, name)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InputError(f"{name}: {url!r} is not an http(s) URL")
        if self.bearer_token_file is not None and not self.bearer_token_file.startswith("/"):
            raise InputError(f"bearer token file {self.bearer_token_file!r}: give an absolute path")


def _webhook(name: str, url: str, settings: AlertmanagerSettings, *, send_resolved: bool) -> dict[str, Any]:
    hook: dict[str, Any] = {"url": url, "send_resolved": send_resolved}
    if settings.bearer_token_file is not None:
        hook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": settings.bearer_token_file}}
    return {"name": name, "webhook_configs": [hook]}


def _date_interval(day: date, location: str) -> dict[str, Any]:
    return {
        "years": [str(day.year)],
        "months": [str(day.month)],
        "days_of_month": [str(day.day)],
        "location": location,
    }


def _days_off_intervals(days: Iterable[date], location: str) -> list[dict[str, Any]]:
    """One interval per month, with runs of consecutive days as ranges ("16:20")."""
    by_month: dict[tuple[int, int], list[int]] = {}
    for day in sorted(set(days)):
        by_month.setdefault((day.year, day.month), []).append(day.day)
    intervals: list[dict[str, Any]] = []
    for (year, month), numbers in by_month.items():
        runs: list[list[int]] = []
        for n in numbers:
            if runs and n == runs[-1][-1] + 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        ranges = [str(r[0]) if len(r) == 1 else f"{r[0]}:{r[-1]}" for r in runs]
        intervals.append(
            {"years": [str(year)], "months": [str(month)], "days_of_month": ranges, "location": location}
        )
    return intervals


def time_intervals(hours: WorkingHours) -> list[dict[str, Any]]:
    times = [{"start_time": start, "end_time": end} for start, end in hours.periods]
    working: list[dict[str, Any]] = [
        {"weekdays": [_DAY_NAMES[d] for d in sorted(hours.weekdays)], "times": times, "location": hours.location}
    ]
    working += [{**_date_interval(d, hours.location), "times": times} for d in hours.working_days]
    intervals = [{"name": WORKING_HOURS, "time_intervals": working}]
    if hours.days_off:
        intervals.append(
            {"name": DAYS_OFF, "time_intervals": _days_off_intervals(hours.days_off, hours.location)}
        )
    return intervals


def inhibit_rules() -> list[dict[str, Any]]:
    return [
        {
            # A WAN gateway down: the hosts behind it are unreachable too; say it once, for the gateway.
            "source_matchers": [f'alertname="{HOST_DOWN}"', 'wan_role="edge"'],
            "target_matchers": ['wan_role="behind"'],
            "equal": ["wan_edge"],
        },
        {
            # A leg of a WAN gateway down (the gateway itself may still be scraped over its other leg).
            "source_matchers": [f'alertname="{LINK_DOWN}"', 'wan_role="edge"'],
            "target_matchers": ['wan_role="behind"'],
            "equal": ["wan_edge"],
        },
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "instance"],
        },
    ]


def alertmanager_config(settings: AlertmanagerSettings) -> dict[str, Any]:
    """alertmanager.yml as data (yaml.safe_dump it)."""
    warning_route: dict[str, Any] = {
        "matchers": ['severity="warning"'],
        "receiver": "provsec-warning",
        **settings.warning.as_dict(),
        "active_time_intervals": [WORKING_HOURS],
    }
    if settings.working_hours.days_off:
        warning_route["mute_time_intervals"] = [DAYS_OFF]
    return {
        "global": {"resolve_timeout": settings.resolve_timeout},
        "route": {
            "receiver": "provsec-default",
            "group_by": list(GROUP_BY),
            **settings.default.as_dict(),
            "routes": [
                {
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    "receiver": "provsec-heartbeat",
                    "group_by": ["alertname", "prometheus"],  # one heartbeat per Prometheus
                    **settings.heartbeat.as_dict(),
                    "continue": False,
                },
                {
                    "matchers": ['severity="critical"'],
                    "receiver": "provsec-critical",
                    **settings.critical.as_dict(),
                },
                warning_route,
            ],
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": [
            _webhook("provsec-default", settings.webhook_url, settings, send_resolved=True),
            _webhook("provsec-heartbeat", settings.heartbeat_url, settings, send_resolved=False),
            _webhook("provsec-critical", settings.webhook_url, settings, send_resolved=True),
            _webhook("provsec-warning", settings.webhook_url, settings, send_resolved=True),
        ],
        "time_intervals": time_intervals(settings.working_hours),
    }
