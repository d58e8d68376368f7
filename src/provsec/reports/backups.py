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
- drill RTO: each drill of the month; met when the drill passed and its measured RTO ≤ the target."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from provsec.errors import InputError
from provsec.reports.month import Month, Traced
from provsec.reports.sources import BackupRun, Drill

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
