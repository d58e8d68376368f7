"""The report month: `YYYY-MM` parsed once, its bounds as UTC instants of local midnights (Asia/Ho_Chi_Minh by
default: an incident at 23:30 on 31 October local time belongs to October even though it is 16:30 UTC), and a
value that says where a computed number came from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from provsec.errors import InputError

REPORT_TZ = "Asia/Ho_Chi_Minh"
_MONTH = re.compile(r"(\d{4})-(\d{2})")

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int
    timezone: str = REPORT_TZ

    @classmethod
    def parse(cls, text: object, where: str = "--month", timezone: str = REPORT_TZ) -> Month:
        match = _MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise InputError(f"{where}: {text!r} is not a month YYYY-MM (e.g. 2026-10)")
        return cls(int(match.group(1)), int(match.group(2)), timezone)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1, self.timezone)

    @property
    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1, self.timezone)

    @property
    def start(self) -> datetime:
        """Local midnight of the first day, in UTC."""
        return datetime.combine(self.first_day, datetime.min.time(), tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """Local midnight of the next month's first day, in UTC: the month is [start, end)."""
        return self.next.start

    def days(self) -> list[date]:
        out, day = [], self.first_day
        while day < self.next.first_day:
            out.append(day)
            day += timedelta(days=1)
        return out

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


@dataclass(frozen=True)
class Traced(Generic[T]):
    """A computed value and the ids of the source records it was computed from (`incident:12`,
    `backup:db1/pg-main@2026-10-03T18:00:05.000Z`, `audit:web1/PS-SSH-02`), so any number in a report can be
    followed back to the records in the collected folder."""

    value: T
    sources: tuple[str, ...] = ()
