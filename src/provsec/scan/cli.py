"""`provsec scan run|diff|baseline|ssh|tls`: network exposure audit of the hosts the inventory declares.

Exit codes (all sub-commands): 0 nothing to report (no drift, no difference, no weak algorithm); 1 something
to look at (drift against the baseline, a difference between two scans, a weak SSH algorithm, a weak TLS
version, an invalid chain or a certificate near its expiry); 2 bad input, including a target outside the
declared ranges (refused before anything is sent); 3 nmap or the network could not do the work."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

from provsec.errors import InputError, ProvsecError
from provsec.inventory.load import load_inventory
from provsec.inventory.model import Inventory

DEFAULT_CATALOGUE = "playbooks/controls"
FORMATS = ("table", "json", "ndiff")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from provsec.scan.store import DEFAULT_STORE

    parser = subparsers.add_parser(
        "scan",
        help="network exposure audit: nmap scans and drift against the baseline, SSH and TLS posture",
        description="What each host exposes, seen from the network, against the reviewed baseline; SSH and TLS "
        "posture against the control catalogue. Only targets inside the inventory's provsec_networks (and "
        "loopback) are ever touched. Exit 0: nothing found; 1: drift, differences or weak posture; "
        "2: bad input or a target out of scope; 3: nmap or the network failed.",
    )
    sub = parser.add_subparsers(dest="scan_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-i", "--inventory", required=True, metavar="DIR",
                        help="inventory directory: its provsec_networks are the scan scope")
    stored = argparse.ArgumentParser(add_help=False)
    stored.add_argument("--store", default=DEFAULT_STORE, metavar="DIR",
                        help=f"scan store directory (default {DEFAULT_STORE})")
    output = _output_parent()
    metrics = _metrics_parent()

    run = sub.add_parser("run", parents=[common, stored, output, metrics],
                         help="scan, store the scan, report drift",
                         description="Scan the targets (default: every inventory host) with nmap, store the scan "
                         "atomically in the store, and compare it with the baseline. --format ndiff prints the "
                         "difference from the previous stored scan. Exit 1 when there is drift.")
    run.add_argument("targets", nargs="*", metavar="TARGET",
                     help="an address, a CIDR range, an inventory host or a role group")
    ports = run.add_mutually_exclusive_group()
    ports.add_argument("-p", "--ports", metavar="LIST", help="ports to scan, e.g. 22,80,443,8000-8010")
    ports.add_argument("--top-ports", type=int, default=1000, metavar="N", help="nmap's N most common ports "
                       "(default 1000)")
    run.add_argument("--syn", action="store_true", help="SYN scan (-sS, needs root); default TCP connect (-sT)")
    run.add_argument("-sV", "--service-version", action="store_true", help="probe open ports for their service")
    run.add_argument("-T", "--timing", type=int, default=3, metavar="0-5", help="nmap timing template (default 3)")
    run.add_argument("--no-ping", action="store_true", help="skip host discovery (-Pn): for hosts that drop "
                     "probes; a host can then never be reported down")
    run.add_argument("--host-timeout", type=int, default=900, metavar="SECONDS", help="give up on a host after")
    run.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                     help="kill nmap after this long (default 3600; 1 s to 7 days)")
    run.add_argument("--baseline", metavar="FILE", help="baseline (default INVENTORY/scan_baseline.yml)")
    run.set_defaults(handler=run_command)

    dif = sub.add_parser("diff", parents=[stored, output], help="differences between two stored scans",
                         description="Hosts and ports whose state differs between scan A and scan B (a path, a "
                         "file name in the store, latest or previous). Exit 1 when they differ, like ndiff.")
    dif.add_argument("a", metavar="A")
    dif.add_argument("b", metavar="B")
    dif.set_defaults(handler=diff_command)

    base = sub.add_parser("baseline", parents=[common, stored], help="accept a reviewed scan as the baseline",
                          description="After review, make a scan (default: the latest) the baseline of its hosts "
                          "(or of --host only): newly open ports are approved with --approver, --reason and the "
                          "time; approved ports found not open are removed. The YAML is rewritten atomically.")
    base.add_argument("--accept", action="store_true", required=True, help="accept (the only action)")
    base.add_argument("--approver", required=True, metavar="NAME", help="who reviewed and approved")
    base.add_argument("--reason", required=True, metavar="TEXT", help="why these ports may be open")
    base.add_argument("--host", action="append", default=[], metavar="HOST", help="only this host (repeatable)")
    base.add_argument("--scan", default="latest", metavar="SCAN", help="the scan to accept (default latest)")
    base.add_argument("--baseline", metavar="FILE", help="baseline (default INVENTORY/scan_baseline.yml)")
    base.set_defaults(handler=baseline_command)

    ssh = sub.add_parser("ssh", parents=[common, stored, metrics],
                         help="SSH posture: offered algorithms against the policy",
                         description="Read each server's offered key exchange, host key, cipher and MAC "
                         "algorithms and banner without logging in; report those the catalogue does not "
                         "allow at the host's level. Exit 1 when any is weak.")
    ssh.add_argument("targets", nargs="+", metavar="HOST[:PORT]")
    ssh.add_argument("--level", type=int, metavar="N", help="judge at this security level (default: the host's; "
                     "3 for an address that is no inventory host)")
    ssh.add_argument("--catalogue", default=DEFAULT_CATALOGUE, metavar="DIR", help="control catalogue")
    ssh.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    ssh.add_argument("--json", action="store_true", help="print JSON")
    ssh.set_defaults(handler=ssh_command)

    tls = sub.add_parser("tls", parents=[common, stored, metrics],
                         help="TLS posture: versions, certificate expiry, chain",
                         description="Which of TLS 1.0–1.3 each server accepts, its certificate's days left "
                         "and whether the chain verifies. Exit 1 on TLS 1.0/1.1 accepted, an invalid chain or "
                         "fewer than --min-days left.")
    tls.add_argument("targets", nargs="+", metavar="HOST:PORT")
    tls.add_argument("--ca-file", metavar="FILE", help="CA certificates to verify against (default: the system's)")
    tls.add_argument("--server-name", default="", metavar="NAME", help="name to send (SNI) and verify")
    tls.add_argument("--min-days", type=int, default=14, metavar="N", help="report certificates with fewer days")
    tls.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    tls.add_argument("--json", action="store_true", help="print JSON")
    tls.set_defaults(handler=tls_command)


def _output_parent() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default, times in Asia/Ho_Chi_Minh), json (times in UTC), or ndiff "
                        "(nmap ndiff's text format)")
    output.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    return output


def _metrics_parent() -> argparse.ArgumentParser:
    metrics = argparse.ArgumentParser(add_help=False)
    metrics.add_argument("--textfile", metavar="PATH", help="also update this node_exporter textfile (*.prom, "
                         "e.g. /var/lib/prometheus/node-exporter/provsec_scan.prom) from the metrics state in "
                         "the store; give every scan command the same one (exporters/METRICS.md)")
    return metrics


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _baseline_path(inventory: Inventory, given: str | None) -> Path:
    from provsec.scan import baseline

    return Path(given) if given else baseline.default_path(inventory)


def _textfile(args: argparse.Namespace) -> Path | None:
    """--textfile, checked before anything is scanned."""
    from provsec.fileio import check_textfile

    return check_textfile(Path(args.textfile), "provsec_scan.prom") if args.textfile else None


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def run_command(args: argparse.Namespace) -> int:
    from provsec.scan import baseline, drift, nmapscan, output, scope, store
    from provsec.scan.model import ScanResult, parse_port_list

    textfile = _textfile(args)
    if textfile is not None:
        from provsec.scan import metrics  # only then: prometheus_client takes a tenth of a second to import
    inventory = load_inventory(args.inventory)
    targets = scope.resolve(inventory, args.targets)  # refuses out-of-scope targets before anything runs
    options = nmapscan.ScanOptions(
        ports=parse_port_list(args.ports, "--ports") if args.ports else (), top_ports=args.top_ports,
        syn=args.syn, service_version=args.service_version, timing=args.timing, no_ping=args.no_ping,
        host_timeout=args.host_timeout, timeout=args.timeout).check()
    if args.ports is not None and not options.ports:
        raise InputError(f"--ports {args.ports!r}: no port given")
    base = baseline.load(_baseline_path(inventory, args.baseline), inventory)  # bad baseline: fail before scanning
    store_dir = Path(args.store)
    if textfile is not None:
        metrics.load(store_dir / metrics.STATE_FILE)  # a damaged metrics state: fail before scanning
    before = store.scans(store_dir)
    try:
        result = nmapscan.scan(targets, options, lambda addr: scope.host_name(inventory, addr))
    except ProvsecError:
        if textfile is not None:  # the scan was attempted and failed: its groups say so
            with contextlib.suppress(ProvsecError):  # the scan's own error is the one to report
                metrics.update(store_dir, textfile,
                               lambda st: metrics.record_failure(st, inventory, targets, _now()))
        raise
    saved = store.save(store_dir, result)
    findings = drift.drift(result, base)
    if textfile is not None:
        metrics.update(store_dir, textfile, lambda st: metrics.record_scan(st, inventory, base, targets,
                                                                           scan=result, findings=findings))
    if args.format == "ndiff":
        previous = store.load(before[-1]) if before else ScanResult("", "", "", "", (), ())
        print("\n".join(output.ndiff(previous, result, drift.diff(previous, result))))
    elif args.format == "json":
        _print_json({"stored": str(saved), "scan": result.to_json(), "baseline": str(base.path),
                     "drift": output.findings_json([f for f in findings if f.is_drift]),
                     "notes": output.findings_json([f for f in findings if not f.is_drift])})
    else:
        print("\n".join(output.scan_table(result)))
        print("\n".join(output.drift_table(findings, str(base.path))))
        print(f"stored: {saved}")
    return 1 if any(f.is_drift for f in findings) else 0


def diff_command(args: argparse.Namespace) -> int:
    from provsec.scan import drift, output, store

    store_dir = Path(args.store)
    a, b = store.load(store.resolve(store_dir, args.a)), store.load(store.resolve(store_dir, args.b))
    diffs = drift.diff(a, b)
    if args.format == "json":
        _print_json({"a": a.started_at, "b": b.started_at, "hosts": [d.to_json() for d in diffs]})
    elif args.format == "ndiff":
        print("\n".join(output.ndiff(a, b, diffs)))
    else:
        print("\n".join(output.diff_table(diffs)))
    return 1 if diffs else 0


def baseline_command(args: argparse.Namespace) -> int:
    from provsec.scan import baseline, store

    inventory = load_inventory(args.inventory)
    current = baseline.load(_baseline_path(inventory, args.baseline), inventory)
    scan = store.load(store.resolve(Path(args.store), args.scan))
    updated, changes = baseline.accept(current, scan, args.approver, args.reason, args.host)
    baseline.write(updated)
    for c in changes:
        print(f"{c.action:<8} {c.host} {c.port}/{c.proto}")
    print(f"{updated.path}: {len(changes)} change(s) accepted by {args.approver.strip()}")
    return 0


def ssh_command(args: argparse.Namespace) -> int:
    from provsec.controls import load_catalogue
    from provsec.scan import metrics, scope, sshposture

    textfile = _textfile(args)
    inventory = load_inventory(args.inventory)
    endpoints = [scope.parse_endpoint(inventory, spec, 22) for spec in args.targets]  # all checked first
    catalogue = load_catalogue(args.catalogue)
    role_defaults = Path(args.catalogue).parent / "roles" / "ssh" / "defaults" / "main.yml"
    results = []
    for target, port in endpoints:
        is_host = any(h.name == target.name for h in inventory.hosts)
        level = args.level or (inventory.effective_level(target.name) if is_host else 3)
        pol = sshposture.policy(catalogue, level, role_defaults)
        results.append(sshposture.posture(target.name, str(target.address), port, pol, args.timeout))
    if textfile is not None:
        metrics.update(Path(args.store), textfile, lambda st: metrics.record_ssh(st, inventory, results, _now()))
    if args.json:
        _print_json([r.to_json() for r in results])
    else:
        for r in results:
            print(f"{r.host} {r.address}:{r.port}  {r.offer.banner}  (policy: cấp độ {r.policy_level})")
            for category in ("kex", "host_keys", "ciphers", "macs"):
                print(f"  {category:<9} {', '.join(r.offer.offered(category)) or '-'}")
            for w in r.weak:
                print(f"  WEAK {w.category:<9} {w.algorithm}" + (f"  ({w.control})" if w.control else ""))
            if not r.weak:
                print("  no weak algorithm")
    return 1 if any(r.weak for r in results) else 0


def tls_command(args: argparse.Namespace) -> int:
    from provsec.scan import metrics, scope, tlsposture
    from provsec.scan.output import local_time

    textfile = _textfile(args)
    inventory = load_inventory(args.inventory)
    endpoints = [scope.parse_endpoint(inventory, spec, 443) for spec in args.targets]
    ca_file = Path(args.ca_file) if args.ca_file else None
    results = [tlsposture.posture(t.name, str(t.address), port, server_name=args.server_name, ca_file=ca_file,
                                  timeout=args.timeout) for t, port in endpoints]
    bad = [r for r in results if r.weak_versions or r.chain_valid is not True
           or r.expires_in_days is None or r.expires_in_days < args.min_days]
    if textfile is not None:
        metrics.update(Path(args.store), textfile, lambda st: metrics.record_tls(st, inventory, results, _now()))
    if args.json:
        _print_json([r.to_json() for r in results])
    else:
        for r in results:
            versions = ", ".join(f"{v} {s}" for v, s in r.versions.items())
            chain = "valid" if r.chain_valid else f"INVALID ({r.chain_error})"
            days = ("-" if r.expires_in_days is None
                    else f"{r.expires_in_days} day(s) left ({local_time(r.not_after)})")
            print(f"{r.host} {r.address}:{r.port}  {versions}")
            print(f"  certificate: {days}; chain {chain}")
            if r.weak_versions:
                print(f"  WEAK versions accepted: {', '.join(r.weak_versions)}")
    return 1 if bad else 0
