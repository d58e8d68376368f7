"""node_exporter textfile metrics for the network exposure audit (exporters/METRICS.md, "Network exposure (scan)").

`provsec scan run`, `scan ssh` and `scan tls` each update their part of one metrics state, kept in the scan
store (`STORE/metrics.json`, written atomically under a lock), and rewrite the whole textfile from it: a
textfile cannot count, so the drift counter lives in the state, and a run that scans one group (or checks
one host) keeps the series of the others. Give every scan command the same `--textfile` and `--store`.

Series are bounded: `group` is a role group of the inventory or `unlisted` (addresses that are no inventory
host); `host` is an inventory host, a baseline entry, or `unlisted` (all other addresses, summed) for the
scan, and a checked target for SSH and TLS; ports of unapproved services become labels only within a
budget (UNEXPECTED_PORT_BUDGET, the lowest port numbers first), the rest counted in
provsec_scan_unexpected_ports_dropped. Times are Unix seconds from UTC."""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec.errors import InputError
from provsec.fileio import read_json, write_atomic, write_json_atomic
from provsec.inventory.model import Inventory
from provsec.scan.baseline import Baseline
from provsec.scan.drift import DRIFT_KINDS, Finding
from provsec.scan.model import ScanResult
from provsec.scan.scope import Target

if TYPE_CHECKING:  # types only: `scan run` need not load paramiko
    from provsec.scan.sshposture import SshPosture
    from provsec.scan.tlsposture import TlsPosture

STATE_FILE = "metrics.json"
STATE_FORMAT = "provsec-scan-metrics/1"
UNLISTED = "unlisted"
UNEXPECTED_PORT_BUDGET = 20
SSH_KINDS = {"kex": "kex", "ciphers": "cipher", "macs": "mac", "host_keys": "hostkey"}


@dataclass
class GroupRun:
    last_run: float  # when the last scan covering the group ended (Unix seconds)
    success: bool
    last_success: float = 0.0  # 0: never


@dataclass
class HostExposure:
    unexpected: list[tuple[int, str]]  # (port, proto) open and not approved
    approved_not_open: int
    unexpected_count: int  # len(unexpected), except for `unlisted`: summed over its addresses


@dataclass
class SshCheck:
    weak: dict[str, int]  # kind (kex, cipher, mac, hostkey) -> weak algorithms offered
    checked_at: float


@dataclass
class TlsCheck:
    not_after: float | None  # certificate's notAfter (None: no handshake succeeded)
    days: int | None
    weak_versions: int
    chain_valid: bool
    checked_at: float


@dataclass
class MetricsState:
    groups: dict[str, GroupRun] = field(default_factory=dict)
    hosts: dict[str, HostExposure] = field(default_factory=dict)
    drift_events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DRIFT_KINDS, 0))
    ssh: dict[tuple[str, int], SshCheck] = field(default_factory=dict)
    tls: dict[tuple[str, int], TlsCheck] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "groups": {g: vars(r) for g, r in sorted(self.groups.items())},
            "hosts": {h: {"unexpected": [list(p) for p in e.unexpected], "approved_not_open": e.approved_not_open,
                          "unexpected_count": e.unexpected_count} for h, e in sorted(self.hosts.items())},
            "drift_events": self.drift_events,
            "ssh": [{"host": h, "port": p, **vars(c)} for (h, p), c in sorted(self.ssh.items())],
            "tls": [{"host": h, "port": p, **vars(c)} for (h, p), c in sorted(self.tls.items())],
        }

    @classmethod
    def from_json(cls, data: Any, source: str) -> MetricsState:
        try:
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise InputError(f"{source}: not a provsec scan metrics state (expected \"format\": "
                                 f"\"{STATE_FORMAT}\")")
            state = cls()
            state.groups = {str(g): GroupRun(float(r["last_run"]), bool(r["success"]), float(r["last_success"]))
                            for g, r in data["groups"].items()}
            state.hosts = {str(h): HostExposure([(int(p), str(proto)) for p, proto in e["unexpected"]],
                                                int(e["approved_not_open"]), int(e["unexpected_count"]))
                           for h, e in data["hosts"].items()}
            state.drift_events.update({str(k): int(v) for k, v in data["drift_events"].items()})
            state.ssh = {(str(c["host"]), int(c["port"])): SshCheck({str(k): int(v) for k, v in c["weak"].items()},
                                                                     float(c["checked_at"])) for c in data["ssh"]}
            state.tls = {(str(c["host"]), int(c["port"])): TlsCheck(
                None if c["not_after"] is None else float(c["not_after"]),
                None if c["days"] is None else int(c["days"]), int(c["weak_versions"]), bool(c["chain_valid"]),
                float(c["checked_at"])) for c in data["tls"]}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{source}: malformed scan metrics state ({type(exc).__name__}: {exc}); remove it "
                             "to start again (the drift counter then restarts at 0)") from exc
        return state


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).timestamp()


def target_groups(inventory: Inventory, targets: Sequence[Target]) -> set[str]:
    """The role groups of the inventory hosts a run covers; `unlisted` when it covers other addresses."""
    groups: set[str] = set()
    for t in targets:
        hosts = [h for h in inventory.hosts if h.ansible_host.version == t.network.version
                 and h.ansible_host in t.network]
        groups.update(g for h in hosts for g in h.groups)
        if t.network.num_addresses > len(hosts):
            groups.add(UNLISTED)
    return groups


def record_scan(state: MetricsState, inventory: Inventory, baseline: Baseline, targets: Sequence[Target], *,
                scan: ScanResult, findings: Iterable[Finding]) -> None:
    """A successful scan: its groups, each scanned host's exposure (0 included), the drift counter."""
    finished = _epoch(scan.finished_at)
    for group in target_groups(inventory, targets):
        state.groups[group] = GroupRun(finished, True, finished)
    names = {h.name for h in inventory.hosts}
    by_address: dict[str, list[Finding]] = {}
    for f in findings:
        by_address.setdefault(f.address, []).append(f)
        if f.is_drift:
            state.drift_events[f.kind] = state.drift_events.get(f.kind, 0) + 1
    unlisted = HostExposure([], 0, 0)
    for host in scan.hosts:
        reviewed = baseline.for_address(host.address)
        label = host.name if host.name in names else reviewed[0] if reviewed is not None else UNLISTED
        found = by_address.get(host.address, [])
        unexpected = sorted({(f.port, f.proto) for f in found if f.kind == "unexpected-open" and f.port})
        closed = sum(f.kind == "approved-not-open" for f in found)
        if label == UNLISTED:
            unlisted.unexpected = sorted(set(unlisted.unexpected) | set(unexpected))
            unlisted.approved_not_open += closed
            unlisted.unexpected_count += len(unexpected)
        else:
            state.hosts[label] = HostExposure(unexpected, closed, len(unexpected))
    if UNLISTED in target_groups(inventory, targets):
        state.hosts[UNLISTED] = unlisted
    known = names | set(baseline.hosts) | {UNLISTED}
    state.hosts = {h: e for h, e in state.hosts.items() if h in known}  # hosts that left the inventory


def record_failure(state: MetricsState, inventory: Inventory, targets: Sequence[Target], now: float) -> None:
    """A scan that did not complete (nmap failed, its report unreadable): its groups read failed."""
    for group in target_groups(inventory, targets):
        before = state.groups.get(group)
        state.groups[group] = GroupRun(now, False, before.last_success if before else 0.0)


def _kept(inventory: Inventory, host: str) -> bool:
    if any(h.name == host for h in inventory.hosts):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False  # a host that left the inventory
    return True


def record_ssh(state: MetricsState, inventory: Inventory, results: Iterable[SshPosture], now: float) -> None:
    for r in results:
        weak = dict.fromkeys(SSH_KINDS.values(), 0)
        for w in r.weak:
            weak[SSH_KINDS[w.category]] += 1
        state.ssh[(r.host, r.port)] = SshCheck(weak, now)
    state.ssh = {k: c for k, c in state.ssh.items() if _kept(inventory, k[0])}


def record_tls(state: MetricsState, inventory: Inventory, results: Iterable[TlsPosture], now: float) -> None:
    for r in results:
        state.tls[(r.host, r.port)] = TlsCheck(_epoch(r.not_after) if r.not_after else None, r.expires_in_days,
                                               len(r.weak_versions), r.chain_valid is True, now)
    state.tls = {k: c for k, c in state.tls.items() if _kept(inventory, k[0])}


class ScanCollector(Collector):
    """The metrics state as metric families; unapproved ports as labels within `budget`."""

    def __init__(self, state: MetricsState, budget: int = UNEXPECTED_PORT_BUDGET) -> None:
        self.state = state
        self.budget = budget

    def collect(self) -> Iterator[Metric]:
        yield from self._scan()
        yield from self._ssh()
        yield from self._tls()

    def _scan(self) -> Iterator[Metric]:
        s = self.state
        last_run = GaugeMetricFamily("provsec_scan_last_run_timestamp_seconds",
                                     "When the last scan of the target group ended, successful or not.",
                                     labels=["group"])
        last_ok = GaugeMetricFamily("provsec_scan_last_success_timestamp_seconds",
                                    "When the last successful scan of the target group ended (0: never).",
                                    labels=["group"])
        success = GaugeMetricFamily("provsec_scan_success", "1 if the last scan of the target group succeeded, "
                                    "else 0.", labels=["group"])
        for group, run in sorted(s.groups.items()):
            last_run.add_metric([group], run.last_run)
            last_ok.add_metric([group], run.last_success)
            success.add_metric([group], 1.0 if run.success else 0.0)
        yield from (last_run, last_ok, success)
        unexpected = GaugeMetricFamily("provsec_scan_unexpected_open_ports", "Open ports not approved in the "
                                       "baseline, at the host's last scan.", labels=["host"])
        closed = GaugeMetricFamily("provsec_scan_approved_ports_not_open", "Approved ports found closed, "
                                   "filtered or in another state than open, at the host's last scan.",
                                   labels=["host"])
        for host, e in sorted(s.hosts.items()):
            unexpected.add_metric([host], float(e.unexpected_count))
            closed.add_metric([host], float(e.approved_not_open))
        yield from (unexpected, closed)
        pairs = sorted(((port, proto, host) for host, e in s.hosts.items() for port, proto in e.unexpected))
        shown = GaugeMetricFamily("provsec_scan_unexpected_open_port", "1 for an open port that is not approved "
                                  f"(at most {self.budget} series, the lowest port numbers first).",
                                  labels=["host", "port", "proto"])
        for port, proto, host in pairs[:self.budget]:
            shown.add_metric([host, str(port), proto], 1.0)
        yield shown
        yield GaugeMetricFamily("provsec_scan_unexpected_ports_dropped", "Unapproved open ports not shown as "
                                "provsec_scan_unexpected_open_port series (over the budget).",
                                value=float(max(0, len(pairs) - self.budget)))
        events = CounterMetricFamily("provsec_scan_drift_events", "Drift findings reported by scans, by kind.",
                                     labels=["kind"])
        for kind in DRIFT_KINDS:
            events.add_metric([kind], float(s.drift_events.get(kind, 0)))
        yield events

    def _ssh(self) -> Iterator[Metric]:
        weak = GaugeMetricFamily("provsec_scan_ssh_weak_algorithms", "Algorithms the SSH server offers that the "
                                 "policy does not allow, by kind.", labels=["host", "port", "kind"])
        checked = GaugeMetricFamily("provsec_scan_ssh_last_check_timestamp_seconds", "When the SSH posture was "
                                    "last read.", labels=["host", "port"])
        for (host, port), c in sorted(self.state.ssh.items()):
            for kind in SSH_KINDS.values():
                weak.add_metric([host, str(port), kind], float(c.weak.get(kind, 0)))
            checked.add_metric([host, str(port)], c.checked_at)
        yield from (weak, checked)

    def _tls(self) -> Iterator[Metric]:
        labels = ["host", "port"]
        expiry = GaugeMetricFamily("provsec_scan_tls_cert_expiry_timestamp_seconds", "The server certificate's "
                                   "notAfter.", labels=labels)
        days = GaugeMetricFamily("provsec_scan_tls_cert_expiry_days", "Whole days the certificate had left at the "
                                 "last check (negative: expired).", labels=labels)
        weak = GaugeMetricFamily("provsec_scan_tls_weak_versions", "TLS 1.0 and 1.1 accepted (0 to 2).",
                                 labels=labels)
        chain = GaugeMetricFamily("provsec_scan_tls_chain_valid", "1 if the certificate chain verified, else 0.",
                                  labels=labels)
        checked = GaugeMetricFamily("provsec_scan_tls_last_check_timestamp_seconds", "When the TLS posture was "
                                    "last read.", labels=labels)
        for (host, port), c in sorted(self.state.tls.items()):
            key = [host, str(port)]
            if c.not_after is not None and c.days is not None:
                expiry.add_metric(key, c.not_after)
                days.add_metric(key, float(c.days))
            weak.add_metric(key, float(c.weak_versions))
            chain.add_metric(key, 1.0 if c.chain_valid else 0.0)
            checked.add_metric(key, c.checked_at)
        yield from (expiry, days, weak, chain, checked)


def render(state: MetricsState, budget: int = UNEXPECTED_PORT_BUDGET) -> bytes:
    registry = CollectorRegistry()
    registry.register(ScanCollector(state, budget))
    return generate_latest(registry)


def update(store: Path, textfile: Path, change: Callable[[MetricsState], None]) -> None:
    """Apply change to the state in `store` and rewrite `textfile` from it, both atomically, under a lock (two
    scan commands at once must not lose each other's update)."""
    state_path = store / STATE_FILE
    try:
        store.mkdir(parents=True, exist_ok=True)
        with (store / ".metrics.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = load(state_path)
            change(state)
            write_json_atomic(state_path, state.to_json())
            write_atomic(textfile, render(state))
    except OSError as exc:
        raise InputError(f"--textfile {textfile} / {state_path}: cannot write ({exc.strerror or exc})") from exc


def load(path: Path) -> MetricsState:
    if not path.exists():
        return MetricsState()
    try:
        data = read_json(path, "scan metrics state")
    except InputError as exc:
        raise InputError(f"{exc}; remove it to start again (the drift counter then restarts at 0)") from None
    return MetricsState.from_json(data, str(path))
