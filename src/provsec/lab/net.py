"""The lab's network: bridges on the control node, one network namespace per host, veth pairs.

Everything created here carries the lab prefix, so `down` can find it even when the state file was
lost in a crash. Only the lab's own namespaces get addresses; the machine's own settings are not written.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from provsec.errors import ProvsecError
from provsec.lab.topology import PREFIX, HostSpec, Profile
from provsec.proc import run

NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> str:
    return run(["ip", *args], check=check, timeout=30).stdout


def routes_json(table: str = "all") -> list[dict[str, object]]:
    out = _ip("-j", "-4", "route", "show", "table", table)
    data = json.loads(out or "[]")
    return data if isinstance(data, list) else []


def lab_links() -> list[str]:
    """Names of links on the control node that belong to a lab (ours or a killed run's)."""
    data = json.loads(_ip("-j", "link", "show") or "[]")
    names = [str(d.get("ifname", "")) for d in data if isinstance(d, dict)]
    return [n for n in names if n.startswith(f"{PREFIX}-") or n.startswith(f"{PREFIX}br-")]


def lab_netns() -> list[str]:
    out = _ip("netns", "list", check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{PREFIX}-")]


def check_overlap(prof: Profile) -> None:
    """Refuse when a route that is not the lab's own overlaps the lab's subnets."""
    ours = {n.bridge for n in prof.networks}
    lab = [ipaddress.ip_network(n.cidr) for n in prof.networks]
    for route in routes_json():
        dst = str(route.get("dst", ""))
        dev = str(route.get("dev", ""))
        if dst in ("", "default") or dev in ours or dev.startswith(f"{PREFIX}-"):
            continue
        if route.get("type") in ("local", "broadcast"):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        for mine in lab:
            if net.overlaps(mine):
                raise ProvsecError(
                    f"route {dst} on {dev or '?'} overlaps the lab subnet {mine}; the lab refuses to start "
                    "on a machine where its addresses are already in use (remove that route or that network)"
                )


def create_bridges(prof: Profile) -> None:
    for net in prof.networks:
        _ip("link", "add", net.bridge, "type", "bridge")
        if net.control_addr:
            prefix = ipaddress.ip_network(net.cidr).prefixlen
            _ip("addr", "add", f"{net.control_addr}/{prefix}", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
    for dst, via in prof.control_routes:
        _ip("route", "replace", dst, "via", via)


def create_host_net(prof: Profile, host: HostSpec) -> None:
    """A namespace for host with one veth per network; addresses and routes inside it only."""
    _ip("netns", "add", host.netns)
    ns = ["-n", host.netns]
    _ip(*ns, "link", "set", "lo", "up")
    for index, nic in enumerate(host.nics):
        net = prof.network(nic.network)
        inner = f"eth{index}"
        _ip("link", "add", host.veth(index), "type", "veth", "peer", "name", inner, "netns", host.netns)
        _ip("link", "set", host.veth(index), "master", net.bridge, "up")
        prefix = ipaddress.ip_network(net.cidr).prefixlen
        _ip(*ns, "addr", "add", f"{nic.address}/{prefix}", "dev", inner)
        _ip(*ns, "link", "set", inner, "up")
    for dst, via in host.routes:
        _ip(*ns, "route", "add", dst, "via", via)
    if host.forwarding:
        # Inside the host's own namespace: the machine's own ip_forward is not touched.
        run(["ip", "netns", "exec", host.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], timeout=30)


def clear_host_net(host: HostSpec) -> None:
    """Empty the nftables ruleset of host's namespace (the host must be stopped).

    A reset gives the host a fresh overlay but keeps its namespace, and a ruleset lives in the namespace, not in
    the files: without this, the firewall a test loaded (default deny, say) would outlive the reinstall, and a later
    test would find ports filtered on a host that has no firewall installed (seen in CI: the control node's
    requests to bak1:9100 timed out after the hardening tests, while mon1's, which that firewall allowed, went
    through)."""
    run(["ip", "netns", "exec", host.netns, "nft", "flush", "ruleset"], timeout=30)


def delete_all() -> tuple[int, int]:
    """Delete every lab namespace and link (veths die with their namespace). Returns counts."""
    namespaces = lab_netns()
    for name in namespaces:
        _ip("netns", "del", name, check=False)
    links = lab_links()
    for name in links:
        _ip("link", "del", name, check=False)
    return len(namespaces), len(links)
