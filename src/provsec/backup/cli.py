"""`provsec backup run|forget|status|snapshots|restore|check|drill --config FILE`.

Exit codes: 0 every job (or the check, the drill, the forget) ok; 1 any job failed OR partial (a partial backup saved a
snapshot but not everything: somebody must look, and a timer unit must show it), or a restore into a database
failed (the dump did not load); 2 bad input (configuration, job name, password file, a database that already
exists); 3 restic or a database client could not run (not installed, no answer)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provsec.backup.jobs import BackupConfig, load_config
from provsec.errors import InputError

DEFAULT_CONFIG = "/etc/provsec/backup.yml"
DEFAULT_COPY_CONFIG = "/etc/provsec/backup-copy.yml"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="back up, restore, check and drill with restic (jobs from a configuration file)",
        description="Backups through restic: file sets and database dumps, retention per data class, "
        "repository checks and restore drills. Exit 0: all ok; 1: any job failed or partial; 2: bad input.",
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"backup configuration (YAML; default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="backup_command", required=True, metavar="SUBCOMMAND")

    run = sub.add_parser("run", help="run the named jobs (all jobs when none is named)",
                         description="Back up, record the state and write the metrics. No retention: that is "
                         "`forget` (its own timer), so a small incremental costs one restic call.")
    run.add_argument("jobs", nargs="*", metavar="JOB")
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    run.set_defaults(handler=run_command)

    fgt = sub.add_parser("forget", help="retention: forget per data class policy, then one prune (all jobs when "
                         "none is named)",
                         description="restic forget of each job's snapshots with its data class's keep_* counts "
                         "and the explicit group_by, then one restic prune if anything was forgotten; records the "
                         "result and the snapshot count per job and writes the metrics. Exit 1: a forget or the "
                         "prune failed.")
    fgt.add_argument("jobs", nargs="*", metavar="JOB")
    fgt.add_argument("--json", action="store_true", help="print the results as JSON")
    fgt.set_defaults(handler=forget_command)

    stat = sub.add_parser("status", help="the last run of every job",
                          description="Per job: state (ok | partial | failed), reason, snapshot, finished_at (UTC).")
    stat.add_argument("--json", action="store_true", help="print JSON for scripts and the reports")
    stat.set_defaults(handler=status_command)

    snaps = sub.add_parser("snapshots", help="list the snapshots of the jobs")
    snaps.add_argument("jobs", nargs="*", metavar="JOB")
    snaps.add_argument("--json", action="store_true", help="print JSON")
    snaps.set_defaults(handler=snapshots_command)

    rest = sub.add_parser("restore", help="restore a job's snapshot (latest by default) under a directory, or a "
                          "database dump into a new database",
                          description="Restore under TARGET (absolute paths are re-created below it; a database "
                          "job's dump comes as TARGET/<database>.sql), or, for a database job, load the dump into "
                          "a NEW database NAME on this server (refused if NAME exists), or, for a postgresql_roles "
                          "job, create on this server the roles it lacks (existing roles are left as they are; run "
                          "it before restoring the databases of a rebuilt server). Exit 0: restored; 1: the dump "
                          "did not load (the new database is dropped again; no role is created); 2: bad input or "
                          "NAME exists.")
    rest.add_argument("job", metavar="JOB")
    where = rest.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", metavar="DIR", help="restore the snapshot's files under DIR")
    where.add_argument("--to-database", metavar="NAME", help="database jobs: load the dump into a new database NAME")
    where.add_argument("--to-server", action="store_true",
                       help="postgresql_roles jobs: create the roles this server lacks")
    rest.add_argument("--snapshot", default="latest", metavar="ID", help="snapshot id (prefix) or latest")
    rest.add_argument("--include", action="append", default=[], metavar="PATH", help="restore only PATH")
    rest.set_defaults(handler=restore_command)

    chk = sub.add_parser("check", help="check the repository (structure; with --read-data-subset, data too)")
    chk.add_argument("--read-data-subset", metavar="N%|n/t", help="also read this part of the data (e.g. 10%%)")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(handler=check_command)

    ini = sub.add_parser("init", help="create the repository unless it exists (idempotent)",
                         description="Initialise the configured repository; an existing one is left as it is. "
                         "Prints 'initialised' or 'exists' (for playbooks).")
    ini.set_defaults(handler=init_command)

    val = sub.add_parser("validate", help="check the configuration file and say what it holds (no restic call)")
    val.set_defaults(handler=validate_command)

    cpy = sub.add_parser("copy", help="backup site: pull each client repository into its second-site copy",
                         description="restic copy of every repository listed in the copy configuration (--config "
                         "names it; default /etc/provsec/backup-copy.yml) to its second-site repository.")
    cpy.add_argument("--json", action="store_true", help="print JSON")
    cpy.set_defaults(handler=copy_command)

    vlt = sub.add_parser("vault", help="control node: give every backup client a repository password in the vault",
                         description="Add random repository and second-site passwords to INVENTORY/backup-vault.yml "
                         "(ansible-vault) for every host except group backup_repo; existing ones never change.")
    vlt.add_argument("-i", "--inventory", required=True, metavar="DIR", help="the inventory directory")
    vlt.add_argument("--vault-password-file", required=True, metavar="FILE")
    vlt.add_argument("--file", metavar="FILE", help="vault file (default INVENTORY/backup-vault.yml)")
    vlt.set_defaults(handler=vault_command)

    dr = sub.add_parser("drill", help="restore drill: restore the latest snapshot, verify it, measure RTO/RPO",
                        description="Restore each job's latest snapshot to a scratch directory, verify every "
                        "file (restic >= 0.17: restic restore --verify; older snapshots: the manifest stored in the "
                        "snapshot) (database jobs: load the dump into a "
                        "scratch database provsec_drill_<db> and compare row counts per table with the dump's), "
                        "record RTO and RPO, clean up.")
    dr.add_argument("jobs", nargs="*", metavar="JOB")
    dr.add_argument("--scratch", metavar="DIR", help="scratch directory (default: STATE_DIR/drill-scratch)")
    dr.add_argument("--json", action="store_true", help="print JSON")
    dr.set_defaults(handler=drill_command)


def _config(args: argparse.Namespace) -> BackupConfig:
    return load_config(args.config)


def _line(job: str, state: str, reason: str) -> str:
    return f"{job:<20} {state:<8} {reason}"


def _each_job(args: argparse.Namespace, action: Callable[..., Sequence[Any]], line: Callable[[Any], str],
              ok: Callable[[Any], bool]) -> int:
    """run and forget: the selected jobs through action, printed as JSON or one line each; 1 unless all ok."""
    config = _config(args)
    progress = None if args.json or not sys.stderr.isatty() else _progress
    results = action(config, config.select(args.jobs), progress or (lambda _: None))
    if args.json:
        print(json.dumps([r.to_json() for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            print(line(r))
    return 0 if all(ok(r) for r in results) else 1


def run_command(args: argparse.Namespace) -> int:
    from provsec.backup.runner import run_jobs

    def line(rec: Any) -> str:
        snap = f" [{rec.result.snapshot[:8]}]" if rec.result.snapshot else ""
        return _line(rec.job, rec.result.state, rec.result.reason + snap)

    return _each_job(args, run_jobs, line, lambda rec: rec.result.state == "ok")


def forget_command(args: argparse.Namespace) -> int:
    from provsec.backup.runner import forget_jobs

    return _each_job(args, forget_jobs, lambda r: _line(r.job, r.state, r.reason), lambda r: r.state == "ok")


def _progress(message: str) -> None:
    print(f"provsec: {message}", file=sys.stderr)


def status_command(args: argparse.Namespace) -> int:
    from provsec.backup.state import status

    rows = status(_config(args))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(_line(row["job"], row["state"], f"{row['reason']} (finished {row['finished_at'] or '-'})"))
    return 0 if all(r["state"] == "ok" for r in rows) else 1


def snapshots_command(args: argparse.Namespace) -> int:
    from provsec.backup import restic
    from provsec.backup.restic import iso

    config = _config(args)
    rows = []
    for job in config.select(args.jobs):
        for snap in restic.snapshots(config.repository, job.tags):
            rows.append({"job": job.name, "id": snap.id, "time": iso(snap.time), "paths": list(snap.paths),
                         "tags": list(snap.tags), "host": snap.hostname})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(f"{row['job']:<20} {row['id'][:8]}  {row['time']}  {row['host']}  {' '.join(row['paths'])}")
    return 0


def restore_command(args: argparse.Namespace) -> int:
    from provsec.backup.runner import restore, restore_database, restore_roles

    config = _config(args)
    job = config.job(args.job)
    if args.to_server:
        if args.include:
            raise InputError("--include restores files under --target; a roles dump applies whole")
        snap, script = restore_roles(config, job, args.snapshot)
        made = ", ".join(script.created) or "none"
        print(f"restored snapshot {snap.short_id} of job {job.name}: roles created: {made}; "
              f"{len(script.existing)} existed and were left as they are")
        if script.tablespaces:
            print(f"tablespaces NOT created (make their directories, then run their CREATE TABLESPACE from the dump "
                  f"restored with --target): {', '.join(script.tablespaces)}")
        return 0
    if args.to_database is not None:
        if job.kind == "files":
            raise InputError(f"job {job.name}: --to-database is for database jobs; use --target DIR")
        if args.include:
            raise InputError("--include restores files under --target; a dump loads whole")
        snap = restore_database(config, job, args.snapshot, args.to_database)
        print(f"restored snapshot {snap.short_id} of job {job.name} into the new database {args.to_database}")
        return 0
    short = restore(config, job, args.snapshot, Path(args.target), args.include)
    print(f"restored snapshot {short} of job {args.job} under {args.target}")
    return 0


def init_command(args: argparse.Namespace) -> int:
    from provsec.backup import restic

    repo = _config(args).repository
    if restic.is_initialised(repo):
        print(f"repository {repo.url}: exists")
    else:
        restic.init(repo)
        print(f"repository {repo.url}: initialised")
    return 0


def validate_command(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"{config.source}: {len(config.jobs)} job(s) ({', '.join(j.name for j in config.jobs)}), "
          f"repository {config.repository.url}")
    return 0


def copy_command(args: argparse.Namespace) -> int:
    from provsec.backup import copy

    path = DEFAULT_COPY_CONFIG if args.config == DEFAULT_CONFIG else args.config
    records = copy.run(copy.load_config(path))
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        for rec in records:
            print(_line(rec["copy"], rec["state"], rec["reason"]))
    return 0 if all(r["state"] == "ok" for r in records) else 1


def vault_command(args: argparse.Namespace) -> int:
    from provsec.backup import vault

    inventory = Path(args.inventory)
    target = Path(args.file) if args.file else inventory / vault.FILENAME
    added = vault.ensure(target, Path(args.vault_password_file), vault.backup_clients(inventory))
    print(f"{target}: {'new passwords for ' + ', '.join(added) if added else 'every backup client has its passwords'}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    from provsec.backup.restic import iso
    from provsec.backup.runner import check

    result = check(_config(args), args.read_data_subset)
    if args.json:
        print(json.dumps({"state": result.state, "reason": result.reason, "finished_at": iso(result.finished_at),
                          "duration_s": round(result.duration_s, 3)}, ensure_ascii=False, indent=2))
    else:
        print(_line("check", result.state, result.reason))
    return 0 if result.state == "ok" else 1


def drill_command(args: argparse.Namespace) -> int:
    from provsec.backup.runner import drill

    config = _config(args)
    names = args.jobs or [j.name for j in config.jobs]
    scratch = Path(args.scratch) if args.scratch else None
    results = [drill(config, config.job(n), scratch) for n in names]
    if args.json:
        print(json.dumps([r.to_json() for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            print(_line(r.job, r.state, f"{r.reason} (RTO {r.rto_s} s, RPO {r.rpo_s} s)"))
    return 0 if results and all(r.state == "ok" for r in results) else 1
