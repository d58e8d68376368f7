"""`provsec exporter --listen ADDR:PORT --state-dir DIR --source journal --source file:/var/log/auth.log …`

Runs until SIGTERM/SIGINT, then saves counts and positions and exits 0. Exit 2: bad input (source spec, web
config, state file, address in use)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from provsec.errors import InputError

DEFAULT_LISTEN = "127.0.0.1:9847"
DEFAULT_STATE_DIR = "/var/lib/provsec/exporter"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exporter", help="security-event exporter: auth events from the journal and log files as metrics",
        description="Count security events (SSH, sudo, su, accounts, groups, passwords, fail2ban bans) from the "
        "systemd journal and log files and serve them as Prometheus metrics (exporters/METRICS.md). Positions and "
        "counts are saved together: rotation, truncation and restarts lose no line and count none twice.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                        help=f"address to serve /metrics on (default {DEFAULT_LISTEN})")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, type=Path, metavar="DIR",
                        help=f"where counts and positions are kept (default {DEFAULT_STATE_DIR})")
    parser.add_argument("--source", action="append", default=[], metavar="SPEC",
                        help="journal, journal:/DIR (a journal directory) or file:/PATH; repeatable")
    parser.add_argument("--admin-user", action="append", default=[], metavar="NAME",
                        help="a known admin account: its name becomes the `user` label (others: other); repeatable")
    parser.add_argument("--web-config", type=Path, metavar="FILE",
                        help="TLS and basic auth, exporter-toolkit format (tls_server_config, basic_auth_users)")
    parser.add_argument("--top-sources", type=int, default=10, metavar="K",
                        help="series of provsec_auth_top_sources (default 10)")
    parser.add_argument("--top-sources-ttl", type=float, default=3600.0, metavar="SECONDS",
                        help="forget a source this long after its last failure (default 3600)")
    parser.add_argument("--from-start", action="store_true",
                        help="on the very first start (no saved state), read existing files and the journal from their "
                        "beginning (default: from their end)")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from provsec.exporters.service import Exporter, ExporterCollector
    from provsec.exporters.web import load_web_config, make_server

    if not 1 <= args.top_sources <= 100:
        raise InputError("--top-sources: between 1 and 100 (each one is a series)")
    if args.top_sources_ttl <= 0:
        raise InputError("--top-sources-ttl: a positive number of seconds")
    web = load_web_config(args.web_config) if args.web_config else None
    exporter = Exporter(args.source, args.state_dir, admins=args.admin_user, top=args.top_sources,
                        ttl=args.top_sources_ttl, from_start=args.from_start)
    exporter.load()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(exporter))
    ProcessCollector(registry=registry)
    server = make_server(args.listen, registry, web)

    def stop(signum: int, frame: FrameType | None) -> None:
        exporter.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    print(f"provsec exporter: serving /metrics on {'https' if web and web.cert_file else 'http'}://{args.listen}, "
          f"sources: {', '.join(args.source)}", file=sys.stderr, flush=True)
    try:
        exporter.run()
    finally:
        server.shutdown()
        server.server_close()
    return 0
