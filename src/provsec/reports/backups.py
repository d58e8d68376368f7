"""Backup figures of a month, per host and job: success rate, last good snapshot, RPO against its target, restore
drills with measured RTO against its target.

`provsec backup status --json` holds each job's LAST run only, so a month's history is the set of status files
collected during it (a timer saving the status after each run, or one file per host and day): distinct runs are
told apart by (host, job, finished_at), so the same run seen in two files counts once.

- success rate: runs finished within the month in state ok / all runs finished within it (partial is not a
  success: a partial snapshot is not a complete backup). No run in the month: None, never 100 %.
- last good snapshot: the latest ok run finished before the month's end.
- RPO: the longest time during the month without a good backup: the gap before each success of the month
  (from the previous success, or from the month's start when none is known) and from the last success to the
  month's end (or `as_of`, when the month is not over). Met when ≤ the target.
- drill RTO: each drill of the month; met when the drill passed and its measured RTO ≤ the target.
- repository checks (per host: the jobs of a host share one repository): the distinct `last_check` records the
  status files carry (told apart by finished_at), those finished in the month, failed ones with restic's reason,
  and the last check before the month's end. Status files of a provsec that did not record checks: no data.
- data growth (per job, runs in state ok only: a partial snapshot misses files): size at the start = the size
  backed up (restic's total_bytes_processed) by the last ok run before the month, else by the first ok run of
  the month; size at the end = that of the last ok run of the month; growth = end − start. Data added = the sum
  of restic's data_added over the month's runs that kept a snapshot (ok, partial); unknown when any of them
  lacks the figure (never a partial sum).
- second-site copy (per host: a copy holds the client's whole repository): copy runs finished in the month and
  the failed ones with their reason; the last successful copy before the month's end; per job, lag = the job's
  newest good backup (its last success before the month's end, as for the RPO) − the newest one already present
  when that copy started (a backup that finished before the copy started is in it). 0: the second site holds
  the newest backup. When only a failed copy's last_success_at tells of a success, its finish time stands for
  its start (the lag may then be understated by the copy's duration)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from provsec.errors import InputError
from provsec.reports.month import Month, Traced
from provsec.reports.sources import BackupCheck, BackupRun, CopyRecord, Drill

DEFAULT_RPO_TARGET_S = 24 * 3600.0  # a daily job
DEFAULT_RTO_TARGET_S = 4 * 3600.0


@dataclass(frozen=True)
class Targets:
    """RPO and RTO targets in seconds; `per_job` overrides them for "host/job" or "job" keys."""

    rpo_s: float = DEFAULT_RPO_TARGET_S
    rto_s: float = DEFAULT_RTO_TARGET_S
    per_job: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def for_job(self, host: str, job: str) -> tuple[float, float]:
        rpo, rto = self.per_job.get(f"{host}/{job}") or self.per_job.get(job) or (None, None)
        return (self.rpo_s if rpo is None else rpo, self.rto_s if rto is None else rto)


def targets_from_hours(rpo_target_hours: object, rto_target_hours: object) -> Targets:
    """The notebook's parameters (hours, > 0) as Targets; a bad one is an InputError naming the parameter."""
    values = []
    for name, value in (("rpo_target_hours", rpo_target_hours), ("rto_target_hours", rto_target_hours)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InputError(f"parameter {name}: {value!r} is not a number of hours above 0")
        values.append(float(value) * 3600)
    return Targets(rpo_s=values[0], rto_s=values[1])


@dataclass(frozen=True)
class DrillFigure:
    drill: Drill
    rto_target_s: float
    rto_met: bool


@dataclass(frozen=True)
class JobFigures:
    host: str
    job: str
    runs: Traced[int]
    successes: Traced[int]
    success_rate: Traced[float | None]
    last_good: Traced[BackupRun | None]
    worst_rpo_s: Traced[float | None]
    rpo_target_s: float
    rpo_met: bool | None
    drills: list[DrillFigure]


def _distinct(runs: Iterable[BackupRun]) -> list[BackupRun]:
    seen: dict[tuple[str, str, datetime], BackupRun] = {}
    for run in runs:
        if run.finished_at is not None:
            seen.setdefault((run.host, run.job, run.finished_at), run)
    return sorted(seen.values(), key=lambda r: r.finished_at or datetime.min)


def _rpo_met(worst: float | None, target: float, has_rows: bool) -> bool | None:
    if worst is not None:
        return worst <= target
    # a job that status lists but that never succeeded and never ran this month has no backup at all
    return False if has_rows else None


def backup_figures(runs: Iterable[BackupRun], drills: Iterable[Drill], month: Month, as_of: datetime,
                   targets: Targets | None = None) -> list[JobFigures]:
    targets = targets or Targets()
    end = min(month.end, as_of)
    jobs: dict[tuple[str, str], list[BackupRun]] = defaultdict(list)
    every = list(runs)
    for run in every:
        jobs[(run.host, run.job)].append(run)  # a never-run row still makes the job appear
    drills_by: dict[tuple[str, str], list[Drill]] = defaultdict(list)
    for drill in drills:
        jobs.setdefault((drill.host, drill.job), [])
        if month.contains(drill.finished_at):
            drills_by[(drill.host, drill.job)].append(drill)

    out = []
    for (host, job), rows in sorted(jobs.items()):
        distinct = _distinct(rows)
        month_runs = [r for r in distinct if r.finished_at is not None and month.contains(r.finished_at)]
        ok = [r for r in month_runs if r.state == "ok"]
        rate = Traced(len(ok) / len(month_runs) if month_runs else None, tuple(r.id for r in month_runs))
        good = [r for r in distinct if r.state == "ok" and r.finished_at is not None and r.finished_at < month.end]
        last_good = Traced(good[-1] if good else None, (good[-1].id,) if good else ())

        # successes known from the records: ok runs, and last_success_at that rows carry (a failed run's row says
        # when the job last succeeded, even when that ok run's own row was never collected)
        successes = {r.finished_at: r.id for r in good if r.finished_at is not None}
        for r in distinct:
            if r.last_success_at is not None and r.last_success_at < month.end:
                successes.setdefault(r.last_success_at, r.id)
        times = sorted(successes)
        rpo_target, rto_target = targets.for_job(host, job)
        worst: Traced[float | None] = Traced(None)
        if times or month_runs:
            gaps: list[tuple[float, tuple[str, ...]]] = []
            before = [t for t in times if t < month.start]
            previous = before[-1] if before else None
            for t in (t for t in times if month.start <= t < end):
                origin = previous if previous is not None else month.start
                gaps.append(((t - origin).total_seconds(),
                             (successes[t],) + ((successes[previous],) if previous is not None else ())))
                previous = t
            origin = previous if previous is not None else month.start
            # no success known at all: the month's runs (all failed or partial) are the evidence
            gaps.append(((end - origin).total_seconds(),
                         (successes[previous],) if previous is not None else tuple(r.id for r in month_runs)))
            value, ids = max(gaps, key=lambda g: g[0])
            worst = Traced(value, ids)
        figures = [DrillFigure(d, rto_target, d.state == "ok" and d.rto_s is not None and d.rto_s <= rto_target)
                   for d in sorted(drills_by[(host, job)], key=lambda d: d.finished_at)]
        out.append(JobFigures(host=host, job=job, runs=Traced(len(month_runs), rate.sources),
                              successes=Traced(len(ok), tuple(r.id for r in ok)), success_rate=rate,
                              last_good=last_good, worst_rpo_s=worst, rpo_target_s=rpo_target,
                              rpo_met=_rpo_met(worst.value, rpo_target, bool(rows)), drills=figures))
    return out


# -- repository checks, data growth, second-site copy ---------------------------------------------------------------
@dataclass(frozen=True)
class CheckFigures:
    """The repository checks of one host in the month. `recorded` False: no status file of the host says
    anything about checks (written by a provsec that did not record them): no data, not "no check"."""

    host: str
    recorded: bool
    checks: list[BackupCheck]  # finished within the month, oldest first
    failed: Traced[int]
    last: Traced[BackupCheck | None]  # the last check finished before the month's end (maybe an earlier month's)


def check_figures(runs: Iterable[BackupRun], month: Month) -> list[CheckFigures]:
    by_host: dict[str, list[BackupRun]] = defaultdict(list)
    for run in runs:
        by_host[run.host].append(run)
    out = []
    for host, rows in sorted(by_host.items()):
        distinct: dict[datetime, BackupCheck] = {}
        for run in rows:
            if run.check is not None:
                distinct.setdefault(run.check.finished_at, run.check)
        known = [distinct[t] for t in sorted(distinct)]
        checks = [c for c in known if month.contains(c.finished_at)]
        failed = [c for c in checks if c.state != "ok"]
        before_end = [c for c in known if c.finished_at < month.end]
        out.append(CheckFigures(host=host, recorded=any(r.check_recorded for r in rows), checks=checks,
                                failed=Traced(len(failed), tuple(c.id for c in failed)),
                                last=Traced(before_end[-1] if before_end else None,
                                            (before_end[-1].id,) if before_end else ())))
    return out


@dataclass(frozen=True)
class GrowthFigures:
    """Data growth of one job over the month, in bytes (see the module docstring)."""

    host: str
    job: str
    size_start: Traced[BackupRun | None]  # the run whose size the month starts from
    size_end: Traced[BackupRun | None]
    growth: Traced[int | None]  # end − start; None when either size is unknown or both are the same run
    added: Traced[int | None]  # sum of data_added over the month's runs that kept a snapshot


def growth_figures(runs: Iterable[BackupRun], month: Month) -> list[GrowthFigures]:
    jobs: dict[tuple[str, str], list[BackupRun]] = defaultdict(list)
    for run in runs:
        jobs[(run.host, run.job)].append(run)
    out = []
    for (host, job), rows in sorted(jobs.items()):
        distinct = _distinct(rows)
        sized = [r for r in distinct if r.state == "ok" and r.bytes_processed is not None]
        before = [r for r in sized if r.finished_at is not None and r.finished_at < month.start]
        within = [r for r in sized if r.finished_at is not None and month.contains(r.finished_at)]
        start = before[-1] if before else within[0] if within else None
        end = within[-1] if within else None
        growth: Traced[int | None] = Traced(None)
        if start is not None and end is not None and start is not end \
                and start.bytes_processed is not None and end.bytes_processed is not None:
            growth = Traced(end.bytes_processed - start.bytes_processed, (start.id, end.id))
        kept = [r for r in distinct if r.finished_at is not None and month.contains(r.finished_at)
                and r.snapshot is not None and r.state in ("ok", "partial")]
        added: Traced[int | None] = Traced(None, tuple(r.id for r in kept))
        if kept and all(r.bytes_added is not None for r in kept):
            added = Traced(sum(r.bytes_added or 0 for r in kept), tuple(r.id for r in kept))
        out.append(GrowthFigures(host=host, job=job, size_start=Traced(start, (start.id,) if start else ()),
                                 size_end=Traced(end, (end.id,) if end else ()), growth=growth, added=added))
    return out


@dataclass(frozen=True)
class CopyLag:
    job: str
    newest: Traced[datetime | None]  # the job's newest good backup before the month's end
    copied: Traced[datetime | None]  # the newest one present at the second site after the last successful copy
    lag_s: Traced[float | None]  # newest − copied; None when either is unknown


@dataclass(frozen=True)
class CopyFigures:
    """The second-site copy of one host's repository in the month."""

    host: str
    recorded: bool  # False: no copy record of this host was collected (no data, not "no copy")
    runs: Traced[int]  # copy runs finished within the month
    failures: list[CopyRecord]  # the failed ones, oldest first
    last_success: Traced[datetime | None]  # when the last successful copy finished, before the month's end
    jobs: list[CopyLag]


def _job_successes(rows: Iterable[BackupRun], end: datetime) -> dict[datetime, str]:
    """When a job's good backups finished (ok runs, and the last_success_at rows carry), before `end`: source id."""
    found: dict[datetime, str] = {}
    for r in _distinct(rows):
        if r.state == "ok" and r.finished_at is not None and r.finished_at < end:
            found.setdefault(r.finished_at, r.id)
    for r in _distinct(rows):
        if r.last_success_at is not None and r.last_success_at < end:
            found.setdefault(r.last_success_at, r.id)
    return found


def copy_figures(copies: Iterable[CopyRecord], runs: Iterable[BackupRun], month: Month,
                 as_of: datetime) -> list[CopyFigures]:
    end = min(month.end, as_of)
    by_host: dict[str, dict[datetime, CopyRecord]] = defaultdict(dict)
    for record in copies:
        by_host[record.host.lower()].setdefault(record.finished_at, record)
    jobs: dict[str, dict[str, list[BackupRun]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        jobs[run.host.lower()][run.job].append(run)
    out = []
    for host in sorted(by_host.keys() | jobs.keys()):
        records = by_host.get(host, {})
        ordered = [records[t] for t in sorted(records)]
        month_runs = [c for c in ordered if month.contains(c.finished_at)]
        # successful copies before the end: finish → (start, source id); a failed record's last_success_at stands
        # for a success whose own record was not collected (its start unknown: its finish is used)
        done: dict[datetime, tuple[datetime, str]] = {}
        for c in ordered:
            if c.state == "ok" and c.finished_at < end:
                done[c.finished_at] = (c.started_at, c.id)
        for c in ordered:
            if c.last_success_at is not None and c.last_success_at < end:
                done.setdefault(c.last_success_at, (c.last_success_at, c.id))
        last = max(done) if done else None
        lags = []
        for job, rows in sorted(jobs.get(host, {}).items()):
            successes = _job_successes(rows, end)
            newest = max(successes) if successes else None
            copied = None
            if last is not None:
                cut, _ = done[last]
                present = [t for t in successes if t <= cut]
                copied = max(present) if present else None
            lag: Traced[float | None] = Traced(None)
            ids = tuple(dict.fromkeys(x for x in (successes.get(newest) if newest else None,
                                                  successes.get(copied) if copied else None,
                                                  done[last][1] if last else None) if x))
            if newest is not None and copied is not None:
                lag = Traced((newest - copied).total_seconds(), ids)
            lags.append(CopyLag(job, Traced(newest, (successes[newest],) if newest else ()),
                                Traced(copied, (successes[copied],) if copied else ()), lag))
        failures = [c for c in month_runs if c.state != "ok"]
        out.append(CopyFigures(host=host, recorded=bool(records),
                               runs=Traced(len(month_runs), tuple(c.id for c in month_runs)), failures=failures,
                               last_success=Traced(last, (done[last][1],) if last else ()), jobs=lags))
    return out
