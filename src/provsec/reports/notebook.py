"""What the notebooks call first: their parameters checked (each error names the parameter, so a failed papermill
run says which one is wrong) and the collected month opened, verified against its manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provsec.errors import InputError
from provsec.reports import scope
from provsec.reports.collect import Collected, load_collected
from provsec.reports.month import Month
from provsec.reports.text import language as check_language
from provsec.reports.workhours import WorkCalendar, load_calendar


def open_month(data_dir: str, month: str, agency: str = "all", language: str = "vi",
               working_hours: str = "", *, security_level: object = "all") -> tuple[Collected, WorkCalendar]:
    """DATA_DIR/MONTH/ verified and loaded, and the working-hours calendar (the state's when none is given).

    `agency` (a unit code, or its name: NFC, case-folded) and `security_level` ("all" or 1..5) restrict every kind
    of data to the hosts of that agency and/or level (scope.py; the folder must have been collected with
    --inventory); "all" and "all": the whole province."""
    wanted = Month.parse(month, "parameter month")
    check_language(language)
    if not isinstance(agency, str):
        raise InputError(f"parameter agency: {agency!r} is not text (a unit code or name, or all)")
    scope.parse_level(security_level)  # a bad level is refused before the folder is read
    folder = Path(data_dir) / str(wanted)
    if not folder.is_dir():
        raise InputError(f"parameter data_dir: {folder} not found: run provsec report collect --month {wanted} "
                         f"--out {data_dir}")
    data = load_collected(folder)
    if data.month != wanted:
        raise InputError(f"{folder}: holds {data.month}, not {wanted}")
    data = scope.restrict(data, scope.resolve(data.inventory, agency, security_level))
    calendar = load_calendar(working_hours) if working_hours else WorkCalendar()
    return data, calendar


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (the notebooks display it; HTML export renders it); `|` in a cell is escaped."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
