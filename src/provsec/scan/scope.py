"""The scan scope: every target is resolved to addresses and checked against the ranges the inventory declares
(provsec_networks) before any tool is started. The inventory is the only authority: a command-line target
outside the declared ranges is refused, whatever the command line says.

Loopback (127.0.0.0/8, ::1) is always in scope: a packet to it never leaves the scanning host, and the
scanner's own services are part of what it must audit. Names are never resolved through DNS (the answer could
point anywhere, and the query itself is a packet): a name is an inventory host, or a role group."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from provsec.errors import InputError
from provsec.inventory.model import ROLE_GROUPS, Inventory, IPAddress, IPNetwork

LOOPBACK: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
MAX_ADDRESSES = 65536  # a /16 at most per range: a broader sweep is a mistake or belongs in several runs


@dataclass(frozen=True)
class Target:
    spec: str  # as given: an address, a range, a host or a group name
    network: IPNetwork  # a single address is a /32 (/128)
    name: str  # the inventory host, or the address or range itself

    @property
    def address(self) -> IPAddress:
        return self.network.network_address


def allowed(inventory: Inventory) -> tuple[IPNetwork, ...]:
    return (*inventory.scan_scope(), *LOOPBACK)


def describe_scope(inventory: Inventory) -> str:
    declared = ", ".join(str(n) for n in inventory.scan_scope()) or "none"
    return f"{declared} (provsec_networks of {inventory.path}) and loopback"


def check(inventory: Inventory, target: Target) -> Target:
    """The target itself when it lies wholly inside the scope; else an InputError naming it and the scope."""
    net = target.network
    if net.num_addresses > MAX_ADDRESSES:
        raise InputError(f"target {target.spec!r}: {net} has {net.num_addresses} addresses; scan at most "
                         f"{MAX_ADDRESSES} per range (a /16), in several runs if needed")
    inside = any(net.version == s.version and net.subnet_of(s) for s in allowed(inventory))  # type: ignore[arg-type]
    if not inside:
        shown = str(net.network_address) if net.num_addresses == 1 else str(net)
        what = target.spec if target.spec in (shown, str(net)) else f"{target.spec} ({shown})"
        raise InputError(f"target {what} is outside the scan scope: {describe_scope(inventory)}; "
                         "refused before anything was sent (declare the range in provsec_networks first)")
    return target


def resolve(inventory: Inventory, specs: list[str]) -> list[Target]:
    """Targets for specs (addresses, CIDR ranges, inventory hosts, role groups); every inventory host when
    specs is empty. Each is scope-checked; duplicates are dropped, the order kept."""
    targets: list[Target] = []
    if not specs:
        targets = [_host_target(inventory, h.name, h.name) for h in inventory.hosts]
    for spec in specs:
        targets.extend(_resolve_one(inventory, spec))
    seen: set[IPNetwork] = set()
    result = []
    for t in targets:
        check(inventory, t)
        if t.network not in seen:
            seen.add(t.network)
            result.append(t)
    if not result:
        raise InputError(f"{inventory.path}: no target to scan")
    return result


def _resolve_one(inventory: Inventory, spec: str) -> list[Target]:
    text = spec.strip()
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=True)
        else:
            net = ipaddress.ip_network(ipaddress.ip_address(text))
    except ValueError as exc:
        if "/" in text:
            raise InputError(f"target {spec!r}: not a network range ({exc})") from None
    else:
        return [Target(spec, net, _name_of(inventory, net))]
    if any(h.name == text for h in inventory.hosts):
        return [_host_target(inventory, text, spec)]
    if text in ROLE_GROUPS:
        members = [h.name for h in inventory.hosts if text in h.groups]
        if not members:
            raise InputError(f"target {spec!r}: role group with no host in {inventory.path}/hosts.yml")
        return [_host_target(inventory, m, spec) for m in members]
    raise InputError(f"target {spec!r}: not an address, a range (CIDR), a host or a role group of "
                     f"{inventory.path}/hosts.yml; names are never looked up in DNS")


def _host_target(inventory: Inventory, name: str, spec: str) -> Target:
    return Target(spec, ipaddress.ip_network(inventory.host(name).ansible_host), name)


def _name_of(inventory: Inventory, net: IPNetwork) -> str:
    """The inventory host whose ansible_host a single address is; else the address or range as text."""
    if net.num_addresses == 1:
        for h in inventory.hosts:
            if h.ansible_host == net.network_address:
                return h.name
        return str(net.network_address)
    return str(net)


def host_name(inventory: Inventory, address: str) -> str:
    return _name_of(inventory, ipaddress.ip_network(address))


def parse_endpoint(inventory: Inventory, spec: str, default_port: int) -> tuple[Target, int]:
    """HOST, HOST:PORT or [V6]:PORT (HOST: an address or an inventory host), scope-checked."""
    text, port = spec.strip(), default_port
    if text.startswith("["):
        addr, _, rest = text[1:].partition("]")
        text = addr
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"target {spec!r}: write an IPv6 endpoint as [ADDRESS]:PORT")
            port = _port(spec, rest[1:])
    elif text.count(":") == 1:
        text, _, raw = text.partition(":")
        port = _port(spec, raw)
    if "/" in text:
        raise InputError(f"target {spec!r}: one host, not a range")
    targets = _resolve_one(inventory, text)
    if len(targets) != 1:
        raise InputError(f"target {spec!r}: one host, not a group")
    target = check(inventory, Target(spec, targets[0].network, targets[0].name))
    return target, port


def _port(spec: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise InputError(f"target {spec!r}: port {raw!r} is not a number from 1 to 65535")
    return int(raw)
