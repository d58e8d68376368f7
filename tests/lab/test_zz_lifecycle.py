"""Run last: `down` leaves nothing; a warm `up` is fast; a killed `up` is cleaned by `down` and by `up`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from labfixture import REPO, VENV_BIN, LabHandle

from provsec.lab import Lab
from provsec.lab.hosts import nspawn_pids

PROVSEC = str(VENV_BIN / "provsec")


def leftovers() -> dict[str, list[str]]:
    """Everything a lab could leave behind on this machine."""
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                                      check=True).stdout)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    procs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "--machine=ps-" in cmd or "/var/lib/provsec/lab/apt-cacher-ng" in cmd:
                procs.append(cmd)
    propagate = Path("/run/systemd/nspawn/propagate")
    return {
        "processes": procs,
        "links": [x["ifname"] for x in links if x["ifname"].startswith(("ps-", "psbr-"))],
        "netns": [line.split()[0] for line in netns.splitlines() if line.startswith("ps-")],
        "mounts": [m for m in mounts if "/run/netns/ps-" in m or "/var/lib/provsec/lab" in m],
        "nspawn_run": [p.name for p in propagate.glob("ps-*")] if propagate.exists() else [],
        "routes": [r for r in subprocess.run(["ip", "route"], capture_output=True, text=True,
                                             check=True).stdout.splitlines() if "198.18." in r],
    }


NOTHING: dict[str, list[str]] = {k: [] for k in ("processes", "links", "netns", "mounts", "nspawn_run", "routes")}


def test_down_leaves_nothing(lab: LabHandle) -> None:
    assert leftovers() != NOTHING  # the lab is up: the check below can see what a lab leaves
    report = lab.lab.down()
    assert report.processes == len(lab.hosts)
    assert leftovers() == NOTHING
    assert not (lab.inventory_dir / "hosts.yml").exists()


def test_minimal_profile_up_with_a_warm_cache_then_down() -> None:
    lab = Lab()
    started = time.monotonic()
    lab.up("minimal", "bookworm", REPO / "inventory" / "lab")
    elapsed = time.monotonic() - started
    print(f"minimal lab up (warm cache): {elapsed:.1f} s")
    try:
        assert sorted(nspawn_pids().values()) == ["ps-host1", "ps-host2"]
        assert lab.ssh("host2", "hostname").stdout.strip() == "host2"
    finally:
        lab.down()
    assert leftovers() == NOTHING


def _kill_up_when_first_host_boots() -> None:
    proc = subprocess.Popen([PROVSEC, "lab", "up", "--profile", "province"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and not nspawn_pids():
            if proc.poll() is not None:
                raise AssertionError(f"lab up ended ({proc.returncode}) before it could be killed")
            time.sleep(0.05)
        assert nspawn_pids(), "lab up never started a host"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def test_down_after_a_killed_up_leaves_nothing() -> None:
    _kill_up_when_first_host_boots()
    assert leftovers() != NOTHING
    res = subprocess.run([PROVSEC, "lab", "down"], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert leftovers() == NOTHING


def test_up_clears_the_leftovers_of_a_killed_up() -> None:
    _kill_up_when_first_host_boots()
    res = subprocess.run([PROVSEC, "lab", "up", "--profile", "minimal"], capture_output=True, text=True,
                         timeout=300, check=False, cwd=REPO)
    try:
        assert res.returncode == 0, res.stderr
        assert "cleared leftovers of an earlier lab" in res.stderr
        assert sorted(nspawn_pids().values()) == ["ps-host1", "ps-host2"]
    finally:
        subprocess.run([PROVSEC, "lab", "down"], capture_output=True, timeout=120, check=False)
    assert leftovers() == NOTHING


def test_trixie_hosts_boot_take_packages_through_the_proxy_and_are_hardened(tmp_path: Path) -> None:
    """Debian 13: the lab boots it, and harden.yml then audit.yml work there too (the roles' vars/Debian-13.yml):
    host1 is the log host, host2 forwards to it; every applicable control passes."""
    lab = Lab()
    lab.up("minimal", "trixie", REPO / "inventory" / "lab")
    try:
        res = lab.ssh("host1", "cat /etc/os-release; systemctl is-system-running --wait; "
                               "sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hello >/dev/null "
                               "&& /usr/bin/hello", timeout=600)
        assert res.returncode == 0, res.stderr
        assert 'VERSION_CODENAME=trixie' in res.stdout
        assert "running" in res.stdout.split()
        assert "Hello, world!" in res.stdout

        handle = LabHandle(lab, REPO / "inventory" / "lab", lab.profile().host_names)
        started = time.monotonic()
        harden = handle.playbook("harden.yml", "-e", "harden_serial=100%")
        print(f"\nharden.yml on Debian 13 host1+host2: {time.monotonic() - started:.1f} s")
        assert harden.returncode == 0, harden.stdout[-5000:] + harden.stderr[-2000:]
        deadline = time.monotonic() + 600  # AIDE's first database is built in the background (role integrity)
        while any(lab.ssh(h, "systemctl is-active --quiet provsec-aide-init").returncode == 0
                  for h in ("host1", "host2")):
            assert time.monotonic() < deadline, "AIDE's first database took more than 10 minutes"
            time.sleep(5)
        audit = handle.playbook("audit.yml", "-e", f"provsec_audit_dir={tmp_path}")
        assert audit.returncode == 0, audit.stdout[-3000:]
        for host in ("host1", "host2"):
            doc = json.loads((tmp_path / "results" / f"{host}.json").read_text())
            failing = {r["id"]: r.get("evidence") for r in doc["results"]
                       if r["status"] not in ("pass", "not_applicable")}
            assert failing == {}, f"{host} on Debian 13 after harden.yml: {failing}"
    finally:
        lab.down()
    assert leftovers() == NOTHING
