"""`provsec lab up|down|status|reset`: real Debian hosts for tests and the demo.

Each host boots with systemd-nspawn on an overlay of a cached debootstrap base, inside its own network
namespace joined to a bridge on 198.18.0.0/15. `down` removes every process, namespace, link and file the
lab made, also after a crash half-way through `up`; `up` first clears such leftovers.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from provsec.errors import CommandError, ProvsecError
from provsec.lab import aptproxy, base, hosts, inventory, net
from provsec.lab.topology import ADMIN_USER, PREFIX, HostSpec, Profile, profile
from provsec.proc import run

LAB_ROOT = Path(os.environ.get("PROVSEC_LAB_ROOT", "/var/lib/provsec/lab"))
NSPAWN_RUN = Path("/run/systemd/nspawn/propagate")
REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    aptproxy.ACNG: "apt-cacher-ng",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "chroot": "coreutils",
}
BOOT_TIMEOUT_S = 90.0
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


@dataclass
class Paths:
    root: Path = LAB_ROOT

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    def upper(self, host: str) -> Path:
        return self.root / "hosts" / host / "upper"

    def hostkeys(self, host: str) -> Path:
        return self.root / "hostkeys" / host

    def log(self, host: str) -> Path:
        return self.root / "logs" / f"{host}.log"

    def net_settings(self, host: str) -> Path:
        return self.root / "hosts" / host / "net-sysctl.json"


@dataclass
class LabState:
    profile: str
    release: str
    base: str
    inventory_dir: str
    pids: dict[str, int] = field(default_factory=dict)
    machine_ids: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        tmp.replace(path)


@dataclass(frozen=True)
class DownReport:
    processes: int
    namespaces: int
    links: int

    def __str__(self) -> str:
        return (f"stopped {self.processes} host process(es), removed {self.namespaces} namespace(s) "
                f"and {self.links} link(s)")


def preflight(prof: Profile) -> None:
    """Refuse to start, with what to do, when this machine cannot run the lab safely."""
    if os.geteuid() != 0:
        raise ProvsecError("the lab needs root (network namespaces, bridges, nspawn): run it with sudo")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise ProvsecError(f"missing tools; install them with: apt-get install {' '.join(missing)} "
                           "(or run scripts/bootstrap)")
    net.check_overlap(prof)


@contextmanager
def _locked(paths: Paths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (paths.root / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProvsecError(f"another `provsec lab` command holds {paths.root / '.lock'}; wait for it") from None
        yield


class Lab:
    """The lab on this machine. One at a time: a second `up` with other settings replaces the first."""

    def __init__(self, root: Path = LAB_ROOT, log: Log = _stderr) -> None:
        self.paths = Paths(root)
        self.log = log

    # ---- queries -------------------------------------------------------------------------------
    def state(self) -> LabState | None:
        return LabState.load(self.paths.state)

    def profile(self) -> Profile:
        st = self.state()
        if st is None:
            raise ProvsecError("no lab is up: run `provsec lab up` first")
        return profile(st.profile)

    def status(self) -> dict[str, object]:
        st = self.state()
        running = hosts.nspawn_pids()
        if st is None:
            return {"up": False, "leftover_processes": len(running), "namespaces": net.lab_netns()}
        prof = profile(st.profile)
        rows = []
        for h in prof.hosts:
            pid = st.pids.get(h.name, 0)
            rows.append({
                "host": h.name, "address": h.address, "groups": list(h.groups),
                "running": pid in running, "ssh": hosts.port_open(h.address, timeout=0.3), "pid": pid,
            })
        return {"up": True, "profile": st.profile, "release": st.release, "inventory": st.inventory_dir,
                "started_at": st.started_at, "hosts": rows}

    # ---- up ------------------------------------------------------------------------------------
    def up(self, profile_name: str = "minimal", release: str = "bookworm",
           inventory_dir: Path = Path("inventory/lab")) -> LabState:
        prof = profile(profile_name)
        preflight(prof)
        inventory_dir = inventory_dir.resolve()
        with _locked(self.paths):
            current = self.state()
            if (current is not None and current.profile == prof.name and current.release == release
                    and self._healthy(prof, current)):
                self.log(f"{prof.name} lab ({release}) is already up; nothing to do")
                if Path(current.inventory_dir) != inventory_dir:
                    # another checkout asks for the running lab: its inventory moves there (and `down` removes it
                    # there); the old checkout gets it back with its own `up`
                    inventory.remove(Path(current.inventory_dir))
                    current.inventory_dir = str(inventory_dir)
                    current.save(self.paths.state)
                    self.log(f"inventory moved to {inventory_dir}")
                inventory.write(prof, inventory_dir, self.paths.key, self.paths.known_hosts)
                return current
            self._teardown(quiet=True)
            started = time.monotonic()
            base_dir = base.ensure_base(release, self.log)
            state = LabState(prof.name, release, str(base_dir), str(inventory_dir), started_at=time.time())
            state.save(self.paths.state)  # from here on, `down` knows what to remove
            self._make_admin_key()
            net.create_bridges(prof)
            aptproxy.start(self.paths.root)
            with ThreadPoolExecutor(max_workers=len(prof.hosts)) as pool:
                for h, mid in zip(prof.hosts,
                                  pool.map(lambda h: self._prepare(prof, h, base_dir), prof.hosts), strict=True):
                    state.machine_ids[h.name] = mid
            self._write_known_hosts(prof)
            for h in prof.hosts:
                state.pids[h.name] = hosts.start(h, base_dir, self.paths.upper(h.name),
                                                 state.machine_ids[h.name], self.paths.log(h.name))
            state.save(self.paths.state)
            self._wait_ready(prof, state)
            inventory.write(prof, inventory_dir, self.paths.key, self.paths.known_hosts)
            self.log(f"{prof.name} lab up: {len(prof.hosts)} host(s) reachable over SSH in "
                     f"{time.monotonic() - started:.1f} s; inventory {inventory_dir / 'hosts.yml'}")
            return state

    def _healthy(self, prof: Profile, st: LabState) -> bool:
        running = hosts.nspawn_pids()
        return all(st.pids.get(h.name) in running and hosts.port_open(h.address) for h in prof.hosts)

    def _make_admin_key(self) -> None:
        key = self.paths.key
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for p in (key, key.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{ADMIN_USER}@provsec-lab", "-f", key])

    def _prepare(self, prof: Profile, h: HostSpec, base_dir: Path) -> str:
        hosts.generate_host_keys(self.paths.hostkeys(h.name), h.name)
        self.paths.log(h.name).parent.mkdir(parents=True, exist_ok=True)
        mid = hosts.prepare_upper(prof, h, base=base_dir, upper=self.paths.upper(h.name),
                                  keydir=self.paths.hostkeys(h.name),
                                  admin_pub=self.paths.key.with_suffix(".pub").read_text())
        net.create_host_net(prof, h)
        net.save_net_settings(h, self.paths.net_settings(h.name))
        return mid

    def _write_known_hosts(self, prof: Profile) -> None:
        lines = [line for h in prof.hosts for line in hosts.known_hosts_lines(self.paths.hostkeys(h.name), h)]
        self.paths.known_hosts.write_text("\n".join(lines) + "\n")

    def _wait_ready(self, prof: Profile, st: LabState) -> None:
        def wait(h: HostSpec) -> None:
            deadline = time.monotonic() + BOOT_TIMEOUT_S
            recoveries = 0
            while time.monotonic() < deadline:
                if not hosts.alive(st.pids[h.name]):
                    raise ProvsecError(f"{h.name}: systemd-nspawn exited during boot; see {self.paths.log(h.name)}")
                if hosts.port_open(h.address):
                    # Handed over only when the boot transaction is over: a playbook's daemon-reload during boot
                    # makes systemd 252 fail systemd-update-utmp-runlevel (systemd issue 27167, fixed in 254).
                    left = max(10.0, deadline - time.monotonic())
                    res = self.ssh(h.name, "systemctl is-system-running --wait", timeout=left)
                    status = res.stdout.strip()
                    if status == "running":
                        return
                    restarted: list[str] = []
                    if recoveries < 3:  # bounded: a unit that keeps failing is left to the boot timeout
                        restarted = hosts.restart_units_failed_at_cgroup_step(st.pids[h.name])
                        for unit in restarted:
                            recoveries += 1
                            self.log(f"{h.name}: {unit} failed at its CGROUP step during boot; started it again")
                    if status == "degraded" and not restarted:
                        failed = self.ssh(h.name, "systemctl --failed --no-legend --plain", timeout=20).stdout
                        units = [line.split()[0] for line in failed.splitlines() if line.strip()]
                        self.log(f"{h.name}: booted degraded, failed units: {', '.join(units) or 'none listed'}")
                        return
                time.sleep(0.3)
            raise ProvsecError(f"{h.name}: no SSH login or boot not finished after {BOOT_TIMEOUT_S:.0f} s; "
                              f"see {self.paths.log(h.name)}")

        with ThreadPoolExecutor(max_workers=len(prof.hosts)) as pool:
            list(pool.map(wait, prof.hosts))

    # ---- use -----------------------------------------------------------------------------------
    def ssh_argv(self, host: str) -> list[str]:
        h = self.profile().host(host)
        return ["ssh", "-i", str(self.paths.key), "-o", f"UserKnownHostsFile={self.paths.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"{ADMIN_USER}@{h.address}"]

    def ssh(self, host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run command on host as the admin user (not root). Never raises on a non-zero exit."""
        try:
            return run([*self.ssh_argv(host), command], check=False, timeout=timeout)
        except CommandError as exc:
            return subprocess.CompletedProcess([host, command], 255, "", str(exc))

    def reset(self, host: str) -> None:
        """Put host back to the base state (fresh overlay, same identity) and boot it again."""
        with _locked(self.paths):
            st = self.state()
            if st is None:
                raise ProvsecError("no lab is up: run `provsec lab up` first")
            prof = profile(st.profile)
            h = prof.host(host)
            recorded = net.recorded_net_settings(h, self.paths.net_settings(h.name))  # before the host is stopped
            hosts.stop_pids(list(hosts.nspawn_pids(hosts.machine_name(h.name))))
            net.clear_host_net(h)  # a firewall lives in the namespace, which the reset keeps
            net.restore_net_settings(h, recorded)  # so do its net.* sysctls
            base_dir = Path(st.base)
            upper = self.paths.upper(h.name)
            for work in upper.parent.glob(".#*"):
                shutil.rmtree(work, ignore_errors=True)
            hosts.prepare_upper(prof, h, base=base_dir, upper=upper, keydir=self.paths.hostkeys(h.name),
                                admin_pub=self.paths.key.with_suffix(".pub").read_text())
            # the machine-id stays: to the rest of the lab this is the same server, reinstalled
            (upper / "etc" / "machine-id").write_text(st.machine_ids[h.name] + "\n")
            st.pids[h.name] = hosts.start(h, base_dir, upper, st.machine_ids[h.name], self.paths.log(h.name))
            st.save(self.paths.state)
            one = Profile(prof.name, prof.networks, (h,))
            self._wait_ready(one, st)

    # ---- down ----------------------------------------------------------------------------------
    def down(self) -> DownReport:
        if os.geteuid() != 0:
            raise ProvsecError("the lab needs root to remove namespaces and links: run it with sudo")
        with _locked(self.paths):
            return self._teardown(quiet=False)

    def _teardown(self, quiet: bool) -> DownReport:
        st = self.state()
        pids = list(hosts.nspawn_pids())
        hosts.stop_pids(pids)
        aptproxy.stop(self.paths.root)
        namespaces, links = net.delete_all()
        for leftover in NSPAWN_RUN.glob(f"{PREFIX}-*") if NSPAWN_RUN.exists() else []:
            shutil.rmtree(leftover, ignore_errors=True)
        for sub in ("hosts", "logs", "hostkeys", "ssh"):
            shutil.rmtree(self.paths.root / sub, ignore_errors=True)
        if st is not None:
            inventory.remove(Path(st.inventory_dir))
        self.paths.state.unlink(missing_ok=True)
        report = DownReport(len(pids), namespaces, links)
        if quiet and (pids or namespaces or links):
            self.log(f"cleared leftovers of an earlier lab: {report}")
        return report
