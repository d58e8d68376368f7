"""scan.yml on the lab's monitoring host (issue 6 §5, §6): the daily scan runs from mon1 over every host, finds a
new listener as drift and a stopped approved one as closed, reports honestly what a firewall hides, and its SSH and
TLS findings agree with ssh-audit and testssl.sh run from the same place (mon1's network namespace).

web1 and db1 are hardened first (roles ssh and firewall): their firewall carries the scanner's declaration (every
TCP port open to mon1 only). Listeners and the TLS server run in the hosts' network namespaces, bounded in time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from crosscheck import days_left_testssl, run_testssl, self_signed, ssh_audit
from labfixture import LabHandle, address, listener, netns
from prometheus_client.parser import text_string_to_metric_families

MON = "mon1"
HARDENED = ("web1", "db1")
DEFAULT = "bak1"  # left as Debian installs it: its sshd offers algorithms that level 3 forbids
PROVSEC = "/opt/provsec/bin/provsec"
INVENTORY = "/etc/provsec/inventory"
STORE = "/var/lib/provsec/scans"
TEXTFILE = "/var/lib/prometheus/node-exporter/provsec_scan.prom"
CATALOGUE = "/etc/provsec/policy/controls"
APPROVED, NEW = 8080, 8443  # both among nmap's 1000 most common ports, which the daily scan covers
LIFETIME = 1200  # seconds a listener lives: two runs of the daily scan on a loaded 2-core CI machine fit


@pytest.fixture(scope="module")
def scanner(lab: LabHandle) -> LabHandle:
    started = time.monotonic()
    for host in (MON, *HARDENED, DEFAULT):  # an earlier test may have hardened DEFAULT
        lab.reset_waiting(host)
    lab.play_ok("harden.yml", list(HARDENED), "--tags", "ssh,firewall")
    first = lab.play_ok("scan.yml", [MON])
    second = lab.play_ok("scan.yml", [MON])
    print(f"\nscan.yml on {MON} (after ssh+firewall on {', '.join(HARDENED)}): "
          f"{(time.monotonic() - started) / 60:.1f} min")
    assert first[MON]["changed"] > 0, first
    assert second[MON]["changed"] == 0, "scan.yml is not idempotent: " + repr(second)
    return lab


def on_mon(lab: LabHandle, command: str, ok: tuple[int, ...] = (0,)) -> str:
    res = lab.root(MON, command)
    assert res.returncode in ok, f"{command}: rc {res.returncode}\n{res.stdout[-3000:]}{res.stderr[-2000:]}"
    return res.stdout


def run_service(lab: LabHandle) -> None:
    """One run of the deployed service, as its timer starts it; it must end in success (exit 0 or 1)."""
    started = time.monotonic()
    result = on_mon(lab, "systemctl start provsec-scan.service && systemctl show -P Result provsec-scan.service")
    print(f"provsec-scan.service: {result.strip()} in {time.monotonic() - started:.0f} s")


def last_run_report(lab: LabHandle) -> str:
    """What the service's last run printed (its drift report), for assertion messages."""
    return on_mon(lab, "journalctl -u provsec-scan.service -o cat --no-pager "
                       "_SYSTEMD_INVOCATION_ID=$(systemctl show -P InvocationID provsec-scan.service) | tail -60")


def metrics(lab: LabHandle) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = on_mon(lab, f"cat {TEXTFILE}")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(series: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


def test_the_daily_scan_is_deployed_and_covers_every_host(scanner: LabHandle) -> None:
    lab = scanner
    assert on_mon(lab, "systemctl is-enabled provsec-scan.timer").strip() == "enabled"
    assert on_mon(lab, "systemctl show -P Result provsec-scan.service").strip() == "success"
    stored = on_mon(lab, f"ls {STORE}").split()
    assert any(name.startswith("scan-") for name in stored), stored
    series = metrics(lab)
    for host in lab.hosts:
        # every host was scanned and its sshd answered (port 22 open, never reviewed yet)
        assert value(series, "provsec_scan_unexpected_open_port", host=host, port="22", proto="tcp") == 1, host
        assert value(series, "provsec_scan_ssh_last_check_timestamp_seconds", host=host, port="22"), host
    for group in ("dc_servers", "web_servers", "wan_edge", "agency_servers"):
        assert value(series, "provsec_scan_success", group=group) == 1, group


def test_new_listener_is_drift_and_a_stopped_approved_service_reads_closed(scanner: LabHandle) -> None:
    lab = scanner
    with listener(lab, "db1", APPROVED, LIFETIME):
        run_service(lab)
        accepted = on_mon(lab, f"{PROVSEC} scan baseline -i {INVENTORY} --store {STORE} --accept "
                               f"--approver 'Nguyễn Văn Kiểm' --reason 'lab: rà soát'")
        assert f"db1 {APPROVED}/tcp" in accepted, accepted
        run_service(lab)
        settled = metrics(lab)
        report = last_run_report(lab)
    for host in lab.hosts:  # the baseline now holds what was open: no drift anywhere
        assert value(settled, "provsec_scan_unexpected_open_ports", host=host) == 0, (host, report)
        assert value(settled, "provsec_scan_approved_ports_not_open", host=host) == 0, (host, report)
    drift_before = value(settled, "provsec_scan_drift_events_total", kind="unexpected-open") or 0
    with listener(lab, "db1", NEW, LIFETIME):  # the approved listener is stopped, a new one listens
        run_service(lab)
        after = metrics(lab)
    assert value(after, "provsec_scan_unexpected_open_ports", host="db1") == 1
    assert value(after, "provsec_scan_unexpected_open_port", host="db1", port=str(NEW), proto="tcp") == 1
    assert value(after, "provsec_scan_approved_ports_not_open", host="db1") == 1
    assert value(after, "provsec_scan_drift_events_total", kind="unexpected-open") == drift_before + 1
    for host in set(lab.hosts) - {"db1"}:
        assert value(after, "provsec_scan_unexpected_open_ports", host=host) == 0, host
    diff = json.loads(on_mon(lab, f"{PROVSEC} scan diff previous latest --store {STORE} --json", ok=(1,)))
    changes = {(h["name"], p["port"]): (p["a"], p["b"]) for h in diff["hosts"] for p in h["ports"]}
    assert sorted(changes) == [("db1", APPROVED), ("db1", NEW)], diff
    assert changes[("db1", APPROVED)][0] == "open" and changes[("db1", APPROVED)][1] != "open", diff
    assert changes[("db1", NEW)][0] != "open" and changes[("db1", NEW)][1] == "open", diff
    # the same finding, as a user reads it: the drift report of a scan run by hand
    res = lab.root(MON, f"{PROVSEC} scan run -i {INVENTORY} --store {STORE} -p {APPROVED},{NEW} db1 --json")
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    found = {(d["kind"], d["port"]) for d in json.loads(res.stdout)["drift"]}
    assert found == {("approved-not-open", APPROVED)}, found  # nothing listens on NEW any more


def test_what_the_firewall_hides_reads_filtered_not_closed(scanner: LabHandle, tmp_path: Path) -> None:
    """From the control node (admin subnet: SSH only) db1's listener is filtered; from mon1 it is open."""
    lab = scanner
    baseline = tmp_path / "scan_baseline.yml"
    baseline.write_text(on_mon(lab, f"cat {INVENTORY}/scan_baseline.yml"))  # approves db1's APPROVED port
    with listener(lab, "db1", APPROVED, LIFETIME):
        here = subprocess.run(
            [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "provsec"), "scan", "run", "-i",
             str(lab.inventory_dir), "--store", str(tmp_path / "store"), "--baseline", str(baseline), "-p",
             f"22,{APPROVED}", "db1", "--json"], capture_output=True, text=True, timeout=300, check=False)
        there = lab.root(MON, f"{PROVSEC} scan run -i {INVENTORY} --store {STORE} -p 22,{APPROVED} db1 --json")
    assert here.returncode == 1, here.stdout[-2000:] + here.stderr[-2000:]
    assert there.returncode == 0, there.stdout[-2000:] + there.stderr[-2000:]
    states_here = port_states(json.loads(here.stdout)["scan"], "db1")
    states_there = port_states(json.loads(there.stdout)["scan"], "db1")
    assert states_here == {22: "open", APPROVED: "filtered"}, states_here
    assert states_there == {22: "open", APPROVED: "open"}, states_there
    drift_here = json.loads(here.stdout)["drift"]
    assert [(d["kind"], d["port"], d["state"]) for d in drift_here] == [("approved-not-open", APPROVED, "filtered")]


def port_states(scan: dict[str, Any], host: str) -> dict[int, str]:
    (entry,) = [h for h in scan["hosts"] if h["name"] == host]
    return {p["port"]: p["state"] for p in entry["ports"]}


@contextmanager
def weak_kex(lab: LabHandle, host: str, algorithm: str) -> Iterator[None]:
    """host's sshd offering one more key exchange algorithm, the hardened config restored after."""
    config = "/etc/ssh/sshd_config"
    add = (f"cp -p {config} {config}.scan-test && sed -i 's/^KexAlgorithms .*/&,{algorithm}/' {config} && "
           f"sshd -t && systemctl reload ssh && sshd -T | grep -i '^kexalgorithms .*{algorithm}'")
    res = lab.root(host, add)
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        yield
    finally:
        res = lab.root(host, f"mv {config}.scan-test {config} && sshd -t && systemctl reload ssh")
        assert res.returncode == 0, res.stdout + res.stderr


def test_ssh_posture_reports_a_weak_algorithm_and_agrees_with_ssh_audit(scanner: LabHandle) -> None:
    lab = scanner
    weak = "diffie-hellman-group14-sha1"
    with weak_kex(lab, "db1", weak):
        res = lab.root(MON, f"{PROVSEC} scan ssh -i {INVENTORY} --store {STORE} --textfile {TEXTFILE} "
                            f"--catalogue {CATALOGUE} --json web1 db1 {DEFAULT}")
        theirs = {host: ssh_audit(address(lab, host), 22, netns(lab, MON)) for host in ("web1", "db1", DEFAULT)}
        series = metrics(lab)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    ours = {r["host"]: r for r in json.loads(res.stdout)}
    for host, audit in theirs.items():
        offered = {"kex": ours[host]["kex"], "host_keys": ours[host]["host_keys"],
                   "ciphers": ours[host]["ciphers"]["server_to_client"],
                   "macs": ours[host]["macs"]["server_to_client"], "banner": [ours[host]["banner"]]}
        assert offered == audit, (host, offered, audit)
    assert {(w["category"], w["algorithm"]) for w in ours["db1"]["weak"]} == {("kex", weak)}
    assert ours["web1"]["weak"] == []  # hardened: nothing outside the policy
    assert ours[DEFAULT]["weak"], f"{DEFAULT} runs Debian's default sshd, which offers algorithms level 3 forbids"
    assert value(series, "provsec_scan_ssh_weak_algorithms", host="db1", port="22", kind="kex") == 1
    res = lab.root(MON, f"{PROVSEC} scan ssh -i {INVENTORY} --catalogue {CATALOGUE} --json db1")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["weak"] == [], res.stdout + res.stderr


@contextmanager
def tls_server(lab: LabHandle, host: str, cert: Path, key: Path) -> Iterator[None]:
    """openssl s_server in host's network namespace on its address, port 443 (bounded: 300 s)."""
    argv = ["ip", "netns", "exec", netns(lab, host), "timeout", "300", "openssl", "s_server", "-quiet", "-www",
            "-accept", f"{address(lab, host)}:443", "-cert", str(cert), "-key", str(key)]
    probe = ["ip", "netns", "exec", netns(lab, host), "ss", "-Hltn", "sport = :443"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False).stdout.strip():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()  # timeout passes SIGTERM on to openssl (SIGKILL would leave openssl running)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        gone = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        assert not gone, f"the TLS server on {host}:443 outlived its test: {gone}"


def test_expiring_self_signed_certificate_on_web1_agrees_with_testssl(scanner: LabHandle, tmp_path: Path) -> None:
    lab = scanner
    cert, key = self_signed(tmp_path, days=5.5, address=address(lab, "web1"))
    with tls_server(lab, "web1", cert, key):
        res = lab.root(MON, f"{PROVSEC} scan tls -i {INVENTORY} --store {STORE} --textfile {TEXTFILE} "
                            f"--min-days 30 --json web1:443")
        theirs = run_testssl(address(lab, "web1"), 443, tmp_path, netns(lab, MON))
        series = metrics(lab)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    (ours,) = json.loads(res.stdout)
    assert ours["expires_in_days"] == 5 == days_left_testssl(theirs)
    assert ours["chain_valid"] is False and "self-signed" in ours["chain_error"]
    assert "self signed" in theirs["cert_chain_of_trust"]["finding"]
    for version, tid in (("TLSv1.2", "TLS1_2"), ("TLSv1.3", "TLS1_3")):
        assert ours["versions"][version] == "accepted" and theirs[tid]["finding"].startswith("offered"), version
    for version, tid in (("TLSv1.0", "TLS1"), ("TLSv1.1", "TLS1_1")):
        assert ours["versions"][version] in ("refused", "not-testable"), ours["versions"]
        assert theirs[tid]["finding"] == "not offered", theirs[tid]
    assert value(series, "provsec_scan_tls_cert_expiry_days", host="web1", port="443") == 5
    assert value(series, "provsec_scan_tls_chain_valid", host="web1", port="443") == 0
