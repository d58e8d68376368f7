"""What Prometheus scrapes, with the labels Alertmanager routes, groups and inhibits on, from the inventory.

Every target of a host carries the same labels (values from the inventory):

- `instance`: the inventory host name (`db1`), the same for every job of the host, so the alerts of its
  node_exporter and of its provsec exporter name one host, and the runbooks' `ssh {{ $labels.instance }}` works;
- `agency`: code of the agency operating the host (`provsec_agency`);
- `level`: the host's effective security level, "1" to "5";
- `role`: the host's main role group, the first it is in of wan_edge, monitoring, backup_repo, db_servers,
  web_servers, agency_servers, dc_servers;
- `groups`: every role group of the host, comma-separated with a comma at each end
  (`,dc_servers,monitoring,`), so `groups=~".*,db_servers,.*"` matches;
- `site`: the failure domain: `dc` for hosts reached directly, `wan:<gateway>` for a WAN gateway and the
  hosts behind it (`agency:<code>` for a host in an agency range that no gateway serves);
- `wan_edge`: only on a WAN gateway and the hosts behind it: the gateway's host name;
- `wan_role`: with `wan_edge`: `edge` on the gateway, `behind` on the hosts behind it.

Alertmanager groups by `[alertname, site]` (a WAN cut is one group, one incident) and inhibits the alerts of
`wan_role="behind"` hosts while `ProvsecHostDown` fires for a `wan_role="edge"` host with the same `wan_edge`.

Which gateway a host sits behind is not in the inventory format: it is derived here. A host that is not a
gateway and whose `ansible_host` lies in `provsec_networks.agency_ranges` sits behind the `wan_edge` host that
has an address in the same agency range; with several such gateways the choice must be given explicitly
(`wan_edges`, the CLI's `--wan-edge HOST=GATEWAY`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from provsec.errors import InputError
from provsec.inventory.model import MAX_LEVEL, MIN_LEVEL, Host, Inventory, IPAddress, IPNetwork

# The main role of a host: the first of these groups it is in (the most specific first).
ROLE_ORDER = (
    "wan_edge",
    "monitoring",
    "backup_repo",
    "db_servers",
    "web_servers",
    "agency_servers",
    "dc_servers",
)
SITE_DC = "dc"


@dataclass(frozen=True)
class HostTarget:
    """One inventory host as Prometheus sees it: its address and its labels."""

    name: str
    address: IPAddress
    labels: Mapping[str, str]

    def target(self, port: int) -> str:
        """`address:port`, with brackets around an IPv6 address."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{port}"


@dataclass(frozen=True)
class Targets:
    hosts: tuple[HostTarget, ...]
    warnings: tuple[str, ...]

    def get(self, name: str) -> HostTarget:
        for host in self.hosts:
            if host.name == name:
                return host
        raise InputError(f"no host {name!r} among the scrape targets")


def _in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
    return tuple(net for net in networks if address.version == net.version and address in net)


def _check_host(inventory: Inventory, host: Host) -> None:
    """What the loader guarantees, checked again for an Inventory built elsewhere (a filter plugin)."""
    where = f"{inventory.path}: host {host.name!r}"
    if not isinstance(host.ansible_host, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise InputError(f"{where}: ansible_host: missing or not an IP address (got {host.ansible_host!r})")
    if isinstance(host.level, bool) or not isinstance(host.level, int) or not MIN_LEVEL <= host.level <= MAX_LEVEL:
        raise InputError(
            f"{where}: level: must be an integer from {MIN_LEVEL} to {MAX_LEVEL} "
            f"(cấp độ, Nghị định 85/2016/NĐ-CP), got {host.level!r}"
        )
    if not host.agency:
        raise InputError(f"{where}: provsec_agency: missing")


def _explicit_edges(inventory: Inventory, wan_edges: Mapping[str, str]) -> dict[str, str]:
    names = {h.name: h for h in inventory.hosts}
    checked: dict[str, str] = {}
    for host, gateway in wan_edges.items():
        key = f"{inventory.path}: wan_edge of host {host!r}"
        if host not in names:
            raise InputError(f"{key}: no host {host!r} in hosts.yml")
        if gateway not in names:
            raise InputError(f"{key}: unknown gateway {gateway!r}: no such host in hosts.yml")
        if "wan_edge" not in names[gateway].groups:
            raise InputError(f"{key}: {gateway!r} is not in the role group wan_edge")
        if "wan_edge" in names[host].groups:
            raise InputError(f"{key}: {host!r} is itself a WAN gateway (role group wan_edge)")
        checked[host] = gateway
    return checked


def _derived_edge(inventory: Inventory, host: Host, gateways: tuple[Host, ...]) -> str | None:
    """The gateway a host sits behind, from the agency ranges; None for a host reached directly."""
    ranges = _in_any(host.ansible_host, inventory.networks.agency_ranges)
    if not ranges:
        return None
    candidates = [
        g.name for g in gateways if any(_in_any(addr, ranges) for addr in g.all_addresses())
    ]
    if len(candidates) > 1:
        raise InputError(
            f"{inventory.path}: host {host.name!r} ({host.ansible_host}) lies in an agency range served by "
            f"several WAN gateways ({', '.join(candidates)}): say which one it sits behind "
            f"(--wan-edge {host.name}=GATEWAY)"
        )
    return candidates[0] if candidates else None


def build_targets(inventory: Inventory, wan_edges: Mapping[str, str] | None = None) -> Targets:
    """Every inventory host with its labels. Raises InputError naming the host or key that is wrong."""
    for host in inventory.hosts:
        _check_host(inventory, host)
    explicit = _explicit_edges(inventory, wan_edges or {})
    gateways = tuple(h for h in inventory.hosts if "wan_edge" in h.groups)
    warnings: list[str] = []
    targets: list[HostTarget] = []
    for host in inventory.hosts:
        labels: dict[str, str] = {
            "instance": host.name,
            "agency": host.agency,
            "level": str(host.level),
            "role": next(g for g in (*ROLE_ORDER, *host.groups) if g in host.groups),
            "groups": "," + ",".join(host.groups) + ",",
            "site": SITE_DC,
        }
        if host in gateways:
            labels.update(site=f"wan:{host.name}", wan_edge=host.name, wan_role="edge")
        else:
            edge = explicit.get(host.name) or _derived_edge(inventory, host, gateways)
            if edge is not None:
                labels.update(site=f"wan:{edge}", wan_edge=edge, wan_role="behind")
            elif _in_any(host.ansible_host, inventory.networks.agency_ranges):
                labels["site"] = f"agency:{host.agency}"
                warnings.append(
                    f"{inventory.path}: host {host.name!r} ({host.ansible_host}) lies in an agency range but no "
                    "wan_edge host has an address there: its alerts are not inhibited when the WAN is cut "
                    f"(give --wan-edge {host.name}=GATEWAY)"
                )
        targets.append(HostTarget(host.name, host.ansible_host, labels))
    return Targets(tuple(targets), tuple(warnings))
