"""`provsec inventory check DIR` and `provsec inventory show DIR [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from provsec.inventory.load import load_inventory
from provsec.inventory.model import Inventory, InventoryError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inventory",
        help="check and show an inventory (agencies, information systems, hosts, networks)",
        description="Check and show an inventory directory (format: inventory/README.md).",
    )
    sub = parser.add_subparsers(dest="inventory_command", required=True, metavar="SUBCOMMAND")

    check = sub.add_parser(
        "check",
        help="check an inventory; list every problem as FILE: KEY: problem",
        description="Check an inventory directory. Valid: a short summary, exit 0. "
        "Invalid: every problem on its own line (FILE: KEY: problem) on stderr, exit 2.",
    )
    check.add_argument(
        "directory", metavar="DIR", help="inventory directory (holds hosts.yml, group_vars/all/)"
    )
    check.set_defaults(handler=check_command)

    show = sub.add_parser(
        "show",
        help="show each host with its groups, agency and effective security level",
        description="Show each host with its groups, agency, information systems and effective security "
        "level (the highest level of the systems it serves, Nghị định 85/2016/NĐ-CP).",
    )
    show.add_argument(
        "directory", metavar="DIR", help="inventory directory (holds hosts.yml, group_vars/all/)"
    )
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(handler=show_command)


def _warn(inventory: Inventory) -> None:
    for warning in inventory.warnings:
        print(f"provsec: warning: {warning}", file=sys.stderr)


def check_command(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.directory)
    except InventoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        noun = "problem" if count == 1 else "problems"
        print(f"provsec: error: {exc.directory}: not a valid inventory ({count} {noun})", file=sys.stderr)
        return exc.exit_code
    _warn(inventory)
    levels = Counter(h.level for h in inventory.hosts)
    by_level = ", ".join(f"cấp độ {lvl}: {levels[lvl]}" for lvl in sorted(levels))
    print(f"{inventory.path}: valid inventory of {inventory.province.name} ({inventory.province.code})")
    print(
        f"  {len(inventory.agencies)} agencies, {len(inventory.systems)} information systems, "
        f"{len(inventory.hosts)} hosts ({by_level})"
    )
    print(f"  scan scope: {', '.join(str(n) for n in inventory.scan_scope())}")
    return 0


def inventory_json(inventory: Inventory) -> dict[str, object]:
    """The inventory as plain JSON-ready data (what `show --json` prints)."""
    return {
        "path": str(inventory.path),
        "province": {"code": inventory.province.code, "name": inventory.province.name},
        "agencies": [{"code": a.code, "name": a.name} for a in inventory.agencies],
        "information_systems": [
            {"id": s.id, "name": s.name, "owner": s.owner, "level": s.level, "hosts": list(s.hosts)}
            for s in inventory.systems
        ],
        "hosts": [
            {
                "name": h.name,
                "groups": list(h.groups),
                "ansible_host": str(h.ansible_host),
                "agency": h.agency,
                "addresses": {net: str(addr) for net, addr in h.addresses},
                "systems": list(h.systems),
                "level": h.level,
            }
            for h in inventory.hosts
        ],
        "networks": {
            "admin_subnets": [str(n) for n in inventory.networks.admin_subnets],
            "dc_ranges": [str(n) for n in inventory.networks.dc_ranges],
            "agency_ranges": [str(n) for n in inventory.networks.agency_ranges],
        },
        "scan_scope": [str(n) for n in inventory.scan_scope()],
    }


def show_command(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.directory)  # InventoryError: main prints it, exit 2
    _warn(inventory)
    if args.json:
        print(json.dumps(inventory_json(inventory), ensure_ascii=False, indent=2))
        return 0
    header = ("HOST", "ADDRESS", "LEVEL", "AGENCY", "GROUPS", "SYSTEMS")
    rows = [header] + [
        (
            h.name,
            str(h.ansible_host),
            str(h.level),
            h.agency,
            ",".join(h.groups),
            ",".join(h.systems),
        )
        for h in inventory.hosts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
