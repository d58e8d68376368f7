"""The `provsec` command. Each area registers its own sub-commands; this module only dispatches
and turns expected failures (ProvsecError) into one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from provsec import __version__
from provsec.errors import ProvsecError

Handler = Callable[[argparse.Namespace], int]


# Each area's sub-command and the module that registers it (its `register(subparsers)`), in --help order.
AREAS: dict[str, str] = {
    "lab": "provsec.lab.cli",
    "inventory": "provsec.inventory.cli",
    "audit": "provsec.audit.cli",
    "backup": "provsec.backup.cli",
    "exporter": "provsec.exporters.cli",
    "incident": "provsec.notify.incident_cli",
    "monitoring": "provsec.monitoring.cli",
    "notify": "provsec.notify.cli",
    "report": "provsec.reports.cli",
    "scan": "provsec.scan.cli",
    "wan": "provsec.wan.cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every area, or of the area `only` alone: a command that timers run often (scan, backup,
    wan counters) then imports its own area and nothing else, which keeps its start-up short."""
    parser = argparse.ArgumentParser(
        prog="provsec",
        description="Operations toolkit for provincial servers and WAN (Điều 12.3c, QĐ 03/2022/QĐ-UBND).",
    )
    parser.add_argument("--version", action="version", version=f"provsec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in AREAS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)  # imported here: each area stays independent
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(given[0] if given and given[0] in AREAS else None)
    args = parser.parse_args(given)
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
