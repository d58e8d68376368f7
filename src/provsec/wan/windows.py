"""Change windows: when a WAN edge's configuration may change, in Asia/Ho_Chi_Minh local time.

A window is written `DAYS HH:MM-HH:MM`: DAYS a day (`Sat`), a list (`Sat,Sun`) or a range (`Mon-Fri`); an end
at or before the start runs past midnight into the next day (`Sat 22:00-02:00` is Saturday 22:00 to Sunday
02:00). Windows come from the inventory variable `provsec_wan_change_windows` (a list, in
group_vars/wan_edge/ or per host) or from `--change-windows FILE` (YAML: `windows: [...]` for every device,
`devices: {gw1: [...]}` per device).

A change is seen when the backup fetches the configuration, not when it was made: it happened some time after
the previous successful fetch and before this one. It is flagged outside a window only when that whole
interval lies outside every window: a change made at 01:30 inside `Sat 22:00-02:00` and fetched at 02:05 is
not flagged. A device with no window declared has no time when changes are allowed: every change is flagged."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from provsec.errors import InputError
from provsec.fileio import read_yaml

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # Monday 0 … Sunday 6: the day the window starts
    start: dt.time
    end: dt.time
    text: str

    def intervals(self, first: dt.date, last: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The window's occurrences (local, aware) that start on a day from first to last."""
        out = []
        day = first
        while day <= last:
            if day.weekday() in self.days:
                begin = dt.datetime.combine(day, self.start, LOCAL_TZ)
                end = dt.datetime.combine(day, self.end, LOCAL_TZ)
                if end <= begin:
                    end += dt.timedelta(days=1)
                out.append((begin, end))
            day += dt.timedelta(days=1)
        return out


def _day(word: str, spec: str, where: str) -> int:
    key = word.strip().lower()[:3]
    if key not in DAYS or len(word.strip()) < 3:
        raise InputError(f"{where}: change window {spec!r}: unknown day {word!r} (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return DAYS.index(key)


def _time(text: str, spec: str, where: str) -> dt.time:
    hours, minutes = (int(x) for x in text.split(":"))
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise InputError(f"{where}: change window {spec!r}: {text} is not a time of day (00:00 to 23:59)")
    return dt.time(hours, minutes)


def parse(spec: object, where: str) -> Window:
    """One window; `where` names the file or variable it came from, for the error."""
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None or not isinstance(spec, str):
        raise InputError(f"{where}: change window {spec!r}: write it as DAYS HH:MM-HH:MM, e.g. \"Sat 22:00-02:00\" "
                         "or \"Mon-Fri 12:00-13:00\" (Asia/Ho_Chi_Minh)")
    days: set[int] = set()
    for part in m["days"].split(","):
        if "-" in part:
            a, b = (_day(x, spec, where) for x in part.split("-", 1))
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
        else:
            days.add(_day(part, spec, where))
    start, end = _time(m["start"], spec, where), _time(m["end"], spec, where)
    if start == end:
        raise InputError(f"{where}: change window {spec!r}: starts and ends at the same time")
    return Window(frozenset(days), start, end, spec.strip())


def parse_list(value: object, where: str) -> tuple[Window, ...]:
    if not isinstance(value, list):
        raise InputError(f"{where}: must be a list of change windows like \"Sat 22:00-02:00\", got {value!r}")
    return tuple(parse(v, where) for v in value)


def overlaps(windows: Sequence[Window], start: dt.datetime, end: dt.datetime) -> bool:
    """True when the instant interval [start, end] (aware datetimes) meets any window."""
    a, b = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
    first = a.date() - dt.timedelta(days=1)  # a window that started the day before may run past midnight
    for w in windows:
        for begin, finish in w.intervals(first, b.date()):
            if begin <= b and a < finish:
                return True
    return False


def inside(windows: Sequence[Window], when: dt.datetime) -> bool:
    return overlaps(windows, when, when)


def load_file(path: Path) -> tuple[tuple[Window, ...] | None, dict[str, tuple[Window, ...]]]:
    """(windows for every device or None, windows per device) from a --change-windows YAML file."""
    data = read_yaml(path, "change windows file")
    where = str(path)
    if not isinstance(data, dict) or not set(data) <= {"windows", "devices"}:
        raise InputError(f"{where}: must be a mapping with `windows:` (a list) and/or `devices:` "
                         "(device: list), e.g. windows: [\"Sat 22:00-02:00\"]")
    every = parse_list(data["windows"], f"{where}: windows") if "windows" in data else None
    devices = data.get("devices") or {}
    if not isinstance(devices, Mapping):
        raise InputError(f"{where}: devices: must map a device to its list of windows")
    return every, {str(d): parse_list(v, f"{where}: devices.{d}") for d, v in devices.items()}
