"""`provsec incident list|show|ack|resolve|note [--db PATH | --dsn-file FILE]`: the incident register for on-call
staff, in a SQLite file (--db) or in PostgreSQL (--dsn-file: a file of mode 0600 holding the libpq connection string,
password included if it needs one: never on the command line).

Response times are shown in working hours under the working-hours configuration (`--hours FILE`, YAML, see
workhours.py; default /etc/provsec/working-hours.yml when it exists, else the state's hours and Vietnamese public
holidays). Exit codes: 0 done; 2 bad input (no such incident, a resolved one acknowledged, a bad date, no register
at --db, an unreadable --dsn-file); 3 the register's database cannot be used (locked, not a database, PostgreSQL
unreachable)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from datetime import datetime, time
from pathlib import Path

from provsec.errors import InputError
from provsec.notify.config import read_secret
from provsec.notify.register import DEFAULT_DB, STATE_VI, STATES, Register, dsn_params, response, summary_vi
from provsec.reports.workhours import WorkCalendar, load_calendar

DEFAULT_HOURS = "/etc/provsec/working-hours.yml"


def _common(*, top: bool) -> argparse.ArgumentParser:
    """--db, --dsn-file and --hours, accepted before the sub-command (like `provsec backup --config`) and after it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--db", metavar="PATH", default=None if top else argparse.SUPPRESS,
                        help=f"the incident register (SQLite; default {DEFAULT_DB})")
    parent.add_argument("--dsn-file", metavar="FILE", default=None if top else argparse.SUPPRESS,
                        help="the incident register in PostgreSQL: a file (mode 0600) holding its libpq connection "
                        "string (host=… dbname=… user=… password=…, or a postgresql:// URI); instead of --db")
    parent.add_argument("--hours", metavar="FILE", default=None if top else argparse.SUPPRESS,
                        help=f"working-hours configuration (YAML; default {DEFAULT_HOURS} when it exists, else "
                        "Mon–Fri 07:30–11:30, 13:30–17:00, Asia/Ho_Chi_Minh, Vietnamese public holidays)")
    return parent


def _by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="WHO", default=None,
                        help="who does it (default: the login name, or SUDO_USER under sudo)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "incident", parents=[_common(top=True)],
        help="the incident register: list, show, acknowledge, resolve, annotate incidents",
        description="One incident per Alertmanager group. Response times in working hours (Điều 8.3b: out-of-hours "
        "messages count from the next working day; Điều 9.2b: answer within 2 working hours). Exit 0: done; "
        "2: bad input; 3: the register cannot be used.",
    )
    sub = parser.add_subparsers(dest="incident_command", required=True, metavar="SUBCOMMAND")
    common = _common(top=False)

    lst = sub.add_parser("list", parents=[common], help="incidents, newest first, with response times",
                         description="Incidents newest first: id, state, received (Asia/Ho_Chi_Minh), working hours "
                         "to the answer, SLA (met | missed | pending | not_needed), alerts, title.")
    lst.add_argument("--state", choices=(*STATES, "unresolved"), help="only incidents in this state")
    lst.add_argument("--since", metavar="DATE|TIME",
                     help="only incidents received since this date (YYYY-MM-DD, local midnight) or ISO time with "
                     "offset")
    lst.add_argument("--json", action="store_true", help="print JSON for scripts and the reports")
    lst.set_defaults(handler=list_command)

    show = sub.add_parser("show", parents=[common], help="one incident: summary (Vietnamese), events, alerts")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=show_command)

    ack = sub.add_parser("ack", parents=[common], help="acknowledge an incident (stops escalation)",
                         description="Acknowledge: the first acknowledgement is the answer the SLA counts; "
                         "acknowledging again changes nothing.")
    ack.add_argument("id", type=int, metavar="ID")
    _by(ack)
    ack.set_defaults(handler=ack_command)

    res = sub.add_parser("resolve", parents=[common], help="resolve an incident by hand, saying what was done")
    res.add_argument("id", type=int, metavar="ID")
    res.add_argument("--note", required=True, metavar="TEXT", help="what was done")
    _by(res)
    res.set_defaults(handler=resolve_command)

    note = sub.add_parser("note", parents=[common], help="add a note to an incident")
    note.add_argument("id", type=int, metavar="ID")
    note.add_argument("text", metavar="TEXT")
    _by(note)
    note.set_defaults(handler=note_command)


def _register(args: argparse.Namespace) -> Register:
    if args.dsn_file is None:
        return Register(args.db or DEFAULT_DB, create=False)
    if args.db is not None:
        raise InputError("--db and --dsn-file: give one (a SQLite file or a PostgreSQL connection string)")
    where = f"--dsn-file {args.dsn_file}"
    dsn = read_secret(Path(args.dsn_file), where)
    dsn_params(dsn, where)
    return Register(dsn=dsn, create=False)


def _calendar(args: argparse.Namespace) -> WorkCalendar:
    if args.hours is not None:
        return load_calendar(args.hours)
    if Path(DEFAULT_HOURS).exists():
        return load_calendar(DEFAULT_HOURS)
    return WorkCalendar()


def _who(args: argparse.Namespace) -> str:
    who: str | None = args.by or os.environ.get("SUDO_USER")
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError) as exc:
            raise InputError("cannot tell who you are: give --by WHO") from exc
    return who


def _since(text: str, calendar: WorkCalendar) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), tzinfo=calendar.tz)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"--since: {text!r} is not a date YYYY-MM-DD or an ISO time") from exc
    if moment.tzinfo is None:
        raise InputError(f"--since: {text!r} has no offset: add one (e.g. +07:00) or give a date")
    return moment


def _local(moment: datetime | None, calendar: WorkCalendar) -> str:
    return "-" if moment is None else moment.astimezone(calendar.tz).strftime("%Y-%m-%d %H:%M")


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def list_command(args: argparse.Namespace) -> int:
    calendar = _calendar(args)
    since = _since(args.since, calendar) if args.since else None
    incidents = _register(args).list(state=args.state, since=since)
    now = datetime.now(calendar.tz)
    if args.json:
        print(json.dumps([{**i.to_json(), "response": response(i, calendar, now).to_json()} for i in incidents],
                         ensure_ascii=False, indent=2))
        return 0
    for i in incidents:
        resp = response(i, calendar, now)
        print(f"{i.id:>5}  {i.state:<12} {_local(i.opened_at, calendar)}  {_hours(resp.to_respond_s):>8}  "
              f"{resp.sla:<10} {i.firing_count:>3}/{i.alert_count:<3} {i.title}")
    if not incidents:
        print("no incidents")
    return 0


def show_command(args: argparse.Namespace) -> int:
    calendar = _calendar(args)
    reg = _register(args)
    incident = reg.get(args.id)
    events = reg.events(args.id)
    now = datetime.now(calendar.tz)
    if args.json:
        print(json.dumps({**incident.to_json(), "response": response(incident, calendar, now).to_json(),
                          "summary_vi": summary_vi(incident, calendar, now),
                          "events": [e.to_json() for e in events], "alerts": reg.alerts(args.id)},
                         ensure_ascii=False, indent=2))
        return 0
    print(summary_vi(incident, calendar, now))
    print(f"Nhóm cảnh báo (group key): {incident.group_key}")
    print("Diễn biến:")
    for e in events:
        print(f"  {_local(e.at, calendar)}  {e.kind:<12} {e.who}: {e.text}")
    print("Cảnh báo:")
    for a in reg.alerts(args.id):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        print(f"  {a['status']:<8} {labels}")
    return 0


def ack_command(args: argparse.Namespace) -> int:
    calendar = _calendar(args)
    reg = _register(args)
    who = _who(args)
    before = reg.get(args.id)
    incident = reg.acknowledge(args.id, who)
    if before.state == "acknowledged":
        print(f"incident {incident.id} was already acknowledged by {incident.acknowledged_by} at "
              f"{_local(incident.acknowledged_at, calendar)}")
    else:
        print(f"incident {incident.id} acknowledged by {who} ({STATE_VI[incident.state]})")
    return 0


def resolve_command(args: argparse.Namespace) -> int:
    incident = _register(args).resolve(args.id, _who(args), args.note)
    print(f"incident {incident.id} resolved by {incident.resolved_by} ({STATE_VI[incident.state]})")
    return 0


def note_command(args: argparse.Namespace) -> int:
    event = _register(args).add_note(args.id, _who(args), args.text)
    print(f"note {event.id} added to incident {event.incident_id}")
    return 0
