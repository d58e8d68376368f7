"""provsec scan run: the scope check (refusals proven inside an empty network namespace, with a fake nmap that
records being started), the real nmap against listeners this test opens on 127.0.0.1, the scan store, and
nmap XML that is truncated or malformed (an error, nothing stored)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from inventories import EXAMPLE, example_without_baseline
from localnet import free_port

from provsec.cli import main
from provsec.errors import CommandError, InputError
from provsec.inventory.load import load_inventory
from provsec.scan import nmapscan, scope

REPO = Path(__file__).resolve().parents[2]
PHUYEN = EXAMPLE
DECLARED = "10.48.0.0/24, 10.48.10.0/24, 10.48.64.0/18"  # the example's provsec_networks, merged
NMAP_VERSION = "Nmap version 7.93 ( https://nmap.org )"  # the line python-nmap's PortScanner looks for
FAKE_NMAP = """#!/bin/sh
echo "$*" >> {record}
if [ "$1" = "-V" ]; then
{version}
fi
{body}
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A copy of the example inventory without its baseline (each test writes its own)."""
    return example_without_baseline(tmp_path / "inv")


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def listen(socks: list[socket.socket], port: int = 0) -> int:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    socks.append(s)
    return int(s.getsockname()[1])


def fake_nmap(directory: Path, body: str, version: str = f"echo '{NMAP_VERSION}'; exit 0") -> Path:
    """An `nmap` that appends its arguments (one line per start, `-V` included) to a record file, then runs
    `version` for `nmap -V` (python-nmap's PortScanner runs it first), body otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "started"
    script = directory / "nmap"
    script.write_text(FAKE_NMAP.format(record=record, body=body, version=version))
    script.chmod(0o755)
    return record


def in_empty_netns(argv: list[str], path_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run provsec in a new, empty network namespace (only a loopback that is down): even a broken refusal
    could not send a packet anywhere."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    env = {**os.environ, "PATH": f"{path_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([*unshare, sys.executable, "-m", "provsec", *argv], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_empty_netns_has_no_route() -> None:
    """The namespace the refusal tests run in really is empty: nothing but a loopback link."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    done = subprocess.run([*unshare, "ip", "-o", "link"], capture_output=True, text=True, timeout=10, check=True)
    links = [line.split(":")[1].strip() for line in done.stdout.splitlines()]
    assert links == ["lo"]


@pytest.mark.parametrize(("target", "named"), [
    ("192.0.2.10", "192.0.2.10"),            # an address outside every declared range
    ("10.48.0.0/16", "10.48.0.0/16"),        # a range that only overlaps the declared ones
    ("198.18.0.7", "198.18.0.7"),            # the lab's range, which this inventory does not declare
    ("example.org", "example.org"),          # a name: never looked up in DNS
])
def test_out_of_scope_target_is_refused_before_nmap_starts(inventory: Path, tmp_path: Path, target: str,
                                                            named: str) -> None:
    record = fake_nmap(tmp_path / "bin", "exit 1")
    store = tmp_path / "store"
    done = in_empty_netns(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", "22", target],
                          tmp_path / "bin")
    assert done.returncode == 2, done.stderr
    assert not record.exists(), "nmap was started (even if only for -V) for an out-of-scope target"
    assert not store.exists()
    assert named in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    if "/" in target or target[0].isdigit():
        assert DECLARED in done.stderr


def test_one_bad_target_refuses_the_whole_run(inventory: Path, tmp_path: Path) -> None:
    record = fake_nmap(tmp_path / "bin", "exit 1")
    done = in_empty_netns(["scan", "run", "-i", str(inventory), "--store", str(tmp_path / "s"), "-p", "22",
                           "127.0.0.1", "web1", "203.0.113.5"], tmp_path / "bin")
    assert done.returncode == 2
    assert "203.0.113.5" in done.stderr
    assert not record.exists()


def test_ssh_and_tls_posture_refuse_out_of_scope(inventory: Path, tmp_path: Path) -> None:
    for argv in (["scan", "ssh", "-i", str(inventory), "192.0.2.1:22"],
                 ["scan", "tls", "-i", str(inventory), "[2001:db8::1]:443"]):
        done = in_empty_netns(argv, tmp_path)
        assert done.returncode == 2, done.stderr
        assert "outside the scan scope" in done.stderr


def test_in_scope_target_does_start_the_fake_nmap(inventory: Path, tmp_path: Path) -> None:
    """The control for the refusals above: the same setup with an in-scope target reaches nmap, so a missing
    record file there means "refused", not "the fake was never on PATH"."""
    record = fake_nmap(tmp_path / "bin", "echo 'nmap: fake' >&2; exit 1")
    done = in_empty_netns(["scan", "run", "-i", str(inventory), "--store", str(tmp_path / "s"), "-p", "22,80",
                           "127.0.0.1"], tmp_path / "bin")
    assert record.read_text().splitlines() == [
        "-V", "-oX - 127.0.0.1 -p 22,80 -n -sT -T3 --host-timeout 900s"]
    assert done.returncode == 3
    assert "nmap wrote no XML report: nmap: fake" in done.stderr


def test_scope_resolves_hosts_groups_and_ranges() -> None:
    inv = load_inventory(PHUYEN)
    targets = scope.resolve(inv, ["web1", "10.48.10.0/28", "127.0.0.1", "web1"])
    assert [(t.name, str(t.network)) for t in targets] == [
        ("web1", "10.48.10.31/32"), ("10.48.10.0/28", "10.48.10.0/28"), ("127.0.0.1", "127.0.0.1/32")]
    group = scope.resolve(inv, ["monitoring"])
    assert [t.name for t in group] == [h.name for h in inv.hosts if "monitoring" in h.groups]
    with pytest.raises(InputError, match="at most 65536"):
        scope.resolve(inv, ["10.0.0.0/8"])
    with pytest.raises(InputError, match=r"port '0' is not a number from 1 to 65535"):
        scope.parse_endpoint(inv, "web1:0", 22)


@pytest.mark.parametrize(("options", "message"), [
    (nmapscan.ScanOptions(timing=6), "-T6: must be 0"),
    (nmapscan.ScanOptions(top_ports=0), "--top-ports 0"),
])
def test_bad_options_are_refused(options: nmapscan.ScanOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        options.check()


TRUNCATED = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sT 127.0.0.1" start="1795696171" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="1" services="22"/>
<host><status state="up" reason="localhost-response"/><address addr="127.0.0.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>"""

NO_FINISH = """<nmaprun scanner="nmap" args="nmap" version="7.93"><scaninfo protocol="tcp" services="22"/></nmaprun>"""


@pytest.mark.parametrize(("xml", "message"), [
    (TRUNCATED, "not well-formed XML"),
    (NO_FINISH, "truncated nmap report"),
    ("<html><body>proxy error</body></html>", "not an nmap report"),
])
def test_bad_xml_from_nmap_is_an_error_and_nothing_is_stored(  # noqa: PLR0917 - fixtures and parameters
        inventory: Path, tmp_path: Path, xml: str, message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out.xml").write_text(xml)
    fake_nmap(tmp_path / "bin", f"cat {tmp_path / 'out.xml'}")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    store = tmp_path / "store"
    assert main(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", "22", "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "nmap's XML output" in err
    assert not store.exists() or not any(store.iterdir())


EXTRAPORTS = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sT -p 20-25 10.48.10.31" version="7.93">
<scaninfo type="connect" protocol="tcp" numservices="6" services="20-25"/>
<host><status state="up" reason="syn-ack"/><address addr="10.48.10.31" addrtype="ipv4"/>
<ports><extraports state="filtered" count="3"><extrareasons reason="no-response" count="3" proto="tcp"
 ports="20-21,23"/></extraports>
<extraports state="closed" count="2"><extrareasons reason="conn-refused" count="2" proto="tcp" ports="24-25"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/><service name="ssh" product="OpenSSH"
 version="9.2p1"/></port></ports></host>
<runstats><finished time="1" exit="success"/><hosts up="1" down="1" total="2"/></runstats></nmaprun>"""


def test_xml_states_come_from_ports_and_extraports() -> None:
    inv = load_inventory(PHUYEN)
    targets = scope.resolve(inv, ["web1", "db1"])
    result = nmapscan.parse_xml(EXTRAPORTS, "fixture", targets, lambda a: scope.host_name(inv, a),
                                started_at="t0", finished_at="t1")
    web1, db1 = result.host("10.48.10.31"), result.host("10.48.10.21")
    assert web1 is not None and db1 is not None
    assert [(p.port, p.state) for p in web1.ports] == [(20, "filtered"), (21, "filtered"), (22, "open"),
                                                       (23, "filtered"), (24, "closed"), (25, "closed")]
    assert web1.port(22) is not None and web1.port(22).product == "OpenSSH"  # type: ignore[union-attr]
    assert (web1.name, db1.name, db1.status) == ("web1", "db1", "down")  # asked for, absent: down


def test_real_nmap_on_local_listeners(inventory: Path, tmp_path: Path, listeners: list[socket.socket],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    open_ports = sorted([listen(listeners), listen(listeners)])
    closed_ports = sorted({free_port(), free_port()} - set(open_ports))
    ports = ",".join(str(p) for p in open_ports + closed_ports)
    store = tmp_path / "store"
    code = main(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", ports, "-T4", "--json",
                 "127.0.0.1"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # nothing reviewed yet: the host and its open ports are drift
    host = report["scan"]["hosts"][0]
    states = {p["port"]: p["state"] for p in host["ports"]}
    assert states == {**dict.fromkeys(open_ports, "open"), **dict.fromkeys(closed_ports, "closed")}
    command = report["scan"]["command"].split()  # nmap's own record of its arguments
    assert command[0] == "nmap" and "127.0.0.1" in command
    assert {"-n", "-sT", "-T4", "-oX", "-p"} <= set(command)
    stored = sorted(store.glob("scan-*.json"))
    assert [str(p) for p in stored] == [report["stored"]]
    assert json.loads(stored[0].read_text())["hosts"] == report["scan"]["hosts"]
    assert sorted((d["kind"], d["port"]) for d in report["drift"]) == sorted(
        [("host-appeared", None)] + [("unexpected-open", p) for p in open_ports])


def test_nmap_run_past_the_timeout_is_killed(inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    record = fake_nmap(tmp_path / "bin", "exec sleep 20")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    store = tmp_path / "store"
    started = time.monotonic()
    code = main(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", "22", "--timeout", "1",
                 "127.0.0.1"])
    took = time.monotonic() - started
    assert code == 3
    assert "nmap did not finish within 1 s and was killed" in capsys.readouterr().err
    assert took < 10  # the fake would sleep 20 s
    assert len(record.read_text().splitlines()) == 2  # -V, then the scan
    assert not store.exists() or not any(store.iterdir())


def test_a_hanging_nmap_version_check_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nmap(tmp_path / "bin", "exit 1", version="exec sleep 20")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(nmapscan, "VERSION_TIMEOUT", 0.5)
    targets = scope.resolve(load_inventory(PHUYEN), ["127.0.0.1"])
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"`nmap -V` did not answer within 0\.5 s"):
        nmapscan.scan(targets, nmapscan.ScanOptions(ports=(22,)), str)
    assert time.monotonic() - started < 5


def test_an_nmap_that_is_not_nmap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = fake_nmap(tmp_path / "bin", "exit 1", version="echo 'something else 1.0'; exit 0")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    targets = scope.resolve(load_inventory(PHUYEN), ["127.0.0.1"])
    with pytest.raises(CommandError, match="does not print nmap's version"):
        nmapscan.scan(targets, nmapscan.ScanOptions(ports=(22,)), str)
    assert record.read_text().splitlines() == ["-V"]  # no scan was started


@pytest.mark.parametrize("timeout", [0.0, 0.5, 8 * 86400.0])
def test_an_unbounded_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(InputError, match=r"--timeout .*: must be 1 second to 7 days"):
        nmapscan.ScanOptions(timeout=timeout).check()
