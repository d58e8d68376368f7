"""The cached debootstrap base every lab host boots from (read-only lower layer of its overlay).

The cache is keyed by release + package list + build date: a base older than a week is rebuilt, so
hosts do not drift far from the mirror's security updates. Packages come from this machine's own
configured Debian mirror (read from its apt sources), never from a name written into provsec.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provsec.errors import InputError
from provsec.lab.topology import ADMIN_USER, APT_PROXY_PORT, CONTROL_ADDR, RELEASES
from provsec.proc import run

CACHE_ROOT = Path(os.environ.get("PROVSEC_LAB_CACHE", "/var/cache/provsec/lab"))
Log = Callable[[str], None]
MAX_AGE_S = 7 * 24 * 3600
STAMP = ".provsec-base.json"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_SOURCES_LEGACY = Path("/etc/apt/sources.list")

# What a freshly installed, minimal Debian server has, plus what Ansible needs to manage it.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "sudo",
    "python3", "python3-apt", "iproute2", "iputils-ping", "procps", "ca-certificates",
    "tzdata", "less", "gnupg",
)


@dataclass(frozen=True)
class Mirror:
    debian: str
    security: str


def host_mirror(sources: Path = APT_SOURCES, legacy: Path = APT_SOURCES_LEGACY) -> Mirror:
    """The Debian mirror this machine itself uses (deb822 or one-line format)."""
    text = sources.read_text() if sources.exists() else ""
    uris = re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE)
    if not uris and legacy.exists():
        uris = re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", legacy.read_text(), flags=re.MULTILINE)
    main = [u for u in uris if not u.rstrip("/").endswith("-security")]
    sec = [u for u in uris if u.rstrip("/").endswith("-security")]
    if not main:
        raise InputError(
            f"{sources}: no Debian mirror found (no 'URIs:' line); the lab takes its packages from this "
            "machine's own mirror"
        )
    debian = main[0].rstrip("/")
    return Mirror(debian=debian, security=(sec[0] if sec else debian + "-security").rstrip("/"))


def sources_for(release: str, mirror: Mirror) -> tuple[Path, str]:
    """Where a fresh install of the release keeps its apt sources, and what they say (this machine's mirror).
    bookworm: the one-line /etc/apt/sources.list Debian 12's installer writes (Lynis 3.0.8's PKGS-7388 finds
    the security archive only in that format: it looks for "security" followed by a space or a slash, which a
    deb822 `URIs:` line ending in "-security" never has); later releases: deb822 debian.sources."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    head = "# Written by provsec lab: this machine's mirror, reached through the lab's apt proxy.\n"
    if release == "bookworm":
        lines = [f"deb [signed-by={keyring}] {mirror.debian} {suite} main" for suite in (release, f"{release}-updates")]
        lines.append(f"deb [signed-by={keyring}] {mirror.security} {release}-security main")
        return APT_SOURCES_LEGACY, head + "\n".join(lines) + "\n"
    return APT_SOURCES, (
        head + f"Types: deb\nURIs: {mirror.debian}\nSuites: {release} {release}-updates\nComponents: main\n"
        f"Signed-By: {keyring}\n\n"
        f"Types: deb\nURIs: {mirror.security}\nSuites: {release}-security\nComponents: main\n"
        f"Signed-By: {keyring}\n"
    )


# Bump when _customise changes what a base contains, so cached bases are rebuilt.
BASE_FORMAT = "4"


def cache_key(release: str, packages: tuple[str, ...] = PACKAGES) -> str:
    digest = hashlib.sha256(("\n".join([BASE_FORMAT, release, *sorted(packages)])).encode()).hexdigest()
    return f"{release}-{digest[:12]}"


def _fresh(path: Path, now: float) -> bool:
    stamp = path / STAMP
    if not stamp.is_file():
        return False
    try:
        built = float(json.loads(stamp.read_text())["built_at"])
    except (ValueError, KeyError, TypeError):
        return False
    return now - built < MAX_AGE_S


def find_base(release: str) -> Path | None:
    path = CACHE_ROOT / "base" / cache_key(release)
    return path if _fresh(path, time.time()) else None


def ensure_base(release: str, log: Log) -> Path:
    """Return a fresh base for release, building it (about a minute) when missing or stale."""
    if release not in RELEASES:
        raise InputError(f"unknown release {release!r}; choose one of: {', '.join(RELEASES)}")
    found = find_base(release)
    if found is not None:
        log(f"base {found.name}: cached")
        return found
    final = CACHE_ROOT / "base" / cache_key(release)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    mirror = host_mirror()
    log(f"base {final.name}: debootstrap {release} (about a minute, cached for a week)")
    started = time.monotonic()
    try:
        run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", "--components=main",
             release, tmp, mirror.debian],
            timeout=1200,
        )
        _customise(tmp, release, mirror)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / STAMP).write_text(
        json.dumps({"release": release, "packages": sorted(PACKAGES), "built_at": time.time()}) + "\n"
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    _prune_other_bases(final, release)
    log(f"base {final.name}: built in {time.monotonic() - started:.0f} s")
    return final


def _chroot(root: Path, *argv: str) -> None:
    run(["chroot", root, *argv], timeout=600, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                                                    "DEBIAN_FRONTEND": "noninteractive"})


def _customise(root: Path, release: str, mirror: Mirror) -> None:
    """Make the bare system look like a freshly installed server, minus what must be unique per host."""
    etc = root / "etc"
    where, text = sources_for(release, mirror)
    for path in (APT_SOURCES, APT_SOURCES_LEGACY):  # one file only: what debootstrap wrote goes
        (root / path.relative_to("/")).unlink(missing_ok=True)
    (root / where.relative_to("/")).write_text(text)
    _chroot(root, "apt-get", "update", "-qq")  # hosts can install at once; they refresh through the proxy
    (etc / "apt" / "apt.conf.d" / "01provsec-lab-proxy").write_text(
        "# The lab's hosts reach packages only through the apt proxy on the control node.\n"
        f'Acquire::http::Proxy "http://{CONTROL_ADDR}:{APT_PROXY_PORT}";\n'
    )
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", ADMIN_USER)
    sudoers = etc / "sudoers.d" / ADMIN_USER
    sudoers.write_text(f"# provsec lab: the site's admin account\n{ADMIN_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    sshd_d = etc / "ssh" / "sshd_config.d"
    sshd_d.mkdir(parents=True, exist_ok=True)
    (sshd_d / "00-provsec-lab.conf").write_text(
        "# Root logs in by nobody; the admin logs in with a key only.\n"
        "PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    )
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()  # each host gets its own keys, recorded in the lab's known_hosts
    (etc / "machine-id").write_text("")
    # The root file system is nspawn's overlay: nothing to remount, and trying sometimes fails at boot
    # (seen: systemd-remount-fs.service failed on one host of six, leaving it "degraded").
    (etc / "systemd" / "system" / "systemd-remount-fs.service").symlink_to("/dev/null")
    conf_d = etc / "systemd" / "system.conf.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    (conf_d / "provsec-lab.conf").write_text(
        "# provsec lab: a host that hangs at shutdown must not hold `lab down` for 90 s\n"
        "[Manager]\nDefaultTimeoutStopSec=10s\n"
    )
    dbus_id = root / "var" / "lib" / "dbus" / "machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    localtime = etc / "localtime"
    if localtime.exists() or localtime.is_symlink():
        localtime.unlink()
    localtime.symlink_to("/usr/share/zoneinfo/Asia/Ho_Chi_Minh")
    (etc / "timezone").write_text("Asia/Ho_Chi_Minh\n")
    _chroot(root, "apt-get", "clean")


def _prune_other_bases(keep: Path, release: str) -> None:
    """Remove other bases of the same release (older package lists, killed builds)."""
    for entry in keep.parent.iterdir():
        if entry != keep and entry.name.startswith(f"{release}-") and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
