"""`provsec report collect --month YYYY-MM --out DIR [sources]`: one month's report data into DIR/YYYY-MM/ with a
manifest of hashes (collect.py). Exit 0: collected; 2: bad input or a source that cannot be read (nothing is
left behind).

`provsec report monthly --month YYYY-MM --data DIR/YYYY-MM --out DIR`: the notebooks run on that folder, HTML and
the A4 PDF into OUT/YYYY-MM/ (monthly.py). Exit 0: made; 2: bad input; 3: a notebook cell failed or a tool or
font is missing (nothing is left behind)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from provsec.errors import InputError
from provsec.reports.collect import QUERIES, Sources, collect, host_file
from provsec.reports.month import Month


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="monthly reports: collect the month's data (incidents, backups, audit, Prometheus, scans)",
        description="Monthly reports (Điều 12.2a). `collect` gathers a month's data into one dated folder with a "
        "manifest of SHA-256 hashes; the notebooks read only that folder.")
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="SUBCOMMAND")
    col = sub.add_parser(
        "collect", help="gather a month's data into OUT/YYYY-MM/ with manifest.json",
        description="Gather the month's data (months in Asia/Ho_Chi_Minh) into OUT/YYYY-MM/: the register's "
        "incidents, backup status, drill and second-site copy records, the audit results, Prometheus query_range "
        f"answers ({', '.join(QUERIES)}), the scans and the scan baseline, and from --inventory which agency "
        "operates each host at which security level. Built in a temp folder and renamed at the end: a failing "
        "source leaves nothing. "
        "An existing OUT/YYYY-MM/ is never replaced.")
    col.add_argument("--month", required=True, metavar="YYYY-MM", help="the report month")
    col.add_argument("--out", required=True, metavar="DIR", help="where the dated folder is made")
    col.add_argument("--register", metavar="FILE", help="the incident register (SQLite)")
    col.add_argument("--backup-status", nargs="+", default=[], metavar="[HOST=]FILE",
                     help="output of `provsec backup status --json` (host: HOST=, else the file name without .json)")
    col.add_argument("--drill", nargs="+", default=[], metavar="[HOST=]FILE",
                     help="drill records (<state_dir>/drills/JOB.json or `provsec backup drill --json` output)")
    col.add_argument("--backup-copy", nargs="+", default=[], metavar="FILE",
                     help="second-site copy records from the backup site (<copy state_dir>/NAME.json or `provsec "
                     "backup copy --json` output); each names its copy, the client host")
    col.add_argument("--audit-results", metavar="DIR",
                     help="audit-results/ (the last run before the month's end is taken), one run, or its results/")
    col.add_argument("--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    col.add_argument("--scans", metavar="DIR", help="a provsec scan store (/var/lib/provsec/scans from the "
                     "monitoring host): the month's scans and the last one before it; needs --scan-baseline")
    col.add_argument("--scan-baseline", metavar="FILE", help="the reviewed baseline, INVENTORY/scan_baseline.yml")
    col.add_argument("--inventory", metavar="DIR", help="the inventory (e.g. inventory/phuyen): inventory.json says "
                     "which agency operates each host and its security level, so that `report monthly --agency` "
                     "and `--security-level` can restrict a report")
    col.set_defaults(handler=collect_command)

    mon = sub.add_parser(
        "monthly", help="run the notebooks on a collected month: HTML (code hidden) and an A4 PDF",
        description="Run notebooks/monthly_incidents, monthly_backups and compliance with papermill on the folder "
        "that `provsec report collect` made, then write OUT/YYYY-MM/: the executed notebooks (audit trail), one "
        "HTML page each, and bao-cao-YYYY-MM.html/.pdf, the report as an administrative document (Nghị định "
        "30/2020: A4, Liberation Serif). Built in a temp folder and renamed at the end: a failed cell leaves "
        "nothing and exits 3 naming the notebook and the cause.")
    mon.add_argument("--month", required=True, metavar="YYYY-MM", help="the report month")
    mon.add_argument("--data", required=True, metavar="DIR/YYYY-MM", help="the collected month folder")
    mon.add_argument("--out", required=True, metavar="DIR", help="where OUT/YYYY-MM/ is made")
    mon.add_argument("--agency", default="all",
                     help='an agency of the collected inventory: its unit code, or its Vietnamese name (any Unicode '
                     'form or case); "all": the whole province (default). Needs a month collected with --inventory')
    mon.add_argument("--security-level", default="all", metavar="all|1..5",
                     help="only the hosts of this effective security level (cấp độ); combines with --agency; "
                     "needs a month collected with --inventory (default all)")
    mon.add_argument("--lang", default="vi", choices=("vi", "en"), help="language of the figures (default vi)")
    mon.add_argument("--document", metavar="FILE",
                     help="YAML: issuing body, place, number, recipients, signer (document.DocumentConfig; "
                     "defaults: Phú Yên's Department of Information and Communications)")
    mon.add_argument("--date", metavar="YYYY-MM-DD", help="the document's date (default: today)")
    mon.add_argument("--working-hours", default="", metavar="FILE", help="working-hours calendar (YAML)")
    mon.add_argument("--notebooks", metavar="DIR", help="where the notebooks are (default: this checkout's)")
    mon.set_defaults(handler=monthly_command)


def collect_command(args: argparse.Namespace) -> int:
    month = Month.parse(args.month)
    sources = Sources(
        register=Path(args.register) if args.register else None,
        backup_status=[host_file(t, "--backup-status") for t in args.backup_status],
        drills=[host_file(t, "--drill") for t in args.drill],
        copies=[Path(t) for t in args.backup_copy],
        audit_results=Path(args.audit_results) if args.audit_results else None,
        prometheus=args.prometheus,
        scans=Path(args.scans) if args.scans else None,
        scan_baseline=Path(args.scan_baseline) if args.scan_baseline else None,
        inventory=Path(args.inventory) if args.inventory else None)
    folder = collect(month, Path(args.out), sources)
    print(folder)
    return 0


def monthly_command(args: argparse.Namespace) -> int:
    from provsec.reports.document import DocumentConfig
    from provsec.reports.monthly import NOTEBOOKS, monthly

    month = Month.parse(args.month)
    issued = None
    if args.date:
        try:
            issued = date.fromisoformat(args.date)
        except ValueError:
            raise InputError(f"--date {args.date!r}: not a date YYYY-MM-DD") from None
    notebooks = [Path(args.notebooks) / name for name in NOTEBOOKS] if args.notebooks else None
    report = monthly(month, Path(args.data), Path(args.out), agency=args.agency, language=args.lang,
                     document=DocumentConfig.load(args.document), issued=issued,
                     working_hours=args.working_hours, notebooks=notebooks, security_level=args.security_level)
    print(report.pdf)
    print(report.html)
    return 0
