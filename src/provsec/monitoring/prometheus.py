"""prometheus.yml from the inventory, and the TSDB retention the compliance level requires.

Scrape jobs: `node` (prometheus-node-exporter, every host), `provsec` (the security-event exporter, every host),
`prometheus` and `alertmanager` (on the monitoring host, over loopback), and the link probes `blackbox_icmp` and
`blackbox_tcp` through the blackbox exporter on the monitoring host (probes.py). Host labels: targets.py. Alerts get the
same labels again through `alert_relabel_configs`, keyed on `instance`: rules that aggregate
(`sum by (instance, job)`) drop the target labels, and Alertmanager needs `site`, `wan_edge` and `wan_role` on
every alert to group and inhibit.

Retention is a command-line flag of Prometheus (`--storage.tsdb.retention.time`), not part of prometheus.yml:
`retention()` computes it as at least the log retention the control catalogue requires (PS-LOGGING-02) at the
highest security level among the monitored hosts.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provsec.controls import Catalogue, parse_timespan
from provsec.errors import InputError
from provsec.inventory.model import Inventory
from provsec.monitoring.probes import BLACKBOX_ADDRESS, check_tcp_probes, probe_jobs
from provsec.monitoring.targets import HostTarget, Targets

LOG_RETENTION_CONTROL = "PS-LOGGING-02"
DEFAULT_RULE_FILES = ("/etc/prometheus/rules/provsec/*.yml",)
DEFAULT_CA_FILE = "/etc/provsec/pki/ca.crt"  # role pki: the provincial CA on every host
NODE_PORT = 9100
PROVSEC_PORT = 9847
# Labels copied onto alerts by instance (targets.py explains each).
ALERT_LABELS = ("agency", "level", "role", "site", "wan_edge", "wan_role")

_DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_DURATION_RE = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")


@dataclass(frozen=True)
class ExporterAuth:
    """How Prometheus reaches the exporters: https with the provincial CA, and basic auth (password in a file)."""

    ca_file: str = DEFAULT_CA_FILE
    username: str | None = None
    password_file: str | None = None

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password_file is None):
            raise InputError("exporter basic auth: give both the user name and the password file, or neither")
        if not self.ca_file:
            raise InputError("exporter TLS: the CA file is empty")


@dataclass(frozen=True)
class PrometheusSettings:
    scrape_interval: str = "30s"
    scrape_timeout: str = "10s"
    evaluation_interval: str = "30s"
    rule_files: tuple[str, ...] = DEFAULT_RULE_FILES
    node_port: int = NODE_PORT
    provsec_port: int = PROVSEC_PORT
    prometheus_address: str = "127.0.0.1:9090"  # --web.listen-address of Prometheus (monitoring host)
    alertmanager_address: str = "127.0.0.1:9093"  # --web.listen-address of Alertmanager (monitoring host)
    exporter_auth: ExporterAuth | None = None  # None: plain http (exporters on loopback, tests)
    external_labels: Mapping[str, str] = field(default_factory=dict)
    # The blackbox exporter (role blackbox_exporter) for the link probes; None: no probe jobs.
    blackbox_address: str | None = BLACKBOX_ADDRESS
    # TCP ports to probe besides 443 of web_servers: {host: (port, ...)} (probes.py)
    tcp_probes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
            parse_duration(getattr(self, name), name)
        if parse_duration(self.scrape_timeout, "scrape_timeout") > parse_duration(
            self.scrape_interval, "scrape_interval"
        ):
            raise InputError(
                f"scrape_timeout {self.scrape_timeout} is longer than scrape_interval {self.scrape_interval}"
            )
        for name in ("node_port", "provsec_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise InputError(f"{name}: {port!r} is not a TCP port (1-65535)")
        if not self.rule_files:
            raise InputError("rule_files: give at least one path or glob of the deployed rule files")
        if self.blackbox_address is not None and not self.blackbox_address.strip():
            raise InputError("blackbox_address: empty: give HOST:PORT, or None for no probe jobs")
        check_tcp_probes(self.tcp_probes)


def parse_duration(text: str, what: str) -> float:
    """Seconds in a Prometheus duration ("92d", "1y", "12w", "1h30m")."""
    value = text.strip() if isinstance(text, str) else ""
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise InputError(f"{what}: {text!r} is not a Prometheus duration such as 30s, 5m, 92d or 1y")
    return total


@dataclass(frozen=True)
class Retention:
    """`--storage.tsdb.retention.time`: the value, the legal minimum it satisfies, and where that comes from."""

    time: str  # e.g. "92d"
    minimum_seconds: float
    level: int  # the highest host level, which sets the minimum
    reason: str


def retention(inventory: Inventory, catalogue: Catalogue, requested: str | None = None) -> Retention:
    """At least the log retention of PS-LOGGING-02 at the highest level of the monitored hosts (Prometheus
    keeps every host's series in one TSDB). `requested` may be longer, never shorter."""
    if not inventory.hosts:
        raise InputError(f"{inventory.path}: no hosts: nothing to monitor")
    level = max(h.level for h in inventory.hosts)
    value = catalogue.value(LOG_RETENTION_CONTROL, level)
    source = f"{catalogue.directory}: {LOG_RETENTION_CONTROL}"
    if value is None:
        if requested is None:
            raise InputError(f"{source}: no log retention at cấp độ {level}: give the retention explicitly")
        minimum = 0.0
    else:
        seconds = parse_timespan(str(value))
        if seconds is None or seconds <= 0:
            raise InputError(f"{source}: levels.{level}: {value!r} is not a time span such as 3month")
        minimum = seconds
    reason = f"{LOG_RETENTION_CONTROL} at cấp độ {level}: {value}"
    if requested is not None:
        asked = parse_duration(requested, "retention")
        if asked < minimum:
            raise InputError(
                f"retention {requested} is shorter than the log retention the compliance level requires "
                f"({reason}, {math.ceil(minimum / 86400)}d)"
            )
        return Retention(requested.strip(), minimum, level, reason + f"; {requested.strip()} requested")
    return Retention(f"{math.ceil(minimum / 86400)}d", minimum, level, reason)


def _static(targets: Iterable[tuple[str, Mapping[str, str]]]) -> list[dict[str, Any]]:
    return [{"targets": [address], "labels": dict(labels)} for address, labels in targets]


def _exporter_job(name: str, hosts: tuple[HostTarget, ...], port: int, auth: ExporterAuth | None) -> dict[str, Any]:
    job: dict[str, Any] = {"job_name": name}
    if auth is not None:
        job["scheme"] = "https"
        job["tls_config"] = {"ca_file": auth.ca_file}
        if auth.username is not None:
            job["basic_auth"] = {"username": auth.username, "password_file": auth.password_file}
    job["static_configs"] = _static((h.target(port), h.labels) for h in hosts)
    return job


def _regex_alternatives(names: Iterable[str]) -> str:
    """An anchored RE2 alternation of host names (letters, digits, '.', '_', '-': only '.' needs escaping)."""
    return "|".join(n.replace(".", r"\.") for n in sorted(names))


def alert_relabel_configs(targets: Targets) -> list[dict[str, Any]]:
    """Set each host's routing labels on its alerts, by `instance`: one rule per (label, value)."""
    by_value: dict[tuple[str, str], list[str]] = defaultdict(list)
    for host in targets.hosts:
        for label in ALERT_LABELS:
            if label in host.labels:
                by_value[(label, host.labels[label])].append(host.name)
    return [
        {
            "source_labels": ["instance"],
            "regex": _regex_alternatives(names),
            "target_label": label,
            "replacement": value,
        }
        for (label, value), names in sorted(by_value.items())
    ]


def prometheus_config(
    inventory: Inventory, targets: Targets, monitoring_host: str, settings: PrometheusSettings
) -> dict[str, Any]:
    """prometheus.yml as data (yaml.safe_dump it)."""
    mon = targets.get(monitoring_host)
    external = {"province": inventory.province.code, "prometheus": monitoring_host, **settings.external_labels}
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "scrape_timeout": settings.scrape_timeout,
            "evaluation_interval": settings.evaluation_interval,
            "external_labels": external,
        },
        "rule_files": list(settings.rule_files),
        "alerting": {
            "alert_relabel_configs": alert_relabel_configs(targets),
            "alertmanagers": [{"static_configs": [{"targets": [settings.alertmanager_address]}]}],
        },
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": _static([(settings.prometheus_address, mon.labels)])},
            {"job_name": "alertmanager", "static_configs": _static([(settings.alertmanager_address, mon.labels)])},
            _exporter_job("node", targets.hosts, settings.node_port, settings.exporter_auth),
            _exporter_job("provsec", targets.hosts, settings.provsec_port, settings.exporter_auth),
            *(
                probe_jobs(inventory, targets, settings.blackbox_address, settings.tcp_probes)
                if settings.blackbox_address is not None
                else []
            ),
        ],
    }
