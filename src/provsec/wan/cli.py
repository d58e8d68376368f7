"""`provsec wan`: back up the running configuration of the WAN edges, show its history and diffs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from provsec.errors import InputError
from provsec.inventory import load_inventory
from provsec.wan import audit_cli, counters

DEFAULT_STORE = "/var/lib/provsec/wan/configs"  # = provsec.wan.store.DEFAULT_STORE (kept here: --help stays fast)
DEFAULT_KEY = "/etc/provsec/wan/id_ed25519"
DEFAULT_KNOWN_HOSTS = "/etc/provsec/wan/known_hosts"
DEFAULT_FINGERPRINT_KEY = "/etc/provsec/wan/fingerprint.key"
DEFAULT_TEXTFILE_EXAMPLE = "/var/lib/prometheus/node-exporter/provsec_wan_config.prom"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "wan", help="WAN edges: configuration backup, history, diffs, audit, drop counters",
        description="Fetch the running configuration of the WAN edges (role group wan_edge) over SSH, store it "
        "versioned in a git repository (volatile lines dropped, secrets fingerprinted), show diffs, and flag "
        "changes made outside the change windows. Exit 0: every device ok; 1: a device failed; 2: bad input.")
    sub2 = parser.add_subparsers(dest="wan_command", required=True, metavar="SUBCOMMAND")
    counters.register(sub2)
    audit_cli.register(sub2)
    stored = argparse.ArgumentParser(add_help=False)
    stored.add_argument("--store", default=DEFAULT_STORE, metavar="DIR",
                        help=f"configuration store, a git repository (default {DEFAULT_STORE})")

    bak = sub2.add_parser("backup", parents=[stored], help="fetch and store the configurations",
                          description="Fetch each device's running configuration, and commit it when it changed. "
                          "One device failing does not stop the others; each one's state is printed. Exit 1 "
                          "when any device failed.")
    bak.add_argument("devices", nargs="*", metavar="DEVICE", help="a wan_edge host (default: all of them)")
    bak.add_argument("-i", "--inventory", required=True, metavar="DIR", help="inventory directory")
    bak.add_argument("--key-file", default=DEFAULT_KEY, metavar="FILE",
                     help=f"SSH private key of the backup account (default {DEFAULT_KEY})")
    bak.add_argument("--known-hosts", default=DEFAULT_KNOWN_HOSTS, metavar="FILE",
                     help="the devices' host keys; unknown or changed keys are refused "
                     f"(default {DEFAULT_KNOWN_HOSTS})")
    bak.add_argument("--fingerprint-key", default=DEFAULT_FINGERPRINT_KEY, metavar="FILE",
                     help=f"HMAC key (0600) for the fingerprints of secrets (default {DEFAULT_FINGERPRINT_KEY})")
    bak.add_argument("--textfile", metavar="PATH",
                     help=f"also write this node_exporter textfile (*.prom, e.g. {DEFAULT_TEXTFILE_EXAMPLE})")
    bak.add_argument("--change-windows", metavar="FILE", help="YAML change windows (default: the inventory's "
                     "provsec_wan_change_windows)")
    bak.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="per command, and for connecting (default 60)")
    bak.add_argument("--json", action="store_true", help="print JSON")
    bak.set_defaults(handler=backup_command)

    dif = sub2.add_parser("diff", parents=[stored], help="diff of a device's configuration between two versions",
                          description="Unified diff between version A (default previous) and B (default latest): "
                          "latest, previous or a commit id from `provsec wan history`. Exit 1 when they differ.")
    dif.add_argument("device", metavar="DEVICE")
    dif.add_argument("a", nargs="?", default="previous", metavar="REV_A")
    dif.add_argument("b", nargs="?", default="latest", metavar="REV_B")
    dif.set_defaults(handler=diff_command)

    his = sub2.add_parser("history", parents=[stored], help="a device's stored versions, newest first")
    his.add_argument("device", metavar="DEVICE")
    his.add_argument("--json", action="store_true", help="print JSON (times in UTC)")
    his.set_defaults(handler=history_command)

    ack = sub2.add_parser("ack", parents=[stored], help="acknowledge a change made outside a change window",
                          description="Clear provsec_wan_config_changed_outside_window for the device after "
                          "reviewing the change (provsec wan diff DEVICE).")
    ack.add_argument("device", metavar="DEVICE")
    ack.add_argument("--by", required=True, metavar="NAME", help="who reviewed the change")
    ack.add_argument("--textfile", metavar="PATH", help="the textfile `wan backup` writes")
    ack.set_defaults(handler=ack_command)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def backup_command(args: argparse.Namespace) -> int:
    from provsec.wan import backup, devices, metrics, session, windows
    from provsec.wan.store import Store

    textfile = metrics.check_textfile(Path(args.textfile)) if args.textfile else None
    if not 1 <= args.timeout <= 3600:
        raise InputError(f"--timeout {args.timeout}: must be from 1 to 3600 seconds")
    inventory = load_inventory(args.inventory)
    window_file = windows.load_file(Path(args.change_windows)) if args.change_windows else None
    devs = backup.wan_devices(inventory, args.devices, window_file)
    if not devs:
        raise InputError(f"{inventory.path}: no host in the role group {backup.GROUP}: nothing to back up")
    key = devices.load_fingerprint_key(Path(args.fingerprint_key))
    creds = session.Credentials(Path(args.key_file), Path(args.known_hosts))
    limits = session.Limits(connect_timeout=min(args.timeout, 30.0), command_timeout=args.timeout)

    def fetch(d: backup.Device) -> list[tuple[str, str]]:
        return session.fetch(session.Endpoint(d.name, d.address, d.port, d.user), devices.profile(d.profile),
                             creds, limits)

    everyone = [d.name for d in backup.wan_devices(inventory)]
    results = backup.run(Store(Path(args.store)), devs, fetch, key=key, textfile=textfile,
                         all_devices=everyone)
    if args.json:
        _print_json({"store": args.store, "devices": [r.to_json() for r in results]})
    else:
        for r in results:
            if r.state == "failed":
                print(f"{r.device:<16} failed   {r.reason}")
            elif r.commit is None:
                print(f"{r.device:<16} ok       unchanged")
            else:
                what = "first version" if r.first else "CHANGED" + (" OUTSIDE A CHANGE WINDOW" if r.outside_window
                                                                     else " (in a change window)")
                print(f"{r.device:<16} ok       {what}, commit {r.commit[:12]}")
    failed = [r for r in results if r.state == "failed"]
    if failed:
        print(f"provsec wan backup: {len(failed)} of {len(results)} device(s) failed", file=sys.stderr)
    return 1 if failed else 0


def diff_command(args: argparse.Namespace) -> int:
    from provsec.wan.store import Store

    text = Store(Path(args.store)).diff(args.device, args.a, args.b)
    sys.stdout.write(text)
    return 1 if text else 0


def history_command(args: argparse.Namespace) -> int:
    from provsec.wan.store import Store, local

    revisions = Store(Path(args.store)).history(args.device)
    if not revisions:
        raise InputError(f"{args.store}: no stored version of {args.device!r}")
    if args.json:
        _print_json([r.to_json() for r in revisions])
    else:
        for r in revisions:
            print(f"{r.commit[:12]}  {local(dt.datetime.fromisoformat(r.time))}  {r.subject}")
    return 0


def ack_command(args: argparse.Namespace) -> int:
    from provsec.wan import metrics
    from provsec.wan.store import Store

    if not args.by.strip():
        raise InputError("--by: say who reviewed the change")
    textfile = metrics.check_textfile(Path(args.textfile)) if args.textfile else None
    store = Store(Path(args.store))
    store.history(args.device)  # a store, and the device's versions, must exist
    cleared: list[bool] = []
    with store.locked():
        metrics.update(store.path, textfile,
                       lambda st: cleared.append(metrics.acknowledge(st, args.device, args.by.strip())))
    if not cleared[0]:
        print(f"{args.device}: no change outside a change window to acknowledge")
        return 0
    print(f"{args.device}: change outside a change window acknowledged by {args.by.strip()}")
    return 0
