"""One lab host: its overlay upper layer, its identity (machine-id, SSH host keys) and its nspawn process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from provsec.errors import CommandError
from provsec.lab.topology import ADMIN_USER, CONTROL_ADDR, DOMAIN, PREFIX, HostSpec, Profile
from provsec.proc import run

HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
NSPAWN = "systemd-nspawn"


def machine_name(host: str) -> str:
    return f"{PREFIX}-{host}"


def generate_host_keys(keydir: Path, host: str) -> None:
    keydir.mkdir(parents=True, exist_ok=True)
    for kind in HOST_KEY_TYPES:
        key = keydir / f"ssh_host_{kind}_key"
        if not key.exists():
            run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{host}", "-f", key], timeout=60)


def known_hosts_lines(keydir: Path, host: HostSpec) -> list[str]:
    names = ",".join([host.name, f"{host.name}.{DOMAIN}", *(n.address for n in host.nics)])
    lines = []
    for kind in HOST_KEY_TYPES:
        kind_key, blob = (keydir / f"ssh_host_{kind}_key.pub").read_text().split()[:2]
        lines.append(f"{names} {kind_key} {blob}")
    return lines


def _passwd_ids(base: Path, user: str) -> tuple[int, int]:
    for line in (base / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise CommandError(f"{base}/etc/passwd: no user {user!r}; rebuild the base (remove {base})")


def _mkdirs_like(base: Path, upper: Path, rel: str) -> Path:
    """Create upper/rel with the owner and mode its lower twin has (overlayfs shows the upper's)."""
    path = upper
    lower = base
    for part in Path(rel).parts:
        path, lower = path / part, lower / part
        if not path.exists():
            path.mkdir()
            if lower.is_dir():
                st = lower.stat()
                os.chown(path, st.st_uid, st.st_gid)
                path.chmod(st.st_mode & 0o7777)
    return path


LOGIND_DROPIN = "# provsec lab: see prepare_upper in src/provsec/lab/hosts.py\n[Login]\nUserStopDelaySec=infinity\n"


def hosts_file(prof: Profile, me: HostSpec) -> str:
    lines = [
        "# Written by provsec lab: the lab has no DNS server, names come from here.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{CONTROL_ADDR}\tcontrol.{DOMAIN} control",
    ]
    for h in prof.hosts:
        names = f"{h.name}.{DOMAIN} {h.name}"
        for nic in h.nics:
            lines.append(f"{nic.address}\t{names}")
    if not me.nics:
        lines.append(f"127.0.1.1\t{me.name}.{DOMAIN} {me.name}")
    return "\n".join(lines) + "\n"


def prepare_upper(prof: Profile, host: HostSpec, *, base: Path, upper: Path, keydir: Path, admin_pub: str) -> str:
    """A fresh upper layer with this host's identity. Returns its machine-id."""
    if upper.exists():
        shutil.rmtree(upper)
    upper.mkdir(parents=True)
    etc = _mkdirs_like(base, upper, "etc")
    machine_id = uuid.uuid4().hex
    (etc / "machine-id").write_text(machine_id + "\n")
    (etc / "hostname").write_text(host.name + "\n")
    (etc / "hosts").write_text(hosts_file(prof, host))
    (etc / "resolv.conf").write_text(
        "# provsec lab: no DNS server on purpose; names are in /etc/hosts and fail fast otherwise\n"
        "options timeout:1 attempts:1\n"
    )
    # A user's systemd manager is kept after their last session ends. Stopping it fails in the lab's containers
    # (cgroup v1 under nspawn: "Failed to kill control group ... Input/output error", then "Processes still around
    # after final SIGKILL" 2 minutes later), and every login of that user waits in pam_systemd meanwhile: seen on
    # mon1 as ansible's "Timeout (12s) waiting for privilege escalation prompt" and as a play stalled at gathering
    # facts. Lab only: real servers stop user managers normally.
    logind = _mkdirs_like(base, upper, "etc/systemd") / "logind.conf.d"
    logind.mkdir(mode=0o755, exist_ok=True)
    (logind / "90-provsec-lab.conf").write_text(LOGIND_DROPIN)
    ssh = _mkdirs_like(base, upper, "etc/ssh")
    for kind in HOST_KEY_TYPES:
        for suffix, mode in (("", 0o600), (".pub", 0o644)):
            src = keydir / f"ssh_host_{kind}_key{suffix}"
            dst = ssh / src.name
            shutil.copyfile(src, dst)
            dst.chmod(mode)
    uid, gid = _passwd_ids(base, ADMIN_USER)
    home = _mkdirs_like(base, upper, f"home/{ADMIN_USER}")
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(mode=0o700)
    auth = dot_ssh / "authorized_keys"
    auth.write_text(admin_pub.strip() + "\n")
    auth.chmod(0o600)
    for p in (dot_ssh, auth):
        os.chown(p, uid, gid)
    return machine_id


def start(host: HostSpec, base: Path, upper: Path, machine_id: str, log: Path) -> int:
    """Boot the host with systemd-nspawn in its own network namespace. Returns the nspawn pid.

    CAP_NET_ADMIN and a writable /proc/sys/net give the host root's rights over its own network
    (nftables, net.* sysctls), confined to its namespace; kernel.* stays read-only.
    """
    env = dict(os.environ)
    env["SYSTEMD_NSPAWN_API_VFS_WRITABLE"] = "network"
    argv = [
        NSPAWN, "--boot", f"--directory={base}", f"--overlay={base}:{upper}:/",
        f"--machine={machine_name(host.name)}", f"--hostname={host.name}",
        f"--uuid={uuid.UUID(machine_id)}", f"--network-namespace-path=/run/netns/{host.netns}",
        "--capability=CAP_NET_ADMIN", "--register=no", "--keep-unit", "--console=passive",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
    return proc.pid


def nspawn_pids(machine: str | None = None) -> dict[int, str]:
    """pid → machine name of every lab nspawn process on this machine (ours or a killed run's)."""
    found: dict[int, str] = {}
    prefix = f"--machine={PREFIX}-"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not cmd or not cmd[0].endswith(NSPAWN):
            continue
        for arg in cmd:
            if arg.startswith(prefix):
                name = arg.removeprefix("--machine=")
                if machine is None or name == machine:
                    found[int(entry.name)] = name
    return found


def alive(pid: int) -> bool:
    try:
        with Path(f"/proc/{pid}/stat").open() as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def restart_units_failed_at_cgroup_step(nspawn_pid: int) -> list[str]:
    """Restart the host's units that failed at systemd's CGROUP step (exit status 219); return their names.

    On machines that still mount cgroup v1 (hybrid), systemd inside nspawn now and then fails to attach a unit
    started during boot to its freshly made cgroup ("Failed to attach to cgroup … No such file or directory").
    When that unit is systemd-user-sessions, /run/nologin stays and no login is ever allowed. A second start
    works; any other failure is left for the boot timeout to report.
    """
    init = _children(nspawn_pid)
    if not init:
        return []
    enter = ["nsenter", "-t", str(init[0]), "-m", "-u", "-i", "-n", "-p", "--"]
    listed = subprocess.run([*enter, "systemctl", "list-units", "--state=failed", "--no-legend", "--plain"],
                            capture_output=True, text=True, timeout=20, check=False)
    units = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    again = []
    for unit in units:
        status = subprocess.run([*enter, "systemctl", "show", "--value", "-p", "ExecMainStatus", unit],
                                capture_output=True, text=True, timeout=20, check=False).stdout.strip()
        if status == "219":
            subprocess.run([*enter, "systemctl", "restart", unit], capture_output=True, timeout=60, check=False)
            again.append(unit)
    return again


def stop_pids(pids: list[int], timeout: float = 15.0) -> None:
    """Ask each nspawn to shut its host down (SIGTERM → clean halt); past timeout, kill the host's init.

    Killing nspawn alone would orphan the host's init; SIGKILL to that init ends its whole PID
    namespace, after which nspawn exits by itself.
    """
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if alive(pid):
            for victim in [*_children(pid), pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while alive(pid) and time.monotonic() < kill_deadline:
                _reap(pid)
                time.sleep(0.05)
        _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def port_open(address: str, port: int = 22, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False
