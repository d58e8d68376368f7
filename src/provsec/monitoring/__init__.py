"""Prometheus and Alertmanager configuration generated from the inventory (issue 5 §2, §3).

`render(inventory, catalogue, …)` returns prometheus.yml and alertmanager.yml as data, and the TSDB retention
the compliance level requires; `provsec monitoring render --inventory DIR --out DIR` writes them. Labels on
targets and alerts: targets.py; link probes through the blackbox exporter (issue 7 §4): probes.py; routing and
inhibition: alertmanager.py.
"""

from provsec.monitoring.alertmanager import AlertmanagerSettings, Timing, WorkingHours, working_hours_from_calendar
from provsec.monitoring.configs import MonitoringConfig, monitoring_host, render, write
from provsec.monitoring.prometheus import ExporterAuth, PrometheusSettings, Retention, retention
from provsec.monitoring.targets import HostTarget, Targets, build_targets

__all__ = [
    "AlertmanagerSettings",
    "ExporterAuth",
    "HostTarget",
    "MonitoringConfig",
    "PrometheusSettings",
    "Retention",
    "Targets",
    "Timing",
    "WorkingHours",
    "build_targets",
    "monitoring_host",
    "render",
    "retention",
    "working_hours_from_calendar",
    "write",
]
