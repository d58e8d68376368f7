"""`provsec notify serve --config FILE`: the Alertmanager webhook receiver (server.py), until SIGTERM/SIGINT.

Exit codes: 0 stopped by a signal; 2 bad input (configuration, a secret file, the address in use); 3 the
incident register cannot be used."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from provsec.notify.config import DEFAULT_CONFIG


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "notify", help="Alertmanager webhook receiver: email, SMS, Zalo, incident register, escalation",
        description="Receive Alertmanager webhooks, record one incident per alert group, notify the on-call rota "
        "(email, SMS, Zalo) with signed acknowledgement links, escalate unacknowledged incidents, and watch the "
        "dead man's switch. Exit 0: stopped; 2: bad input; 3: the register cannot be used.")
    sub = parser.add_subparsers(dest="notify_command", required=True, metavar="SUBCOMMAND")
    serve = sub.add_parser("serve", help="serve the webhook, ack links and /metrics until stopped",
                           description="Serve POST /alertmanager, GET|POST /ack/…, GET /metrics on the configured "
                           "address (default 127.0.0.1:9848).")
    serve.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                       help=f"configuration (YAML; default {DEFAULT_CONFIG}); secrets in their own 0600 files")
    serve.add_argument("--check-config", action="store_true",
                       help="validate the configuration and its secret files, then exit")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    from provsec.notify.config import load_config
    from provsec.notify.server import NotifyServer, NotifyService

    config = load_config(args.config)
    if args.check_config:
        levels = ", ".join(f"{lv.number}: {len(lv.people)} person(s) after {lv.after.total_seconds() / 60:g} min"
                           for lv in config.rota)
        print(f"{args.config}: ok; channels {', '.join(config.channels)}; rota {levels}")
        return 0
    logging.basicConfig(level=logging.INFO, format="provsec notify: %(levelname)s %(message)s", stream=sys.stderr)
    server = NotifyServer(NotifyService(config))
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    host, port = config.listen
    print(f"provsec notify: serving http://{host}:{port} (webhook /alertmanager, ack links under "
          f"{config.public_base_url}/ack/, /metrics)", file=sys.stderr, flush=True)
    try:
        stopped.wait()
    finally:
        server.stop()
    return 0
