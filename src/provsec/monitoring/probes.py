"""Link monitoring: the blackbox exporter's probe jobs of prometheus.yml (issue 7 §4).

prometheus-blackbox-exporter runs on the monitoring host, on loopback (role blackbox_exporter); Prometheus asks
it to probe each target (`/probe?module=…&target=…`). Two jobs:

- `blackbox_icmp` (module `icmp`): every address of every WAN gateway (each leg in `provsec_addresses`, and its
  `ansible_host`), and the `ansible_host` of every host behind a gateway (`wan_role="behind"`, targets.py);
- `blackbox_tcp` (module `tcp_connect`): port 443 of every host of web_servers, and the ports the inventory
  adds per host (`tcp_probes`: the monitoring role's `monitoring_server_tcp_probes`).

SSH (22) is not probed by default: the firewall opens it to the admin subnets only (roles ssh and firewall),
and the monitoring host is not in them; a probe would time out and alert for ever. Add it per host where the
monitoring host may reach it.

Labels of a probe target: `instance` is the probed address (`198.18.0.30`, `198.18.0.23:443`), so that the two
legs of a gateway are two series; `host` is the inventory host name; `leg` (ICMP) is the network name of the
address in `provsec_addresses` (`ansible_host` when it is not listed there); and the host's own labels
(agency, level, role, groups, site, wan_edge, wan_role) are the same as on its node job, so Alertmanager groups
a WAN cut's probe alerts with its host alerts and inhibits the hosts behind a dead gateway (alertmanager.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provsec.errors import InputError
from provsec.inventory.model import Inventory, IPAddress
from provsec.monitoring.targets import HostTarget, Targets

BLACKBOX_ADDRESS = "127.0.0.1:9115"  # --web.listen-address of the blackbox exporter (monitoring host)
ICMP_JOB = "blackbox_icmp"
TCP_JOB = "blackbox_tcp"
ICMP_MODULE = "icmp"  # module names of /etc/prometheus/blackbox.yml (role blackbox_exporter)
TCP_MODULE = "tcp_connect"
HTTPS_PORT = 443
ADDRESS_LEG = "ansible_host"  # `leg` of an address that provsec_addresses does not name


def _address(address: IPAddress, port: int | None = None) -> str:
    if port is None:
        return str(address)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _labels(host: HostTarget, **extra: str) -> dict[str, str]:
    labels = {"host": host.name, **extra}
    labels.update((k, v) for k, v in host.labels.items() if k != "instance")
    return labels


def _legs(inventory: Inventory, host: HostTarget) -> list[tuple[str, IPAddress]]:
    """Every address of the host with its network name, ansible_host first, each address once."""
    named = list(inventory.host(host.name).addresses)
    first = next(((n, a) for n, a in named if a == host.address), (ADDRESS_LEG, host.address))
    legs = [first]
    for name, address in named:
        if address not in (a for _, a in legs):
            legs.append((name, address))
    return legs


def icmp_targets(inventory: Inventory, targets: Targets) -> list[tuple[str, dict[str, str]]]:
    """(address, labels) of every ICMP probe: each leg of each gateway, each host behind a gateway."""
    probes: list[tuple[str, dict[str, str]]] = []
    for host in targets.hosts:
        role = host.labels.get("wan_role")
        if role == "edge":
            legs = _legs(inventory, host)
        elif role == "behind":
            legs = _legs(inventory, host)[:1]
        else:
            continue
        probes.extend((_address(address), _labels(host, leg=leg)) for leg, address in legs)
    return probes


def tcp_targets(targets: Targets, tcp_probes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, dict[str, str]]]:
    """(address:port, labels) of every TCP probe: 443 of web_servers, and the ports `tcp_probes` adds."""
    names = {h.name for h in targets.hosts}
    unknown = sorted(set(tcp_probes) - names)
    if unknown:
        raise InputError(f"TCP probes: no host {', '.join(map(repr, unknown))} among the scrape targets")
    probes: list[tuple[str, dict[str, str]]] = []
    for host in targets.hosts:
        ports = set(tcp_probes.get(host.name, ()))
        if ",web_servers," in host.labels["groups"]:
            ports.add(HTTPS_PORT)
        probes.extend((_address(host.address, port), _labels(host)) for port in sorted(ports))
    return probes


def check_tcp_probes(tcp_probes: Mapping[str, tuple[int, ...]]) -> None:
    for host, ports in tcp_probes.items():
        for port in ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise InputError(f"TCP probe of host {host!r}: {port!r} is not a TCP port (1-65535)")


def probe_job(name: str, module: str, probes: list[tuple[str, dict[str, str]]], exporter: str) -> dict[str, Any]:
    """A scrape job of the blackbox exporter: the target becomes `?target=` and `instance`; the exporter is
    the address scraped."""
    return {
        "job_name": name,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": [{"targets": [address], "labels": labels} for address, labels in probes],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ],
    }


def probe_jobs(
    inventory: Inventory, targets: Targets, exporter: str, tcp_probes: Mapping[str, tuple[int, ...]]
) -> list[dict[str, Any]]:
    """The probe jobs that have targets (a province without WAN gateways has no ICMP job)."""
    jobs = []
    icmp = icmp_targets(inventory, targets)
    if icmp:
        jobs.append(probe_job(ICMP_JOB, ICMP_MODULE, icmp, exporter))
    tcp = tcp_targets(targets, tcp_probes)
    if tcp:
        jobs.append(probe_job(TCP_JOB, TCP_MODULE, tcp, exporter))
    return jobs
