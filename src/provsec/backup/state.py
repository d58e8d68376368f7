"""Per-job last-run records, the last check and the last drill per job, as JSON files under state_dir
(written to a temp file and renamed: the metrics writer, `status` and the reports read them at any time).

    <state_dir>/runs/<job>.json     the last run: RunResult + job, kind, last_success_at, snapshots
    <state_dir>/check.json          the last `check`
    <state_dir>/drills/<job>.json   the last drill of the job (RTO, RPO, files or database tables verified)
    <state_dir>/forgets/<job>.json  the last retention (`forget`) of the job: state, reason, forgotten, snapshots
    <state_dir>/prune-pending.json  present while snapshots were forgotten but no prune has succeeded since

Snapshot count: `run` makes no restic call to count (it costs a repository opening, ≥ 0.7 s): it records the
last known count + 1 when it saved a snapshot. `forget` records the count restic reports after applying the
policy; `known_snapshots` is whichever of the two records is newer.

A job that has never run has no record; `status` reports it as failed, reason "never run": no backup exists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.backup.jobs import BackupConfig, Job
from provsec.backup.restic import CheckResult, RunResult, iso, parse_time
from provsec.errors import InputError
from provsec.fileio import write_json_atomic


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: backup state file unreadable or not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: backup state file: expected a JSON object")
    return data


@dataclass(frozen=True)
class JobRecord:
    job: str
    kind: str
    result: RunResult
    last_success_at: str | None
    snapshots: int

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, **self.result.to_json(),
                "last_success_at": self.last_success_at, "snapshots": self.snapshots}


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir

    def _run_path(self, job: str) -> Path:
        return self.root / "runs" / f"{job}.json"

    def manifest_path(self, job: str) -> Path:
        return self.root / "manifests" / f"{job}.json"

    def record_run(self, job: Job, result: RunResult, snapshots: int) -> JobRecord:
        previous = self.last_run(job.name)
        last_success = iso(result.finished_at) if result.state == "ok" else (
            previous.last_success_at if previous else None
        )
        record = JobRecord(job.name, job.kind, result, last_success, snapshots)
        write_json_atomic(self._run_path(job.name), record.to_json())
        return record

    def last_run(self, job: str) -> JobRecord | None:
        path = self._run_path(job)
        data = read_json(path)
        if data is None:
            return None
        try:
            return JobRecord(str(data["job"]), str(data["kind"]), RunResult.from_json(data),
                             data.get("last_success_at"), int(data.get("snapshots", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed backup state ({exc!r})") from exc

    def record_check(self, result: CheckResult, read_data_subset: str | None) -> None:
        write_json_atomic(self.root / "check.json", {
            "state": result.state, "reason": result.reason, "duration_s": round(result.duration_s, 3),
            "finished_at": iso(result.finished_at), "read_data_subset": read_data_subset,
        })

    def last_check(self) -> dict[str, Any] | None:
        return read_json(self.root / "check.json")

    def record_drill(self, job: str, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.root / "drills" / f"{job}.json", {"job": job, **data})

    def last_drill(self, job: str) -> dict[str, Any] | None:
        return read_json(self.root / "drills" / f"{job}.json")

    def record_forget(self, job: str, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.root / "forgets" / f"{job}.json", {"job": job, **data})

    def last_forget(self, job: str) -> dict[str, Any] | None:
        return read_json(self.root / "forgets" / f"{job}.json")

    def known_snapshots(self, job: str, run: JobRecord | None = None) -> int:
        """The job's snapshot count as last known: from the newer of the last run (its count, itself last known
        + 1 when it saved a snapshot) and the last forget that counted (restic's own count after retention).
        run: the job's last run record when the caller has already read it."""
        run = run if run is not None else self.last_run(job)
        counted = self.last_forget(job)
        if counted is not None and counted.get("snapshots") is not None and (
            run is None or run.result.finished_at <= parse_time(str(counted["finished_at"]))
        ):
            return int(counted["snapshots"])
        return run.snapshots if run is not None else 0

    def _prune_pending_path(self) -> Path:
        return self.root / "prune-pending.json"

    def prune_pending(self) -> dict[str, Any] | None:
        return read_json(self._prune_pending_path())

    def set_prune_pending(self, reason: str, since: str) -> None:
        write_json_atomic(self._prune_pending_path(), {"reason": reason, "since": since})

    def clear_prune_pending(self) -> None:
        self._prune_pending_path().unlink(missing_ok=True)


def status(config: BackupConfig) -> list[dict[str, Any]]:
    """One entry per configured job: job, state, reason, snapshot, finished_at (UTC ISO 8601), and more.
    `last_check` is the repository's last `check` (check.json; None: never checked): the jobs of a host share one
    repository, so every row carries the same one, and a status file saved after each run tells the reports which
    checks ran."""
    store = StateStore(config.state_dir)
    check = store.last_check()
    rows: list[dict[str, Any]] = []
    for job in config.jobs:
        record = store.last_run(job.name)
        if record is None:
            rows.append({"job": job.name, "kind": job.kind, "state": "failed", "reason": "never run",
                         "snapshot": None, "finished_at": None, "started_at": None, "duration_s": None,
                         "bytes_added": None, "bytes_processed": None, "last_success_at": None,
                         "snapshots": store.known_snapshots(job.name),
                         "last_check": check})
        else:
            rows.append({**record.to_json(), "snapshots": store.known_snapshots(job.name, record),
                         "last_check": check})
    return rows


def timestamp(text: str | None) -> float | None:
    """Unix seconds of a stored UTC ISO time: what the metrics carry (no timezone can shift them)."""
    return parse_time(text).timestamp() if text else None
