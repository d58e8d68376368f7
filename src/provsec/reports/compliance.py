"""Compliance figures from audit results (provsec audit evaluate): per host, per control and per Vietnamese control
id (TCVN), the count of pass / fail / not_applicable / excepted, the pass share, and the trend against the previous
month's collected audit: totals then and now, and each (host, control) whose status changed.

Pass share = pass / (pass + fail + excepted): not_applicable results are not requirements, and an excepted control
still fails (the exception accepts the risk for a while, it does not make the host compliant)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from provsec.reports.month import Traced
from provsec.reports.sources import AUDIT_STATUSES, ControlResult

StatusCounts = dict[str, Traced[int]]


@dataclass(frozen=True)
class Change:
    host: str
    control: str
    before: str | None  # None: not audited the previous month
    after: str | None   # None: not audited this month
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ComplianceFigures:
    totals: StatusCounts
    pass_share: Traced[float | None]
    by_host: dict[str, StatusCounts]
    by_control: dict[str, StatusCounts]
    by_tcvn: dict[str, StatusCounts]
    excepted: list[ControlResult]
    failing: list[ControlResult]
    previous_totals: StatusCounts | None
    previous_pass_share: Traced[float | None] | None
    changes: list[Change]


def _counts(results: Sequence[ControlResult]) -> StatusCounts:
    return {s: Traced(len(ids), ids) for s in AUDIT_STATUSES
            for ids in [tuple(r.id for r in results if r.status == s)]}


def _share(results: Sequence[ControlResult]) -> Traced[float | None]:
    required = [r for r in results if r.status != "not_applicable"]
    passed = sum(1 for r in required if r.status == "pass")
    return Traced(passed / len(required) if required else None, tuple(r.id for r in required))


def _grouped(results: Iterable[ControlResult], keys: Callable[[ControlResult], Iterable[str]]) -> \
        dict[str, StatusCounts]:
    groups: dict[str, list[ControlResult]] = defaultdict(list)
    for r in results:
        for key in keys(r):
            groups[key].append(r)
    return {key: _counts(rows) for key, rows in sorted(groups.items())}


def compliance_figures(current: Iterable[ControlResult],
                       previous: Iterable[ControlResult] | None = None) -> ComplianceFigures:
    now = sorted(current, key=lambda r: (r.host, r.control))
    before = None if previous is None else sorted(previous, key=lambda r: (r.host, r.control))
    changes: list[Change] = []
    if before is not None:
        old = {(r.host, r.control): r for r in before}
        new = {(r.host, r.control): r for r in now}
        for key in sorted(old.keys() | new.keys()):
            a, b = old.get(key), new.get(key)
            if (a.status if a else None) != (b.status if b else None):
                # the previous record's id is the same text as this month's: tag it so both can be found
                ids = tuple(x for x in ((f"previous:{a.id}" if a else None), (b.id if b else None)) if x)
                changes.append(Change(key[0], key[1], a.status if a else None, b.status if b else None, ids))
    return ComplianceFigures(
        totals=_counts(now), pass_share=_share(now),
        by_host=_grouped(now, lambda r: (r.host,)), by_control=_grouped(now, lambda r: (r.control,)),
        by_tcvn=_grouped(now, lambda r: r.tcvn),
        excepted=[r for r in now if r.status == "excepted"], failing=[r for r in now if r.status == "fail"],
        previous_totals=None if before is None else _counts(before),
        previous_pass_share=None if before is None else _share(before), changes=changes)
