"""`provsec wan …`: the provincial WAN's edges."""

from __future__ import annotations

import argparse
from typing import Any

from provsec.wan import audit_cli, counters


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("wan", help="the provincial WAN's edge routers")
    wan_sub = parser.add_subparsers(dest="wan_command", required=True, metavar="WAN_COMMAND")
    counters.register(wan_sub)
    audit_cli.register(wan_sub)
