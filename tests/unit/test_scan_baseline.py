"""The scan baseline (format, validation naming file and key, accept), drift against it, differences between
two scans in table, JSON and ndiff text; and the whole review workflow with the real nmap on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from inventories import EXAMPLE, example_without_baseline
from localnet import free_port

from provsec.cli import main
from provsec.errors import InputError
from provsec.inventory.load import load_inventory
from provsec.scan import baseline, drift, output
from provsec.scan.model import HostResult, PortResult, ScanResult

REPO = Path(__file__).resolve().parents[2]
PHUYEN = EXAMPLE
INV = load_inventory(PHUYEN)


def test_example_baseline_loads() -> None:
    base = baseline.load(PHUYEN / "scan_baseline.yml", INV)
    assert {k: [(a.port, a.proto) for a in v] for k, v in base.hosts.items()} == {
        "mon1": [(22, "tcp"), (9090, "tcp")], "web1": [(22, "tcp"), (443, "tcp")]}
    assert base.addresses == {"mon1": "10.48.10.11", "web1": "10.48.10.31"}
    assert base.hosts["web1"][1].approved_by == "Trần Thị Bình"


ENTRY = '{port: 22, proto: tcp, reason: "SSH", approved_by: "An", approved_at: "2026-10-01T02:00:00Z"}'


@pytest.mark.parametrize(("text", "message"), [
    ("- web1", "must be a mapping with one key, hosts:"),
    ("hosts:\n  nohost: []", "hosts.nohost: not a host of"),
    ("hosts:\n  web1: {port: 22}", "hosts.web1: must be a list of approved ports"),
    ("hosts:\n  web1: [{port: 22, proto: tcp}]", "hosts.web1[0]: missing reason, approved_by, approved_at"),
    ("hosts:\n  web1: [" + ENTRY.replace("22", "70000") + "]", "hosts.web1[0].port: must be an integer"),
    ("hosts:\n  web1: [" + ENTRY.replace("tcp", "sctp") + "]", "hosts.web1[0].proto: must be one of tcp, udp"),
    ("hosts:\n  web1: [" + ENTRY.replace('"An"', '" "') + "]", "hosts.web1[0].approved_by: must be non-empty"),
    ("hosts:\n  web1: [" + ENTRY.replace("2026-10-01T02:00:00Z", "yesterday") + "]",
     "hosts.web1[0].approved_at: must be a UTC time"),
    ("hosts:\n  web1: [" + ENTRY + ", " + ENTRY + "]", "hosts.web1[1]: 22/tcp is listed twice"),
    ("hosts:\n  web1: []\n  10.48.10.31: []", "the same address (10.48.10.31) as hosts.web1"),
    ("hosts:\n  web1: [\n", "not valid YAML"),
])
def test_bad_baseline_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scan_baseline.yml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        baseline.load(path, INV)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def port(n: int, state: str, service: str = "") -> PortResult:
    return PortResult(n, "tcp", state, service=service)


def scan(started: str, *hosts: HostResult, targets: tuple[str, ...] = ()) -> ScanResult:
    return ScanResult(started, started, "7.93", "nmap -sT", targets or tuple(h.address for h in hosts),
                      (22, 80, 443, 9090), hosts)


MON1_UP = HostResult("10.48.10.11", "mon1", "up", (port(22, "open", "ssh"), port(80, "closed"),
                                                   port(443, "closed"), port(9090, "filtered")))
WEB1_UP = HostResult("10.48.10.31", "web1", "up", (port(22, "open", "ssh"), port(80, "open", "http"),
                                                   port(443, "open", "https"), port(9090, "closed")))
DB1_UP = HostResult("10.48.10.21", "db1", "up", (port(22, "open", "ssh"), port(80, "closed"),
                                                 port(443, "closed"), port(9090, "closed")))


def test_drift_against_the_baseline() -> None:
    base = baseline.load(PHUYEN / "scan_baseline.yml", INV)
    now = scan("2026-10-30T01:00:00Z", MON1_UP, WEB1_UP, DB1_UP)
    findings = drift.drift(now, base)
    # by hand: mon1's 9090 is approved but filtered; web1 has 80 open unapproved; db1 was never reviewed
    assert [(f.kind, f.host, f.port, f.state) for f in findings] == [
        ("approved-not-open", "mon1", 9090, "filtered"),
        ("unexpected-open", "web1", 80, "open"),
        ("host-appeared", "db1", None, ""),
        ("unexpected-open", "db1", 22, "open"),
    ]
    gone = scan("t", HostResult("10.48.10.11", "mon1", "down"), targets=("10.48.10.0/24",))
    kinds = [(f.kind, f.host) for f in drift.drift(gone, base)]
    assert kinds == [("host-disappeared", "mon1"), ("host-disappeared", "web1")]  # web1: in the range, absent
    narrow = ScanResult("t", "t", "7.93", "", ("10.48.10.31",), (22,), (HostResult("10.48.10.31", "web1", "up",
                                                                                    (port(22, "open"),)),))
    notes = drift.drift(narrow, base)
    assert [(f.kind, f.port, f.is_drift) for f in notes] == [("approved-not-scanned", 443, False)]


def test_accept_adds_open_removes_closed_keeps_the_rest(tmp_path: Path) -> None:
    shutil.copy(PHUYEN / "scan_baseline.yml", tmp_path / "scan_baseline.yml")
    base = baseline.load(tmp_path / "scan_baseline.yml", INV)
    now = dt.datetime(2026, 10, 30, 3, 4, 5, tzinfo=dt.UTC)
    updated, changes = baseline.accept(base, scan("t", MON1_UP, WEB1_UP, DB1_UP), "Lê Văn Cường", "rà soát 10/2026",
                                       [], now=now)
    assert sorted((c.action, c.host, c.port) for c in changes) == [
        ("added", "db1", 22), ("added", "web1", 80), ("removed", "mon1", 9090)]
    baseline.write(updated)
    raw = yaml.safe_load((tmp_path / "scan_baseline.yml").read_text())
    assert raw["hosts"]["web1"] == [
        {"port": 22, "proto": "tcp", "reason": "SSH quản trị từ mạng quản trị", "approved_by": "Nguyễn Văn An",
         "approved_at": "2026-10-01T02:00:00Z"},
        {"port": 80, "proto": "tcp", "reason": "rà soát 10/2026", "approved_by": "Lê Văn Cường",
         "approved_at": "2026-10-30T03:04:05Z"},
        {"port": 443, "proto": "tcp", "reason": "Cổng thông tin điện tử tỉnh (HTTPS)", "approved_by": "Trần Thị Bình",
         "approved_at": "2026-10-01T02:00:00Z"}]
    reloaded = baseline.load(tmp_path / "scan_baseline.yml", INV)
    assert drift.drift(scan("t", MON1_UP, WEB1_UP, DB1_UP), reloaded) == []
    with pytest.raises(InputError, match="--host mail9: not in the scan"):
        baseline.accept(base, scan("t", MON1_UP), "An", "x", ["mail9"])


def test_diff_and_ndiff_text() -> None:
    a = scan("2026-10-29T01:00:00Z", MON1_UP, WEB1_UP)
    web1_later = HostResult("10.48.10.31", "web1", "up", (port(22, "open", "ssh"), port(80, "closed", "http"),
                                                          port(443, "open", "https"), port(9090, "open")))
    b = scan("2026-10-30T01:00:00Z", web1_later, DB1_UP)
    diffs = drift.diff(a, b)
    assert [d.name for d in diffs] == ["mon1", "db1", "web1"]  # by address
    assert diffs[2].to_json() == {
        "address": "10.48.10.31", "name": "web1", "status": {"a": "up", "b": "up"},
        "ports": [{"port": 80, "proto": "tcp", "a": "open", "b": "closed", "service": "http"},
                  {"port": 9090, "proto": "tcp", "a": "closed", "b": "open", "service": ""}]}
    assert output.ndiff(a, b, diffs) == [
        "-Nmap 7.93 scan initiated 2026-10-29 08:00:00 +07 as: nmap -sT",  # shown in Asia/Ho_Chi_Minh
        "+Nmap 7.93 scan initiated 2026-10-30 08:00:00 +07 as: nmap -sT",
        "",
        "-mon1 (10.48.10.11):",
        "-Host is up.",
        "-PORT     STATE    SERVICE",
        "-22/tcp   open     ssh",
        "-80/tcp   closed",
        "-443/tcp  closed",
        "-9090/tcp filtered",
        "",
        "+db1 (10.48.10.21):",
        "+Host is up.",
        "+PORT     STATE  SERVICE",
        "+22/tcp   open   ssh",
        "+80/tcp   closed",
        "+443/tcp  closed",
        "+9090/tcp closed",
        "",
        " web1 (10.48.10.31):",
        " PORT     STATE  SERVICE",
        "-80/tcp   open   http",
        "+80/tcp   closed http",
        "-9090/tcp closed",
        "+9090/tcp open",
    ]
    assert drift.diff(b, b) == []


# nmap names an open port from its services table (37483/tcp → "gdrive-sync"): the ndiff lines expected below
# carry no service, so the test uses only ports the table does not name (read from nmap's own file, not the code).
NMAP_SERVICES = Path("/usr/share/nmap/nmap-services")
NAMED_TCP = {int(f[1].split("/")[0]) for f in (line.split() for line in NMAP_SERVICES.read_text().splitlines())
             if len(f) > 1 and not f[0].startswith("#") and f[1].endswith("/tcp")}


def listen(socks: list[socket.socket]) -> int:
    """A listener on a loopback port that nmap's services table does not name."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        if port not in NAMED_TCP:
            s.listen(8)
            socks.append(s)
            return port
        s.close()


def unnamed_free_port() -> int:
    while (port := free_port()) in NAMED_TCP:
        pass
    return port


def test_review_workflow_with_real_nmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """run (drift) -> baseline --accept -> run (clean) -> a listener stops, another starts -> run (drift) ->
    diff previous latest, in ndiff text."""
    inv = example_without_baseline(tmp_path / "inv")
    socks: list[socket.socket] = []
    try:
        first, second = listen(socks), listen(socks)
        spare = unnamed_free_port()
        ports = ",".join(str(p) for p in sorted({first, second, spare}))
        run = ["scan", "run", "-i", str(inv), "--store", str(tmp_path / "s"), "-p", ports, "-T4", "127.0.0.1"]
        assert main(run) == 1
        capsys.readouterr()
        assert main(["scan", "baseline", "-i", str(inv), "--store", str(tmp_path / "s"), "--accept",
                     "--approver", "Nguyễn Văn An", "--reason", "dịch vụ thử nghiệm"]) == 0
        assert "2 change(s) accepted by Nguyễn Văn An" in capsys.readouterr().out
        saved = yaml.safe_load((inv / "scan_baseline.yml").read_text())["hosts"]["127.0.0.1"]
        assert [(e["port"], e["approved_by"]) for e in saved] == sorted((p, "Nguyễn Văn An") for p in (first, second))
        assert main(run) == 0
        capsys.readouterr()
        socks.pop(1).close()  # the approved `second` stops
        listen_on = socket.socket()
        listen_on.bind(("127.0.0.1", spare))
        listen_on.listen(8)
        socks.append(listen_on)  # an unapproved service starts on `spare`
        assert main([*run, "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert sorted((d["kind"], d["port"], d["state"]) for d in report["drift"]) == sorted(
            [("approved-not-open", second, "closed"), ("unexpected-open", spare, "open")])
        assert main(["scan", "diff", "--store", str(tmp_path / "s"), "previous", "latest", "--format", "ndiff"]) == 1
        lines = capsys.readouterr().out.splitlines()
        body = [line for line in lines[3:] if line[:1] in "+-"]
        width = len(f"{max(second, spare)}/tcp")
        expected = []
        for p, before, after in sorted([(second, "open", "closed"), (spare, "closed", "open")]):
            expected += [f"-{f'{p}/tcp'.ljust(width)} {before}".rstrip(), f"+{f'{p}/tcp'.ljust(width)} {after}"]
        assert [line.rstrip() for line in body] == [line.rstrip() for line in expected]
        assert lines[2:4] == ["", " 127.0.0.1:"]
        assert lines[4].startswith(" PORT ")
    finally:
        for s in socks:
            s.close()
