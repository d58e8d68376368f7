"""What `provsec backup run|forget|check|drill|restore` do: jobs → restic wrapper → state records → textfile metrics."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from provsec.backup import database, manifest, restic
from provsec.backup.jobs import BackupConfig, Job
from provsec.backup.metrics import write_textfile
from provsec.backup.restic import CheckResult, ResticError, RunResult, Snapshot, iso, utcnow
from provsec.backup.state import JobRecord, StateStore
from provsec.errors import InputError, ProvsecError

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def run_job(config: BackupConfig, job: Job) -> RunResult:
    repo = config.repository
    store = StateStore(config.state_dir)
    if job.kind == "files":
        target = store.manifest_path(job.name)
        extra: list[Path] = []
        if _verifies_restores(repo):
            # the drill's reference is `restic restore --verify`: no hashing pass over the data before the backup
            # (0.6 s per GiB here). A manifest left by an earlier run goes, so it can never be backed up (the
            # state directory may lie under the job's paths) and drilled as if it described this snapshot.
            target.unlink(missing_ok=True)
        else:
            manifest.write(target, job.name, manifest.build(job.paths, job.exclude, manifest.load_previous(target)))
            extra = [target]
        return restic.backup_paths(repo, job.paths, tags=job.tags, exclude=job.exclude, extra_paths=extra,
                                   timeout=job.timeout)
    return restic.backup_stdin(repo, job.dump_command, filename=job.stdin_filename, tags=job.tags,
                               timeout=job.timeout)


def _verifies_restores(repo: restic.Repository) -> bool:
    """Whether the backup can leave the drill's reference to `restic restore --verify`. A restic whose version
    cannot be learnt gets the manifest: the backup then fails or succeeds on its own, with a reference either way."""
    try:
        return restic.verifies_restores(repo)
    except ProvsecError:
        return False


def run_jobs(config: BackupConfig, jobs: Sequence[Job], progress: Progress = _quiet) -> list[JobRecord]:
    """Run jobs one after the other; every job ends with a record, whatever happened to the others.
    Backup only: retention is `forget_jobs` (its own timer), and no restic call counts the snapshots — each
    opening of the repository costs ≥ 0.7 s, more than the issue's overhead budget for a small incremental. The
    count recorded is the last known one (StateStore.known_snapshots) + 1 when a snapshot was saved."""
    store = StateStore(config.state_dir)
    records: list[JobRecord] = []
    for job in jobs:
        progress(f"{job.name}: backing up ({job.kind})")
        known = store.known_snapshots(job.name)
        result = run_job(config, job)
        count = known + 1 if result.snapshot is not None else known
        records.append(store.record_run(job, result, count))
        progress(f"{job.name}: {result.state}: {result.reason}")
    write_textfile(config)
    return records


@dataclass(frozen=True)
class ForgetResult:
    job: str
    state: str  # ok | failed
    reason: str
    forgotten: int
    snapshots: int | None  # restic's count after the policy; None when the forget failed
    finished_at: str

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "state": self.state, "reason": self.reason, "forgotten": self.forgotten,
                "snapshots": self.snapshots, "finished_at": self.finished_at}


def forget_jobs(config: BackupConfig, jobs: Sequence[Job], progress: Progress = _quiet) -> list[ForgetResult]:
    """Retention: `restic forget` per job with its data class's keep_* policy and the explicit group_by, then ONE
    `restic prune` if anything was forgotten (or a prune is still owed from an earlier forget whose prune
    failed). Every job ends with a record (state, reason, forgotten, the true snapshot count); a failed prune
    fails the jobs whose snapshots it should have removed and is owed to the next forget."""
    repo = config.repository
    store = StateStore(config.state_dir)
    found: list[tuple[Job, ForgetResult]] = []
    for job in jobs:
        progress(f"{job.name}: forget per class {job.data_class}")
        try:
            forgotten, kept = restic.forget_policy(repo, tags=job.tags, group_by=config.group_by,
                                                   keep=config.retention[job.data_class])
        except ResticError as exc:
            found.append((job, ForgetResult(job.name, "failed", f"forget failed: {exc}", 0, None, iso(utcnow()))))
            continue
        reason = f"forgot {forgotten} snapshot(s), kept {kept}" if forgotten else f"nothing to forget, kept {kept}"
        found.append((job, ForgetResult(job.name, "ok", reason, forgotten, kept, iso(utcnow()))))
    pending = store.prune_pending()
    total = sum(r.forgotten for _, r in found)
    if total or pending is not None:
        progress(f"pruning the data of {total} forgotten snapshot(s)" + ("; a prune was owed" if pending else ""))
        try:
            restic.prune(repo)
        except ResticError as exc:
            store.set_prune_pending(f"prune failed: {exc}", pending["since"] if pending else iso(utcnow()))
            found = [(job, replace(r, state="failed", reason=f"{r.reason}; prune failed (owed to the next forget): "
                                   f"{exc}", finished_at=iso(utcnow())) if r.forgotten else r)
                     for job, r in found]
            if not total:  # an owed prune failed again: every job's retention is still not done
                found = [(job, replace(r, state="failed", reason=f"{r.reason}; owed prune failed: {exc}"))
                         for job, r in found]
        else:
            store.clear_prune_pending()
            found = [(job, replace(r, reason=f"{r.reason}; pruned")) if r.forgotten else (job, r)
                     for job, r in found]
    results = []
    for _job, result in found:
        store.record_forget(result.job, result.to_json())
        results.append(result)
        progress(f"{result.job}: {result.state}: {result.reason}")
    write_textfile(config)
    return results


def check(config: BackupConfig, read_data_subset: str | None) -> CheckResult:
    result = restic.check(config.repository, read_data_subset=read_data_subset)
    StateStore(config.state_dir).record_check(result, read_data_subset)
    write_textfile(config)
    return result


def latest_snapshot(config: BackupConfig, job: Job) -> Snapshot:
    found = restic.snapshots(config.repository, job.tags)
    if not found:
        raise InputError(f"job {job.name}: no snapshot in repository {config.repository.url}")
    return found[-1]


def resolve(config: BackupConfig, job: Job, snapshot: str | None) -> Snapshot:
    if snapshot in (None, "latest"):
        return latest_snapshot(config, job)
    matches = [s for s in restic.snapshots(config.repository, job.tags) if s.id.startswith(str(snapshot))]
    if len(matches) != 1:
        raise InputError(f"job {job.name}: snapshot {snapshot!r} matches {len(matches)} snapshots of the job")
    return matches[0]


def restore(config: BackupConfig, job: Job, snapshot: str | None, target: Path, include: Sequence[str]) -> str:
    """Restore the job's latest snapshot (one restic call: `restore latest --tag <the job's tags>`) or the given
    one (an id prefix that must name exactly one snapshot of the job) under target; returns the short id
    restored ("latest" if restic did not name it). restic creates target; nothing is created without a snapshot."""
    if snapshot in (None, "latest"):
        try:
            short = restic.restore_latest(config.repository, job.tags, target, include)
        except restic.NoSnapshotError as exc:
            raise InputError(f"job {job.name}: no snapshot in repository {config.repository.url}") from exc
        return short or "latest"
    snap = resolve(config, job, snapshot)
    target.mkdir(parents=True, exist_ok=True)
    restic.restore(config.repository, snap.id, target, include)
    return snap.short_id


def server(job: Job) -> database.Server:
    """The database server of a database or roles job, reached with the job's client_command."""
    if job.kind == "postgresql_roles":
        return database.Server("postgresql", job.client_command, timeout=job.timeout)
    if job.kind == "files" or job.database is None:
        raise InputError(f"job {job.name}: a {job.kind} job has no database")
    return database.Server(job.kind, job.client_command, timeout=job.timeout)


@contextmanager
def _scratch_area(base: Path, job: Job) -> Iterator[Path]:
    """A private directory under base (0700) for one restore; removed on every path out."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    area = Path(tempfile.mkdtemp(prefix=f"{job.name}-", dir=base))
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)


def _restored_dump(config: BackupConfig, job: Job, snap: Snapshot, area: Path, srv: database.Server) -> Path:
    """The job's dump restored from snap into area, present and ending with its tool's trailer; else raises
    (ResticError: the restore; InputError: no dump in the snapshot; DatabaseError: a dump cut short)."""
    restic.restore(config.repository, snap.id, area)
    dump = area / job.stdin_filename
    where = f"snapshot {snap.short_id}"
    if not dump.is_file():
        raise InputError(f"{where} holds no {job.stdin_filename} (a dump made before provsec wrote plain SQL, "
                         "or a dump_command writing elsewhere?)")
    complete = (database.globals_complete(dump) if job.kind == "postgresql_roles"
                else database.dump_complete(dump, srv.kind))
    if not complete:
        raise database.DatabaseError(f"{where}: {job.stdin_filename} has no end-of-dump trailer: the dump was "
                                     "cut short")
    return dump


def restore_database(config: BackupConfig, job: Job, snapshot: str | None, name: str,
                     scratch: Path | None = None) -> Snapshot:
    """Disaster recovery: load the job's dump (latest or the given snapshot) into a NEW database `name` on this
    server. Refuses before anything is restored if `name` exists; refuses a dump without its trailer
    (cut short); a failed load drops the database it created (see database.restore_database)."""
    if job.kind == "postgresql_roles":
        raise InputError(f"job {job.name}: a postgresql_roles job restores with --to-server (roles belong to the "
                         "whole server, not to one database)")
    srv = server(job)
    database.refuse_existing(srv, name)  # before restoring anything: a refusal costs nothing
    snap = resolve(config, job, snapshot)
    with _scratch_area(scratch or config.state_dir / "restore-scratch", job) as area:
        try:
            database.restore_database(srv, name, _restored_dump(config, job, snap, area, srv))
        except database.DatabaseError as exc:
            if job.kind == "postgresql" and _MISSING_ROLE.search(str(exc)):
                roles = [j.name for j in config.jobs if j.kind == "postgresql_roles"]
                hint = (f"restore the roles first: provsec backup restore {roles[0]} --to-server" if roles else
                        "create the roles the dump names first (no postgresql_roles job is configured)")
                raise database.DatabaseError(f"{exc}; {hint}") from exc
            raise
    return snap


_MISSING_ROLE = re.compile(r'role "(?:[^"]|"")+" does not exist')  # psql's error for an owner or grantee


def restore_roles(config: BackupConfig, job: Job, snapshot: str | None,
                  scratch: Path | None = None) -> tuple[Snapshot, database.RolesScript]:
    """Disaster recovery, before the databases: create on this server the roles of the job's globals dump that
    it lacks, with their attributes, password hashes, settings and memberships, in one transaction (all or
    nothing). Roles that exist are left exactly as they are; tablespaces are left out (RolesScript)."""
    if job.kind != "postgresql_roles":
        raise InputError(f"job {job.name}: --to-server is for postgresql_roles jobs (a {job.kind} job restores "
                         "with --target" + (" or --to-database)" if job.kind != "files" else ")"))
    snap = resolve(config, job, snapshot)
    with _scratch_area(scratch or config.state_dir / "restore-scratch", job) as area:
        return snap, _apply_roles(config, job, snap, area, keep=True)


def _apply_roles(config: BackupConfig, job: Job, snap: Snapshot, area: Path, *, keep: bool) -> database.RolesScript:
    """The roles job's dump from snap (restored into area, trailer checked), fitted to this server's roles and
    run in one transaction: committed for a restore (keep), rolled back for a drill."""
    srv = server(job)
    script = database.roles_script(_restored_dump(config, job, snap, area, srv), srv.roles())
    srv.apply_roles(script, keep=keep)
    return script


@dataclass(frozen=True)
class DrillResult:
    job: str
    state: str
    reason: str
    snapshot: str | None
    rto_s: float | None
    rpo_s: float | None
    files_checked: int
    finished_at: str
    tables_checked: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "state": self.state, "reason": self.reason, "snapshot": self.snapshot,
                "rto_s": self.rto_s, "rpo_s": self.rpo_s, "files_checked": self.files_checked,
                "tables_checked": self.tables_checked, "finished_at": self.finished_at}


def drill(config: BackupConfig, job: Job, scratch: Path | None = None) -> DrillResult:
    """Restore the job's latest snapshot into a scratch directory and verify it — files: every file against
    the manifest the snapshot carries (snapshots made with restic < 0.17), else restic's own `restore --verify`
    (restic ≥ 0.17; neither: failed, no reference); databases: the dump loaded into a scratch database, rows per table
    against the dump's own counts (_drill_database) — measure RTO (restore + load + verify) and RPO (snapshot
    age), clean up, record."""
    store = StateStore(config.state_dir)
    started = utcnow()

    def done(state: str, reason: str, snap: Snapshot | None, rto: float | None, checked: int, *,
             tables: int = 0) -> DrillResult:
        rpo = round((started - snap.time).total_seconds(), 3) if snap else None
        result = DrillResult(job.name, state, reason, snap.id if snap else None, rto, rpo, checked, iso(utcnow()),
                             tables_checked=tables)
        store.record_drill(job.name, result.to_json())
        write_textfile(config)
        return result

    try:
        snap = latest_snapshot(config, job)
    except (InputError, ResticError) as exc:
        return done("failed", str(exc), None, None, 0)
    base = scratch or config.state_dir / "drill-scratch"
    if job.kind == "postgresql_roles":
        with _scratch_area(base, job) as area:
            state, reason, rto = _drill_roles(config, job, snap, area)
        return done(state, reason, snap, rto, 0)
    if job.kind != "files":
        with _scratch_area(base, job) as area:
            state, reason, rto, tables = _drill_database(config, job, snap, area)
        return done(state, reason, snap, rto, 0, tables=tables)
    state, reason, rto, checked = _drill_files(config, job, snap, base)
    return done(state, reason, snap, rto, checked)


DrillOutcome = tuple[str, str, float | None, int]  # state, reason naming the reference, RTO, files checked


def _drill_files(config: BackupConfig, job: Job, snap: Snapshot, base: Path) -> DrillOutcome:
    """The snapshot's own paths say whether it carries a manifest (backed up as a path of its own; no restic
    call): then restore and check every file against it (snapshots made with restic < 0.17); else restic's
    `restore --verify` (restic ≥ 0.17); else failed, no reference."""
    where = f"snapshot {snap.short_id}"
    manifest_path = StateStore(config.state_dir).manifest_path(job.name)
    if str(manifest_path) in snap.paths:
        return _drill_with_manifest(config, job, snap, base, manifest_path)
    try:
        verifies, why = restic.verifies_restores(config.repository), ""
    except ProvsecError as exc:
        verifies, why = False, f" ({exc})"
    if not verifies:
        since = ".".join(map(str, restic.VERIFY_RESTORE_SINCE))
        return "failed", (f"{where}: no reference to verify against: the snapshot carries no manifest and restic "
                          f"{config.repository.restic_binary} is older than {since}, provsec's threshold for "
                          f"restore --verify{why}"), None, 0
    with _scratch_area(base, job) as area:
        t0 = time.monotonic()
        try:
            verified = restic.restore_verify(config.repository, snap.id, area)
        except ResticError as exc:
            return "failed", f"{where}: restore --verify failed: {exc}", None, 0
        rto = round(time.monotonic() - t0, 3)
    if verified == 0:
        return "failed", f"{where}: restic restore --verify verified no file", rto, 0
    return "ok", (f"{where}: {verified} files verified by restic restore --verify (every chunk against the "
                  "snapshot's content hashes)"), rto, verified


def _drill_with_manifest(config: BackupConfig, job: Job, snap: Snapshot, base: Path,
                         manifest_path: Path) -> DrillOutcome:
    """Restore snap, then every file the manifest restored with it lists against its sha256."""
    where = f"snapshot {snap.short_id}"
    with _scratch_area(base, job) as area:
        t0 = time.monotonic()
        try:
            restic.restore(config.repository, snap.id, area)
        except ResticError as exc:
            return "failed", f"restore failed: {exc}", None, 0
        try:
            files = manifest.read(area / str(manifest_path).lstrip("/"))
        except InputError as exc:
            return "failed", f"{where} carries no usable manifest: {exc}", None, 0
        check = manifest.verify(files, area)
        rto = round(time.monotonic() - t0, 3)
    return ("ok" if check.passed else "failed", f"{where}: {check.summary()} against the manifest in the snapshot",
            rto, check.checked)


def _drill_database(config: BackupConfig, job: Job, snap: Snapshot, area: Path) -> tuple[str, str, float | None, int]:
    """restic restore of the dump into area → trailer → load into provsec_drill_<db> while the dump's own row
    counts are read (a thread: the load runs in the client, so reading the dump costs no time) → count(*) per
    table in the scratch database → drop it (always) → (state, reason, RTO, tables checked)."""
    t0 = time.monotonic()
    where = f"snapshot {snap.short_id}"
    try:
        srv = server(job)
        dump = _restored_dump(config, job, snap, area, srv)
        with database.scratch_database(srv, str(job.database)) as name, ThreadPoolExecutor(1) as pool:
            counting = pool.submit(database.dump_row_counts, dump, srv.kind)
            srv.load(name, dump)
            expected = counting.result()
            loaded = srv.table_counts(name)
            rto = round(time.monotonic() - t0, 3)
    except ResticError as exc:
        return "failed", f"restore failed: {exc}", None, 0
    except ProvsecError as exc:
        return "failed", str(exc) if str(exc).startswith(where) else f"{where}: {exc}", None, 0
    problems = database.compare_counts(expected, loaded)
    tables = len(expected.keys() | loaded.keys())
    if problems:
        shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
        return "failed", f"{where}: {len(problems)} of {tables} tables differ from the dump: {shown}", rto, tables
    rows = sum(expected.values())
    return "ok", f"{where}: {tables} tables, {rows} rows loaded, each table's count equal to the dump's", rto, tables


def _drill_roles(config: BackupConfig, job: Job, snap: Snapshot, area: Path) -> tuple[str, str, float | None]:
    """restic restore of the globals dump → trailer → the script a restore would run on this server, run in a
    transaction that is rolled back: it must apply (every role it would create, every membership), and the
    server is left as it was → (state, reason, RTO)."""
    t0 = time.monotonic()
    where = f"snapshot {snap.short_id}"
    try:
        script = _apply_roles(config, job, snap, area, keep=False)
        rto = round(time.monotonic() - t0, 3)
    except ResticError as exc:
        return "failed", f"restore failed: {exc}", None
    except ProvsecError as exc:
        return "failed", str(exc) if str(exc).startswith(where) else f"{where}: {exc}", None
    total = len(script.created) + len(script.existing)
    if not total:
        return "failed", f"{where}: the roles dump names no role (not a pg_dumpall --globals-only dump?)", rto
    spaces = f"; {len(script.tablespaces)} tablespace(s) left out" if script.tablespaces else ""
    return "ok", (f"{where}: {total} roles in the dump ({len(script.existing)} exist here); the script that "
                  f"creates the {len(script.created)} others applies (rolled back){spaces}"), rto
