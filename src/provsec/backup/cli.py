"""`provsec backup run|status|snapshots|restore|check|drill --config FILE`.

Exit codes: 0 every job (or the check, the drill) ok; 1 any job failed OR partial (a partial backup saved a
snapshot but not everything: somebody must look, and a timer unit must show it); 2 bad input (configuration,
job name, password file); 3 restic itself could not run (not installed, no answer)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provsec.backup.jobs import BackupConfig, load_config

DEFAULT_CONFIG = "/etc/provsec/backup.yml"


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
                         description="Back up, apply retention, record the state and write the metrics.")
    run.add_argument("jobs", nargs="*", metavar="JOB")
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    run.set_defaults(handler=run_command)

    stat = sub.add_parser("status", help="the last run of every job",
                          description="Per job: state (ok | partial | failed), reason, snapshot, finished_at (UTC).")
    stat.add_argument("--json", action="store_true", help="print JSON for scripts and the reports")
    stat.set_defaults(handler=status_command)

    snaps = sub.add_parser("snapshots", help="list the snapshots of the jobs")
    snaps.add_argument("jobs", nargs="*", metavar="JOB")
    snaps.add_argument("--json", action="store_true", help="print JSON")
    snaps.set_defaults(handler=snapshots_command)

    rest = sub.add_parser("restore", help="restore a job's snapshot (latest by default) under a directory",
                          description="Restore under TARGET; absolute paths are re-created below it.")
    rest.add_argument("job", metavar="JOB")
    rest.add_argument("--target", required=True, metavar="DIR")
    rest.add_argument("--snapshot", default="latest", metavar="ID", help="snapshot id (prefix) or latest")
    rest.add_argument("--include", action="append", default=[], metavar="PATH", help="restore only PATH")
    rest.set_defaults(handler=restore_command)

    chk = sub.add_parser("check", help="check the repository (structure; with --read-data-subset, data too)")
    chk.add_argument("--read-data-subset", metavar="N%|n/t", help="also read this part of the data (e.g. 10%%)")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(handler=check_command)

    dr = sub.add_parser("drill", help="restore drill: restore the latest snapshot, verify it, measure RTO/RPO",
                        description="Restore each job's latest snapshot to a scratch directory, verify every "
                        "file against the manifest stored in the snapshot, record RTO and RPO, clean up.")
    dr.add_argument("jobs", nargs="*", metavar="JOB")
    dr.add_argument("--scratch", metavar="DIR", help="scratch directory (default: STATE_DIR/drill-scratch)")
    dr.add_argument("--json", action="store_true", help="print JSON")
    dr.set_defaults(handler=drill_command)


def _config(args: argparse.Namespace) -> BackupConfig:
    return load_config(args.config)


def _line(job: str, state: str, reason: str) -> str:
    return f"{job:<20} {state:<8} {reason}"


def run_command(args: argparse.Namespace) -> int:
    from provsec.backup.runner import run_jobs

    config = _config(args)
    jobs = config.select(args.jobs)
    progress = None if args.json or not sys.stderr.isatty() else _progress
    records = run_jobs(config, jobs, progress or (lambda _: None))
    if args.json:
        print(json.dumps([r.to_json() for r in records], ensure_ascii=False, indent=2))
    else:
        for rec in records:
            snap = f" [{rec.result.snapshot[:8]}]" if rec.result.snapshot else ""
            print(_line(rec.job, rec.result.state, rec.result.reason + snap))
    return 0 if all(r.result.state == "ok" for r in records) else 1


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
    from provsec.backup.runner import restore

    config = _config(args)
    snap = restore(config, config.job(args.job), args.snapshot, Path(args.target), args.include)
    print(f"restored snapshot {snap.short_id} of job {args.job} under {args.target}")
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
    names = args.jobs or [j.name for j in config.jobs if j.kind == "files"]
    skipped = [j.name for j in config.jobs if not args.jobs and j.kind != "files"]
    for name in skipped:
        print(f"provsec: warning: {name}: database drills are not implemented yet; not drilled", file=sys.stderr)
    scratch = Path(args.scratch) if args.scratch else None
    results = [drill(config, config.job(n), scratch) for n in names]
    if args.json:
        print(json.dumps([r.to_json() for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            print(_line(r.job, r.state, f"{r.reason} (RTO {r.rto_s} s, RPO {r.rpo_s} s)"))
    return 0 if results and all(r.state == "ok" for r in results) and not skipped else 1
