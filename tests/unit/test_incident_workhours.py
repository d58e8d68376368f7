"""provsec.reports.workhours: the province's working-hours clock and its configuration.

Every expected figure below is worked out by hand from the calendar (the comments show the sum); the public
holidays are checked against the Government's published calendars, not against what the package prints:
- Tết Bính Ngọ 2026: civil servants off Saturday 14/2 to Sunday 22/2/2026 (9 days), so Mon 16/2–Fri 20/2 are off.
- Tết Ất Tỵ 2025: off Saturday 25/1 to Sunday 2/2/2025, so Mon 27/1–Fri 31/1 are off.
- 30/4–1/5/2025: off Wed 30/4 to Sun 4/5/2025; Friday 2/5 was swapped with Saturday 26/4, which was worked.
- 2/9/2025: off Sat 30/8 to Tue 2/9/2025.  Giỗ Tổ 2025: Monday 7/4/2025 (10/3 âm lịch).
- Giỗ Tổ 2026 (10/3 âm lịch) falls on Sunday 26/4/2026: Bộ luật Lao động 2019 Điều 112.3 gives Monday 27/4 off.
- 2027: 1/1 (Fri) and 30/4 (Fri) are off; 1/5/2027 is a Saturday, so Monday 3/5 is off (Điều 112.3)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from provsec.errors import InputError
from provsec.reports.workhours import WorkCalendar, load_calendar, parse_calendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600.0


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return parse_calendar({}, "test")


@pytest.fixture(scope="module")
def cal2025() -> WorkCalendar:
    """The defaults plus 2025's make-up Saturday (26/4/2025 worked for Friday 2/5)."""
    return parse_calendar({"makeup_working_days": ["2025-04-26"]}, "test")


# -- public holidays ------------------------------------------------------------------------------------------------
DAYS_OFF = [
    *(date(2026, 2, d) for d in range(16, 21)),   # Tết 2026 weekdays
    *(date(2025, 1, d) for d in range(27, 32)),   # Tết 2025 weekdays
    date(2025, 4, 7),                             # Giỗ Tổ 2025
    date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2),
    date(2025, 9, 1), date(2025, 9, 2),
    date(2026, 1, 1), date(2026, 4, 27), date(2026, 4, 30), date(2026, 5, 1), date(2026, 9, 2),
    date(2027, 1, 1), date(2027, 4, 30), date(2027, 5, 3),
]
WORKING_DAYS = [date(2026, 2, 13), date(2026, 2, 23), date(2025, 2, 3), date(2025, 4, 29), date(2025, 5, 5),
                date(2026, 4, 28), date(2026, 4, 29), date(2025, 9, 3), date(2027, 5, 4)]


@pytest.mark.parametrize("day", DAYS_OFF, ids=str)
def test_public_holidays_are_days_off(cal: WorkCalendar, day: date) -> None:
    assert day.weekday() < 5  # a weekday that would otherwise be worked
    assert not cal.is_working_day(day)
    assert cal.working_periods(day) == []


@pytest.mark.parametrize("day", WORKING_DAYS, ids=str)
def test_ordinary_weekdays_around_holidays_are_worked(cal: WorkCalendar, day: date) -> None:
    assert cal.is_working_day(day)
    assert cal.day_off_reason(day) is None


def test_day_off_reasons_are_vietnamese(cal: WorkCalendar) -> None:
    assert "Tết" in (cal.day_off_reason(date(2026, 2, 17)) or "")
    assert "Hùng Vương" in (cal.day_off_reason(date(2025, 4, 7)) or "")
    assert cal.day_off_reason(date(2026, 3, 7)) == "Ngày nghỉ cuối tuần"  # a Saturday


def test_the_package_does_not_know_make_up_saturdays(cal: WorkCalendar, cal2025: WorkCalendar) -> None:
    saturday = date(2025, 4, 26)
    assert saturday.weekday() == 5
    assert not cal.is_working_day(saturday)
    assert cal2025.is_working_day(saturday)
    assert not cal2025.is_working_day(date(2025, 5, 2))  # the Friday it paid for stays off


# -- working time ---------------------------------------------------------------------------------------------------
def test_working_time_inside_one_period(cal: WorkCalendar) -> None:
    assert cal.working_seconds(vn(2026, 3, 9, 8), vn(2026, 3, 9, 10)) == 2 * H


def test_lunch_break_is_not_working_time(cal: WorkCalendar) -> None:
    # 11:00–11:30 and 13:30–14:00
    assert cal.working_seconds(vn(2026, 3, 9, 11), vn(2026, 3, 9, 14)) == 1 * H
    assert not cal.is_working_time(vn(2026, 3, 9, 12))
    assert cal.is_working_time(vn(2026, 3, 9, 11, 29))
    assert not cal.is_working_time(vn(2026, 3, 9, 11, 30))  # periods are [start, end)
    assert cal.is_working_time(vn(2026, 3, 9, 13, 30))


def test_a_working_day_has_seven_and_a_half_hours(cal: WorkCalendar) -> None:
    # 4 h in the morning + 3.5 h in the afternoon
    assert cal.working_seconds(vn(2026, 3, 9), vn(2026, 3, 10)) == 7.5 * H


def test_friday_evening_to_monday_morning(cal: WorkCalendar) -> None:
    # Fri 6/3/2026 16:00–17:00 (1 h) + Mon 9/3 07:30–08:30 (1 h); the weekend counts nothing
    assert cal.working_seconds(vn(2026, 3, 6, 16), vn(2026, 3, 9, 8, 30)) == 2 * H
    assert cal.working_seconds(vn(2026, 3, 6, 18), vn(2026, 3, 9, 7, 0)) == 0


def test_tet_2026_counts_nothing(cal: WorkCalendar) -> None:
    # Fri 13/2 16:00–17:00 (1 h), nine days off, Mon 23/2 07:30–08:30 (1 h)
    assert cal.working_seconds(vn(2026, 2, 13, 16), vn(2026, 2, 23, 8, 30)) == 2 * H


def test_make_up_saturday_counts(cal: WorkCalendar, cal2025: WorkCalendar) -> None:
    start, end = vn(2025, 4, 25, 16), vn(2025, 4, 28, 8)
    # Fri 25/4 16:00–17:00 (1 h) + Mon 28/4 07:30–08:00 (0.5 h) …
    assert cal.working_seconds(start, end) == 1.5 * H
    # … + the whole make-up Saturday 26/4 (7.5 h)
    assert cal2025.working_seconds(start, end) == 9 * H


def test_a_month_of_working_hours(cal: WorkCalendar) -> None:
    # February 2026 starts on a Sunday: 4 full weeks, 20 weekdays, 5 of them Tết: 15 days × 7.5 h
    assert cal.working_seconds(vn(2026, 2, 1), vn(2026, 3, 1)) == 15 * 7.5 * H


def test_end_before_start_is_zero(cal: WorkCalendar) -> None:
    assert cal.working_seconds(vn(2026, 3, 9, 10), vn(2026, 3, 9, 9)) == 0


def test_utc_and_other_offsets_are_the_same_instants(cal: WorkCalendar) -> None:
    # 00:30 UTC is 07:30 in Việt Nam (UTC+7 all year: no daylight saving time)
    start = datetime(2026, 3, 9, 0, 30, tzinfo=UTC)
    assert cal.is_working_time(start)
    assert not cal.is_working_time(start - timedelta(seconds=1))
    tokyo = timezone(timedelta(hours=9))
    assert cal.working_seconds(start, datetime(2026, 3, 9, 11, 30, tzinfo=tokyo)) == 2 * H  # = 09:30 in VN
    result = cal.effective_start(datetime(2026, 3, 9, 22, 0, tzinfo=UTC))  # 05:00 Tuesday in VN
    assert result == vn(2026, 3, 10, 7, 30)
    assert result.utcoffset() == timedelta(hours=7)


def test_ho_chi_minh_city_has_no_daylight_saving_time() -> None:
    for month in range(1, 13):
        assert vn(2026, month, 15).utcoffset() == timedelta(hours=7)


def test_a_zone_with_daylight_saving_time_counts_real_seconds() -> None:
    # Berlin moves 02:00 -> 03:00 on Sunday 29/3/2026: the wall-clock period 01:00–04:00 lasts 2 real hours
    berlin = parse_calendar({"timezone": "Europe/Berlin", "holidays_country": None, "periods": ["01:00-04:00"],
                             "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, "test")
    day = ZoneInfo("Europe/Berlin")
    assert berlin.working_seconds(datetime(2026, 3, 29, tzinfo=day), datetime(2026, 3, 30, tzinfo=day)) == 2 * H
    assert berlin.working_seconds(datetime(2026, 3, 28, tzinfo=day), datetime(2026, 3, 29, tzinfo=day)) == 3 * H


@pytest.mark.parametrize("call", ["working_seconds", "effective_start", "deadline", "is_working_time",
                                  "add_working_time"])
def test_naive_datetimes_are_refused(cal: WorkCalendar, call: str) -> None:
    naive = datetime(2026, 3, 9, 9, 0)
    args: dict[str, tuple[Any, ...]] = {"working_seconds": (naive, vn(2026, 3, 9, 10)),
                                        "add_working_time": (naive, 60.0)}
    with pytest.raises(InputError, match="naive"):
        getattr(cal, call)(*args.get(call, (naive,)))


# -- Điều 8.3b: effective start -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("received", "expected"), [
    (vn(2026, 3, 9, 9, 15), vn(2026, 3, 9, 9, 15)),     # in working hours: itself
    (vn(2026, 3, 9, 7, 30), vn(2026, 3, 9, 7, 30)),     # the first moment of the day is working time
    (vn(2026, 3, 9, 6, 0), vn(2026, 3, 9, 7, 30)),      # before work on a working day: that day's start
    (vn(2026, 3, 9, 12, 0), vn(2026, 3, 10, 7, 30)),    # lunch is outside working hours: next working day
    (vn(2026, 3, 9, 11, 30), vn(2026, 3, 10, 7, 30)),   # the end of the morning is already outside
    (vn(2026, 3, 9, 17, 0), vn(2026, 3, 10, 7, 30)),    # the end of the day
    (vn(2026, 3, 6, 18, 0), vn(2026, 3, 9, 7, 30)),     # Friday evening -> Monday
    (vn(2026, 3, 7, 10, 0), vn(2026, 3, 9, 7, 30)),     # Saturday
    (vn(2026, 2, 13, 18, 0), vn(2026, 2, 23, 7, 30)),   # Friday before Tết -> Monday after it
    (vn(2026, 2, 17, 9, 0), vn(2026, 2, 23, 7, 30)),    # during Tết
])
def test_effective_start_next_working_day(cal: WorkCalendar, received: datetime, expected: datetime) -> None:
    assert cal.effective_start(received) == expected


def test_effective_start_next_period_option() -> None:
    cal = parse_calendar({"after_hours": "next_period"}, "test")
    assert cal.effective_start(vn(2026, 3, 9, 12, 0)) == vn(2026, 3, 9, 13, 30)
    assert cal.effective_start(vn(2026, 3, 9, 17, 0)) == vn(2026, 3, 10, 7, 30)
    assert cal.effective_start(vn(2026, 3, 9, 9, 0)) == vn(2026, 3, 9, 9, 0)


def test_effective_start_on_a_make_up_saturday(cal2025: WorkCalendar) -> None:
    assert cal2025.effective_start(vn(2025, 4, 26, 6, 0)) == vn(2025, 4, 26, 7, 30)
    assert cal2025.effective_start(vn(2025, 4, 25, 20, 0)) == vn(2025, 4, 26, 7, 30)
    # 30/4, 1/5, 2/5 (swapped), then the weekend: Tuesday 29/4 evening -> Monday 5/5
    assert cal2025.effective_start(vn(2025, 4, 29, 20, 0)) == vn(2025, 5, 5, 7, 30)


# -- Điều 9.2b: deadline --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("received", "expected"), [
    (vn(2026, 3, 9, 9, 0), vn(2026, 3, 9, 11, 0)),     # 2 h in the morning
    (vn(2026, 3, 9, 10, 30), vn(2026, 3, 9, 14, 30)),  # 1 h before lunch, 1 h after
    (vn(2026, 3, 9, 15, 0), vn(2026, 3, 9, 17, 0)),    # ends exactly at the end of the day, not tomorrow
    (vn(2026, 3, 9, 16, 0), vn(2026, 3, 10, 8, 30)),   # 1 h today, 1 h tomorrow
    (vn(2026, 3, 6, 20, 0), vn(2026, 3, 9, 9, 30)),    # Friday night: from Monday 07:30
    (vn(2026, 3, 9, 12, 0), vn(2026, 3, 10, 9, 30)),   # lunch: from Tuesday 07:30 (Điều 8.3b)
    (vn(2026, 2, 13, 16, 30), vn(2026, 2, 23, 9, 0)),  # 0.5 h before Tết, 1.5 h after
])
def test_deadline_two_working_hours(cal: WorkCalendar, received: datetime, expected: datetime) -> None:
    assert cal.deadline(received) == expected


def test_deadline_other_lengths(cal: WorkCalendar) -> None:
    assert cal.deadline(vn(2026, 3, 9, 9, 0), hours=0) == vn(2026, 3, 9, 9, 0)
    # 8 h from Monday 07:30: 7.5 h on Monday, 0.5 h on Tuesday
    assert cal.deadline(vn(2026, 3, 9, 7, 30), hours=8) == vn(2026, 3, 10, 8, 0)
    with pytest.raises(InputError, match="negative"):
        cal.add_working_time(vn(2026, 3, 9, 9), -1)


def test_deadline_and_working_seconds_agree(cal2025: WorkCalendar) -> None:
    """Working time from the effective start to the deadline is exactly the time allowed, whatever the start."""
    rng = random.Random(2025)
    base = vn(2025, 1, 1)
    for _ in range(300):
        received = base + timedelta(minutes=rng.randrange(0, 366 * 24 * 60))
        hours = rng.choice([0.25, 1, 2, 7.5, 20])
        due = cal2025.deadline(received, hours)
        assert cal2025.working_seconds(cal2025.effective_start(received), due) == pytest.approx(hours * H)
        assert cal2025.is_working_time(due - timedelta(seconds=1))


# -- configuration --------------------------------------------------------------------------------------------------
def test_yaml_configuration(tmp_path: Path) -> None:
    path = tmp_path / "hours.yml"
    path.write_text(
        'timezone: Asia/Ho_Chi_Minh\nweekdays: [Mon, tue, wed, thu, fri]\nperiods: ["07:00-11:00", "13:00-17:00"]\n'
        'holidays_country: VN\nextra_days_off: {2026-01-02: "Nghỉ bù Tết Dương lịch"}\n'
        "makeup_working_days: [2026-01-10]\nafter_hours: next_period\n", encoding="utf-8")
    cal = load_calendar(path)
    assert cal.working_seconds(vn(2026, 3, 9), vn(2026, 3, 10)) == 8 * H
    assert cal.day_off_reason(date(2026, 1, 2)) == "Nghỉ bù Tết Dương lịch"
    assert cal.is_working_day(date(2026, 1, 10))  # a Saturday
    assert cal.effective_start(vn(2026, 3, 9, 12)) == vn(2026, 3, 9, 13, 0)


def test_no_public_holidays_when_country_is_null() -> None:
    cal = parse_calendar({"holidays_country": None}, "test")
    assert cal.is_working_day(date(2026, 2, 17))


@pytest.mark.parametrize(("data", "names"), [
    ({"periods": ["25:00-26:00"]}, "periods[0]"),
    ({"periods": ["11:30-07:30"]}, "periods[0]"),
    ({"periods": ["07:30-11:30", "11:00-17:00"]}, "periods[1]"),
    ({"periods": ["13:30-17:00", "07:30-11:30", "10:00-12:00"]}, "periods[2]"),
    ({"periods": [450]}, "quote"),
    ({"periods": [{"start": "07:30"}]}, "periods[0].end"),
    ({"periods": []}, "periods"),
    ({"weekdays": ["mon", "funday"]}, "weekdays[1]"),
    ({"weekdays": []}, "weekdays"),
    ({"timezone": "Asia/Hanoi_Nowhere"}, "timezone"),
    ({"holidays_country": "XX"}, "holidays_country"),
    ({"after_hours": "whenever"}, "after_hours"),
    ({"extra_days_off": ["2026-02-30"]}, "extra_days_off[0]"),
    ({"extra_days_off": {"tomorrow": "x"}}, "extra_days_off.tomorrow"),
    ({"makeup_working_days": ["2026-01-10", "2026-01-10"]}, "makeup_working_days[1]"),
    ({"makeup_working_days": [datetime(2026, 1, 10, 8, 0)]}, "makeup_working_days[0]"),
    ({"makeup_working_days": ["2026-04-30"]}, "public holiday"),
    ({"makeup_working_days": ["2026-01-10"], "extra_days_off": ["2026-01-10"]}, "also in extra_days_off"),
    ({"workhours": {}}, "unknown key"),
])
def test_bad_configuration_names_the_key(data: dict[str, Any], names: str) -> None:
    with pytest.raises(InputError) as info:
        parse_calendar(data, "inventory/phuyen/group_vars/all/incidents.yml")
    assert str(info.value).startswith("inventory/phuyen/group_vars/all/incidents.yml: ")
    assert names in str(info.value)


def test_unquoted_yaml_times_are_explained(tmp_path: Path) -> None:
    path = tmp_path / "hours.yml"
    # YAML 1.1 reads 11:30 as the base-60 number 690 (07:30 stays text: a leading 0 is not base 60)
    path.write_text("periods:\n  - {start: 07:30, end: 11:30}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"periods\[0\]\.end: got the number 690: quote the time"):
        load_calendar(path)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_calendar(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("periods: [\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_calendar(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(InputError, match="expected a mapping"):
        load_calendar(bad)
