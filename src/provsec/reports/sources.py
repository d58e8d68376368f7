"""Loaders: each report source read into typed records, with errors that name the file and the field.

- incidents: the incident register (SQLite, notify/register.py) read through its own API, never its tables;
  `incident_to_json` / `incident_from_json` are the form `provsec report collect` stores them in.
- backups: what `provsec backup status --json` prints (one row per job: job, state, reason, snapshot,
  finished_at, last_success_at, bytes_added, bytes_processed, last_check …) and drill records
  (`<state_dir>/drills/<job>.json`, one object, or the list `provsec backup drill --json` prints). Neither names
  the host: the caller says which host a file is from. Second-site copy records (`<copy state_dir>/<name>.json`
  on the backup site, or the list `provsec backup copy --json` prints) name their copy, which is the client host.
  Fields a newer provsec added (bytes_processed, last_check) may be absent from older files: they load as unknown.
- compliance: the per-host files of `provsec audit evaluate` (RESULTS/<host>.json; summary.json is derived).

Every record carries an `id` that the calculations keep as the source of what they compute."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from provsec.errors import InputError
from provsec.fileio import read_json
from provsec.notify.payload import host_of
from provsec.notify.register import EVENT_KINDS, STATES, Event, Incident, Register, iso
from provsec.reports.month import Month

BACKUP_STATES = ("ok", "partial", "failed")
AUDIT_STATUSES = ("pass", "fail", "not_applicable", "excepted")
_CATEGORY = re.compile(r"Provsec([A-Z][a-z]+)")
_EXPIRY = re.compile(r"exception until (\d{4}-\d{2}-\d{2})")


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise InputError(f"{where}: {value!r} is not an ISO 8601 time with an offset")


def _opt_time(value: Any, where: str) -> datetime | None:
    return None if value is None else _time(value, where)


def _text(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}.{key}: expected text, got {value!r}")
    return value


def _req(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(data, key, where)
    assert value is not None  # noqa: S101  (not optional)
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


# -- incidents ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertRef:
    fingerprint: str
    host: str
    name: str


@dataclass(frozen=True)
class IncidentRecord:
    """An incident of the register with what the reports group it by: the hosts of its alerts and a category."""

    incident: Incident
    alerts: tuple[AlertRef, ...]
    events: tuple[Event, ...]

    @property
    def id(self) -> str:
        return f"incident:{self.incident.id}"

    @property
    def hosts(self) -> tuple[str, ...]:
        """Distinct hosts of the incident's alerts; the common labels' host when no alert names one."""
        hosts = tuple(dict.fromkeys(a.host for a in self.alerts if a.host))
        if hosts:
            return hosts
        common = host_of(self.incident.common_labels)
        return (common,) if common else ("(không rõ máy chủ)",)

    @property
    def severity(self) -> str:
        return self.incident.severity or "(không rõ)"

    @property
    def category(self) -> str:
        """Label `category` when the rule sets one; else the area in the alert name (ProvsecBackupFailed →
        backup, ProvsecSecuritySshBruteForce → security: exporters/rules names every alert so); else other."""
        labels = self.incident.common_labels
        if labels.get("category"):
            return labels["category"]
        name = labels.get("alertname") or self.incident.group_labels.get("alertname") or ""
        match = _CATEGORY.match(name)
        return match.group(1).lower() if match else "other"


def load_register(path: str | Path, month: Month) -> list[IncidentRecord]:
    """The incidents the register received in `month` (opened_at within the local month), oldest first."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no incident register here (give --register FILE)")
    register = Register(path, create=False)
    incidents = [i for i in register.list(since=month.start) if i.opened_at < month.end]
    records = []
    for incident in sorted(incidents, key=lambda i: (i.opened_at, i.id)):
        alerts = tuple(AlertRef(str(a["fingerprint"]), host_of(a["labels"]), str(a["labels"].get("alertname", "")))
                       for a in register.alerts(incident.id))
        records.append(IncidentRecord(incident, alerts, tuple(register.events(incident.id))))
    return records


def incident_to_json(record: IncidentRecord) -> dict[str, Any]:
    return {**record.incident.to_json(),
            "alerts": [{"fingerprint": a.fingerprint, "host": a.host, "alertname": a.name} for a in record.alerts],
            "events": [e.to_json() for e in record.events]}


def _labels(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InputError(f"{where}.{key}: expected an object of strings")
    return dict(value)


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def incident_from_json(data: Any, where: str) -> IncidentRecord:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an incident object")
    state = data.get("state")
    if state not in STATES:
        raise InputError(f"{where}.state: {state!r} is not one of {', '.join(STATES)}")
    incident = Incident(
        id=_int(data, "id", where), group_key=_req(data, "group_key", where), state=state,
        receiver=_req(data, "receiver", where), title=_req(data, "title", where),
        severity=_text(data, "severity", where, optional=True), group_labels=_labels(data, "group_labels", where),
        common_labels=_labels(data, "common_labels", where),
        common_annotations=_labels(data, "common_annotations", where),
        external_url=_req(data, "external_url", where), alert_count=_int(data, "alert_count", where),
        firing_count=_int(data, "firing_count", where), notifications=_int(data, "notifications", where),
        opened_at=_time(data.get("opened_at"), f"{where}.opened_at"),
        started_at=_time(data.get("started_at"), f"{where}.started_at"),
        last_seen_at=_time(data.get("last_seen_at"), f"{where}.last_seen_at"),
        acknowledged_at=_opt_time(data.get("acknowledged_at"), f"{where}.acknowledged_at"),
        acknowledged_by=_text(data, "acknowledged_by", where, optional=True),
        resolved_at=_opt_time(data.get("resolved_at"), f"{where}.resolved_at"),
        resolved_by=_text(data, "resolved_by", where, optional=True))
    alerts, events = [], []
    for i, raw in enumerate(data.get("alerts") or []):
        at = f"{where}.alerts[{i}]"
        if not isinstance(raw, dict):
            raise InputError(f"{at}: expected an object")
        alerts.append(AlertRef(_req(raw, "fingerprint", at), _req(raw, "host", at), _req(raw, "alertname", at)))
    for i, raw in enumerate(data.get("events") or []):
        at = f"{where}.events[{i}]"
        if not isinstance(raw, dict) or raw.get("kind") not in EVENT_KINDS:
            raise InputError(f"{at}: expected an event with kind one of {', '.join(EVENT_KINDS)}")
        events.append(Event(id=_int(raw, "id", at), incident_id=incident.id, kind=raw["kind"],
                            at=_time(raw.get("at"), f"{at}.at"), who=_req(raw, "who", at),
                            text=_req(raw, "text", at)))
    return IncidentRecord(incident, tuple(alerts), tuple(events))


# -- backups --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupCheck:
    """One `restic check` of a host's repository (backup/state.py check.json), as a status row carries it."""

    host: str
    state: str
    reason: str
    finished_at: datetime
    read_data_subset: str | None
    duration_s: float | None

    @property
    def id(self) -> str:
        return f"check:{self.host}@{iso(self.finished_at)}"


@dataclass(frozen=True)
class BackupRun:
    """One job's run as `provsec backup status --json` reports it; finished_at None: the job never ran.
    bytes_added: restic's data_added (new data the run stored, before compression); bytes_processed: restic's
    total_bytes_processed (the size of the data backed up), None in files of a provsec that did not record it.
    check_recorded: the row has a `last_check` key (False: an older status file that says nothing about checks);
    check: the host's last repository check when the status was saved (None: never checked, or not recorded)."""

    host: str
    job: str
    kind: str
    state: str
    reason: str
    snapshot: str | None
    finished_at: datetime | None
    last_success_at: datetime | None
    bytes_added: int | None = None
    bytes_processed: int | None = None
    check_recorded: bool = False
    check: BackupCheck | None = None

    @property
    def id(self) -> str:
        when = "never-run" if self.finished_at is None else iso(self.finished_at)
        return f"backup:{self.host}/{self.job}@{when}"


def _bytes(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{where}.{key}: expected a number of bytes, got {value!r}")
    return value


def parse_check(doc: Any, host: str, where: str) -> BackupCheck | None:
    """A check record (check.json, `backup check --json`, a status row's last_check); None stays None."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a check record object or null")
    state = doc.get("state")
    if state not in ("ok", "failed"):
        raise InputError(f"{where}.state: {state!r} is not ok or failed")
    return BackupCheck(host=host, state=state, reason=str(doc.get("reason") or ""),
                       finished_at=_time(doc.get("finished_at"), f"{where}.finished_at"),
                       read_data_subset=_text(doc, "read_data_subset", where, optional=True),
                       duration_s=_number(doc, "duration_s", where))


def parse_backup_status(doc: Any, host: str, where: str) -> list[BackupRun]:
    if not isinstance(doc, list):
        raise InputError(f"{where}: expected the list that `provsec backup status --json` prints")
    runs = []
    for i, row in enumerate(doc):
        at = f"{where}: [{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{at}: expected an object per job")
        state = row.get("state")
        if state not in BACKUP_STATES:
            raise InputError(f"{at}.state: {state!r} is not one of {', '.join(BACKUP_STATES)}")
        runs.append(BackupRun(host=host, job=_req(row, "job", at), kind=str(row.get("kind") or ""), state=state,
                              reason=str(row.get("reason") or ""),
                              snapshot=_text(row, "snapshot", at, optional=True),
                              finished_at=_opt_time(row.get("finished_at"), f"{at}.finished_at"),
                              last_success_at=_opt_time(row.get("last_success_at"), f"{at}.last_success_at"),
                              bytes_added=_bytes(row, "bytes_added", at),
                              bytes_processed=_bytes(row, "bytes_processed", at),
                              check_recorded="last_check" in row,
                              check=parse_check(row.get("last_check"), host, f"{at}.last_check")))
    return runs


def load_backup_status(path: Path, host: str) -> list[BackupRun]:
    return parse_backup_status(read_json(path, "backup status"), host, str(path))


@dataclass(frozen=True)
class Drill:
    """One restore drill (backup/runner.py DrillResult): measured RTO (restore + verify) and RPO (snapshot age)."""

    host: str
    job: str
    state: str
    reason: str
    snapshot: str | None
    rto_s: float | None
    rpo_s: float | None
    finished_at: datetime

    @property
    def id(self) -> str:
        return f"drill:{self.host}/{self.job}@{iso(self.finished_at)}"


def _outcome_records(doc: Any, where: str, what: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(where, record, state) of a record or a list of records (drills, copies), each an object whose state is ok
    or failed."""
    items = doc if isinstance(doc, list) else [doc]
    for i, row in enumerate(items):
        at = f"{where}: [{i}]" if isinstance(doc, list) else where
        if not isinstance(row, dict):
            raise InputError(f"{at}: expected a {what} object")
        state = row.get("state")
        if state not in ("ok", "failed"):
            raise InputError(f"{at}.state: {state!r} is not ok or failed")
        yield at, row, state


def parse_drills(doc: Any, host: str, where: str) -> list[Drill]:
    drills = []
    for at, row, state in _outcome_records(doc, where, "drill record"):
        drills.append(Drill(host=host, job=_req(row, "job", at), state=state, reason=str(row.get("reason") or ""),
                            snapshot=_text(row, "snapshot", at, optional=True), rto_s=_number(row, "rto_s", at),
                            rpo_s=_number(row, "rpo_s", at),
                            finished_at=_time(row.get("finished_at"), f"{at}.finished_at")))
    return drills


def load_drills(path: Path, host: str) -> list[Drill]:
    return parse_drills(read_json(path, "drill record"), host, str(path))


@dataclass(frozen=True)
class CopyRecord:
    """One second-site copy of a client's repository (backup/copy.py), made by the backup site. `host` is the
    copy's name: the client host (role backup names each copy after its client)."""

    host: str
    state: str
    reason: str
    snapshots: int | None
    started_at: datetime
    finished_at: datetime
    last_success_at: datetime | None

    @property
    def id(self) -> str:
        return f"copy:{self.host}@{iso(self.finished_at)}"


def parse_copies(doc: Any, where: str) -> list[CopyRecord]:
    out = []
    for at, row, state in _outcome_records(doc, where, "copy record"):
        snapshots = row.get("snapshots")
        if snapshots is not None and (isinstance(snapshots, bool) or not isinstance(snapshots, int)):
            raise InputError(f"{at}.snapshots: expected an integer or null, got {snapshots!r}")
        out.append(CopyRecord(host=_req(row, "copy", at), state=state, reason=str(row.get("reason") or ""),
                              snapshots=snapshots, started_at=_time(row.get("started_at"), f"{at}.started_at"),
                              finished_at=_time(row.get("finished_at"), f"{at}.finished_at"),
                              last_success_at=_opt_time(row.get("last_success_at"), f"{at}.last_success_at")))
    return out


def load_copies(path: Path) -> list[CopyRecord]:
    return parse_copies(read_json(path, "second-site copy record"), str(path))


# -- compliance -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ControlResult:
    host: str
    control: str
    status: str
    reason: str
    title_vi: str
    tcvn: tuple[str, ...]
    evaluated_at: datetime
    exception_expires: date | None

    @property
    def id(self) -> str:
        return f"audit:{self.host}/{self.control}"


def _tcvn_ids(tcvn: Any) -> tuple[str, ...]:
    """`{"TCVN 11930:2017": ["8.1.2"], "TCVN 14423": []}` → ("TCVN 11930:2017 8.1.2", "TCVN 14423"): a clause
    when the catalogue names one, else the standard itself (the catalogue maps most controls to a standard only)."""
    if not isinstance(tcvn, dict):
        return ()
    ids: set[str] = set()
    for standard, clauses in tcvn.items():
        listed = [str(c) for c in clauses] if isinstance(clauses, list) else []
        if listed:
            ids.update(f"{standard} {c}" for c in listed)
        else:
            ids.add(str(standard))
    return tuple(sorted(ids))


def parse_audit_host(doc: Any, where: str) -> list[ControlResult]:
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise InputError(f"{where}: not an audit result (expected `host` and `results` from provsec audit evaluate)")
    host = _req(doc, "host", where)
    evaluated = _time(doc.get("evaluated_at"), f"{where}.evaluated_at")
    out = []
    for i, row in enumerate(doc["results"]):
        at = f"{where}: results[{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{at}: expected an object")
        status = row.get("status")
        if status not in AUDIT_STATUSES:
            raise InputError(f"{at}.status: {status!r} is not one of {', '.join(AUDIT_STATUSES)}")
        title = row.get("title")
        tcvn = row.get("tcvn") or {}
        ids = _tcvn_ids(tcvn)
        reason = str(row.get("reason") or "")
        expiry = _EXPIRY.search(reason) if status == "excepted" else None
        out.append(ControlResult(host=host, control=_req(row, "id", at), status=status, reason=reason,
                                 title_vi=str(title.get("vi", "")) if isinstance(title, dict) else "", tcvn=ids,
                                 evaluated_at=evaluated,
                                 exception_expires=date.fromisoformat(expiry.group(1)) if expiry else None))
    return out


def audit_host_files(results_dir: Path) -> list[Path]:
    """The per-host result files of one audit run (summary.json is derived from them, so it is not read)."""
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: audit results directory not found")
    return sorted(p for p in results_dir.glob("*.json") if p.name != "summary.json" and not p.name.startswith("."))


def load_audit_results(results_dir: Path) -> list[ControlResult]:
    out: list[ControlResult] = []
    for path in audit_host_files(results_dir):
        out.extend(parse_audit_host(read_json(path, "audit result"), str(path)))
    return out
