"""`provsec monitoring render --inventory DIR --out DIR`: prometheus.yml, alertmanager.yml and the retention."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from provsec.controls import load_catalogue
from provsec.errors import InputError
from provsec.inventory.load import load_inventory
from provsec.monitoring.alertmanager import (
    DEFAULT_HEARTBEAT_URL,
    DEFAULT_WEBHOOK_URL,
    AlertmanagerSettings,
    working_hours_from_calendar,
)
from provsec.monitoring.configs import render, write
from provsec.monitoring.probes import BLACKBOX_ADDRESS
from provsec.monitoring.prometheus import (
    DEFAULT_CA_FILE,
    DEFAULT_RULE_FILES,
    NODE_PORT,
    PROVSEC_PORT,
    ExporterAuth,
    PrometheusSettings,
    parse_duration,
)
from provsec.reports.workhours import WorkCalendar, load_calendar

DEFAULT_CATALOGUE = "playbooks/controls"
DEFAULT_SCRAPE_TIMEOUT_S = 10  # Prometheus's own default scrape_timeout


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitoring",
        help="Prometheus and Alertmanager configuration from the inventory",
        description="Monitoring configuration generated from the inventory (playbooks/monitoring.yml uses it).",
    )
    sub = parser.add_subparsers(dest="monitoring_command", required=True, metavar="SUBCOMMAND")
    rend = sub.add_parser(
        "render",
        help="write prometheus.yml and alertmanager.yml for an inventory; print the retention flag",
        description="Write OUT/prometheus.yml and OUT/alertmanager.yml (atomically) for the inventory and print "
        "the --storage.tsdb.retention.time value Prometheus needs (at least the log retention of the "
        "highest security level, control PS-LOGGING-02).",
    )
    rend.add_argument("--inventory", required=True, metavar="DIR", help="inventory directory")
    rend.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files to")
    rend.add_argument("--catalogue", default=DEFAULT_CATALOGUE, metavar="DIR",
                      help=f"control catalogue, for the log retention (default: {DEFAULT_CATALOGUE})")
    rend.add_argument("--monitoring-host", metavar="HOST",
                      help="host running Prometheus and Alertmanager (default: the one host of group monitoring)")
    rend.add_argument("--rule-files", action="append", metavar="GLOB",
                      help=f"deployed rule files, repeatable (default: {DEFAULT_RULE_FILES[0]})")
    rend.add_argument("--scrape-interval", default="30s", metavar="DURATION", help="default: 30s")
    rend.add_argument("--scrape-timeout", metavar="DURATION",
                      help="default: 10s, or the scrape interval when that is shorter")
    rend.add_argument("--evaluation-interval", default="30s", metavar="DURATION", help="default: 30s")
    rend.add_argument("--node-port", type=int, default=NODE_PORT, metavar="PORT")
    rend.add_argument("--provsec-port", type=int, default=PROVSEC_PORT, metavar="PORT")
    rend.add_argument("--prometheus-address", default="127.0.0.1:9090", metavar="HOST:PORT")
    rend.add_argument("--alertmanager-address", default="127.0.0.1:9093", metavar="HOST:PORT")
    rend.add_argument("--tls", action="store_true",
                      help=f"scrape the exporters over https, trusting the provincial CA ({DEFAULT_CA_FILE})")
    rend.add_argument("--tls-ca-file", metavar="FILE", help="CA file for --tls (implies --tls)")
    rend.add_argument("--basic-auth-user", metavar="USER", help="basic auth user for the exporters (needs --tls)")
    rend.add_argument("--basic-auth-password-file", metavar="FILE",
                      help="root-only file with that user's password (on the monitoring host)")
    rend.add_argument("--wan-edge", action="append", default=[], metavar="HOST=GATEWAY",
                      help="the WAN gateway HOST sits behind, where the agency ranges do not tell (repeatable)")
    rend.add_argument("--blackbox-address", default=BLACKBOX_ADDRESS, metavar="HOST:PORT",
                      help="the blackbox exporter that probes the WAN links and services, on the monitoring host "
                      f"(default: {BLACKBOX_ADDRESS})")
    rend.add_argument("--no-probes", action="store_true",
                      help="no probe jobs (blackbox_icmp, blackbox_tcp): no blackbox exporter is deployed")
    rend.add_argument("--tcp-probe", action="append", default=[], metavar="HOST:PORT",
                      help="probe this TCP port of an inventory host, besides 443 of web_servers (repeatable)")
    rend.add_argument("--retention", metavar="DURATION",
                      help="TSDB retention; refused if shorter than the compliance level's log retention")
    rend.add_argument("--webhook-url", default=DEFAULT_WEBHOOK_URL, metavar="URL",
                      help=f"provsec notify's Alertmanager webhook (default: {DEFAULT_WEBHOOK_URL})")
    rend.add_argument("--heartbeat-url", default=DEFAULT_HEARTBEAT_URL, metavar="URL",
                      help=f"provsec notify's heartbeat receiver for the Watchdog (default: {DEFAULT_HEARTBEAT_URL})")
    rend.add_argument("--bearer-token-file", metavar="FILE", help="file with the token Alertmanager sends to notify")
    rend.add_argument("--working-hours", metavar="FILE",
                      help="working-hours calendar (the incident register's format; default: Mon–Fri 07:30–11:30, "
                      "13:30–17:00 Asia/Ho_Chi_Minh, Vietnamese public holidays)")
    rend.add_argument("--json", action="store_true", help="print the summary as JSON")
    rend.set_defaults(handler=render_command)


def _wan_edges(values: list[str]) -> dict[str, str]:
    edges: dict[str, str] = {}
    for value in values:
        host, sep, gateway = value.partition("=")
        if not sep or not host.strip() or not gateway.strip():
            raise InputError(f"--wan-edge {value!r}: expected HOST=GATEWAY")
        if host.strip() in edges:
            raise InputError(f"--wan-edge: host {host.strip()!r} given twice")
        edges[host.strip()] = gateway.strip()
    return edges


def _tcp_probes(values: list[str]) -> dict[str, tuple[int, ...]]:
    probes: dict[str, set[int]] = {}
    for value in values:
        host, sep, port = value.rpartition(":")
        if not sep or not host.strip() or not port.strip().isdigit():
            raise InputError(f"--tcp-probe {value!r}: expected HOST:PORT (an inventory host name and a port)")
        probes.setdefault(host.strip(), set()).add(int(port))
    return {host: tuple(sorted(ports)) for host, ports in probes.items()}


def _exporter_auth(args: argparse.Namespace) -> ExporterAuth | None:
    tls = args.tls or args.tls_ca_file is not None
    if not tls:
        if args.basic_auth_user or args.basic_auth_password_file:
            raise InputError("basic auth without --tls would send the password in clear: add --tls")
        return None
    return ExporterAuth(
        ca_file=args.tls_ca_file or DEFAULT_CA_FILE,
        username=args.basic_auth_user,
        password_file=args.basic_auth_password_file,
    )


def _default_timeout(interval: str) -> str:
    """Prometheus's default timeout (10s), never longer than the interval (which it refuses)."""
    return interval if parse_duration(interval, "--scrape-interval") < DEFAULT_SCRAPE_TIMEOUT_S else "10s"


def render_command(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)  # InventoryError: main prints it, exit 2
    catalogue = load_catalogue(args.catalogue)
    calendar = load_calendar(args.working_hours) if args.working_hours else WorkCalendar()
    this_year = datetime.now(UTC).astimezone(calendar.tz).year
    prometheus = PrometheusSettings(
        scrape_interval=args.scrape_interval,
        scrape_timeout=args.scrape_timeout or _default_timeout(args.scrape_interval),
        evaluation_interval=args.evaluation_interval,
        rule_files=tuple(args.rule_files or DEFAULT_RULE_FILES),
        node_port=args.node_port,
        provsec_port=args.provsec_port,
        prometheus_address=args.prometheus_address,
        alertmanager_address=args.alertmanager_address,
        exporter_auth=_exporter_auth(args),
        blackbox_address=None if args.no_probes else args.blackbox_address,
        tcp_probes=_tcp_probes(args.tcp_probe),
    )
    alertmanager = AlertmanagerSettings(
        webhook_url=args.webhook_url,
        heartbeat_url=args.heartbeat_url,
        bearer_token_file=args.bearer_token_file,
        working_hours=working_hours_from_calendar(calendar, (this_year, this_year + 1)),
    )
    config = render(
        inventory,
        catalogue,
        prometheus=prometheus,
        alertmanager=alertmanager,
        monitoring=args.monitoring_host,
        wan_edges=_wan_edges(args.wan_edge),
        retention_time=args.retention,
    )
    out = Path(args.out)
    try:
        prom_path, am_path = write(config, out, str(inventory.path))
    except OSError as exc:
        raise InputError(f"{out}: cannot write the configuration: {exc.strerror or exc}") from exc
    if args.json:
        summary = config.summary()
        summary["files"] = {"prometheus": str(prom_path), "alertmanager": str(am_path)}
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    for warning in config.warnings:
        print(f"provsec: warning: {warning}", file=sys.stderr)
    jobs = ", ".join(j["job_name"] for j in config.prometheus["scrape_configs"])
    print(f"{prom_path}: {len(config.targets.hosts)} hosts, jobs {jobs}")
    print(f"{am_path}: routes heartbeat, critical, warning (working hours {calendar.timezone})")
    print(f"--storage.tsdb.retention.time={config.retention.time}  ({config.retention.reason})")
    return 0
