"""`provsec audit checks` (what the collector must gather) and `provsec audit evaluate` (judge the evidence)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from provsec.controls import load_catalogue

DEFAULT_CATALOGUE = "playbooks/controls"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="compliance audit against the control catalogue (playbooks/audit.yml runs it)",
        description="Compliance audit: list what the collector gathers; judge collected evidence against the "
        "control catalogue. playbooks/audit.yml runs both on every host.",
    )
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")

    checks = sub.add_parser(
        "checks",
        help="print the collector's request (which facts to read) for a catalogue, as JSON",
        description="Check the catalogue and print what the collector (src/provsec/audit/collect.py) must read "
        "on each host: sysctl keys, files, packages, services, … (never the expected values).",
    )
    checks.add_argument("--catalogue", default=DEFAULT_CATALOGUE, metavar="DIR",
                        help=f"control catalogue directory (default: {DEFAULT_CATALOGUE})")
    checks.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    checks.set_defaults(handler=checks_command)

    evaluate = sub.add_parser(
        "evaluate",
        help="judge collected evidence: RESULTS/<host>.json per host and RESULTS/summary.json",
        description="Judge each host's evidence (EVIDENCE/<host>.json from the collector) against the catalogue "
        "at the host's level, with its exceptions; write RESULTS/<host>.json and RESULTS/summary.json. "
        "Exit 0 when every host was judged (whatever the results), 1 when some host has no evidence.",
    )
    evaluate.add_argument("--catalogue", default=DEFAULT_CATALOGUE, metavar="DIR",
                          help=f"control catalogue directory (default: {DEFAULT_CATALOGUE})")
    evaluate.add_argument("--evidence", required=True, metavar="DIR", help="directory of <host>.json evidence")
    evaluate.add_argument("--results", required=True, metavar="DIR", help="directory to write the results to")
    evaluate.add_argument("--hosts-vars", metavar="FILE",
                          help="hosts' level, exceptions and admin subnets (JSON or YAML; default: "
                          "EVIDENCE/_hosts.json, written by audit.yml)")
    evaluate.add_argument("--json", action="store_true", help="print the fleet summary as JSON")
    evaluate.set_defaults(handler=evaluate_command)


def checks_command(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(args.catalogue)
    text = json.dumps(catalogue.checks_request(), ensure_ascii=False, indent=2) + "\n"
    if args.output:
        path = Path(args.output)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    else:
        sys.stdout.write(text)
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from provsec.audit.evaluate import STATUSES, evaluate_fleet, write_results

    catalogue = load_catalogue(args.catalogue)
    hosts_vars = Path(args.hosts_vars) if args.hosts_vars else None
    run = evaluate_fleet(catalogue, Path(args.evidence), hosts_vars)
    write_results(run, Path(args.results))
    summary = run.summary
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(f"audit of {len(summary['hosts'])} host(s) against {summary['controls']} controls "
              f"({summary['catalogue']}); results in {args.results}")
        for name, host in summary["hosts"].items():
            counts = "  ".join(f"{s} {host['counts'][s]}" for s in STATUSES)
            where = f" [{host['container']}]" if host["container"] else ""
            print(f"  {name:<16} cấp độ {host['level']}{where}: {counts}")
        failing = {cid: row["failing_hosts"] for cid, row in summary["by_control"].items() if row["failing_hosts"]}
        for cid, hosts in failing.items():
            print(f"  FAIL {cid} {summary['by_control'][cid]['title']['en']}: {', '.join(hosts)}")
    for name, why in run.missing.items():
        print(f"provsec: error: {name}: not audited: {why}", file=sys.stderr)
    return 1 if run.missing else 0
