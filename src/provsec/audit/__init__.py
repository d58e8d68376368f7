"""Compliance audit: the collector reads each host's live state, the evaluator judges it against the control
catalogue (playbooks/controls/), `playbooks/audit.yml` runs both. See playbooks/controls/README.md."""

from __future__ import annotations

from provsec.audit.evaluate import (
    STATUSES,
    AuditRun,
    ControlException,
    HostVars,
    Result,
    evaluate_fleet,
    evaluate_host,
    write_results,
)

__all__ = [
    "STATUSES",
    "AuditRun",
    "ControlException",
    "HostVars",
    "Result",
    "evaluate_fleet",
    "evaluate_host",
    "write_results",
]
