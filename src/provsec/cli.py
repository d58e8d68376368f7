"""The `provsec` command. Each area registers its own sub-commands; this module only dispatches
and turns expected failures (ProvsecError) into one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from provsec import __version__
from provsec.errors import ProvsecError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # Imported here so `provsec --help` stays fast and each area stays independent.
    from provsec.audit import cli as audit_cli
    from provsec.backup import cli as backup_cli
    from provsec.exporters import cli as exporter_cli
    from provsec.inventory import cli as inventory_cli
    from provsec.lab import cli as lab_cli
    from provsec.monitoring import cli as monitoring_cli
    from provsec.notify import cli as notify_cli
    from provsec.notify import incident_cli
    from provsec.reports import cli as report_cli
    from provsec.scan import cli as scan_cli
    from provsec.wan import cli as wan_cli

    parser = argparse.ArgumentParser(
        prog="provsec",
        description="Operations toolkit for provincial servers and WAN (Điều 12.3c, QĐ 03/2022/QĐ-UBND).",
    )
    parser.add_argument("--version", action="version", version=f"provsec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab_cli.register(sub)
    inventory_cli.register(sub)
    audit_cli.register(sub)
    backup_cli.register(sub)
    exporter_cli.register(sub)
    incident_cli.register(sub)
    monitoring_cli.register(sub)
    notify_cli.register(sub)
    report_cli.register(sub)
    scan_cli.register(sub)
    wan_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ProvsecError as exc:
        print(f"provsec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head, less …: the reader has what it wanted
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("provsec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
