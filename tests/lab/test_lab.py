"""The lab's hosts behave as real servers: SSH as a non-root admin with host keys checked, systemd,
packages through the apt proxy only, their own identity, and no power over the machine's kernel."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from labfixture import REPO, VENV_BIN, LabHandle

from provsec.lab.hosts import nspawn_pids


def _by_host(lab: LabHandle, command: str) -> dict[str, subprocess.CompletedProcess[str]]:
    return {h: lab.ssh(h, command) for h in lab.hosts}


def test_ansible_reaches_every_host_as_the_admin_with_host_key_checking(lab: LabHandle) -> None:
    result = lab.ansible("ansible", "all", "-m", "ansible.builtin.ping", "-o")
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert f"{host} | SUCCESS" in result.stdout
    who = lab.ansible("ansible", "all", "-m", "ansible.builtin.command", "-a", "id -un", "-o")
    assert who.returncode == 0, who.stdout + who.stderr
    assert who.stdout.count("labadmin") == len(lab.hosts)
    assert "root" not in who.stdout


def test_a_wrong_host_key_is_refused(lab: LabHandle, tmp_path: Path) -> None:
    known = lab.lab.paths.known_hosts.read_text().splitlines()
    first, second = lab.hosts[0], lab.hosts[1]
    # Give the first host's names the second host's keys: ssh must refuse, not ask or accept.
    swapped = [line.split(" ", 1)[1] for line in known if line.startswith(f"{second},")]
    names = next(line.split(" ", 1)[0] for line in known if line.startswith(f"{first},"))
    bad = tmp_path / "known_hosts"
    bad.write_text("".join(f"{names} {key}\n" for key in swapped))
    argv = lab.lab.ssh_argv(first)
    argv[argv.index(f"UserKnownHostsFile={lab.lab.paths.known_hosts}")] = f"UserKnownHostsFile={bad}"
    result = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr or "HOST IDENTIFICATION HAS CHANGED" in result.stderr


def test_admin_has_sudo_and_root_cannot_log_in(lab: LabHandle) -> None:
    for host, res in _by_host(lab, "id -u; sudo -n id -u").items():
        assert res.returncode == 0, f"{host}: {res.stderr}"
        assert res.stdout.split() == ["1000", "0"], host
    argv = lab.lab.ssh_argv(lab.hosts[0])
    argv[-1] = argv[-1].replace("labadmin@", "root@")
    root = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30, check=False)
    assert root.returncode == 255
    assert "Permission denied" in root.stderr


def test_systemd_runs_and_sshd_is_active_on_every_host(lab: LabHandle) -> None:
    for host, res in _by_host(lab, "systemctl is-active ssh.service; systemctl is-system-running --wait").items():
        failed = lab.ssh(host, "systemctl --failed --no-legend --plain").stdout
        assert res.stdout.split() == ["active", "running"], f"{host}: {res.stdout} failed units: {failed}"


def test_each_host_has_its_own_identity(lab: LabHandle) -> None:
    ids = _by_host(lab, "cat /etc/machine-id; cat /etc/ssh/ssh_host_ed25519_key.pub; hostname")
    machine_ids = {out.stdout.split("\n")[0] for out in ids.values()}
    host_keys = {out.stdout.split("\n")[1].split()[1] for out in ids.values()}
    assert len(machine_ids) == len(lab.hosts)
    assert len(host_keys) == len(lab.hosts)
    for host, out in ids.items():
        assert out.stdout.split("\n")[2] == host
        assert len(out.stdout.split("\n")[0]) == 32


def test_a_package_installs_through_the_proxy_and_nothing_else_is_reachable(lab: LabHandle) -> None:
    host = lab.hosts[-1]  # agency1 in the province lab: through gw1 to the proxy
    res = lab.ssh(host, "sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive "
                        "apt-get install -y -qq nftables >/dev/null && ls /usr/sbin/nft", timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "/usr/sbin/nft"
    proxy_log = (lab.lab.paths.root / "apt-cacher-ng" / "log" / "apt-cacher.log").read_text()
    assert "nftables" in proxy_log
    # Only the lab's own networks are routed: a route lookup for any other address fails (no packet sent).
    route = lab.ssh(host, "ip route get 203.0.113.1")
    assert route.returncode != 0
    assert "unreachable" in route.stderr.lower()


def test_host_controls_its_own_network_but_not_the_kernel(lab: LabHandle) -> None:
    host = lab.hosts[0]
    machine_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    kernel = lab.ssh(host, "sudo -n sysctl -w kernel.panic=7")
    assert kernel.returncode != 0
    assert "kernel.panic" in kernel.stderr
    netset = lab.ssh(host, "sudo -n sysctl -w net.ipv4.ip_forward=1 && cat /proc/sys/net/ipv4/ip_forward")
    assert netset.returncode == 0, netset.stderr
    assert netset.stdout.strip().endswith("1")
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == machine_forward
    lab.ssh(host, "sudo -n sysctl -w net.ipv4.ip_forward=0")


def test_nftables_works_inside_a_host_and_stays_there(lab: LabHandle) -> None:
    host = lab.hosts[-1]
    lab.ssh(host, "test -x /usr/sbin/nft || sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables")
    res = lab.ssh(host, "sudo -n nft add table inet provsec_probe && sudo -n nft list tables")
    assert res.returncode == 0, res.stderr
    assert "table inet provsec_probe" in res.stdout
    nft = shutil.which("nft")
    if nft:  # the machine's own ruleset does not see the host's table
        machine = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, check=False)
        assert "provsec_probe" not in machine.stdout
    lab.ssh(host, "sudo -n nft delete table inet provsec_probe")


def test_agency_host_is_reached_only_through_the_wan_edge(lab: LabHandle) -> None:
    prof = lab.lab.profile()
    if prof.name != "province":
        raise AssertionError("this test needs the province lab (PROVSEC_LAB_PROFILE=province)")
    via = subprocess.run(["ip", "-j", "route", "get", "198.18.1.10"], capture_output=True, text=True, check=True)
    assert json.loads(via.stdout)[0]["gateway"] == "198.18.0.30"
    addrs = lab.ssh("agency1", "ip -j -4 addr show")
    nets = [a["local"] for link in json.loads(addrs.stdout) for a in link["addr_info"]]
    assert sorted(nets) == ["127.0.0.1", "198.18.1.10"]
    ping = lab.ssh("agency1", "ping -c1 -W2 mon1")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # Without forwarding on gw1 the path is gone: it really goes through gw1.
    lab.ssh("gw1", "sudo -n sysctl -w net.ipv4.ip_forward=0")
    try:
        cut = lab.ssh("agency1", "ping -c1 -W2 mon1")
        assert cut.returncode != 0
    finally:
        lab.ssh("gw1", "sudo -n sysctl -w net.ipv4.ip_forward=1")


def test_reset_gives_back_a_fresh_host_with_the_same_identity(lab: LabHandle) -> None:
    host = lab.hosts[1]
    before = lab.ssh(host, "cat /etc/machine-id; sudo -n touch /etc/provsec-reset-probe").stdout.split()[0]
    lab.reset(host)
    after = lab.ssh(host, "cat /etc/machine-id; test -e /etc/provsec-reset-probe && echo still-there || echo gone")
    assert after.returncode == 0, after.stderr
    assert after.stdout.split() == [before, "gone"]


def test_a_host_is_handed_over_only_when_its_boot_is_finished(lab: LabHandle) -> None:
    """A playbook's first daemon-reload must not land inside the boot transaction (with systemd 252 it fails
    systemd-update-utmp-runlevel and leaves the host degraded): the lab returns a host once boot is over."""
    host = lab.hosts[-2]
    lab.reset(host)
    state = lab.ssh(host, "systemctl is-system-running; sudo -n systemctl daemon-reload; "
                          "systemctl is-system-running --wait; systemctl --failed --no-legend --plain")
    assert state.stdout.split()[:2] == ["running", "running"], state.stdout + state.stderr


def test_the_admin_s_user_manager_outlives_the_last_session(lab: LabHandle) -> None:
    """Stopping a user's systemd manager can hang 2 minutes in the lab's containers (cgroup v1 under nspawn), and a
    login meanwhile waits: the lab keeps user managers (UserStopDelaySec=infinity). After a logout and more than
    logind's default delay (10 s), the admin's manager is the same process, not stopped and started again."""
    host = lab.hosts[0]
    probe = "systemctl show -p MainPID --value user@$(id -u).service"
    first = lab.ssh(host, probe)
    assert first.returncode == 0 and first.stdout.strip() not in ("", "0"), first.stdout + first.stderr
    time.sleep(12)
    again = lab.ssh(host, probe)
    assert again.stdout.strip() == first.stdout.strip(), (first.stdout, again.stdout, again.stderr)


def test_reset_empties_the_firewall_that_lives_in_the_namespace(lab: LabHandle) -> None:
    """A reinstalled host has no firewall: the ruleset a hardening test loaded must not outlive the reset (the
    namespace, where nftables keeps it, is kept)."""
    host = lab.hosts[1]
    netns = lab.lab.profile().host(host).netns
    nft = ["ip", "netns", "exec", netns, "nft"]
    subprocess.run([*nft, "add table inet provsec_reset_probe; add chain inet provsec_reset_probe input "
                    "{ type filter hook input priority 0; policy accept; }"], check=True, timeout=30)
    assert "provsec_reset_probe" in subprocess.run([*nft, "list", "ruleset"], capture_output=True, text=True,
                                                   check=True, timeout=30).stdout
    lab.reset(host)
    after = subprocess.run([*nft, "list", "ruleset"], capture_output=True, text=True, check=True, timeout=30)
    assert "provsec_reset_probe" not in after.stdout, after.stdout


def test_reset_puts_back_the_network_settings_that_live_in_the_namespace(lab: LabHandle) -> None:
    """A reinstalled host starts from its namespace's first net.* settings: those a hardening run set (they live in
    the namespace, which the reset keeps, not in the host's files) must not outlive the reset."""
    host = lab.hosts[-1]
    netns = lab.lab.profile().host(host).netns
    keys = ["net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.eth0.log_martians", "net.ipv6.conf.all.accept_ra",
            "net.unix.max_dgram_qlen"]

    def values() -> dict[str, str]:
        res = subprocess.run(["ip", "netns", "exec", netns, "sysctl", *keys], capture_output=True, text=True,
                             check=True, timeout=30)
        return dict(line.split(" = ", 1) for line in res.stdout.splitlines())

    first = values()
    other = {k: str(int(v) + 1) if k == "net.unix.max_dgram_qlen" else "1" if v == "0" else "0"
             for k, v in first.items()}
    # set from inside the host, as a playbook does
    res = lab.ssh(host, "sudo -n sysctl -q -w " + " ".join(f"{k}={v}" for k, v in other.items()))
    assert res.returncode == 0, res.stderr
    assert values() == other
    lab.reset(host)
    assert values() == first


def test_up_again_reuses_the_running_lab(lab: LabHandle) -> None:
    before = sorted(nspawn_pids())
    state = lab.lab.up(lab.lab.profile().name, lab.lab.state().release, lab.inventory_dir)  # type: ignore[union-attr]
    assert sorted(nspawn_pids()) == before
    assert len(before) == len(lab.hosts)
    assert sorted(state.pids.values()) == before


def test_up_from_another_checkout_moves_the_inventory_there_and_back(lab: LabHandle, tmp_path: Path) -> None:
    other = tmp_path / "inventory" / "lab"
    name, release = lab.lab.profile().name, lab.lab.state().release  # type: ignore[union-attr]
    try:
        state = lab.lab.up(name, release, other)
        assert Path(state.inventory_dir) == other.resolve()
        assert "ansible_host" in (other / "hosts.yml").read_text()
        assert not (lab.inventory_dir / "hosts.yml").exists()  # one lab, one inventory: no stale copy
    finally:
        state = lab.lab.up(name, release, lab.inventory_dir)
    assert Path(state.inventory_dir) == lab.inventory_dir.resolve()
    assert (lab.inventory_dir / "hosts.yml").is_file()
    assert not (other / "hosts.yml").exists()


def test_status_and_inventory_check(lab: LabHandle) -> None:
    status = subprocess.run([str(VENV_BIN / "provsec"), "lab", "status", "--json"], capture_output=True,
                            text=True, check=False, cwd=REPO)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert [row["host"] for row in data["hosts"]] == lab.hosts
    assert all(row["running"] and row["ssh"] for row in data["hosts"])
    check = subprocess.run([str(VENV_BIN / "provsec"), "inventory", "check", str(lab.inventory_dir)],
                           capture_output=True, text=True, check=False, cwd=REPO)
    assert check.returncode == 0, check.stdout + check.stderr
