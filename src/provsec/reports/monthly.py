"""`provsec report monthly`: the month's notebooks run with papermill on one collected folder, exported to HTML
with the code hidden (nbconvert), and printed as one administrative document on A4 (document.py).

OUT/YYYY-MM/ holds, once everything succeeded: the executed notebooks (the audit trail: what ran, with which
parameters, what it showed), one HTML page per notebook for the sysadmins, and the report for officials as
`bao-cao-YYYY-MM.html` and `.pdf`. It is built in a hidden temp folder in OUT and renamed at the end, so a failing
notebook leaves no folder that could pass for a report; the error names the notebook, the cell and the cause.
This module is the one call point of papermill and of nbconvert."""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from provsec.errors import InputError, ProvsecError
from provsec.fileio import write_atomic
from provsec.reports import scope
from provsec.reports.collect import load_collected
from provsec.reports.document import DocumentConfig, Frame, font_face_css, font_files, frame_html, write_pdf
from provsec.reports.month import Month
from provsec.reports.text import language as check_language

NOTEBOOK_DIR = Path(__file__).resolve().parents[3] / "notebooks"
# the report's parts, in the order the document shows them
NOTEBOOKS = ("monthly_incidents.ipynb", "monthly_backups.ipynb", "compliance.ipynb")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotebookError(ProvsecError):
    """A notebook cell failed: the report is not made."""

    exit_code = 3


@dataclass(frozen=True)
class Report:
    folder: Path
    pdf: Path
    html: Path
    notebooks: list[Path]


def run_notebook(source: Path, output: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """Execute `source` into `output` with the parameters it declares (the others are not injected: papermill
    would only warn). A failed cell is a NotebookError naming the notebook, the cell and the cause."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = papermill.inspect_notebook(str(source))
    given = {k: v for k, v in parameters.items() if k in declared}
    try:
        papermill.execute_notebook(str(source), str(output), parameters=given, kernel_name="python3",
                                   cwd=str(cwd), progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        cause = _ANSI.sub("", str(exc.evalue)).strip().splitlines()
        raise NotebookError(f"{source.name}: cell {exc.cell_index} (execution {exc.exec_count}) failed: "
                            f"{exc.ename}: {cause[0] if cause else ''}") from None


def export_body(executed: Path) -> str:
    """The notebook's outputs and Markdown as an HTML fragment, code cells' input left out."""
    from nbconvert import HTMLExporter

    # the constructor is untyped (traitlets); "unused-ignore": where nbconvert is absent mypy sees no call
    exporter = HTMLExporter(template_name="basic", exclude_input=True,  # type: ignore[no-untyped-call,unused-ignore]
                            exclude_input_prompt=True, exclude_output_prompt=True, exclude_anchor_links=True)
    body, _ = exporter.from_filename(str(executed))
    return str(body)


def _page(title: str, body: str, caption: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8"><title>{title}</title><style>'
            "body{font-family:'Liberation Serif','Times New Roman',serif;max-width:60em;margin:2em auto;}"
            "table{border-collapse:collapse}th,td{border:1px solid #444;padding:2px 6px;text-align:left}"
            f"</style></head><body>\n{f'<p><em>{html.escape(caption)}</em></p>' if caption else ''}{body}\n"
            "</body></html>\n")


@contextmanager
def _timed(timings: MutableMapping[str, float] | None, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def _destination(month: Month, data: Path, out: Path, notebooks: Sequence[Path] | None) -> tuple[Path, list[Path]]:
    """OUT/YYYY-MM (checked: not there yet, not the data) and the notebooks to run (checked: present)."""
    if data.name != str(month):
        raise InputError(f"--data {data}: the notebooks read DIR/{month}: give the folder that collect made")
    final = out / str(month)
    if final.resolve() == data.resolve():
        raise InputError(f"--out {out}: {final} is the collected data folder: write the report elsewhere")
    if final.exists():
        raise InputError(f"{final}: a report of {month} is already there: give another --out or move it away")
    sources = list(notebooks) if notebooks is not None else [NOTEBOOK_DIR / name for name in NOTEBOOKS]
    for nb in sources:
        if not nb.is_file():
            raise InputError(f"{nb}: notebook not found")
    return final, sources


def monthly(month: Month, data: Path, out: Path, *, agency: str = "all", language: str = "vi",
            document: DocumentConfig | None = None, issued: date | None = None, working_hours: str = "",
            notebooks: Sequence[Path] | None = None, security_level: str = "all",
            timings: MutableMapping[str, float] | None = None) -> Report:
    """Run the notebooks on the collected folder `data` (DIR/YYYY-MM) and write OUT/YYYY-MM/. `agency` and
    `security_level` restrict the report to the hosts of one agency and/or level (scope.py); the document's
    subtitle names them. `timings`, if given, receives the seconds each step took (bench/report.py): `verify`,
    `execute NOTEBOOK` (papermill: the kernel's start and stop included), `html NOTEBOOK`, `document html`, `pdf`."""
    check_language(language)
    with _timed(timings, "verify"):
        collected = load_collected(data)  # verified against its manifest before any kernel starts
    if collected.month != month:
        raise InputError(f"--data {data}: holds {collected.month}, not {month}")
    # an unknown agency or level, or a folder without inventory, is bad input: refused before any kernel starts
    chosen = scope.resolve(collected.inventory, agency, security_level, ("--agency", "--security-level"))
    caption = chosen.caption() if chosen is not None else ""
    final, sources = _destination(month, data, out, notebooks)
    fonts = font_face_css(font_files())  # a missing font fails now, not after the notebooks ran
    issued = issued or date.today()
    parameters: dict[str, Any] = {"month": str(month), "agency": agency, "data_dir": str(data.resolve().parent),
                                  "language": language, "working_hours": working_hours,
                                  "security_level": security_level}

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{month}.report-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o750)
    try:
        executed, sections = [], []
        for nb in sources:
            target = tmp / nb.name
            with _timed(timings, f"execute {nb.name}"):
                run_notebook(nb, target, parameters, tmp)
            with _timed(timings, f"html {nb.name}"):
                body = export_body(target)
            write_atomic(tmp / f"{nb.stem}.html", _page(nb.stem, body, caption).encode("utf-8"), 0o640)
            executed.append(final / nb.name)
            sections.append(body)
        frame = Frame(document or DocumentConfig(), f"{month.month:02d}/{month.year}", issued, sections, caption)
        name = f"bao-cao-{month}"
        with _timed(timings, "document html"):
            write_atomic(tmp / f"{name}.html", frame_html(frame).encode("utf-8"), 0o640)
        pdf_tmp = tmp / f".{name}.pdf.tmp"
        with _timed(timings, "pdf"):
            write_pdf(frame_html(frame, fonts), pdf_tmp)
        pdf_tmp.rename(tmp / f"{name}.pdf")
        tmp.rename(final)  # fails, leaving final alone, if another run made it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dirfd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    return Report(final, final / f"{name}.pdf", final / f"{name}.html", executed)
