"""What a WAN edge forwards: the ports hosts accept from across the edge, plus the inventory's business flows;
nothing whose every source is on the host's own side."""

from __future__ import annotations

from typing import Any

import pytest

from provsec.errors import InputError
from provsec.firewall import EdgeHost, agency_side, compose_forward, zones

NETWORKS = {"admin_subnets": ["198.18.0.0/28"], "dc_ranges": ["198.18.0.0/24"], "agency_ranges": ["198.18.1.0/24"]}
HOSTS = [
    EdgeHost("mon1", ("dc_servers", "monitoring"), ("198.18.0.20",)),
    EdgeHost("web1", ("dc_servers", "web_servers"), ("198.18.0.23",)),
    EdgeHost("gw1", ("wan_edge",), ("198.18.0.30", "198.18.1.1")),
    EdgeHost("agency1", ("agency_servers",), ("198.18.1.10",)),
]
GROUPS = {"all": ["198.18.0.20", "198.18.0.23", "198.18.0.30", "198.18.1.1", "198.18.1.10"],
          "monitoring": ["198.18.0.20"], "web_servers": ["198.18.0.23"]}
DECLS: list[tuple[str, dict[str, Any]]] = [
    ("ssh/meta/ports.yml", {"name": "ssh", "proto": "tcp", "port": 22, "hosts": "all", "from": "admin_subnets",
                            "reason": "admin"}),
    ("node_exporter/meta/ports.yml", {"name": "node-exporter", "proto": "tcp", "port": 9100, "hosts": "all",
                                      "from": "group:monitoring", "reason": "scrape"}),
    ("logging/meta/ports.yml", {"name": "syslog-tls", "proto": "tcp", "port": 6514, "hosts": "monitoring",
                                "from": "group:all", "reason": "logs"}),
]


def flows(explicit: list[dict[str, Any]] | None = None) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    out = compose_forward(DECLS, HOSTS, "gw1", NETWORKS, GROUPS, explicit=explicit or [])
    return {f.name: (f.port, f.sources, f.destinations) for f in out}


def test_ports_accepted_from_across_the_edge_are_forwarded_to_exactly_those_hosts() -> None:
    got = flows()
    # the admin's SSH and the monitoring host's scrapes reach the agency server, not the data-centre hosts
    assert got["ssh"] == ("22", ("198.18.0.0/28",), ("198.18.1.10",))
    assert got["node-exporter"] == ("9100", ("198.18.0.20",), ("198.18.1.10",))
    # the agency server forwards its logs to the central log host; only its own (agency-side) addresses cross
    assert got["syslog-tls"] == ("6514", ("198.18.1.1", "198.18.1.10"), ("198.18.0.20",))
    assert set(got) == {"ssh", "node-exporter", "syslog-tls"}


def test_the_edge_itself_gets_no_forward_rule() -> None:
    assert all("198.18.0.30" not in dests for _, _, dests in flows().values())


def test_business_flows_come_from_the_inventory_in_the_contract_syntax() -> None:
    got = flows([{"name": "portal", "proto": "tcp", "port": 443, "from": "agency_ranges", "to": "group:web_servers",
                  "reason": "portal"}])
    assert got["portal"] == ("443", ("198.18.1.0/24",), ("198.18.0.23",))


@pytest.mark.parametrize(("flow", "message"), [
    ({"name": "x", "proto": "icmp", "port": 1, "from": "any", "to": "any", "reason": "r"}, "proto must be tcp or udp"),
    ({"name": "x", "proto": "tcp", "port": 70000, "from": "any", "to": "any", "reason": "r"}, "not a port number"),
    ({"name": "x", "proto": "tcp", "port": 1, "from": "group:nobody", "to": "any", "reason": "r"},
     "resolves to no address"),
    ({"name": "x", "proto": "tcp", "port": 1, "to": "any", "reason": "r"}, "missing from"),
    ({"name": "x", "proto": "tcp", "port": 1, "from": "any", "to": "10.0.0.1/8", "reason": "r"}, "to"),
])
def test_a_malformed_flow_names_its_index_and_problem(flow: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=r"provsec_wan_forward\[0\] \('x'\)") as err:
        flows([flow])
    assert message in str(err.value)


def test_zones_and_sides() -> None:
    assert zones(NETWORKS) == {"mgmt": ("198.18.0.0/28",), "dc": ("198.18.0.0/24",), "agency": ("198.18.1.0/24",)}
    assert agency_side("198.18.1.10", ["198.18.1.0/24"]) is True
    assert agency_side("198.18.0.0/28", ["198.18.1.0/24"]) is False
    assert agency_side("198.18.0.0/23", ["198.18.1.0/24"]) is None  # straddles: it crosses from both sides
    with pytest.raises(InputError, match="agency_ranges is empty"):
        zones({**NETWORKS, "agency_ranges": []})
