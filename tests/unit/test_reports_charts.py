"""provsec.reports.charts: the SVG parsed with xml.etree, and the geometry checked against values worked out by
hand (bar heights against the axis drawn in the chart, tick values, escaping, no data, refused values)."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from provsec.errors import InputError
from provsec.reports import charts
from provsec.reports.backups import JobFigures
from provsec.reports.compliance import compliance_figures
from provsec.reports.incidents import incident_stats
from provsec.reports.month import Month, Traced
from provsec.reports.prometheus import Series
from provsec.reports.sources import ControlResult
from provsec.reports.workhours import WorkCalendar

NS = "{http://www.w3.org/2000/svg}"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - the SVG the code under test made (no DTD, no entity)
    assert root.tag == f"{NS}svg"
    return root


def of_class(root: ET.Element, cls: str, tag: str = "*") -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}" if tag != "*" else tag) if e.get("class") == cls]


def texts(root: ET.Element, cls: str) -> list[str]:
    return ["".join(e.itertext()) for e in of_class(root, cls, "text")]


def num(e: ET.Element, attr: str) -> float:
    return float(e.get(attr, "nan"))


def axis_scale(root: ET.Element) -> tuple[float, float, list[float]]:
    """(y of the tick 0, pixels per unit, tick values) read from the horizontal grid lines and the tick labels."""
    lines = of_class(root, "grid", "line")
    ticks = [float(t.replace(".", "").replace(",", ".")) for t in texts(root, "tick")]
    ys = [num(line, "y1") for line in lines]
    return ys[0], (ys[0] - ys[-1]) / ticks[-1], ticks


# --- the scale ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("maximum", "whole", "expected"), [
    (7, False, [0, 2, 4, 6, 8]),  # 7 / 5 = 1.4 → step 2, first multiple ≥ 7: 8
    (10, False, [0, 2, 4, 6, 8, 10]),
    (12, False, [0, 5, 10, 15]),  # 2.4 → 5
    (31, False, [0, 10, 20, 30, 40]),  # 6.2 → 10
    (100, False, [0, 20, 40, 60, 80, 100]),
    (3, False, [0, 1, 2, 3]),  # 0.6 → 1
    (0.7, False, [0, 0.2, 0.4, 0.6, 0.8]),  # 0.14 → 0.2
    (0.03, False, [0, 0.01, 0.02, 0.03]),  # 0.006 → 0.01
    (1, True, [0, 1]),  # counts: never a step below 1
    (2, True, [0, 1, 2]),
    (0, False, [0, 1]),  # nothing counted: an axis 0..1 all the same
    (1234, False, [0, 500, 1000, 1500]),  # 246.8 → 500
])
def test_nice_ticks_start_at_0_and_step_by_1_2_or_5(maximum: float, whole: bool, expected: list[float]) -> None:
    assert charts.nice_ticks(maximum, whole=whole) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf])
def test_nice_ticks_refuses_a_negative_or_non_finite_maximum(bad: float) -> None:
    with pytest.raises(InputError, match="axis maximum"):
        charts.nice_ticks(bad)


# --- vertical bars --------------------------------------------------------------------------------------------

def test_bar_chart_one_bar_per_value_heights_proportional_to_the_axis() -> None:
    values = [0, 3, 6, 12]
    root = parse(charts.bar_chart(["1", "2", "3", "4"], values, title="Sự cố"))
    bars = of_class(root, "bar", "rect")
    assert len(bars) == 4
    zero, per_unit, ticks = axis_scale(root)
    assert ticks == [0, 5, 10, 15]  # 12 / 5 = 2.4 → step 5
    assert texts(root, "tick") == ["0", "5", "10", "15"]
    for bar, value in zip(bars, values, strict=True):
        assert num(bar, "height") == pytest.approx(value * per_unit, abs=0.01)
        assert num(bar, "y") + num(bar, "height") == pytest.approx(zero, abs=0.01)  # every bar stands on 0
    # the bar of 12 reaches 12/15 of the axis
    assert num(bars[3], "height") / (zero - num(of_class(root, "grid", "line")[-1], "y1")) == pytest.approx(0.8,
                                                                                                          abs=1e-3)
    xs = [num(b, "x") for b in bars]
    steps = [b - a for a, b in itertools.pairwise(xs)]
    assert all(s > 0 for s in steps) and max(steps) - min(steps) < 0.02  # evenly spaced, in label order
    assert all(num(b, "x") + num(b, "width") <= charts.WIDTH for b in bars)
    # the values of the non-zero bars are written on the chart; the labels under every bar
    assert texts(root, "value") == ["3", "6", "12"]
    assert texts(root, "label") == ["1", "2", "3", "4"]
    assert root.get("width") == str(charts.WIDTH) and "Liberation Serif" in root.get("font-family", "")
    assert texts(root, "title") == ["Sự cố"]


def test_bar_chart_numbers_are_written_the_vietnamese_way_and_in_english() -> None:
    root = parse(charts.bar_chart(["a"], [1234.5], title="t"))
    assert texts(root, "value") == ["1.234,5"]
    assert texts(root, "tick") == ["0", "500", "1.000", "1.500"]
    root = parse(charts.bar_chart(["a"], [0.5], title="t", lang="en"))
    assert texts(root, "tick") == ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]


def test_output_is_the_same_for_the_same_data() -> None:
    args = (["1", "2"], [1, 2])
    assert charts.bar_chart(*args, title="x") == charts.bar_chart(*args, title="x")


def test_labels_and_titles_are_escaped() -> None:
    nasty = 'a<b & "c" \'d\''
    root = parse(charts.bar_chart([nasty], [1], title=nasty))
    assert texts(root, "title") == [nasty]
    assert root.get("aria-label") == nasty
    assert root.find(f"{NS}title") is not None and root.find(f"{NS}title").text == nasty  # type: ignore[union-attr]
    root = parse(charts.stacked_bar_chart([nasty], [(nasty, [2])], title="t"))
    assert texts(root, "label") == [nasty]
    assert "".join(of_class(root, "legend", "g")[0].itertext()) == nasty
    root = parse(charts.line_chart(["1"], [(nasty, [1])], title="t"))
    assert of_class(root, "series", "g")[0].get("data-name") == nasty
    root = parse(charts.bar_chart(["x\x00y"], [1], title="t"))  # a character XML forbids
    assert texts(root, "label") == ["x?y"]


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, -math.inf, "3", None, True])
def test_negative_non_finite_or_non_numbers_are_refused_naming_the_chart_and_label(bad: object) -> None:
    with pytest.raises(InputError, match=r"chart 'Sự cố'.*'ngày 2'"):
        charts.bar_chart(["ngày 1", "ngày 2"], [1, bad], title="Sự cố")  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"chart 't', series 's'.*'2'"):
        charts.line_chart(["1", "2"], [("s", [0, bad])], title="t")  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"chart 't', series 'fail'.*'db1'"):
        charts.stacked_bar_chart(["db1"], [("fail", [bad])], title="t")  # type: ignore[list-item]


def test_values_and_labels_must_pair_up() -> None:
    with pytest.raises(InputError, match="2 values for 3 labels"):
        charts.bar_chart(["1", "2", "3"], [1, 2], title="t")


@pytest.mark.parametrize(("svg", "message"), [
    (charts.bar_chart([], [], title="Trống"), "Không có dữ liệu"),
    (charts.line_chart(["1", "2"], [], title="Trống"), "Không có dữ liệu"),
    (charts.line_chart([], [("a", [])], title="Trống"), "Không có dữ liệu"),
    (charts.stacked_bar_chart([], [("đạt", [])], title="Trống"), "Không có dữ liệu"),
    (charts.bar_chart([], [], title="Trống", lang="en"), "No data"),
])
def test_no_data_is_a_chart_that_says_so(svg: str, message: str) -> None:
    root = parse(svg)
    assert texts(root, "no-data") == [message]
    assert texts(root, "title") == ["Trống"]
    assert not of_class(root, "bar") and not of_class(root, "segment") and not of_class(root, "point")


# --- lines ------------------------------------------------------------------------------------------------------

def test_line_chart_points_per_series_proportional_with_legend_and_peak_values() -> None:
    series = [("SSH", [0, 4, 8, 2]), ("sudo", [1, 1, 0, 0]), ("tài khoản", [0, 0, 0, 0])]
    root = parse(charts.line_chart(["1", "2", "3", "4"], series, title="Sự kiện"))
    zero, per_unit, ticks = axis_scale(root)
    assert ticks == [0, 2, 4, 6, 8]
    groups = of_class(root, "series", "g")
    assert [g.get("data-name") for g in groups] == ["SSH", "sudo", "tài khoản"]
    for group, (_, values) in zip(groups, series, strict=True):
        points = [e for e in group if e.get("class") == "point"]
        assert len(points) == 4
        ys = []
        for p in points:  # circle, square or triangle: the y of its centre
            if p.tag == f"{NS}circle":
                ys.append(num(p, "cy"))
            elif p.tag == f"{NS}rect":
                ys.append(num(p, "y") + 3)
            else:
                ys.append(float(p.get("d", "").split()[1]) + 4)  # "Mx y-4 …": the apex is 4 above the centre
        assert ys == pytest.approx([zero - v * per_unit for v in values], abs=0.02)
    # markers differ per series (greyscale print), and so do the dashes
    assert [next(iter(g)).get("stroke-dasharray") for g in groups] == [None, "6 3", "2 2"]
    assert [next(e for e in g if e.get("class") == "point").tag for g in groups] == \
        [f"{NS}circle", f"{NS}rect", f"{NS}path"]
    # each series' highest value written once; none for the series that stays at 0
    assert texts(root, "value") == ["8", "1"]
    assert ["".join(g.itertext()) for g in of_class(root, "legend", "g")] == ["SSH", "sudo", "tài khoản"]


# --- stacked horizontal bars -----------------------------------------------------------------------------------

def test_stacked_bars_segments_proportional_contiguous_with_totals_and_legend() -> None:
    rows = ["db1", "web1"]
    segments = [("đạt", [6, 2]), ("không đạt", [2, 0]), ("không áp dụng", [0, 3]), ("ngoại lệ", [1, 0])]
    root = parse(charts.stacked_bar_chart(rows, segments, title="Theo máy chủ"))
    assert texts(root, "tick") == ["0", "2", "4", "6", "8", "10"]  # totals 9 and 5: 9 / 5 = 1.8 → step 2
    grid = of_class(root, "grid", "line")
    origin = num(grid[0], "x1")
    per_unit = (num(grid[-1], "x1") - origin) / 10
    rects = of_class(root, "segment", "rect")
    assert len(rects) == 5  # segments of 0 are not drawn
    by_row: dict[float, list[ET.Element]] = {}
    for r in rects:
        by_row.setdefault(num(r, "y"), []).append(r)
    assert len(by_row) == 2
    for (_, drawn), expected in zip(sorted(by_row.items()), ([6, 2, 1], [2, 3]), strict=True):
        assert [num(r, "width") for r in drawn] == pytest.approx([v * per_unit for v in expected], abs=0.02)
        assert num(drawn[0], "x") == pytest.approx(origin, abs=0.01)
        for a, b in itertools.pairwise(drawn):  # each segment starts where the previous one ends
            assert num(b, "x") == pytest.approx(num(a, "x") + num(a, "width"), abs=0.02)
    assert texts(root, "total") == ["9", "5"]
    assert texts(root, "label") == rows
    # segment values written where they fit: all of them here (the narrowest, 1 unit, is ~50 px)
    assert sorted(texts(root, "value")) == sorted(["6", "2", "1", "2", "3"])
    legend = of_class(root, "legend", "g")
    assert ["".join(g.itertext()) for g in legend] == [name for name, _ in segments]
    # greyscale: the first status solid, the others patterns that are defined in this chart
    fills = [next(iter(g)).get("fill", "") for g in legend]
    assert fills[0].startswith("#") and all(f.startswith("url(#") for f in fills[1:])
    ids = {p.get("id") for p in root.iter(f"{NS}pattern")}
    assert {f[5:-1] for f in fills[1:]} <= ids and len(ids) == 3
    other = parse(charts.stacked_bar_chart(["x"], [("a", [1]), ("b", [1])], title="khác"))
    assert not ids & {p.get("id") for p in other.iter(f"{NS}pattern")}  # two charts on one page: no shared id


def test_long_row_labels_are_shortened_and_stay_inside_the_chart() -> None:
    long = "agency1-a-very-long-host-name.example.gov.vn"
    root = parse(charts.stacked_bar_chart([long], [("đạt", [3])], title="t"))
    (label,) = texts(root, "label")
    assert label.endswith("…") and len(label) < len(long)
    assert all(num(r, "x") + num(r, "width") <= charts.WIDTH for r in of_class(root, "segment", "rect"))


# --- the report figures ---------------------------------------------------------------------------------------

OCT = Month.parse("2026-10")


def test_incidents_per_day_one_bar_per_day_of_the_month() -> None:
    stats = incident_stats([], OCT, WorkCalendar(), datetime(2026, 11, 1, tzinfo=UTC))
    root = parse(charts.incidents_per_day(stats, "Sự cố theo ngày"))
    assert len(of_class(root, "bar", "rect")) == 31
    assert texts(root, "label") == [str(d) for d in range(1, 32)]
    assert texts(root, "value") == []  # a month without incidents: 31 bars of 0, no value written
    assert texts(parse(charts.incidents_per_day(None, "Sự cố theo ngày")), "no-data") == ["Không có dữ liệu"]


def test_security_events_sum_the_hosts_per_local_day() -> None:
    def at_local_midnight(day: int) -> datetime:  # the point that closes the local day before it
        return datetime(2026, 10, day, tzinfo=VN).astimezone(UTC)

    ssh = [Series({"instance": "web1:9100"}, ((at_local_midnight(3), 5.0), (at_local_midnight(4), 1.0))),
           Series({"instance": "db1:9100"}, ((at_local_midnight(3), 2.0),))]
    names = {"ssh_failures": "SSH", "sudo_failures": "sudo", "accounts_added": "tài khoản"}
    root = parse(charts.security_events_per_day({"ssh_failures": ssh, "sudo_failures": []}, OCT, names, "t"))
    groups = of_class(root, "series", "g")
    assert [g.get("data-name") for g in groups] == ["SSH", "sudo"]  # accounts_added was not collected
    zero, per_unit, _ = axis_scale(root)
    ys = [num(p, "cy") for p in groups[0] if p.get("class") == "point"]
    expected = [0.0] * 31
    expected[1], expected[2] = 7.0, 1.0  # 2/10: 5 (web1) + 2 (db1); 3/10: 1
    assert ys == pytest.approx([zero - v * per_unit for v in expected], abs=0.02)
    assert texts(root, "value") == ["7"]
    assert texts(parse(charts.security_events_per_day({}, OCT, names, "t")), "no-data") == ["Không có dữ liệu"]


def test_controls_per_host_by_status_in_the_audit_order() -> None:
    def result(host: str, control: str, status: str) -> ControlResult:
        return ControlResult(host, control, status, "", "", (), datetime(2026, 10, 30, tzinfo=UTC), None)

    fig = compliance_figures([result("web1", "A", "pass"), result("web1", "B", "fail"),
                              result("web1", "C", "excepted"), result("db1", "A", "pass"),
                              result("db1", "B", "not_applicable")])
    root = parse(charts.controls_per_host(fig, "t", "en"))
    assert texts(root, "label") == ["db1", "web1"]
    assert texts(root, "total") == ["2", "3"]
    assert ["".join(g.itertext()) for g in of_class(root, "legend", "g")] == \
        ["pass", "fail", "not applicable", "excepted"]
    assert [r.get("data-series") for r in of_class(root, "segment", "rect")] == ["0", "2", "0", "1", "3"]
    assert texts(parse(charts.controls_per_host(compliance_figures([]), "t")), "no-data") == ["Không có dữ liệu"]


def test_backup_runs_succeeded_and_not() -> None:
    def job(host: str, name: str, runs: int, ok: int) -> JobFigures:
        return JobFigures(host, name, Traced(runs), Traced(ok), Traced(ok / runs if runs else None), Traced(None),
                          Traced(None), 86400.0, None, [])

    root = parse(charts.backup_runs([job("db1", "pg", 30, 28), job("web1", "files", 4, 4)], "t"))
    assert texts(root, "label") == ["db1 / pg", "web1 / files"]
    assert texts(root, "total") == ["30", "4"]
    assert [r.get("data-series") for r in of_class(root, "segment", "rect")] == ["0", "1", "0"]
    assert ["".join(g.itertext()) for g in of_class(root, "legend", "g")] == ["thành công", "không thành công"]
    assert texts(parse(charts.backup_runs([], "t")), "no-data") == ["Không có dữ liệu"]

