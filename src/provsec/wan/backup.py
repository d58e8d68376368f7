"""One backup run: for each WAN edge, fetch, clean, compare, commit, judge against the change windows.

Devices are the inventory's role group `wan_edge`. Per device, these Ansible variables are read as Ansible
would (parse_hostvars: hosts.yml vars, group_vars, the host's entries in hosts.yml, host_vars; the later wins):
`provsec_wan_profile` (linux | cisco_ios | routeros, default linux), `provsec_wan_user` (default
provsec-wan), `provsec_wan_port` (default 22) and `provsec_wan_change_windows` (a list, see windows.py).

Each device ends in its own state, ok or failed with the reason: one device failing never stops the others,
and never writes or commits anything for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.errors import InputError, ProvsecError
from provsec.inventory.model import Inventory
from provsec.wan import devices, metrics, windows
from provsec.wan.parse_hostvars import host_vars
from provsec.wan.store import Store

GROUP = "wan_edge"
DEFAULT_USER = "provsec-wan"
VARS = ("provsec_wan_profile", "provsec_wan_user", "provsec_wan_port", "provsec_wan_change_windows")


@dataclass(frozen=True)
class Device:
    name: str
    address: str
    port: int
    user: str
    profile: str
    windows: tuple[windows.Window, ...]


@dataclass(frozen=True)
class DeviceResult:
    device: str
    state: str  # ok | failed
    reason: str = ""
    commit: str | None = None  # a new version was stored
    first: bool = False  # the first version of the device
    outside_window: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "state": self.state, "reason": self.reason, "commit": self.commit,
                "changed": self.commit is not None and not self.first, "first_version": self.first,
                "outside_window": self.outside_window}


def wan_devices(inventory: Inventory, names: Sequence[str] = (),
                window_file: tuple[tuple[windows.Window, ...] | None, dict[str, tuple[windows.Window, ...]]]
                | None = None) -> list[Device]:
    """The wan_edge hosts (or the named ones, which must be wan_edge hosts), with their backup settings."""
    edges = [h for h in inventory.hosts if GROUP in h.groups]
    unknown = [n for n in names if n not in {h.name for h in edges}]
    if unknown:
        raise InputError(f"{inventory.path}: {', '.join(unknown)}: not in the role group {GROUP} "
                         f"(WAN edges: {', '.join(h.name for h in edges) or 'none'})")
    if names:
        edges = [h for h in edges if h.name in names]
    root = inventory.path
    every, per_device = window_file if window_file is not None else (None, {})
    strays = sorted(set(per_device) - {h.name for h in inventory.hosts if GROUP in h.groups})
    if strays:
        raise InputError(f"--change-windows: devices.{strays[0]}: not a host of the role group {GROUP} in "
                         f"{inventory.path}")
    out = []
    for host in edges:
        merged = {name: value for name, (value, _) in host_vars(root, host.name, host.groups, VARS).items()}
        where = f"{root}: {host.name}"
        profile = merged.get("provsec_wan_profile", devices.DEFAULT_PROFILE)
        if profile not in devices.PROFILES:
            raise InputError(f"{where}: provsec_wan_profile {profile!r}: must be one of {', '.join(devices.PROFILES)}")
        port = merged.get("provsec_wan_port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"{where}: provsec_wan_port {port!r}: must be a port number")
        user = merged.get("provsec_wan_user", DEFAULT_USER)
        if not isinstance(user, str) or not user.strip():
            raise InputError(f"{where}: provsec_wan_user {user!r}: must be an account name")
        if host.name in per_device:
            wins = per_device[host.name]
        elif every is not None:
            wins = every
        else:
            wins = windows.parse_list(merged.get("provsec_wan_change_windows", []),
                                      f"{where}: provsec_wan_change_windows")
        out.append(Device(host.name, str(host.ansible_host), port, user.strip(), profile, wins))
    return out


Fetcher = Callable[[Device], list[tuple[str, str]]]


def backup_device(store: Store, device: Device, fetch: Fetcher, *, key: bytes, textfile: Path | None,
                  now: Callable[[], dt.datetime]) -> DeviceResult:
    """Fetch and store one device; its metrics updated; never raises a ProvsecError."""
    prof = devices.profile(device.profile)
    try:
        outputs = fetch(device)
        for command, text in outputs:
            devices.check_output(prof, device.name, command, text)
        text = devices.clean(prof, outputs, key)
    except ProvsecError as exc:
        when, reason = now().timestamp(), str(exc)
        with store.locked():
            metrics.update(store.path, textfile, lambda st: metrics.record_failure(st, device.name, when, reason))
        return DeviceResult(device.name, "failed", reason)
    fetched = now()
    with store.locked():
        before = metrics.load(store.path / metrics.STATE_FILE).devices.get(device.name)
        try:
            commit = store.save(device.name, text, fetched)
        except ProvsecError as exc:
            reason = f"{device.name}: cannot store: {exc}"
            metrics.update(store.path, textfile,
                           lambda st: metrics.record_failure(st, device.name, fetched.timestamp(), reason))
            return DeviceResult(device.name, "failed", reason)
        first = commit is not None and len(store.history(device.name)) == 1
        changed = commit is not None and not first
        outside = False
        if changed:
            since = (dt.datetime.fromtimestamp(before.last_success, dt.UTC) if before and before.last_success
                     else fetched)
            outside = not windows.overlaps(device.windows, since, fetched)
        metrics.update(store.path, textfile, lambda st: metrics.record_success(
            st, device.name, fetched.timestamp(), changed=changed, outside=outside))
    return DeviceResult(device.name, "ok", "", commit, first, outside)


def run(store: Store, devs: Sequence[Device], fetch: Fetcher, *, key: bytes, textfile: Path | None,
        now: Callable[[], dt.datetime] | None = None, all_devices: Sequence[str] | None = None
        ) -> list[DeviceResult]:
    """Back up each device in turn; all_devices (the group's) bounds the metrics' series."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    store.init()
    results = [backup_device(store, d, fetch, key=key, textfile=textfile, now=clock) for d in devs]
    if all_devices is not None:
        with store.locked():
            metrics.update(store.path, textfile, lambda st: metrics.keep_only(st, all_devices))
    return results
