"""`provsec wan audit`: judge the stored configuration of every `wan_edge` device against the WAN controls.

Reads `<device>.cfg` from the configuration directory (what `provsec wan backup` stores), parses every one before
judging any (a malformed file is one error naming it, and nothing is written), then prints a table, or the JSON
document (--json), and writes it (--out FILE) and/or per-device result files in the servers' audit format
(--results DIR: <device>.json + summary.json, which the compliance report reads). Exit 0 when every control
passes (or is not applicable or excepted), 1 when one fails or a device has no stored configuration,
2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from provsec.audit.evaluate import STATUSES, AuditRun, parse_exceptions, today_local, write_results
from provsec.controls import Catalogue
from provsec.errors import InputError
from provsec.fileio import write_json_atomic
from provsec.inventory import Inventory, load_inventory
from provsec.wan.parse_hostvars import host_vars
from provsec.wan.policy import (
    DEFAULT_CATALOGUE,
    DEFAULT_FAMILY,
    FAMILIES,
    Device,
    audit_device,
    counts,
    load_wan_catalogue,
    parse_config,
)

GROUP = "wan_edge"
SUFFIX = ".cfg"
Json = dict[str, Any]


def register(wan_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit` to the `provsec wan` sub-commands."""
    parser = wan_sub.add_parser(
        "audit",
        help="audit the stored configuration of every wan_edge device against the WAN controls",
        description="Judge each wan_edge device's stored configuration (CONFIG_DIR/<device>.cfg, from provsec wan "
        "backup) against the WAN controls at its security level, with its exceptions. The device family comes from "
        f"the host variable provsec_wan_profile ({', '.join(FAMILIES)}; default {DEFAULT_FAMILY}). Exit 0 when "
        "no control fails, 1 when one fails or a device has no stored configuration, 2 on bad input.",
    )
    parser.add_argument("-i", "--inventory", required=True, metavar="DIR", help="inventory directory")
    parser.add_argument("--config-dir", required=True, metavar="DIR",
                        help="directory of <device>.cfg (the backup's working tree)")
    parser.add_argument("--catalogue", default=DEFAULT_CATALOGUE, metavar="DIR",
                        help=f"WAN control catalogue directory (default: {DEFAULT_CATALOGUE})")
    parser.add_argument("--profile-of", action="append", default=[], metavar="DEVICE=PROFILE",
                        help="the device family of DEVICE, over its provsec_wan_profile (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the whole result document as JSON")
    parser.add_argument("--out", metavar="FILE", help="write the result document as JSON to FILE (atomically)")
    parser.add_argument("--results", metavar="DIR",
                        help="write RESULTS/<device>.json and RESULTS/summary.json in the servers' audit format "
                        "(use a directory of its own: a Linux edge is audited as a server too)")
    parser.set_defaults(handler=audit_command)


def _profiles(values: list[str], edges: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        device, eq, profile = value.partition("=")
        if not eq or not device or not profile:
            raise InputError(f"--profile-of {value!r}: give DEVICE=PROFILE, e.g. gw2=cisco_ios")
        if device not in edges:
            raise InputError(f"--profile-of {value!r}: {device!r} is not a host of the role group {GROUP}")
        if profile not in FAMILIES:
            raise InputError(f"--profile-of {value!r}: unknown profile; profiles: {', '.join(FAMILIES)}")
        out[device] = profile
    return out


def _device(inventory: Inventory, catalogue: Catalogue, name: str, override: str | None) -> Device:
    host = inventory.host(name)
    found = host_vars(inventory.path, name, host.groups)
    profile, where = found.get("provsec_wan_profile", (DEFAULT_FAMILY, "default"))
    if override:
        profile = override
    elif profile not in FAMILIES:
        raise InputError(f"{where}: provsec_wan_profile: {profile!r} is not one of {', '.join(FAMILIES)}")
    raw, at = found.get("provsec_control_exceptions", (None, ""))
    # the servers' exceptions of the same host (PS-SSH-…) are the servers' audit's business
    wan_only = [e for e in raw if isinstance(e, dict) and str(e.get("control", "")).startswith("PS-WAN-")] \
        if isinstance(raw, list) else raw
    exceptions = parse_exceptions(wan_only, at, catalogue)
    # Approved management sources: the admin subnets, and the monitoring host, whose read-only account backs the
    # configuration up (role wan_backup: key only, `restrict`, from its addresses only)
    subnets = tuple(str(n) for n in inventory.networks.admin_subnets) + tuple(
        f"{addr}/{addr.max_prefixlen}" for h in inventory.hosts if "monitoring" in h.groups
        for addr in h.all_addresses())
    return Device(name, str(profile), inventory.effective_level(host), subnets, exceptions)


def run_audit(inventory_dir: Path, config_dir: Path, catalogue_dir: Path | str,
              profile_of: list[str] | None = None, now: dt.datetime | None = None) -> AuditRun:
    """Every wan_edge device's results (AuditRun: per-device reports and the summary). InputError on bad input."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    inventory = load_inventory(inventory_dir)
    catalogue = load_wan_catalogue(catalogue_dir)
    edges = [h.name for h in inventory.hosts if GROUP in h.groups]
    if not edges:
        raise InputError(f"{inventory_dir}: no host in the role group {GROUP}: nothing to audit")
    overrides = _profiles(profile_of or [], edges)
    if not config_dir.is_dir():
        raise InputError(f"{config_dir}: configuration directory not found (run provsec wan backup)")
    devices = [_device(inventory, catalogue, name, overrides.get(name)) for name in sorted(edges)]
    missing: dict[str, str] = {}
    parsed = {}
    for device in devices:  # parse every file before judging any: a malformed one stops the run
        path = config_dir / f"{device.name}{SUFFIX}"
        if not path.is_file():
            missing[device.name] = f"no stored configuration {path} (run provsec wan backup)"
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the stored configuration: {exc.strerror}") from None
        parsed[device.name] = (path, hashlib.sha256(data).hexdigest(), parse_config(device.family, data, str(path)))
    reports: dict[str, Json] = {}
    today = today_local(now)
    for device in devices:
        if device.name not in parsed:
            continue
        path, digest, config = parsed[device.name]
        results = audit_device(catalogue, device, config, today)
        reports[device.name] = {
            "host": device.name, "profile": device.family, "config": str(path), "config_sha256": digest,
            "level": device.level, "catalogue_level": catalogue.catalogue_level(device.level),
            "evaluated_at": stamp, "counts": counts(results), "results": [r.as_json() for r in results],
        }
    by_control: dict[str, Json] = {}
    for control in catalogue.controls:
        row: Json = {"title": {"vi": control.title.vi, "en": control.title.en}, "concern": control.concern}
        row.update(dict.fromkeys(STATUSES, 0))
        row["failing_hosts"] = []
        by_control[control.id] = row
    for name, report in reports.items():
        for result in report["results"]:
            by_control[result["id"]][result["status"]] += 1
            if result["status"] == "fail":
                by_control[result["id"]]["failing_hosts"].append(name)
    summary: Json = {
        "generated_at": stamp, "catalogue": str(catalogue.directory), "config_dir": str(config_dir),
        "controls": len(catalogue.controls),
        "hosts": {n: {k: r[k] for k in ("profile", "level", "catalogue_level", "counts")} for n, r in reports.items()},
        "hosts_without_evidence": missing,
        "totals": {s: sum(r["counts"][s] for r in reports.values()) for s in STATUSES},
        "by_control": by_control,
    }
    return AuditRun(reports, summary)


def _table(run: AuditRun) -> str:
    summary = run.summary
    out = [f"WAN audit of {len(run.reports)} device(s) against {summary['controls']} controls "
           f"({summary['catalogue']}); configurations in {summary['config_dir']}"]
    for name, report in run.reports.items():
        tally = "  ".join(f"{s} {report['counts'][s]}" for s in STATUSES)
        out.append(f"\n{name} ({report['profile']}, cấp độ {report['level']}): {tally}")
        for r in report["results"]:
            out.append(f"  {r['status'].upper():<14} {r['id']}  {r['title']['en']}")
            if r["status"] in ("fail", "excepted"):
                out.append(f"  {'':<14} why: {r['reason']}")
                out.append(f"  {'':<14} evidence: {r['evidence']}")
    for name, why in run.missing.items():
        out.append(f"\n{name}: NOT AUDITED: {why}")
    totals = summary["totals"]
    out.append("\ntotal: " + "  ".join(f"{s} {totals[s]}" for s in STATUSES))
    return "\n".join(out)


def audit_command(args: argparse.Namespace) -> int:
    run = run_audit(Path(args.inventory), Path(args.config_dir), args.catalogue, args.profile_of)
    document = {**run.summary, "reports": run.reports}
    if args.out:
        write_json_atomic(Path(args.out), document)
    if args.results:
        write_results(run, Path(args.results))
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(_table(run))
    for name, why in run.missing.items():
        print(f"provsec: error: {name}: not audited: {why}", file=sys.stderr)
    failed = run.summary["totals"]["fail"]
    return 1 if failed or run.missing else 0
