"""The province's working-hours clock: which moments are working time, how much working time lies between two
moments, when a message that arrives out of hours counts as received, and when an answer is due.

The regulation (QĐ 03/2022/QĐ-UBND, Phú Yên) says:

- Điều 8.3b: a message that enters the receiver's account outside state working hours ("ngoài thời gian làm việc
  hành chính nhà nước") counts as received at "thời điểm bắt đầu giờ làm việc hành chính của ngày làm việc liền
  sau": the start of working hours of the next working day. Read literally, that holds for every moment outside
  the working periods, the lunch break included: a message at 12:00 on a Monday counts from Tuesday 07:30, and one
  at 06:00 on a Monday counts from Monday 07:30 (Monday is the working day that follows 06:00). This literal
  reading is the default, `after_hours: next_working_day`. A province that reads the lunch break as a pause
  within the working day sets `after_hours: next_period` (12:00 counts from 13:30 the same day).
- Điều 9.2b: the answer is due within 2 working hours ("02 giờ làm việc hành chính") after receipt:
  `deadline(received)` = effective start + 2 working hours, counting only working periods.

Working hours are configuration, not code (the defaults are the state's: Mon–Fri 07:30–11:30 and 13:30–17:00,
Asia/Ho_Chi_Minh). Public holidays come from the `holidays` package (country VN: Tết, Giỗ Tổ Hùng Vương, 30/4, 1/5,
2/9 and the days the Government substitutes); the package lists days off but not the Saturdays that become
working days when the Government swaps a working day, so those are configured (`makeup_working_days`), as are any
extra days off the package does not know yet (`extra_days_off`).

```yaml
timezone: Asia/Ho_Chi_Minh
weekdays: [mon, tue, wed, thu, fri]
periods: ["07:30-11:30", "13:30-17:00"]       # quote them: YAML 1.1 reads 07:30 as the number 450
holidays_country: VN                           # null: no public holidays
extra_days_off: {"2026-01-02": "Nghỉ Tết Dương lịch (hoán đổi)"}   # or a list of dates
makeup_working_days: ["2025-04-26"]            # Saturdays worked in exchange for a day off
after_hours: next_working_day                  # or next_period
```

Every datetime given to the clock must be aware (naive ones are an InputError: a clock cannot guess the zone);
every datetime it returns is in the calendar's time zone. Arithmetic is done in UTC, so a zone with daylight saving
time also counts right (Asia/Ho_Chi_Minh has none)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provsec.errors import InputError
from provsec.fileio import read_yaml

AfterHours = Literal["next_working_day", "next_period"]
AFTER_HOURS: tuple[AfterHours, ...] = ("next_working_day", "next_period")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_PERIODS = ("07:30-11:30", "13:30-17:00")
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
SLA_HOURS = 2.0  # Điều 9.2b
TOP_KEYS = {"timezone", "weekdays", "periods", "holidays_country", "extra_days_off", "makeup_working_days",
            "after_hours"}
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")
_PERIOD = re.compile(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*")
_SEARCH_DAYS = 800  # how far to look for the next working day before calling the calendar broken


@dataclass(frozen=True)
class Period:
    """One working period of a day, [start, end) in wall-clock time."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InputError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name}: naive datetime {value.isoformat()}: give its time zone (e.g. +07:00 or Z)")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods, working weekdays, public holidays (from `holidays`), extra days off and make-up days."""

    periods: tuple[Period, ...] = (Period(time(7, 30), time(11, 30)), Period(time(13, 30), time(17, 0)))
    weekdays: frozenset[int] = frozenset(range(5))  # 0 = Monday
    timezone: str = DEFAULT_TIMEZONE
    holidays_country: str | None = "VN"
    extra_days_off: Mapping[date, str] = field(default_factory=dict)
    makeup_working_days: frozenset[date] = frozenset()
    after_hours: AfterHours = "next_working_day"
    source: str = "built-in defaults"
    _holiday_cache: dict[int, dict[date, str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # -- days ---------------------------------------------------------------------------------------------------
    def public_holidays(self, year: int) -> dict[date, str]:
        """The public days off of `year` (date -> Vietnamese name), as the `holidays` package lists them."""
        if self.holidays_country is None:
            return {}
        if year not in self._holiday_cache:
            import holidays

            country = holidays.country_holidays(self.holidays_country, years=year)
            if "vi" in getattr(country, "supported_languages", ()):
                country = holidays.country_holidays(self.holidays_country, years=year, language="vi")
            self._holiday_cache[year] = {d: str(name) for d, name in country.items() if d.year == year}
        return self._holiday_cache[year]

    def day_off_reason(self, day: date) -> str | None:
        """Why `day` is not a working day (Vietnamese), or None when it is one."""
        if day in self.makeup_working_days:
            return None
        if day in self.extra_days_off:
            return self.extra_days_off[day] or "Ngày nghỉ (theo cấu hình)"
        holiday = self.public_holidays(day.year).get(day)
        if holiday is not None:
            return holiday
        if day.weekday() not in self.weekdays:
            return "Ngày nghỉ cuối tuần"
        return None

    def is_working_day(self, day: date) -> bool:
        return self.day_off_reason(day) is None

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        for offset in range(1, _SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise InputError(f"{self.source}: no working day within {_SEARCH_DAYS} days after {day.isoformat()}")

    def _intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of `day` as UTC [start, end) pairs; empty on a day off."""
        if not self.is_working_day(day):
            return []
        tz = self.tz
        return [(datetime.combine(day, p.start, tzinfo=tz).astimezone(UTC),
                 datetime.combine(day, p.end, tzinfo=tz).astimezone(UTC)) for p in self.periods]

    def working_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of `day` in the calendar's zone; empty on a day off."""
        tz = self.tz
        return [(a.astimezone(tz), b.astimezone(tz)) for a, b in self._intervals(day)]

    def _days_from(self, at: datetime) -> Iterator[date]:
        first = at.astimezone(self.tz).date()
        for offset in range(_SEARCH_DAYS):
            yield first + timedelta(days=offset)
        raise InputError(f"{self.source}: no working time within {_SEARCH_DAYS} days after {at.isoformat()}")

    # -- moments ------------------------------------------------------------------------------------------------
    def is_working_time(self, at: datetime) -> bool:
        moment = _aware(at, "time")
        day = moment.astimezone(self.tz).date()
        return any(a <= moment < b for a, b in self._intervals(day))

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time in [start, end), in seconds; 0 when end is not after start."""
        lo, hi = _aware(start, "start"), _aware(end, "end")
        if hi <= lo:
            return 0.0
        total = timedelta()
        day, last = lo.astimezone(self.tz).date(), hi.astimezone(self.tz).date()
        while day <= last:
            for a, b in self._intervals(day):
                overlap = min(b, hi) - max(a, lo)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total.total_seconds()

    def working_hours(self, start: datetime, end: datetime) -> float:
        return self.working_seconds(start, end) / 3600

    def next_period_start(self, at: datetime) -> datetime:
        """The start of the first working period that begins after `at` (strictly)."""
        moment = _aware(at, "time")
        for day in self._days_from(moment):
            for a, _b in self._intervals(day):
                if a > moment:
                    return a.astimezone(self.tz)
        raise AssertionError("unreachable")  # pragma: no cover  (_days_from raises)

    def effective_start(self, received: datetime) -> datetime:
        """When a message received at `received` counts as received (Điều 8.3b): itself when that is working
        time; otherwise the start of working hours of the next working day (`after_hours: next_working_day`, the
        literal text) or of the next working period (`after_hours: next_period`)."""
        moment = _aware(received, "received")
        if self.is_working_time(moment):
            return moment.astimezone(self.tz)
        if self.after_hours == "next_period":
            return self.next_period_start(moment)
        day = moment.astimezone(self.tz).date()
        today = self._intervals(day)
        if today and moment < today[0][0]:  # before the working day began: that day is the next working day
            return today[0][0].astimezone(self.tz)
        return self._intervals(self.next_working_day(day))[0][0].astimezone(self.tz)

    def add_working_time(self, start: datetime, seconds: float) -> datetime:
        """The moment when `seconds` of working time have passed since `start` (counting from `start` itself,
        skipping everything that is not working time). A sum that ends exactly at the end of a period gives that
        end, not the start of the next period."""
        moment = _aware(start, "start")
        if seconds < 0:
            raise InputError(f"working time to add must not be negative (got {seconds})")
        remaining = timedelta(seconds=seconds)
        if remaining == timedelta():
            return moment.astimezone(self.tz)
        for day in self._days_from(moment):
            for a, b in self._intervals(day):
                if b <= moment:
                    continue
                begin = max(a, moment)
                if remaining <= b - begin:
                    return (begin + remaining).astimezone(self.tz)
                remaining -= b - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def deadline(self, received: datetime, hours: float = SLA_HOURS) -> datetime:
        """When the answer to a message received at `received` is due (Điều 9.2b: 2 working hours after the
        effective start of Điều 8.3b)."""
        return self.add_working_time(self.effective_start(received), hours * 3600)


# -- configuration --------------------------------------------------------------------------------------------------
def _time(text: str, where: str) -> time:
    match = _HHMM.fullmatch(text.strip())
    if not match:
        raise InputError(f"{where}: {text!r} is not a time HH:MM")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise InputError(f"{where}: {text!r} is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


def _period(value: Any, where: str) -> Period:
    if isinstance(value, str):
        match = _PERIOD.fullmatch(value)
        if not match:
            raise InputError(f"{where}: {value!r} is not a period HH:MM-HH:MM")
        start, end = _time(match.group(1), where), _time(match.group(2), where)
    elif isinstance(value, Mapping):
        unknown = set(value) - {"start", "end"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (start, end)")
        parts = []
        for key in ("start", "end"):
            item = value.get(key)
            if isinstance(item, int):
                raise InputError(f"{where}.{key}: got the number {item}: quote the time, e.g. \"11:30\" (YAML "
                                 "reads an unquoted 11:30 as 690)")
            if not isinstance(item, str):
                raise InputError(f"{where}.{key}: expected a quoted time \"HH:MM\", got {item!r}")
            parts.append(_time(item, f"{where}.{key}"))
        start, end = parts
    elif isinstance(value, int):
        raise InputError(f"{where}: {value!r} is a number: quote the period, e.g. \"07:30-11:30\" (YAML reads an "
                         "unquoted 07:30 as 450)")
    else:
        raise InputError(f"{where}: expected a period \"HH:MM-HH:MM\", got {value!r}")
    if end <= start:
        raise InputError(f"{where}: period {start:%H:%M}-{end:%H:%M} ends before it starts")
    return Period(start, end)


def _date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        raise InputError(f"{where}: {value!r} is a date and time; give a date YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{where}: {value!r} is not a date YYYY-MM-DD")


def _dates(value: Any, key: str, source: str) -> dict[date, str]:
    """A list of dates, or a mapping date -> reason."""
    if value is None:
        return {}
    out: dict[date, str] = {}
    if isinstance(value, Mapping):
        for raw, reason in value.items():
            day = _date(raw, f"{source}: {key}.{raw}")
            if reason is not None and not isinstance(reason, str):
                raise InputError(f"{source}: {key}.{raw}: the reason must be text, got {reason!r}")
            out[day] = reason or ""
        return out
    if isinstance(value, list):
        for i, raw in enumerate(value):
            day = _date(raw, f"{source}: {key}[{i}]")
            if day in out:
                raise InputError(f"{source}: {key}[{i}]: {day.isoformat()} is listed twice")
            out[day] = ""
        return out
    raise InputError(f"{source}: {key}: expected a list of dates or a mapping date: reason, got {value!r}")


def _weekdays(value: Any, source: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{source}: weekdays: expected a non-empty list of mon, tue, wed, thu, fri, sat, sun")
    days: set[int] = set()
    for i, item in enumerate(value):
        name = item.strip().lower()[:3] if isinstance(item, str) else None
        if name not in WEEKDAYS:
            raise InputError(f"{source}: weekdays[{i}]: {item!r} is not one of {', '.join(WEEKDAYS)}")
        days.add(WEEKDAYS.index(name))
    return frozenset(days)


def _check_periods(periods: Iterable[Period], source: str) -> tuple[Period, ...]:
    ordered = sorted(enumerate(periods), key=lambda ip: ip[1].start)
    for (_, before), (i, after) in pairwise(ordered):
        if after.start < before.end:
            raise InputError(f"{source}: periods[{i}]: {after} overlaps {before}")
    return tuple(p for _, p in ordered)


def _timezone(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: timezone: expected a zone name such as Asia/Ho_Chi_Minh, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"{source}: timezone: unknown time zone {value!r}") from exc
    return value


def _country(value: Any, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: holidays_country: expected a country code such as VN, or null")
    import holidays

    if value.upper() not in holidays.list_supported_countries():
        raise InputError(f"{source}: holidays_country: {value!r} is not a country the holidays package knows")
    return value.upper()


def parse_calendar(data: Mapping[str, Any] | None, source: str = "working hours") -> WorkCalendar:
    """Validate a working-hours configuration (a mapping as YAML or the inventory gives it); every error names
    `source` and the key. Keys left out take the state's defaults."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping of {', '.join(sorted(TOP_KEYS))}")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"known: {', '.join(sorted(TOP_KEYS))}")

    tzname = _timezone(data.get("timezone", DEFAULT_TIMEZONE), source)

    raw_periods = data.get("periods", list(DEFAULT_PERIODS))
    if not isinstance(raw_periods, list) or not raw_periods:
        raise InputError(f"{source}: periods: expected a non-empty list of \"HH:MM-HH:MM\"")
    periods = _check_periods([_period(p, f"{source}: periods[{i}]") for i, p in enumerate(raw_periods)], source)

    weekdays = _weekdays(data.get("weekdays", list(WEEKDAYS[:5])), source)

    country = _country(data.get("holidays_country", "VN"), source)

    after = data.get("after_hours", "next_working_day")
    if after not in AFTER_HOURS:
        raise InputError(f"{source}: after_hours: {after!r} is not one of {', '.join(AFTER_HOURS)}")

    days_off = _dates(data.get("extra_days_off"), "extra_days_off", source)
    makeup = _dates(data.get("makeup_working_days"), "makeup_working_days", source)
    calendar = WorkCalendar(periods=periods, weekdays=weekdays, timezone=tzname, holidays_country=country,
                            extra_days_off=days_off, makeup_working_days=frozenset(makeup), after_hours=after,
                            source=source)
    for day in sorted(makeup):
        if day in days_off:
            raise InputError(f"{source}: makeup_working_days: {day.isoformat()} is also in extra_days_off")
        holiday = calendar.public_holidays(day.year).get(day)
        if holiday is not None:
            raise InputError(f"{source}: makeup_working_days: {day.isoformat()} is a public holiday ({holiday})")
    return calendar


def load_calendar(path: str | Path) -> WorkCalendar:
    """Read and validate a working-hours YAML file."""
    return parse_calendar(read_yaml(path, "working-hours file"), str(path))
