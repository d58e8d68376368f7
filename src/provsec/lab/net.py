"""The lab's network: bridges on the control node, one network namespace per host, veth pairs.

Everything created here carries the lab prefix, so `down` can find it even when the state file was
lost in a crash. Only the lab's own namespaces get addresses; the machine's own settings are not written.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

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


# Runs inside a host's namespace (`ip netns exec`), where /proc/sys/net is that namespace's own. "read" prints every
# readable setting under it as JSON (path under /proc/sys -> value); "restore" reads such a JSON on stdin, writes
# back each writable setting whose value differs now (twice: ip_forward, for one, rewrites the per-interface values
# written before it), and prints the settings it could not write, as JSON (path -> reason).
_SYSCTL_SCRIPT = r"""
import json, os, sys
def now():
    found = {}
    for top, _dirs, files in os.walk("/proc/sys/net"):
        for name in files:
            path = os.path.join(top, name)
            try:
                with open(path, encoding="ascii") as f:
                    found[path[len("/proc/sys/"):]] = f.read().strip()
            except (OSError, ValueError):
                pass
    return found
if sys.argv[1] == "read":
    json.dump(now(), sys.stdout)
    sys.exit(0)
want, failed = json.load(sys.stdin), {}
for _ in range(2):
    seen = now()
    for key, value in sorted(want.items()):
        path = "/proc/sys/" + key
        if key not in seen or seen[key] == value or not os.stat(path).st_mode & 0o222:
            continue
        try:
            with open(path, "w", encoding="ascii") as f:
                f.write(value)
            failed.pop(key, None)
        except OSError as exc:
            failed[key] = f"{value!r}: {exc.strerror}"
json.dump(failed, sys.stdout)
"""


def _in_netns(host: HostSpec, mode: str, stdin: str | None = None) -> Any:
    res = run(["ip", "netns", "exec", host.netns, sys.executable, "-c", _SYSCTL_SCRIPT, mode],
              input_text=stdin, timeout=60)
    return json.loads(res.stdout)


def save_net_settings(host: HostSpec, path: Path) -> None:
    """Record the net.* sysctls of host's new namespace (as created, before the host boots), for reset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_in_netns(host, "read"), indent=0, sort_keys=True) + "\n")


def recorded_net_settings(host: HostSpec, path: Path) -> str:
    """The record save_net_settings wrote for host (JSON text), checked before a reset stops the host."""
    try:
        recorded = path.read_text(encoding="ascii")
        json.loads(recorded)
    except (OSError, ValueError) as exc:
        # a lab brought up by a provsec older than the record has none
        raise ProvsecError(f"{host.name}: cannot read the record of its namespace's first settings {path}: {exc}; "
                           "bring the lab down and up again") from exc
    return recorded


def restore_net_settings(host: HostSpec, recorded: str) -> None:
    """Put back the net.* sysctls of a record (recorded_net_settings); the host must be stopped.

    A reset gives the host a fresh overlay but keeps its namespace, and net.* sysctls belong to the namespace: without
    this, the values a hardening run set (no redirects, rp_filter, no router advertisements, ...) would outlive the
    reinstall, and a "fresh" host would already pass those controls (seen: Lynis KRNL-6000 scored 24 of 33 on a db1
    reset after a hardening run, 15 on a db1 in a new namespace)."""
    failed: dict[str, str] = _in_netns(host, "restore", recorded)
    if failed:
        raise ProvsecError(f"{host.name}: could not put back these settings of its namespace {host.netns}: "
                           + "; ".join(f"{k} = {v}" for k, v in sorted(failed.items())))


def delete_all() -> tuple[int, int]:
    """Delete every lab namespace and link (veths die with their namespace). Returns counts."""
    namespaces = lab_netns()
    for name in namespaces:
        _ip("netns", "del", name, check=False)
    links = lab_links()
    for name in links:
        _ip("link", "del", name, check=False)
    return len(namespaces), len(links)
