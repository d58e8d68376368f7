"""The lab's apt proxy: our own apt-cacher-ng instance, bound to the control node's bridge address.

It runs with an empty configuration directory on purpose: Debian's stock acng.conf remaps the Debian
archive to fixed back-end mirrors, which a machine with a local mirror (as a provincial site has) cannot
reach. Without remapping, acng fetches from the mirror the hosts' sources name, which is this machine's.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from provsec.errors import CommandError
from provsec.lab.topology import APT_PROXY_PORT, CONTROL_ADDR

ACNG = "/usr/sbin/apt-cacher-ng"
CACHE_DIR = Path(os.environ.get("PROVSEC_LAB_CACHE", "/var/cache/provsec/lab")) / "apt-cacher-ng"


def _pidfile(state_dir: Path) -> Path:
    return state_dir / "apt-cacher-ng.pid"


def listening(addr: str = CONTROL_ADDR, port: int = APT_PROXY_PORT, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


# A suite's Release files are kept as static: fetched once per proxy start, then served from the cache.
# apt-cacher-ng 3.7.4 refreshes a volatile file badly when two hosts ask for it in the same second: it moves the
# old copy to a name made of the current second, the second request finds that name taken ("Failure to move file
# ... out of the way ... File exists" in apt-cacher.err) and gets an error page. Every play refreshes the lists on
# all its hosts at once; a stress run here (6 hosts, `apt-get update` together, 30 rounds) hit it 46 times. Most
# clients get past the error answer, but twice a play's apt then waited forever (a 20-minute stall in CI). Packages
# lists are fetched by hash and never change, so holding the Release files holds the whole set for one lab run.
RELEASE_FILE_NAMES = ("InRelease", "Release", "Release.gpg")
STATIC_RELEASE_FILES = "(^|.*/)(" + "|".join(re.escape(name) for name in RELEASE_FILE_NAMES) + ")$"


def _is_release_file(name: str) -> bool:
    """InRelease, Release, Release.gpg, their .head, and the old copies named after a second (InRelease.1795787047)."""
    for base in RELEASE_FILE_NAMES:
        rest = name[len(base):] if name.startswith(base) else None
        if rest is not None and (rest in ("", ".head") or (rest.startswith(".") and rest[1:].isdigit())):
            return True
    return False


def _forget_release_files() -> int:
    """Remove the cached Release files of every suite, so this proxy start fetches them anew. Returns the count."""
    removed = 0
    for root, dirs, _ in os.walk(CACHE_DIR):
        if Path(root).name != "dists":  # whatever the mirror's path depth; packages and acng's own store skipped
            dirs[:] = [d for d in dirs if d not in ("pool", "_xstore")]
            continue
        for path in (f for suite in dirs for f in (Path(root) / suite).iterdir()):
            if path.is_file() and _is_release_file(path.name):
                path.unlink(missing_ok=True)
                removed += 1
        dirs.clear()
    return removed


def start(state_dir: Path) -> int:
    """Start the proxy (a no-op when ours already listens). Returns its pid."""
    pidfile = _pidfile(state_dir)
    if listening() and pidfile.exists():
        return int(pidfile.read_text())
    conf = state_dir / "apt-cacher-ng"
    logs = conf / "log"
    logs.mkdir(parents=True, exist_ok=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    _forget_release_files()
    (conf / "acng.conf").write_text("# provsec lab: no remapping, settings are given on the command line\n")
    with (logs / "stdout.log").open("ab") as out:
        proc = subprocess.Popen(
            [ACNG, "-c", str(conf), "ForeGround=1", f"BindAddress={CONTROL_ADDR}", f"Port={APT_PROXY_PORT}",
             f"CacheDir={CACHE_DIR}", f"LogDir={logs}", f"SocketPath={conf / 'socket'}",
             f"PidFile={conf / 'acng.pid'}", "ExThreshold=30", f"SPfilePatternEx={STATIC_RELEASE_FILES}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CommandError(
                f"apt-cacher-ng exited {proc.returncode} at start; see {logs / 'stdout.log'} "
                f"(is port {APT_PROXY_PORT} on {CONTROL_ADDR} taken?)"
            )
        if listening():
            return proc.pid
        time.sleep(0.1)
    raise CommandError(f"apt-cacher-ng did not listen on {CONTROL_ADDR}:{APT_PROXY_PORT} within 10 s")


def stop(state_dir: Path) -> int:
    """Stop our proxy (by pid file, then by its config path for a lost pid file). Returns how many."""
    conf = str(state_dir / "apt-cacher-ng")
    pids: set[int] = set()
    pidfile = _pidfile(state_dir)
    if pidfile.exists():
        with contextlib.suppress(ValueError):
            pids.add(int(pidfile.read_text()))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"apt-cacher-ng") and conf.encode() in cmd:
                pids.add(int(entry.name))
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            killed += 1
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            _reap(pid)
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
    pidfile.unlink(missing_ok=True)
    return killed


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
