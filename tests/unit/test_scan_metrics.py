"""The scan's node_exporter textfile: series from a scan, the drift counter kept in the store across runs, the
budget of unapproved port labels, failures, SSH and TLS posture series; the textfile written by the real
`provsec scan run` against listeners on 127.0.0.1; times in tables shown in Asia/Ho_Chi_Minh."""

from __future__ import annotations

import calendar
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from inventories import EXAMPLE, example_without_baseline
from localnet import free_port
from prometheus_client.parser import text_string_to_metric_families

from provsec.cli import main
from provsec.errors import InputError
from provsec.inventory.load import load_inventory
from provsec.scan import drift, metrics, output, scope, tlsposture
from provsec.scan.baseline import Approved, Baseline
from provsec.scan.model import HostResult, PortResult, ScanResult
from provsec.scan.sshposture import SshOffer, SshPosture, Weak
from provsec.scan.tlsposture import TlsPosture

REPO = Path(__file__).resolve().parents[2]
PHUYEN = EXAMPLE
INV = load_inventory(PHUYEN)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes | str) -> Samples:
    raw = text.decode() if isinstance(text, bytes) else text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(raw) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def names(found: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in found if n == name]


def approved(port: int) -> Approved:
    return Approved(port, "tcp", "reviewed", "An", "2026-10-01T02:00:00Z")


BASE = Baseline(Path("scan_baseline.yml"), {"web1": (approved(22), approved(443)), "mon1": (approved(22),)},
                {"web1": "10.48.10.31", "mon1": "10.48.10.11"})


def ports(*states: tuple[int, str]) -> tuple[PortResult, ...]:
    return tuple(PortResult(p, "tcp", s) for p, s in states)


def a_scan(finished: str, *hosts: HostResult) -> ScanResult:
    return ScanResult(finished, finished, "7.93", "nmap", (), (22, 80, 443, 8080), hosts)


WEB1 = HostResult("10.48.10.31", "web1", "up", ports((22, "open"), (80, "closed"), (443, "closed"), (8080, "open")))
MON1 = HostResult("10.48.10.11", "mon1", "up", ports((22, "open"), (80, "closed"), (443, "closed"), (8080, "closed")))
STRANGER = HostResult("10.48.10.200", "10.48.10.200", "up",
                      ports((22, "closed"), (80, "open"), (443, "closed"), (8080, "closed")))
TARGETS = scope.resolve(INV, ["web1", "mon1", "10.48.10.200"])


def test_a_scan_becomes_bounded_series_and_the_drift_counter_adds_up() -> None:
    state = metrics.MetricsState()
    scan = a_scan("2026-11-26T01:00:00Z", MON1, WEB1, STRANGER)
    metrics.record_scan(state, INV, BASE, TARGETS, scan=scan, findings=drift.drift(scan, BASE))
    found = samples(metrics.render(state))
    finished = float(calendar.timegm((2026, 11, 26, 1, 0, 0)))
    groups = {*INV.host("web1").groups, *INV.host("mon1").groups, "unlisted"}
    assert {d["group"] for d in names(found, "provsec_scan_success")} == groups
    for group in groups:
        assert value(found, "provsec_scan_success", group=group) == 1
        assert value(found, "provsec_scan_last_run_timestamp_seconds", group=group) == finished
        assert value(found, "provsec_scan_last_success_timestamp_seconds", group=group) == finished
    # web1: 8080 open, not approved; 443 approved and closed. mon1: as approved. 10.48.10.200: never reviewed
    assert {d["host"]: value(found, "provsec_scan_unexpected_open_ports", **d)
            for d in names(found, "provsec_scan_unexpected_open_ports")} == {"web1": 1, "mon1": 0, "unlisted": 1}
    assert {d["host"]: value(found, "provsec_scan_approved_ports_not_open", **d)
            for d in names(found, "provsec_scan_approved_ports_not_open")} == {"web1": 1, "mon1": 0, "unlisted": 0}
    assert sorted((d["host"], d["port"]) for d in names(found, "provsec_scan_unexpected_open_port")) == [
        ("unlisted", "80"), ("web1", "8080")]
    assert value(found, "provsec_scan_unexpected_ports_dropped") == 0
    expected_events = {"unexpected-open": 2, "approved-not-open": 1, "host-disappeared": 0, "host-appeared": 1}
    for kind, count in expected_events.items():
        assert value(found, "provsec_scan_drift_events_total", kind=kind) == count

    # the next day web1 is fixed; the counter keeps what the first scan counted
    fixed = HostResult("10.48.10.31", "web1", "up", ports((22, "open"), (80, "closed"), (443, "open"),
                                                          (8080, "closed")))
    later = a_scan("2026-11-27T01:00:00Z", fixed)
    metrics.record_scan(state, INV, BASE, TARGETS[:1], scan=later, findings=drift.drift(later, BASE))
    found = samples(metrics.render(state))
    assert value(found, "provsec_scan_unexpected_open_ports", host="web1") == 0
    assert value(found, "provsec_scan_unexpected_open_ports", host="unlisted") == 1  # not scanned again: kept
    for kind, count in expected_events.items():
        assert value(found, "provsec_scan_drift_events_total", kind=kind) == count
    assert value(found, "provsec_scan_last_run_timestamp_seconds", group="unlisted") == finished
    for group in INV.host("web1").groups:
        assert value(found, "provsec_scan_last_run_timestamp_seconds", group=group) == finished + 86400


def test_unapproved_port_labels_stay_within_the_budget() -> None:
    web1_ports = list(range(1000, 1013))  # 13
    mon1_ports = list(range(2000, 2012))  # 12
    web1 = HostResult("10.48.10.31", "web1", "up", ports(*((p, "open") for p in web1_ports)))
    mon1 = HostResult("10.48.10.11", "mon1", "up", ports(*((p, "open") for p in mon1_ports)))
    scan = ScanResult("2026-11-26T01:00:00Z", "2026-11-26T01:00:00Z", "7.93", "nmap", (),
                      tuple(web1_ports + mon1_ports), (mon1, web1))
    state = metrics.MetricsState()
    metrics.record_scan(state, INV, BASE, TARGETS[:2], scan=scan, findings=drift.drift(scan, BASE))
    found = samples(metrics.render(state))
    shown = sorted((int(d["port"]), d["host"]) for d in names(found, "provsec_scan_unexpected_open_port"))
    assert shown == [(p, "web1") for p in web1_ports] + [(p, "mon1") for p in range(2000, 2007)]  # lowest 20
    assert value(found, "provsec_scan_unexpected_ports_dropped") == 25 - 20
    assert value(found, "provsec_scan_unexpected_open_ports", host="mon1") == 12  # the counts are never capped
    assert len(names(found, "provsec_scan_unexpected_open_port")) == metrics.UNEXPECTED_PORT_BUDGET == 20


def test_a_failed_scan_keeps_the_last_success() -> None:
    state = metrics.MetricsState()
    scan = a_scan("2026-11-26T01:00:00Z", WEB1)
    metrics.record_scan(state, INV, BASE, TARGETS[:1], scan=scan, findings=drift.drift(scan, BASE))
    metrics.record_failure(state, INV, TARGETS[:1], 1_800_000_000.0)
    found = samples(metrics.render(state))
    group = INV.host("web1").groups[0]
    assert value(found, "provsec_scan_success", group=group) == 0
    assert value(found, "provsec_scan_last_run_timestamp_seconds", group=group) == 1_800_000_000.0
    assert value(found, "provsec_scan_last_success_timestamp_seconds", group=group) == calendar.timegm(
        (2026, 11, 26, 1, 0, 0))


def ssh_result(host: str, weak: tuple[Weak, ...]) -> SshPosture:
    offer = SshOffer("SSH-2.0-OpenSSH_9.2", (), (), (), (), (), (), ())
    return SshPosture(host, "10.48.10.31", 22, offer, 3, weak)


def test_ssh_and_tls_posture_series() -> None:
    state = metrics.MetricsState()
    weak = (Weak("ciphers", "aes128-cbc", "PS-SSH-09"), Weak("ciphers", "3des-cbc", "PS-SSH-09"),
            Weak("host_keys", "ssh-rsa", ""), Weak("macs", "hmac-sha1", "PS-SSH-10"))
    metrics.record_ssh(state, INV, [ssh_result("web1", weak), ssh_result("retired-host", ())], 1_790_000_000.0)
    not_after = "2026-12-06T00:00:00Z"
    tls = TlsPosture("web1", "10.48.10.31", 443, "web1", {"TLSv1.0": "accepted", "TLSv1.1": "refused",
                                                          "TLSv1.2": "accepted", "TLSv1.3": "accepted"},
                     not_after, 9, False, "self-signed certificate")
    dead = TlsPosture("127.0.0.1", "127.0.0.1", 8443, "127.0.0.1", {}, "", None, None, "no TLS handshake")
    metrics.record_tls(state, INV, [tls, dead], 1_790_000_000.0)
    found = samples(metrics.render(state))
    assert {d["kind"]: value(found, "provsec_scan_ssh_weak_algorithms", **d)
            for d in names(found, "provsec_scan_ssh_weak_algorithms")} == {
        "kex": 0, "cipher": 2, "mac": 1, "hostkey": 1}
    assert {d["host"] for d in names(found, "provsec_scan_ssh_weak_algorithms")} == {"web1"}  # not in inventory
    key = {"host": "web1", "port": "443"}
    assert value(found, "provsec_scan_tls_cert_expiry_timestamp_seconds", **key) == calendar.timegm(
        (2026, 12, 6, 0, 0, 0))
    assert value(found, "provsec_scan_tls_cert_expiry_days", **key) == 9
    assert value(found, "provsec_scan_tls_weak_versions", **key) == 1
    assert value(found, "provsec_scan_tls_chain_valid", **key) == 0
    dead_key = {"host": "127.0.0.1", "port": "8443"}
    assert value(found, "provsec_scan_tls_cert_expiry_days", **dead_key) is None  # no certificate, no series
    assert value(found, "provsec_scan_tls_last_check_timestamp_seconds", **dead_key) == 1_790_000_000.0


def test_update_is_atomic_and_persists_the_state(tmp_path: Path) -> None:
    store, textfile = tmp_path / "store", tmp_path / "textfile" / "provsec_scan.prom"
    scan = a_scan("2026-11-26T01:00:00Z", WEB1)
    for _ in range(3):  # three runs: the counter is in the store, not in the textfile
        metrics.update(store, textfile, lambda st: metrics.record_scan(st, INV, BASE, TARGETS[:1], scan=scan,
                                                                       findings=drift.drift(scan, BASE)))
    found = samples(textfile.read_text())
    assert value(found, "provsec_scan_drift_events_total", kind="unexpected-open") == 3
    assert value(found, "provsec_scan_drift_events_total", kind="approved-not-open") == 3
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["provsec_scan.prom"]  # no temp file left
    assert all(name.startswith("provsec_scan_") for name, _ in found)
    (store / metrics.STATE_FILE).write_text('{"format": "provsec-scan-metrics/1", "groups": []}')
    with pytest.raises(InputError, match=r"metrics\.json: malformed scan metrics state"):
        metrics.update(store, textfile, lambda st: None)


@pytest.mark.parametrize("name", ["provsec_scan.txt", "provsec_scan"])
def test_textfile_must_be_a_prom_file(inventory: Path, tmp_path: Path, name: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    code = main(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", "22", "--textfile",
                 str(tmp_path / name), "127.0.0.1"])
    assert code == 2
    assert f"--textfile {tmp_path / name}: must be a file named *.prom" in capsys.readouterr().err
    assert not store.exists()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return example_without_baseline(tmp_path / "inv")


@pytest.fixture
def listener() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield int(s.getsockname()[1])
    s.close()


def test_scan_run_writes_the_textfile(inventory: Path, tmp_path: Path, listener: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The real nmap on 127.0.0.1: one approved listener, one approved port closed, one listener unapproved."""
    second = socket.socket()
    second.bind(("127.0.0.1", 0))
    second.listen(8)
    unapproved = int(second.getsockname()[1])
    closed = free_port()
    entry = '{{port: {}, proto: tcp, reason: "test", approved_by: "An", approved_at: "2026-10-01T02:00:00Z"}}'
    (inventory / "scan_baseline.yml").write_text(
        f"hosts:\n  127.0.0.1: [{entry.format(listener)}, {entry.format(closed)}]\n")
    textfile = tmp_path / "node-exporter" / "provsec_scan.prom"
    before = time.time()
    try:
        code = main(["scan", "run", "-i", str(inventory), "--store", str(tmp_path / "store"), "-T4", "-p",
                     ",".join(str(p) for p in (listener, unapproved, closed)), "--textfile", str(textfile),
                     "127.0.0.1"])
    finally:
        second.close()
    out = capsys.readouterr().out
    assert code == 1
    found = samples(textfile.read_text())
    assert value(found, "provsec_scan_success", group="unlisted") == 1  # loopback is no inventory host
    assert before - 1 <= (value(found, "provsec_scan_last_success_timestamp_seconds", group="unlisted") or 0) \
        <= time.time() + 1
    assert value(found, "provsec_scan_unexpected_open_ports", host="127.0.0.1") == 1
    assert value(found, "provsec_scan_approved_ports_not_open", host="127.0.0.1") == 1
    assert value(found, "provsec_scan_unexpected_open_port", host="127.0.0.1", port=str(unapproved),
                 proto="tcp") == 1
    assert value(found, "provsec_scan_drift_events_total", kind="unexpected-open") == 1
    assert out.startswith("scan started 20") and out.split("\n", 1)[0].split(" (nmap")[0].endswith("+07")


def test_failed_scan_run_is_in_the_textfile(inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "bin" / "nmap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Nmap version 7.93 ( https://nmap.org )' && exit 0\n"
                    "echo 'nmap: broken' >&2; exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    textfile = tmp_path / "provsec_scan.prom"
    code = main(["scan", "run", "-i", str(inventory), "--store", str(tmp_path / "store"), "-p", "22",
                 "--textfile", str(textfile), "127.0.0.1"])
    assert code == 3
    assert "nmap wrote no XML report: nmap: broken" in capsys.readouterr().err
    found = samples(textfile.read_text())
    assert value(found, "provsec_scan_success", group="unlisted") == 0
    assert value(found, "provsec_scan_last_success_timestamp_seconds", group="unlisted") == 0
    assert not list((tmp_path / "store").glob("scan-*.json"))


def test_tls_command_shows_local_time_and_writes_the_textfile(
        inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fake_posture(host: str, address: str, port: int, **_: object) -> TlsPosture:
        return TlsPosture(host, address, port, address, {"TLSv1.2": "accepted"}, "2026-12-01T17:30:00Z", 5, True, "")

    monkeypatch.setattr(tlsposture, "posture", fake_posture)  # the command's one call point for TLS
    textfile = tmp_path / "provsec_scan.prom"
    code = main(["scan", "tls", "-i", str(inventory), "--store", str(tmp_path / "store"), "--textfile",
                 str(textfile), "web1:443"])
    out = capsys.readouterr().out
    assert code == 1  # 5 days < --min-days 14
    assert "5 day(s) left (2026-12-02 00:30:00 +07)" in out  # 17:30 UTC is 00:30 the next day in Việt Nam
    found = samples(textfile.read_text())
    assert value(found, "provsec_scan_tls_cert_expiry_days", host="web1", port="443") == 5


@pytest.mark.parametrize(("stored", "shown"), [
    ("2026-11-26T12:00:00Z", "2026-11-26 19:00:00 +07"),
    ("2026-12-31T17:00:00Z", "2027-01-01 00:00:00 +07"),
    ("", "-"),
])
def test_times_for_people_are_in_ho_chi_minh(stored: str, shown: str) -> None:
    assert output.local_time(stored) == shown
    if stored:
        lines = output.scan_table(ScanResult(stored, stored, "7.93", "nmap", (), (22,), ()))
        assert lines[0].startswith(f"scan started {shown} (nmap 7.93)")
        assert a_scan(stored).to_json()["started_at"] == stored  # JSON keeps UTC


def test_every_metric_is_documented_and_only_those() -> None:
    text = (REPO / "exporters" / "METRICS.md").read_text(encoding="utf-8")
    section = text.split("## Network exposure (scan)", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    state = metrics.MetricsState()
    scan = a_scan("2026-11-26T01:00:00Z", MON1, WEB1, STRANGER)
    metrics.record_scan(state, INV, BASE, TARGETS, scan=scan, findings=drift.drift(scan, BASE))
    metrics.record_ssh(state, INV, [ssh_result("web1", ())], 1.0)
    metrics.record_tls(state, INV, [TlsPosture("web1", "10.48.10.31", 443, "web1", {}, "2026-12-06T00:00:00Z", 9,
                                               True, "")], 1.0)
    exported = {name for name, _ in samples(metrics.render(state))}
    assert exported == documented


def test_a_damaged_metrics_state_fails_before_scanning(inventory: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / metrics.STATE_FILE).write_text("{not json")
    code = main(["scan", "run", "-i", str(inventory), "--store", str(store), "-p", "22", "--textfile",
                 str(tmp_path / "provsec_scan.prom"), "127.0.0.1"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{store / metrics.STATE_FILE}: the scan metrics state is not JSON" in err and err.count("\n") == 1
    assert sorted(p.name for p in store.iterdir()) == [metrics.STATE_FILE]  # no scan stored
