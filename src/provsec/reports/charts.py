"""Charts for the monthly reports, as SVG text (no plotting library: the output is small, the same for the same
data, and prints sharply in the PDF).

Every chart is WIDTH px wide (158.75 mm at 96 px per inch: inside the 165 mm text width of the A4 document), in
the document's serif font, with a title, an axis that starts at 0 and ends on a "nice" value (1, 2 or 5 × 10ⁿ
steps), the values written on the chart, and a legend when there is more than one series. Series are told apart
without colour too (greyscale print): stacked segments by pattern (solid, stripes, dots, cross-hatch), lines by
dash and marker shape. No data (no category, or no series) gives a chart of the same size that says so: the
notebooks always show the chart. Values must be finite and not negative (these are counts): anything else is an
InputError naming the chart and the label.

The first part draws (bar_chart, line_chart, stacked_bar_chart); the second turns the report figures into charts
(incidents per day, security events per day, controls per host by status, backup runs per job)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from provsec.errors import InputError
from provsec.reports import text

if TYPE_CHECKING:
    from provsec.reports.backups import JobFigures
    from provsec.reports.compliance import ComplianceFigures
    from provsec.reports.incidents import IncidentStats
    from provsec.reports.month import Month
    from provsec.reports.prometheus import Series

WIDTH = 600
FONT = "'Liberation Serif', 'Times New Roman', serif"
FONT_SIZE = 13  # px: 9.75 pt, labels and values
TITLE_SIZE = 15
SMALL_SIZE = 11  # the labels and values of the 31 days of a month
CHAR_WIDTH = 0.55  # the mean advance of a serif letter, in em, to place and shorten labels
_MARGIN = 8
_TITLE_H = 26
_AXIS_W = 46  # room for the tick labels left of a vertical axis

# stacked segments: (fill, pattern drawn over it or None); dark, then mid with stripes, light with dots,
# light with a cross-hatch: told apart in greyscale by lightness and by pattern
SEGMENT_STYLES = (("#2f6b3b", None), ("#c0392b", "stripes"), ("#d4d4d4", "dots"), ("#e8b64c", "hatch"))
# lines: (colour, dash array, marker)
LINE_STYLES = (("#1f3b73", "", "circle"), ("#c0392b", "6 3", "square"), ("#5b8a3c", "2 2", "triangle"),
               ("#000000", "8 2 2 2", "diamond"))
BAR_FILL = "#1f3b73"
GRID = "#c8c8c8"
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _e(value: str) -> str:
    """Text for an SVG element or attribute: XML-escaped (< & " ' >), characters XML forbids replaced by "?"."""
    return escape(_INVALID_XML.sub("?", value), quote=True)


def _f(value: float) -> str:
    """A coordinate: 2 decimals, without trailing zeros (the same text for the same chart)."""
    out = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if out == "-0" else out


def _width(label: str, size: float) -> float:
    return len(label) * CHAR_WIDTH * size


def _fit(label: str, room: float, size: float) -> str:
    """The label, shortened with "…" to about `room` px."""
    most = max(1, int(room / (CHAR_WIDTH * size)))
    return label if len(label) <= most else label[:max(1, most - 1)] + "…"


def _check(title: str, labels: Sequence[str], values: Sequence[float], series: str = "") -> list[float]:
    where = f"chart {title!r}" + (f", series {series!r}" if series else "")
    if len(values) != len(labels):
        raise InputError(f"{where}: {len(values)} values for {len(labels)} labels")
    out = []
    for label, value in zip(labels, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InputError(f"{where}: value {value!r} at {label!r}: expected a finite number, not negative")
        out.append(float(value))
    return out


def nice_ticks(maximum: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """The axis ticks from 0 to the first multiple of a nice step (1, 2 or 5 × 10ⁿ) ≥ `maximum`, about `count`
    steps; [0, 1] when the maximum is 0. `whole`: the values are counts, so the step is at least 1."""
    if not math.isfinite(maximum) or maximum < 0:
        raise InputError(f"axis maximum {maximum!r}: expected a finite number, not negative")
    if maximum == 0:
        return [0.0, 1.0]
    raw = maximum / count
    exponent = math.floor(math.log10(raw))
    step = 0.0
    for m in (1, 2, 5, 10):
        step = m * 10.0 ** exponent if exponent >= 0 else m / 10.0 ** -exponent
        if step >= raw * (1 - 1e-12):
            break
    if whole and step < 1:
        step = 1.0
    steps = math.ceil(round(maximum / step, 9))
    return [round(i * step, 12) for i in range(steps + 1)]


def _whole(values: Sequence[float]) -> bool:
    return all(v == int(v) for v in values)


def _tick_digits(ticks: Sequence[float]) -> int:
    step = ticks[1] - ticks[0]
    return 0 if step >= 1 else min(6, math.ceil(-math.log10(step) - 1e-9))


def _value(value: float, lang: str) -> str:
    """A value written on the chart: whole numbers without decimals, others with one."""
    return text.number(value, 0 if value == int(value) else 1, lang)


def _svg(height: float, title: str, body: list[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{_f(height)}" '
        f'viewBox="0 0 {WIDTH} {_f(height)}" font-family="{FONT}" font-size="{FONT_SIZE}" role="img" '
        f'aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{_f(height)}" fill="#ffffff"/>',
        f'<text class="title" x="{WIDTH / 2:g}" y="18" text-anchor="middle" font-size="{TITLE_SIZE}" '
        f'font-weight="bold">{_e(title)}</text>',
        *body, "</svg>", ""])


def _segment_styles(key: str, count: int) -> tuple[str, list[str]]:
    """The <defs> of the patterns and the fill of each of `count` segments. The ids carry `key` (a hash of the
    chart), so two different charts shown inline on one page never share an id."""
    defs, fills = [], []
    for i in range(count):
        fill, kind = SEGMENT_STYLES[i % len(SEGMENT_STYLES)]
        if kind is None:
            fills.append(fill)
            continue
        marks = {"stripes": '<path d="M0 8 L8 0 M-2 2 L2 -2 M6 10 L10 6" stroke="#ffffff" stroke-width="2"/>',
                 "dots": '<circle cx="4" cy="4" r="1.3" fill="#555555"/>',
                 "hatch": '<path d="M0 0 L8 8 M8 0 L0 8" stroke="#6b4e00" stroke-width="1"/>'}[kind]
        pid = f"provsec-{key}-seg{i}"
        defs.append(f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="8" height="8">'
                    f'<rect width="8" height="8" fill="{fill}"/>{marks}</pattern>')
        fills.append(f"url(#{pid})")
    return f"<defs>{''.join(defs)}</defs>" if defs else "", fills


def no_data(title: str, lang: str = "vi", height: float = 90) -> str:
    """A chart's frame saying that there are no data."""
    return _svg(height, title, [
        f'<rect x="{_MARGIN}" y="{_TITLE_H + 4}" width="{WIDTH - 2 * _MARGIN}" height="{_f(height - _TITLE_H - 12)}" '
        f'fill="none" stroke="{GRID}"/>',
        f'<text class="no-data" x="{WIDTH / 2:g}" y="{_f((height + _TITLE_H) / 2 + 4)}" text-anchor="middle" '
        f'font-style="italic">{_e(text.label("no_data", lang).capitalize())}</text>'])


def _legend(entries: Sequence[tuple[str, str]], top: float) -> tuple[list[str], float]:
    """Legend entries (swatch SVG drawn in a 14 × 10 box at (0, 0), label) laid out in rows from `top`;
    returns the elements and the height used."""
    out, x, y = [], float(_MARGIN), top
    for swatch, name in entries:
        label = _fit(name, WIDTH - 2 * _MARGIN - 20, FONT_SIZE)
        width = 20 + _width(label, FONT_SIZE) + 16
        if x > _MARGIN and x + width > WIDTH - _MARGIN:
            x, y = float(_MARGIN), y + 18
        out.append(f'<g class="legend" transform="translate({_f(x)},{_f(y)})">{swatch}'
                   f'<text x="20" y="9">{_e(label)}</text></g>')
        x += width
    return out, y - top + 18


def _y_axis(ticks: Sequence[float], left: float, right: float, top: float, bottom: float, *,
            lang: str) -> list[str]:
    digits, out = _tick_digits(ticks), []
    for t in ticks:
        y = bottom - (bottom - top) * t / ticks[-1]
        out.append(f'<line class="grid" x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" '
                   f'stroke="{GRID}" stroke-width="0.5"/>')
        out.append(f'<text class="tick" x="{_f(left - 4)}" y="{_f(y + 4)}" text-anchor="end">'
                   f"{_e(text.number(t, digits if t else 0, lang))}</text>")
    out.append(f'<line class="axis" x1="{_f(left)}" y1="{_f(bottom)}" x2="{_f(right)}" y2="{_f(bottom)}" '
               'stroke="#000000"/>')
    return out


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, lang: str = "vi",
              height: float = 250) -> str:
    """Vertical bars, one per label (short labels: days of the month), each non-zero value written above its bar."""
    checked = _check(title, labels, values)
    if not labels:
        return no_data(title, lang)
    ticks = nice_ticks(max(checked), whole=_whole(checked))
    left, right, top, bottom = _MARGIN + _AXIS_W, WIDTH - _MARGIN, _TITLE_H + 14, height - 24
    slot = (right - left) / len(labels)
    size = SMALL_SIZE if slot < 30 else FONT_SIZE
    body = _y_axis(ticks, left, right, top, bottom, lang=lang)
    for i, (label, value) in enumerate(zip(labels, checked, strict=True)):
        x, h = left + slot * i + slot * 0.15, (bottom - top) * value / ticks[-1]
        body.append(f'<rect class="bar" x="{_f(x)}" y="{_f(bottom - h)}" width="{_f(slot * 0.7)}" height="{_f(h)}" '
                    f'fill="{BAR_FILL}"><title>{_e(label)}: {_e(_value(value, lang))}</title></rect>')
        centre = left + slot * (i + 0.5)
        if value:
            body.append(f'<text class="value" x="{_f(centre)}" y="{_f(bottom - h - 3)}" text-anchor="middle" '
                        f'font-size="{size}">{_e(_value(value, lang))}</text>')
        body.append(f'<text class="label" x="{_f(centre)}" y="{_f(bottom + 14)}" text-anchor="middle" '
                    f'font-size="{size}">{_e(_fit(label, slot, size))}</text>')
    return _svg(height, title, body)


def _marker(kind: str, x: float, y: float, colour: str, cls: str = "point") -> str:
    if kind == "square":
        return (f'<rect class="{cls}" x="{_f(x - 3)}" y="{_f(y - 3)}" width="6" height="6" fill="#ffffff" '
                f'stroke="{colour}" stroke-width="1.5"/>')
    if kind == "triangle":
        return (f'<path class="{cls}" d="M{_f(x)} {_f(y - 4)} L{_f(x + 4)} {_f(y + 3)} L{_f(x - 4)} {_f(y + 3)} Z" '
                f'fill="{colour}"/>')
    if kind == "diamond":
        return (f'<path class="{cls}" d="M{_f(x)} {_f(y - 4)} L{_f(x + 4)} {_f(y)} L{_f(x)} {_f(y + 4)} '
                f'L{_f(x - 4)} {_f(y)} Z" fill="{colour}"/>')
    return f'<circle class="{cls}" cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{colour}"/>'


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str,
               lang: str = "vi", height: float = 260) -> str:
    """One line per series over the labels (days), told apart by colour, dash and marker; each series' highest
    point has its value written over it (the first such point when it repeats); a legend under the chart."""
    checked = [(name, _check(title, labels, values, name)) for name, values in series]
    if not labels or not checked:
        return no_data(title, lang)
    legend, legend_h = _legend([(f'<line x1="0" y1="5" x2="14" y2="5" stroke="{c}" stroke-width="1.5" '
                                 f'stroke-dasharray="{d}"/>' + _marker(m, 7, 5, c, "swatch"), name)
                                for (name, _), (c, d, m) in zip(checked, _cycle(LINE_STYLES, len(checked)),
                                                                strict=True)],
                               0)
    ticks = nice_ticks(max(max(values) for _, values in checked),
                       whole=all(_whole(values) for _, values in checked))
    left, right, top = _MARGIN + _AXIS_W, WIDTH - _MARGIN, _TITLE_H + 14
    bottom = height - 24
    total = height + legend_h + 4
    slot = (right - left) / len(labels)
    size = SMALL_SIZE if slot < 30 else FONT_SIZE
    body = _y_axis(ticks, left, right, top, bottom, lang=lang)
    for i, label in enumerate(labels):
        body.append(f'<text class="label" x="{_f(left + slot * (i + 0.5))}" y="{_f(bottom + 14)}" '
                    f'text-anchor="middle" font-size="{size}">{_e(_fit(label, slot, size))}</text>')
    peaks: list[tuple[int, float, str, float]] = []  # (slot, y of the point, colour, value)
    for (name, values), (colour, dash, marker) in zip(checked, _cycle(LINE_STYLES, len(checked)), strict=True):
        points = [(left + slot * (i + 0.5), bottom - (bottom - top) * v / ticks[-1]) for i, v in enumerate(values)]
        body.append(f'<g class="series" data-name="{_e(name)}">')
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<polyline points="{" ".join(f"{_f(x)},{_f(y)}" for x, y in points)}" fill="none" '
                    f'stroke="{colour}" stroke-width="1.5"{dashed}/>')
        body += [_marker(marker, x, y, colour) for x, y in points]
        body.append("</g>")
        if max(values) > 0:
            at = values.index(max(values))
            peaks.append((at, points[at][1], colour, max(values)))
    # the peak values over every line, on a white box; two peaks on one day stacked above the higher point
    above: dict[int, float] = {}
    for at, y, colour, value in peaks:
        base = min(y, *(p[1] for p in peaks if p[0] == at))
        label_y = above.get(at, base - 6)
        above[at] = label_y - size - 2
        label, x = _value(value, lang), left + slot * (at + 0.5)
        box = _width(label, size) + 4
        body.append(f'<rect x="{_f(x - box / 2)}" y="{_f(label_y - size + 1)}" width="{_f(box)}" '
                    f'height="{size + 1}" fill="#ffffff"/>')
        body.append(f'<text class="value" x="{_f(x)}" y="{_f(label_y)}" text-anchor="middle" fill="{colour}" '
                    f'font-size="{size}" font-weight="bold">{_e(label)}</text>')
    body += [f'<g transform="translate(0,{_f(height + 4)})">', *legend, "</g>"]
    return _svg(total, title, body)


def _cycle(styles: Sequence[tuple[str, str, str]], n: int) -> list[tuple[str, str, str]]:
    return [styles[i % len(styles)] for i in range(n)]


def stacked_bar_chart(rows: Sequence[str], segments: Sequence[tuple[str, Sequence[float]]], *, title: str,
                      lang: str = "vi") -> str:
    """Horizontal bars, one per row (hosts), each cut into the segments (statuses) in order; a segment's value is
    written in it when it fits, the row's total after the bar; a legend under the chart."""
    checked = [(name, _check(title, rows, values, name)) for name, values in segments]
    if not rows or not checked:
        return no_data(title, lang)
    totals = [sum(values[r] for _, values in checked) for r in range(len(rows))]
    key = hashlib.sha256(repr((title, list(rows), checked)).encode("utf-8")).hexdigest()[:8]
    defs, fills = _segment_styles(key, len(checked))
    ticks = nice_ticks(max(totals), whole=_whole(totals))
    label_w = min(WIDTH * 0.3, max(_width(r, FONT_SIZE) for r in rows) + 8)
    left, right = _MARGIN + label_w, WIDTH - _MARGIN - 36
    top, row_h, bar_h = _TITLE_H + 10, 26.0, 18.0
    bottom = top + row_h * len(rows)
    scale = (right - left) / ticks[-1]
    body, digits = [defs] if defs else [], _tick_digits(ticks)
    for t in ticks:
        x = left + scale * t
        body.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" stroke="{GRID}" '
                    'stroke-width="0.5"/>')
        body.append(f'<text class="tick" x="{_f(x)}" y="{_f(bottom + 14)}" text-anchor="middle">'
                    f"{_e(text.number(t, digits if t else 0, lang))}</text>")
    for r, row in enumerate(rows):
        y = top + row_h * r + (row_h - bar_h) / 2
        body.append(f'<text class="label" x="{_f(left - 6)}" y="{_f(y + bar_h / 2 + 4)}" text-anchor="end">'
                    f"{_e(_fit(row, label_w - 8, FONT_SIZE))}</text>")
        x = left
        for s, (name, values) in enumerate(checked):
            w = scale * values[r]
            if values[r]:
                body.append(f'<rect class="segment" data-series="{s}" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" '
                            f'height="{_f(bar_h)}" fill="{fills[s]}" stroke="#000000" stroke-width="0.5">'
                            f"<title>{_e(row)}, {_e(name)}: {_e(_value(values[r], lang))}</title></rect>")
                label = _value(values[r], lang)
                box = _width(label, FONT_SIZE) + 4
                if w >= box + 2:
                    cx = x + w / 2
                    body.append(f'<rect x="{_f(cx - box / 2)}" y="{_f(y + bar_h / 2 - 7)}" width="{_f(box)}" '
                                'height="14" fill="#ffffff"/>')
                    body.append(f'<text class="value" x="{_f(cx)}" y="{_f(y + bar_h / 2 + 4)}" '
                                f'text-anchor="middle">{_e(label)}</text>')
            x += w
        body.append(f'<text class="total" x="{_f(x + 4)}" y="{_f(y + bar_h / 2 + 4)}" font-weight="bold">'
                    f"{_e(_value(totals[r], lang))}</text>")
    body.append(f'<line class="axis" x1="{_f(left)}" y1="{_f(top)}" x2="{_f(left)}" y2="{_f(bottom)}" '
                'stroke="#000000"/>')
    legend, legend_h = _legend([(f'<rect width="14" height="10" fill="{fills[s]}" stroke="#000000" '
                                 'stroke-width="0.5"/>', name) for s, (name, _) in enumerate(checked)], 0)
    body += [f'<g transform="translate(0,{_f(bottom + 24)})">', *legend, "</g>"]
    return _svg(bottom + 24 + legend_h + 4, title, body)


# --- the report figures as charts ---------------------------------------------------------------------------

def incidents_per_day(stats: IncidentStats | None, title: str, lang: str = "vi") -> str:
    """Incidents received per local day of the month (labels 1..31); None (no register collected): no data."""
    if stats is None:
        return no_data(title, lang)
    days = sorted(stats.by_day)
    return bar_chart([str(d.day) for d in days], [stats.by_day[d].value for d in days], title=title, lang=lang)


def security_events_per_day(prometheus: Mapping[str, Sequence[Series]], month: Month, names: Mapping[str, str],
                            title: str, lang: str = "vi") -> str:
    """One line per collected query of `names` (query name → series name, in that order): the events of all
    hosts per local day (incidents.daily_events); no such query collected: no data."""
    from provsec.reports.incidents import daily_events

    days = month.days()
    lines = []
    for key, name in names.items():
        if key in prometheus:
            per_host = daily_events(prometheus[key], month)
            lines.append((name, [sum(host[d] for host in per_host.values()) for d in days]))
    return line_chart([str(d.day) for d in days], lines, title=title, lang=lang)


def controls_per_host(fig: ComplianceFigures, title: str, lang: str = "vi") -> str:
    """Per host, its controls by status (pass, fail, not applicable, excepted); no host audited: no data."""
    from provsec.reports.sources import AUDIT_STATUSES

    hosts = list(fig.by_host)
    return stacked_bar_chart(hosts, [(text.label(s, lang), [fig.by_host[h][s].value for h in hosts])
                                     for s in AUDIT_STATUSES], title=title, lang=lang)


def backup_runs(jobs: Sequence[JobFigures], title: str, lang: str = "vi") -> str:
    """Per host and job ("host / job"), the runs of the month that succeeded and those that did not (failed or
    partial); no job: no data."""
    rows = [f"{j.host} / {j.job}" for j in jobs]
    return stacked_bar_chart(rows, [(text.label("ok", lang), [j.successes.value for j in jobs]),
                                    (text.label("not_ok", lang), [j.runs.value - j.successes.value for j in jobs])],
                             title=title, lang=lang)
