"""`provsec lab …` sub-commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from provsec.lab.core import Lab
from provsec.lab.topology import PROFILES, RELEASES


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="real Debian test hosts (systemd-nspawn + network namespaces)")
    cmds = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")

    up = cmds.add_parser("up", help="boot the lab's hosts and write inventory/lab/")
    up.add_argument("--profile", choices=sorted(PROFILES), default="minimal")
    up.add_argument("--release", choices=RELEASES, default="bookworm")
    up.add_argument("--inventory-dir", type=Path, default=Path("inventory/lab"))
    up.set_defaults(handler=_up)

    down = cmds.add_parser("down", help="stop the hosts and remove everything the lab made")
    down.set_defaults(handler=_down)

    status = cmds.add_parser("status", help="show the lab's hosts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    ssh = cmds.add_parser("ssh", help="log in to a host as the admin user (or run a command there)")
    ssh.add_argument("host")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command to run (default: a login shell)")
    ssh.set_defaults(handler=_ssh)

    reset = cmds.add_parser("reset", help="put a host back to its freshly installed state")
    reset.add_argument("host")
    reset.set_defaults(handler=_reset)


def _up(args: argparse.Namespace) -> int:
    Lab().up(args.profile, args.release, args.inventory_dir)
    print("lab is up; tear it down with: provsec lab down   (or: make lab-down)")
    return 0


def _down(args: argparse.Namespace) -> int:
    print(Lab().down())
    return 0


def _status(args: argparse.Namespace) -> int:
    st = Lab().status()
    if args.json:
        print(json.dumps(st, indent=2, ensure_ascii=False))
        return 0
    if not st["up"]:
        print(f"no lab is up (leftover host processes: {st['leftover_processes']})")
        return 1
    print(f"{st['profile']} lab on Debian {st['release']}; inventory {st['inventory']}")
    rows: list[dict[str, Any]] = st["hosts"]  # type: ignore[assignment]
    for row in rows:
        state = "up" if row["running"] and row["ssh"] else ("booting" if row["running"] else "DOWN")
        print(f"  {row['host']:<8} {row['address']:<14} {state:<8} {','.join(row['groups'])}")
    return 0


def _ssh(args: argparse.Namespace) -> int:
    argv = Lab().ssh_argv(args.host)
    command = [c for c in args.command if c != "--"]
    if sys.stdin.isatty() and not command:
        argv.insert(1, "-t")
    os.execvp(argv[0], [*argv, *command])  # noqa: S606 - argv list, no shell: become the ssh session


def _reset(args: argparse.Namespace) -> int:
    Lab().reset(args.host)
    print(f"{args.host} reset to its freshly installed state")
    return 0
