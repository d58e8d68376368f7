"""The WAN edge's drop counters as node_exporter textfile metrics (exporters/METRICS.md, "WAN edge").

Role wan_edge names one nftables counter per zone pair of the default drop (`drop__<from>__<to>`, zones
mgmt, dc, agency and `other` for addresses in no zone) and one for the anti-spoofing check (`spoofed`). A packet
log cannot replace them: inside a network namespace nft `log` writes nothing (nf_log_all_netns is 0 on the
host). `provsec wan counters` reads them with `nft -j list counters table inet TABLE` (root or CAP_NET_ADMIN) and
writes the textfile atomically; the series are bounded by the zones (at most 16 pairs).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec import proc
from provsec.errors import InputError
from provsec.fileio import check_textfile, write_atomic

DEFAULT_TABLE = "provsec_wan"


@dataclass(frozen=True)
class NftCounter:
    name: str
    packets: int
    bytes: int


def parse_counters(text: str, table: str, where: str) -> list[NftCounter]:
    """The named counters of `table` in the output of `nft -j list counters table inet TABLE`."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not the JSON of nft -j (line {exc.lineno}: {exc.msg})") from None
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{where}: no 'nftables' list in the JSON of nft -j")
    out: list[NftCounter] = []
    for item in items:
        counter = item.get("counter") if isinstance(item, dict) else None
        if not isinstance(counter, dict) or counter.get("table") != table:
            continue
        try:
            out.append(NftCounter(str(counter["name"]), int(counter["packets"]), int(counter["bytes"])))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: counter entry without name, packets and bytes: {counter!r}") from None
    return out


def read_counters(table: str) -> list[NftCounter]:
    result = proc.run(["nft", "-j", "list", "counters", "table", "inet", table], timeout=20)
    counters = parse_counters(result.stdout, table, f"nft -j list counters table inet {table}")
    if not counters:
        raise InputError(f"table inet {table} has no named counters: is it the WAN edge's ruleset (role wan_edge)?")
    return counters


class EdgeCounters(Collector):
    """provsec_wan_forward_dropped_{packets,bytes}_total{from_zone, to_zone} and provsec_wan_spoofed_*."""

    def __init__(self, counters: Iterable[NftCounter], registry: CollectorRegistry | None = None) -> None:
        self._counters = list(counters)
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterable[Metric]:
        dropped = CounterMetricFamily(
            "provsec_wan_forward_dropped_packets", "Forwarded packets dropped by the WAN edge's default drop, "
            "by the zones of their source and destination address.", labels=["from_zone", "to_zone"])
        dropped_bytes = CounterMetricFamily(
            "provsec_wan_forward_dropped_bytes", "Bytes of the forwarded packets the WAN edge dropped.",
            labels=["from_zone", "to_zone"])
        spoofed = CounterMetricFamily(
            "provsec_wan_spoofed_packets", "Packets dropped because their source address is not routed back "
            "through the interface they came in on (anti-spoofing).")
        for counter in self._counters:
            parts = counter.name.split("__")
            if len(parts) == 3 and parts[0] == "drop":
                dropped.add_metric([parts[1], parts[2]], counter.packets)
                dropped_bytes.add_metric([parts[1], parts[2]], counter.bytes)
            elif counter.name == "spoofed":
                spoofed.add_metric([], counter.packets)
        yield dropped
        yield dropped_bytes
        yield spoofed


def render(counters: Iterable[NftCounter]) -> bytes:
    registry = CollectorRegistry()
    EdgeCounters(counters, registry=registry)
    return generate_latest(registry)


def _cmd_counters(args: argparse.Namespace) -> int:
    data = render(read_counters(args.table))
    if args.textfile is None:
        print(data.decode(), end="")
    else:
        write_atomic(check_textfile(args.textfile, "provsec_wan.prom"), data)
    return 0


def register(wan_sub: Any) -> None:
    """Add `provsec wan counters` to the `provsec wan` sub-commands."""
    p = wan_sub.add_parser("counters", help="write the WAN edge's drop counters as textfile metrics (root)")
    p.add_argument("--table", default=DEFAULT_TABLE, help=f"nftables table, family inet (default {DEFAULT_TABLE})")
    p.add_argument("--textfile", type=Path, help="write here (…/node-exporter/NAME.prom) instead of stdout")
    p.set_defaults(handler=_cmd_counters)
