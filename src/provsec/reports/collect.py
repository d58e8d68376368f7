"""`provsec report collect`: gather one month's report data into one dated folder, and read it back verified.

Report data live in several places and some expire (Prometheus retention), so a report reads only a folder that
collect wrote once: re-run later, it gives the same numbers. Layout of OUT/YYYY-MM/:

    manifest.json                 every other file: path, sha256, size, kind, source, host, collected_at (UTC)
    incidents.json                the month's incidents from the register, with their alerts and events
    backups/status/NN-HOST.json   `provsec backup status --json` files, byte for byte
    backups/drills/NN-HOST.json   drill records, byte for byte
    backups/copies/NN-NAME.json   second-site copy records of the backup site, byte for byte
    audit/HOST.json               the audit run's per-host results, byte for byte
    prometheus/NAME.json          query_range answers of Prometheus, with the query, start, end and step
    scans/scan-STAMP.json         the scans started in the month, and the last one before it, byte for byte
    scans/baseline.yml            the reviewed scan baseline (INVENTORY/scan_baseline.yml), byte for byte
    inventory.json                agencies, and per host its agency, level, systems, addresses (scope.py)

The folder is built in a hidden temp directory next to it and renamed into place at the end: a source that fails
leaves no folder (and no temp directory). An existing folder is never replaced: it is what earlier reports were
computed from. `load_collected` checks every hash of the manifest (and that no file was added) before anything
is parsed; a changed file is an InputError naming it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from provsec.errors import InputError
from provsec.fileio import read_json
from provsec.inventory.load import load_inventory
from provsec.reports import prometheus
from provsec.reports.month import Month
from provsec.reports.scans import Scan, ScanData, parse_baseline, parse_scan
from provsec.reports.scope import ReportInventory, Scope, inventory_to_json, parse_inventory
from provsec.reports.scope import audit as audit_in_scope
from provsec.reports.sources import (
    BackupRun,
    ControlResult,
    CopyRecord,
    Drill,
    IncidentRecord,
    audit_host_files,
    incident_from_json,
    incident_to_json,
    load_register,
    parse_audit_host,
    parse_backup_status,
    parse_copies,
    parse_drills,
)
from provsec.scan import store as scan_store

MANIFEST = "manifest.json"
FORMAT = 1
DAY_S = 86400.0
# Security events per host and local day (exporters/METRICS.md, provsec_auth_events_total). Evaluated at each
# local midnight over the day that ends there, so point N is the Nth day of the month.
QUERIES: dict[str, str] = {
    "ssh_failures": 'sum by (instance) (increase(provsec_auth_events_total{event=~"ssh_failed|ssh_invalid_user"}[1d]))',
    "accounts_added": 'sum by (instance) (increase(provsec_auth_events_total{event="user_added"}[1d]))',
    "sudo_failures": 'sum by (instance) (increase(provsec_auth_events_total{event=~"sudo_auth_failure|sudo_denied"}'
                     "[1d]))",
}
_AUDIT_RUN = re.compile(r"\d{8}T\d{6}Z")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SCAN = re.compile(r"scan-(\d{8}T\d{6}Z)(?:-\d+)?\.json")  # provsec.scan.store's names
BASELINE = "scans/baseline.yml"
INVENTORY = "inventory.json"


@dataclass(frozen=True)
class Sources:
    register: Path | None = None
    backup_status: Sequence[tuple[str, Path]] = ()  # (host, file)
    drills: Sequence[tuple[str, Path]] = ()
    copies: Sequence[Path] = ()  # second-site copy records (they name their copy: the client host)
    audit_results: Path | None = None
    prometheus: str | None = None
    scans: Path | None = None  # a provsec scan store
    scan_baseline: Path | None = None
    inventory: Path | None = None  # an inventory directory: which agency operates each host, at which level
    queries: dict[str, str] = field(default_factory=lambda: dict(QUERIES))


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_file(text: str, option: str) -> tuple[str, Path]:
    """`HOST=FILE`, or `FILE` whose name without .json is the host (db1.json is db1's)."""
    host, sep, rest = text.partition("=")
    if sep and _HOST.fullmatch(host):
        return host, Path(rest)
    path = Path(text)
    if not _HOST.fullmatch(path.stem):
        raise InputError(f"{option} {text!r}: say which host it is from: HOST=FILE")
    return path.stem, path


def audit_run_dir(path: Path, month: Month) -> Path:
    """The results directory to collect from `--audit-results`: a run's results/ directory itself, a run
    (AUDIT_DIR with results/), or audit-results/ holding runs named by their UTC time (YYYYMMDDTHHMMSSZ): the
    last run before the month's end, the state the month ended in."""
    if not path.is_dir():
        raise InputError(f"--audit-results {path}: directory not found")
    if (path / "summary.json").is_file():
        return path
    if (path / "results").is_dir():
        return path / "results"
    runs = []
    for child in path.iterdir():
        if _AUDIT_RUN.fullmatch(child.name) and (child / "results").is_dir():
            at = datetime.strptime(child.name, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if at < month.end:
                runs.append((at, child / "results"))
    if not runs:
        raise InputError(f"--audit-results {path}: no audit run (results/ or YYYYMMDDTHHMMSSZ/results/) before the "
                         f"end of {month}")
    return max(runs)[1]


def month_scans(store: Path, month: Month) -> list[Path]:
    """The scans of `--scans STORE` to collect, oldest first: those started within the month, and the last one
    started before it (what was already open on the 1st). Chosen by the UTC time in the file name; collect checks
    that the scan's started_at says the same."""
    if not store.is_dir():
        raise InputError(f"--scans {store}: directory not found (a provsec scan store, e.g. /var/lib/provsec/scans)")
    before, within = [], []
    for path in scan_store.scans(store):
        match = _SCAN.fullmatch(path.name)
        if match is None:
            raise InputError(f"--scans {path}: not a stored scan name (scan-YYYYMMDDTHHMMSSZ.json)")
        at = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if at < month.start:
            before = [path]
        elif at < month.end:
            within.append(path)
    if not within:
        raise InputError(f"--scans {store}: no scan started in {month} (scan-YYYYMMDDTHHMMSSZ.json, UTC): nothing "
                         "was observed, so no drift can be reported")
    return before + within


class _Builder:
    """Files written into the temp folder, each hashed as written. No one reads the temp folder, so each file is
    written in place, not through write_atomic (a temp file and two fsyncs each: 10 s for a month of 50 hosts'
    daily backup status files); `sync` makes them all durable at once before the folder is renamed into place."""

    def __init__(self, root: Path, clock: Callable[[], datetime]) -> None:
        self.root = root
        self.clock = clock
        self.entries: list[dict[str, Any]] = []
        self.written: list[Path] = []

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a second file of the same name fails
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o640)  # exactly 0o640: O_CREAT's mode passes through the umask
            handle.write(data)
        self.written.append(path)

    def add(self, rel: str, data: bytes, kind: str, source: str, host: str | None = None) -> None:
        """A file of the month's data, listed in the manifest."""
        self.write(rel, data)
        entry: dict[str, Any] = {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                 "kind": kind, "source": source, "collected_at": iso_utc(self.clock())}
        if host is not None:
            entry["host"] = host
        self.entries.append(entry)

    def sync(self) -> None:
        """Every file written, then every directory holding them, on disk."""
        for path in [*self.written, *sorted({p.parent for p in self.written} | {self.root}, reverse=True)]:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _read_bytes(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{option} {path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read ({exc.strerror})") from None


def _read_source(path: Path, option: str) -> tuple[bytes, Any]:
    data = _read_bytes(path, option)
    try:
        return data, json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{option} {path}: not JSON ({exc})") from None


def collect(month: Month, out: Path, sources: Sources, now: Callable[[], datetime] | None = None) -> Path:
    """Write OUT/YYYY-MM/ from `sources`; its path. Every source is read and validated as it is copied."""
    clock = now or (lambda: datetime.now(UTC))
    final = out / str(month)
    if final.exists():
        raise InputError(f"{final}: already collected (reports were computed from it): collect into another --out "
                         "or move it away first")
    if not any((sources.register, sources.backup_status, sources.drills, sources.copies, sources.audit_results,
                sources.prometheus, sources.scans, sources.inventory)):
        raise InputError("report collect: no source given (--register, --backup-status, --drill, --backup-copy, "
                         "--audit-results, --prometheus, --scans, --inventory)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{month}.collecting-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o750)
    try:
        b = _Builder(tmp, clock)
        if sources.register is not None:
            records = load_register(sources.register, month)
            b.add("incidents.json", _json_bytes({"month": str(month), "incidents": [incident_to_json(r)
                                                                                   for r in records]}),
                  "incidents", str(sources.register))
        _collect_backups(b, sources)
        if sources.audit_results is not None:
            results = audit_run_dir(sources.audit_results, month)
            for path in audit_host_files(results):
                data, doc = _read_source(path, "--audit-results")
                parsed = parse_audit_host(doc, f"--audit-results {path}")
                host = parsed[0].host if parsed else path.stem
                b.add(f"audit/{path.name}", data, "audit", str(path), host)
        if sources.prometheus is not None:
            start, end = month.start + timedelta(seconds=DAY_S), month.end
            for name, query in sources.queries.items():
                answer = prometheus.query_range(sources.prometheus, query, start, end, DAY_S)
                b.add(f"prometheus/{name}.json", _json_bytes({
                    "query": query, "start": iso_utc(start), "end": iso_utc(end), "step_s": DAY_S,
                    "answer": answer}), "prometheus", f"{sources.prometheus} {query}")
        if sources.scans is not None or sources.scan_baseline is not None:
            _collect_scans(b, sources.scans, sources.scan_baseline, month)
        _collect_inventory(b, sources.inventory)
        manifest = {"format": FORMAT, "month": str(month), "timezone": month.timezone,
                    "collected_at": iso_utc(clock()), "files": b.entries}
        b.write(MANIFEST, _json_bytes(manifest))
        b.sync()
        tmp.rename(final)  # fails, leaving final alone, if another collect made it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dirfd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)  # the rename itself survives a power cut
    finally:
        os.close(dirfd)
    return final


def _collect_backups(b: _Builder, sources: Sources) -> None:
    for i, (host, path) in enumerate(sources.backup_status, 1):
        data, doc = _read_source(path, "--backup-status")
        parse_backup_status(doc, host, f"--backup-status {path}")
        b.add(f"backups/status/{i:02d}-{host}.json", data, "backup_status", str(path), host)
    for i, (host, path) in enumerate(sources.drills, 1):
        data, doc = _read_source(path, "--drill")
        parse_drills(doc, host, f"--drill {path}")
        b.add(f"backups/drills/{i:02d}-{host}.json", data, "drill", str(path), host)
    for i, path in enumerate(sources.copies, 1):
        data, doc = _read_source(path, "--backup-copy")
        names = sorted({c.host for c in parse_copies(doc, f"--backup-copy {path}")})
        name = names[0] if len(names) == 1 and _HOST.fullmatch(names[0]) else "copies"
        b.add(f"backups/copies/{i:02d}-{name}.json", data, "backup_copy", str(path),
              names[0] if len(names) == 1 else None)


def _collect_scans(b: _Builder, store: Path | None, baseline: Path | None, month: Month) -> None:
    if store is None or baseline is None:
        raise InputError("--scans and --scan-baseline: give both (drift is a scan against the reviewed baseline)")
    for path in month_scans(store, month):
        data, doc = _read_source(path, "--scans")
        scan = parse_scan(doc, path.name, f"--scans {path}")
        stamp = _SCAN.fullmatch(path.name)
        if stamp is None or iso_utc(scan.started_at) != iso_utc(datetime.strptime(
                stamp.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)):
            raise InputError(f"--scans {path}: started_at {scan.result.started_at} is not the time in the file name")
        b.add(f"scans/{path.name}", data, "scan", str(path))
    data = _read_bytes(baseline, "--scan-baseline")
    parse_baseline(data, Path(f"--scan-baseline {baseline}"))
    b.add(BASELINE, data, "scan_baseline", str(baseline))


def _collect_inventory(b: _Builder, path: Path | None) -> None:
    """inventory.json, derived (scope.inventory_to_json): no secret, no Ansible variable but the model's."""
    if path is None:
        return
    if not path.is_dir():
        raise InputError(f"--inventory {path}: not an inventory directory (e.g. inventory/phuyen)")
    b.add(INVENTORY, _json_bytes(inventory_to_json(load_inventory(path))), "inventory", str(path))


# -- reading a collected folder -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Collected:
    folder: Path
    month: Month
    collected_at: datetime
    incidents: list[IncidentRecord] | None  # None: the register was not collected
    backup_runs: list[BackupRun]
    drills: list[Drill]
    audit: list[ControlResult] | None
    prometheus: dict[str, list[prometheus.Series]]
    files: list[dict[str, Any]]
    scans: ScanData | None = None  # None: no scan data were collected
    copies: list[CopyRecord] = field(default_factory=list)  # second-site copy records (none: not collected)
    inventory: ReportInventory | None = None  # None: collected without --inventory
    scope: Scope | None = None  # set by scope.restrict: the data above are only those of its hosts

    def previous_audit(self) -> list[ControlResult] | None:
        """The previous month's collected audit (a sibling folder, verified the same way), if it was collected;
        restricted to this month's scope."""
        sibling = self.folder.parent / str(self.month.previous)
        if not (sibling / MANIFEST).is_file():
            return None
        previous = load_collected(sibling).audit
        return previous if self.scope is None else audit_in_scope(previous, self.scope)


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: not a collected report folder (no {MANIFEST}; run provsec report collect)")
    doc = read_json(path, "report manifest")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), list):
        raise InputError(f"{path}: not a manifest of format {FORMAT} (format, month, collected_at, files)")
    return doc


def verify(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the bytes of every file it lists, once each has its size and SHA-256 and no other file is
    in the folder. The bytes checked are the bytes parsed: a file swapped between the check and the reading
    changes nothing."""
    doc = _manifest(folder)
    listed: dict[str, bytes] = {}
    for i, entry in enumerate(doc["files"]):
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts \
                or not isinstance(entry.get("sha256"), str):
            raise InputError(f"{folder / MANIFEST}: files[{i}]: needs a relative path inside the folder and a sha256")
        path = folder / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{path}: listed in the manifest but missing: the collected data were changed") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"] or len(data) != entry.get("size"):
            raise InputError(f"{path}: SHA-256 {digest[:16]}… differs from the manifest's {entry['sha256'][:16]}…: "
                             "the file was changed after collection; collect the month again")
        listed[rel] = data
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != MANIFEST and p.relative_to(folder).as_posix() not in listed)
    if extra:
        raise InputError(f"{folder / extra[0]}: not in the manifest: the collected data were changed")
    return doc, listed


def load_collected(folder: str | Path) -> Collected:
    """A collected folder, verified against its manifest first, parsed into typed records."""
    root = Path(folder)
    doc, contents = verify(root)
    month = Month.parse(doc.get("month"), f"{root / MANIFEST}: month")
    try:
        collected_at = datetime.strptime(str(doc.get("collected_at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InputError(f"{root / MANIFEST}: collected_at {doc.get('collected_at')!r} is not YYYY-MM-DDTHH:MM:SSZ"
                         ) from None
    incidents: list[IncidentRecord] | None = None
    runs: list[BackupRun] = []
    drills: list[Drill] = []
    copies: list[CopyRecord] = []
    audit: list[ControlResult] | None = None
    series: dict[str, list[prometheus.Series]] = {}
    scans: list[Scan] = []
    baseline: tuple[bytes, Path] | None = None
    inventory: ReportInventory | None = None
    for entry in doc["files"]:
        path = root / entry["path"]
        where = str(path)
        if entry.get("kind") == "scan_baseline":  # YAML; read once the scans name its hosts
            baseline = (contents[entry["path"]], path)
            continue
        data = _json_document(contents[entry["path"]], where)
        kind, host = entry.get("kind"), str(entry.get("host") or "")
        if kind == "incidents":
            incidents = [incident_from_json(item, f"{where}: incidents[{i}]")
                         for i, item in enumerate(data.get("incidents") or [])]
        elif kind == "backup_status":
            runs.extend(parse_backup_status(data, host, where))
        elif kind == "drill":
            drills.extend(parse_drills(data, host, where))
        elif kind == "backup_copy":
            copies.extend(parse_copies(data, where))
        elif kind == "audit":
            audit = (audit or []) + parse_audit_host(data, where)
        elif kind == "prometheus":
            series[PurePosixPath(entry["path"]).stem] = prometheus.parse_matrix(data.get("answer"), where)
        elif kind == "scan":
            scans.append(parse_scan(data, path.name, where))
        elif kind == "inventory":
            inventory = parse_inventory(data, str(entry.get("source") or ""), where)
        else:
            raise InputError(f"{root / MANIFEST}: {entry['path']}: unknown kind {kind!r}")
    return Collected(root, month, collected_at, incidents, runs, drills, audit, series, doc["files"],
                     _scan_data(root, scans, baseline), copies, inventory)


def _json_document(content: bytes, where: str) -> Any:
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: not JSON ({exc})") from None


def _scan_data(root: Path, scans: list[Scan], baseline: tuple[bytes, Path] | None) -> ScanData | None:
    if baseline is None:
        if scans:
            raise InputError(f"{root / MANIFEST}: scans without their baseline ({BASELINE})")
        return None
    ordered = tuple(sorted(scans, key=lambda s: (s.started_at, s.name)))
    return ScanData(ordered, parse_baseline(baseline[0], baseline[1], ordered))
