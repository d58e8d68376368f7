"""`provsec wan`: cleaning and secret fingerprints, change windows (Asia/Ho_Chi_Minh, across midnight), the
git store (history, diffs, nothing partial), the textfile read back with prometheus_client's parser, and the
CLI end to end (inventory → real SSH server replaying a recorded session → store, textfile, JSON)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from inventories import EXAMPLE
from prometheus_client.parser import text_string_to_metric_families
from sshreplay import Replay

from provsec.cli import main
from provsec.errors import CommandError, InputError
from provsec.inventory import load_inventory
from provsec.wan import backup, devices, metrics, windows
from provsec.wan.store import Store

DATA = Path(__file__).parent / "data" / "wan"
HCM = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh has had no DST since 1975


def at(text: str) -> dt.datetime:
    """A local (Hồ Chí Minh City) time, as an aware datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=HCM)


# --- cleaning and secrets -------------------------------------------------------------------------------------


def test_ios_secret_lines_are_fingerprinted_and_a_changed_secret_still_diffs() -> None:
    key, other = secrets.token_bytes(32), secrets.token_urlsafe(8)
    value = secrets.token_urlsafe(10)
    lines = [f"enable secret 9 {value}", f"username admin privilege 15 secret 9 {value}",
             f"username ops password 7 {value}", f"snmp-server community {value} RO 99",
             f"tacacs-server host 10.48.10.11 key 7 {value}", f"crypto isakmp key {value} address 10.48.64.1",
             f" neighbor 10.48.10.254 password 7 {value}", f"  key-string 7 {value}", f" key 7 {value}"]
    cleaned = devices.clean(devices.CISCO_IOS, [("show running-config", "\n".join(lines))], key)
    assert value not in cleaned
    assert cleaned.count(devices.fingerprint(key, value)) == len(lines)
    changed = devices.clean(devices.CISCO_IOS, [("show running-config", lines[0].replace(value, other))], key)
    assert changed.splitlines()[0] != cleaned.splitlines()[0]
    # a key chain's key id and its name are no secrets
    kept = devices.clean(devices.CISCO_IOS, [("show running-config", "key chain OSPF\n key 1\n")], key)
    assert kept == "key chain OSPF\n key 1\n"


def test_fingerprint_is_keyed() -> None:
    value = secrets.token_urlsafe(10)
    a, b = devices.fingerprint(secrets.token_bytes(32), value), devices.fingerprint(secrets.token_bytes(32), value)
    assert a != b and a.startswith("<secret:hmac-sha256:") and len(a) == len("<secret:hmac-sha256:>") + 16


def test_fingerprint_key_must_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "fingerprint.key"
    with pytest.raises(InputError, match="not found; create it with: install -m 0600"):
        devices.load_fingerprint_key(path)
    path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(InputError, match="mode 0644 lets others read it; chmod 0600"):
        devices.load_fingerprint_key(path)
    path.chmod(0o600)
    assert len(devices.load_fingerprint_key(path)) >= 16
    path.write_text("short", encoding="utf-8")
    with pytest.raises(InputError, match="shorter than 16 bytes"):
        devices.load_fingerprint_key(path)


def test_routeros_volatile_header_and_quoted_secret() -> None:
    key = secrets.token_bytes(32)
    value = secrets.token_urlsafe(10)
    text = (f"# 2026-11-26 09:20:11 by RouterOS 7.16.1\n# software id = AB12-CD34\n/user\n"
            f"add name=ops password=\"{value} with spaces\" group=full\n")
    cleaned = devices.clean(devices.ROUTEROS, [("/export", text)], key)
    quoted = f'"{value} with spaces"'
    assert cleaned == f"/user\nadd name=ops password={devices.fingerprint(key, quoted)} group=full\n"


def test_static_set_elements_are_configuration_and_kept() -> None:
    ruleset = ("table inet filter {\n\tset admins {\n\t\ttype ipv4_addr\n\t\telements = { 10.48.0.5,\n"
               "\t\t\t     10.48.0.6 }\n\t}\n}")
    cleaned = devices.clean(devices.LINUX, [("sudo -n nft list ruleset", ruleset)], secrets.token_bytes(32))
    assert "elements = { 10.48.0.5,\n\t\t\t     10.48.0.6 }" in cleaned


def test_named_counter_values_are_not_configuration() -> None:
    def ruleset(packets: int) -> str:
        return (f"table inet provsec_wan {{\n\tcounter drop__agency__dc {{\n"
                f"\t\tpackets {packets} bytes {packets * 60}\n\t}}\n\tchain forward {{\n"
                f"\t\tip saddr 10.0.0.1 counter packets {packets} bytes 9 drop\n\t}}\n}}")
    key = secrets.token_bytes(32)
    first = devices.clean(devices.LINUX, [("sudo -n nft list ruleset", ruleset(3))], key)
    assert first == devices.clean(devices.LINUX, [("sudo -n nft list ruleset", ruleset(4711))], key)
    assert "counter drop__agency__dc {\n\t\tpackets 0 bytes 0\n\t}" in first


# --- change windows -------------------------------------------------------------------------------------------


def test_window_across_midnight_in_ho_chi_minh_time() -> None:
    sat_night = windows.parse_list(["Sat 22:00-02:00"], "test")
    assert windows.inside(sat_night, at("2026-11-21T22:00"))  # Saturday
    assert windows.inside(sat_night, at("2026-11-22T01:59"))  # Sunday, still the Saturday window
    assert not windows.inside(sat_night, at("2026-11-22T02:00"))
    assert not windows.inside(sat_night, at("2026-11-21T21:59"))
    assert not windows.inside(sat_night, at("2026-11-22T22:30"))  # Sunday night: no window
    # 15:30 UTC on Saturday is 22:30 in Hồ Chí Minh City: inside, though UTC says Saturday afternoon
    assert windows.inside(sat_night, dt.datetime(2026, 11, 21, 15, 30, tzinfo=dt.UTC))
    assert not windows.inside(sat_night, dt.datetime(2026, 11, 21, 22, 30, tzinfo=dt.UTC))  # Sunday 05:30


def test_window_days_ranges_and_lists() -> None:
    work = windows.parse_list(["Mon-Fri 12:00-13:00", "sat,sun 08:00-09:00"], "test")
    assert windows.inside(work, at("2026-11-23T12:30"))  # Monday
    assert windows.inside(work, at("2026-11-27T12:59"))  # Friday
    assert not windows.inside(work, at("2026-11-28T12:30"))  # Saturday
    assert windows.inside(work, at("2026-11-29T08:15"))  # Sunday
    wrap = windows.parse_list(["Fri-Mon 23:00-01:00"], "test")
    assert windows.inside(wrap, at("2026-11-24T00:30"))  # Tuesday 00:30: Monday's window


def test_change_interval_overlapping_a_window_is_not_flagged() -> None:
    sat_night = windows.parse_list(["Sat 22:00-02:00"], "test")
    # fetched at 02:05 after a fetch at 01:05: the change may have been made before 02:00
    assert windows.overlaps(sat_night, at("2026-11-22T01:05"), at("2026-11-22T02:05"))
    assert not windows.overlaps(sat_night, at("2026-11-22T02:05"), at("2026-11-22T03:05"))
    assert not windows.overlaps((), at("2026-11-22T01:05"), at("2026-11-22T02:05"))


@pytest.mark.parametrize(("spec", "message"), [
    ("Sat 22:00", "write it as DAYS HH:MM-HH:MM"),
    ("Sam 22:00-02:00", "unknown day 'Sam'"),
    ("Sat 25:00-02:00", "25:00 is not a time of day"),
    ("Sat 22:00-22:00", "starts and ends at the same time"),
])
def test_bad_window_names_its_source(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=f"group_vars/wan_edge/vars.yml: change window {spec!r}: .*{message}"):
        windows.parse(spec, "group_vars/wan_edge/vars.yml")


# --- store ----------------------------------------------------------------------------------------------------


def test_store_history_diff_and_refs(tmp_path: Path) -> None:
    store = Store(tmp_path / "s").init()
    t = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    first = store.save("gw1", "hostname gw1\n!\n", t)
    assert store.save("gw1", "hostname gw1\n!\n", t + dt.timedelta(hours=1)) is None
    second = store.save("gw1", "hostname gw1\nip ssh version 2\n!\n", t + dt.timedelta(hours=2))
    assert first and second
    history = store.history("gw1")
    assert [r.commit for r in history] == [second, first]
    assert history[0].time == "2026-11-26T04:00:00Z"
    assert history[0].subject == "gw1: configuration changed"
    assert history[1].subject == "gw1: first version"
    log = store.git("log", "-1", "--format=%an <%ae>%n%B")
    assert log.startswith("provsec wan backup <provsec-wan-backup@localhost>\ngw1: configuration changed\n")
    assert "Fetched 2026-11-26T04:00:00Z (2026-11-26 11:00 +07) by provsec wan backup." in log
    assert "+ip ssh version 2" in store.diff("gw1")
    assert store.diff("gw1", first[:8], second[:8]) == store.diff("gw1")
    assert store.diff("gw1", "latest", "latest") == ""
    with pytest.raises(InputError, match="version '--output=x': give latest, previous or a commit id"):
        store.diff("gw1", "--output=x")
    with pytest.raises(InputError, match="no stored version of 'gw9'"):
        store.diff("gw9")


def test_failed_commit_leaves_the_last_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "s").init()
    t = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    store.save("gw1", "v1\n", t)
    real = store.git

    def failing(*args: str, **kw: object) -> str:
        if args[0] == "commit":
            raise CommandError("git commit exited 1: disk full")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "git", failing)
    with pytest.raises(CommandError):
        store.save("gw1", "v2\n", t)
    monkeypatch.undo()
    assert store.file("gw1").read_text(encoding="utf-8") == "v1\n"
    assert store.git("status", "--porcelain") == ""
    assert store.save("gw1", "v2\n", t) is not None  # the next run commits it


def test_store_ignores_user_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Someone Else\n[commit]\n\tgpgsign = true\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    store = Store(tmp_path / "s").init()
    store.save("gw1", "v1\n", dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    assert store.git("log", "-1", "--format=%an") == "provsec wan backup\n"


# --- backup runs, outside-window flag, textfile ---------------------------------------------------------------


def _samples(path: Path) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            out[(s.name, s.labels["device"])] = s.value
    return out


def test_change_outside_window_flagged_until_in_window_change_or_ack(tmp_path: Path) -> None:
    store, textfile, key = Store(tmp_path / "s"), tmp_path / "wan.prom", secrets.token_bytes(32)
    sat_night = windows.parse_list(["Sat 22:00-02:00"], "test")
    dev = backup.Device("gw1", "192.0.2.1", 22, "provsec-wan", "cisco_ios", sat_night)
    config = iter(["hostname gw1\nend\n", "hostname gw1\nip ssh version 2\nend\n",
                   "hostname gw1\nip ssh version 2\nno ip http server\nend\n",
                   "hostname gw1\nend\n"])

    def fetch(_d: backup.Device) -> list[tuple[str, str]]:
        return [("show running-config", next(config))]

    def one(when: str) -> backup.DeviceResult:
        [r] = backup.run(store, [dev], fetch, key=key, textfile=textfile, now=lambda: at(when),
                         all_devices=["gw1", "gw2"])
        return r

    first = one("2026-11-23T10:00")  # Monday: the first version is no change
    assert first.first and not first.outside_window
    assert _samples(textfile)[("provsec_wan_config_changes_total", "gw1")] == 0
    assert one("2026-11-24T10:00").outside_window  # Tuesday morning, previous fetch Monday morning
    got = _samples(textfile)
    assert got[("provsec_wan_config_changed_outside_window", "gw1")] == 1
    assert got[("provsec_wan_config_changes_total", "gw1")] == 1
    assert got[("provsec_wan_config_last_change_timestamp_seconds", "gw1")] == at("2026-11-24T10:00").timestamp()
    assert got[("provsec_wan_config_backup_success", "gw1")] == 1
    assert got[("provsec_wan_config_backup_last_success_timestamp_seconds", "gw1")] == at("2026-11-24T10:00"
                                                                                           ).timestamp()
    # acknowledged: cleared
    assert main(["wan", "ack", "gw1", "--store", str(store.path), "--textfile", str(textfile), "--by", "Lan"]) == 0
    assert _samples(textfile)[("provsec_wan_config_changed_outside_window", "gw1")] == 0
    # Saturday 23:00 local (16:00 UTC): in the window, not flagged; the counter goes on
    assert not one("2026-11-28T23:00").outside_window
    got = _samples(textfile)
    assert got[("provsec_wan_config_changed_outside_window", "gw1")] == 0
    assert got[("provsec_wan_config_changes_total", "gw1")] == 2
    assert {d for _, d in got} == {"gw1"}  # gw2 never ran: no series invented for it


def test_failed_fetch_sets_success_0_keeps_last_success(tmp_path: Path) -> None:
    store, textfile, key = Store(tmp_path / "s"), tmp_path / "wan.prom", secrets.token_bytes(32)
    dev = backup.Device("gw1", "192.0.2.1", 22, "provsec-wan", "cisco_ios", ())
    answers = iter([[("show running-config", "hostname gw1\nend\n")], [("show running-config", "hostname gw1\n")]])

    def fetch(_d: backup.Device) -> list[tuple[str, str]]:
        return next(answers)

    backup.run(store, [dev], fetch, key=key, textfile=textfile, now=lambda: at("2026-11-23T10:00"))
    [r] = backup.run(store, [dev], fetch, key=key, textfile=textfile, now=lambda: at("2026-11-23T11:00"))
    assert r.state == "failed" and "does not end with the line `end`" in r.reason
    got = _samples(textfile)
    assert got[("provsec_wan_config_backup_success", "gw1")] == 0
    assert got[("provsec_wan_config_backup_last_success_timestamp_seconds", "gw1")] == at("2026-11-23T10:00"
                                                                                           ).timestamp()
    assert len(store.history("gw1")) == 1


def test_textfile_name_checked() -> None:
    with pytest.raises(InputError, match=r"must be a file named \*\.prom"):
        metrics.check_textfile(Path("/tmp/wan.txt"))


# --- inventory and CLI ----------------------------------------------------------------------------------------


def _inventory(tmp: Path, port: int, profile: str = "cisco_ios") -> Path:
    """The example inventory, with gw1 (10.48.10.1) a `profile` device on `port`."""
    inv = tmp / "inventory"
    shutil.copytree(EXAMPLE, inv)
    hosts = inv / "hosts.yml"
    hosts.write_text(hosts.read_text(encoding="utf-8").replace(
        "          ansible_host: 10.48.10.1\n",
        f"          ansible_host: 10.48.10.1\n          provsec_wan_profile: {profile}\n"
        f"          provsec_wan_port: {port}\n"), encoding="utf-8")
    (inv / "group_vars" / "wan_edge").mkdir()
    (inv / "group_vars" / "wan_edge" / "vars.yml").write_text(
        yaml.safe_dump({"provsec_wan_change_windows": ["Sat 22:00-02:00"]}), encoding="utf-8")
    return inv


def test_wan_devices_read_from_the_inventory(tmp_path: Path) -> None:
    inv = load_inventory(_inventory(tmp_path, 2222))
    [gw1] = backup.wan_devices(inv)
    assert (gw1.name, gw1.address, gw1.port, gw1.user, gw1.profile) == ("gw1", "10.48.10.1", 2222, "provsec-wan",
                                                                       "cisco_ios")
    assert [w.text for w in gw1.windows] == ["Sat 22:00-02:00"]
    with pytest.raises(InputError, match=r"db1: not in the role group wan_edge \(WAN edges: gw1\)"):
        backup.wan_devices(inv, ["db1"])


def test_change_windows_file_overrides_the_inventory_and_names_devices(tmp_path: Path) -> None:
    inv = load_inventory(_inventory(tmp_path, 2222))
    path = tmp_path / "windows.yml"
    path.write_text(yaml.safe_dump({"windows": ["Sun 01:00-03:00"], "devices": {"gw1": ["Wed 20:00-22:00"]}}),
                    encoding="utf-8")
    [gw1] = backup.wan_devices(inv, window_file=windows.load_file(path))
    assert [w.text for w in gw1.windows] == ["Wed 20:00-22:00"]
    path.write_text(yaml.safe_dump({"devices": {"gw7": ["Wed 20:00-22:00"]}}), encoding="utf-8")
    with pytest.raises(InputError, match=r"--change-windows: devices\.gw7: not a host of the role group wan_edge"):
        backup.wan_devices(inv, window_file=windows.load_file(path))


def test_wan_device_variables_host_vars_over_hosts_yml_over_group_vars(tmp_path: Path) -> None:
    root = _inventory(tmp_path, 2222)
    group = {"provsec_wan_user": "group-user", "provsec_wan_port": 2200,
             "provsec_wan_change_windows": ["Sun 01:00-03:00"]}
    (root / "group_vars" / "wan_edge" / "vars.yml").write_text(yaml.safe_dump(group), encoding="utf-8")
    (root / "host_vars").mkdir()
    (root / "host_vars" / "gw1.yml").write_text(yaml.safe_dump({"provsec_wan_user": "host-user"}), encoding="utf-8")
    [gw1] = backup.wan_devices(load_inventory(root))
    assert (gw1.user, gw1.port, [w.text for w in gw1.windows]) == ("host-user", 2222, ["Sun 01:00-03:00"])
    (root / "host_vars" / "gw1.yml").write_text(yaml.safe_dump({"provsec_wan_profile": "junos"}), encoding="utf-8")
    with pytest.raises(InputError, match="gw1: provsec_wan_profile 'junos': must be one of linux, cisco_ios, routeros"):
        backup.wan_devices(load_inventory(root))


@pytest.fixture
def loopback_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's route to the WAN: connections to gw1's address reach the replay server on 127.0.0.1."""
    real = socket.create_connection

    def connect(address: tuple[str, int], *args: Any, **kw: Any) -> socket.socket:
        host, port = address
        return real(("127.0.0.1" if host == "10.48.10.1" else host, port), *args, **kw)

    monkeypatch.setattr(socket, "create_connection", connect)


@pytest.mark.usefixtures("loopback_route")
def test_cli_backup_end_to_end_json_then_history_and_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    values = {n: secrets.token_urlsafe(12) for n in ("enable", "netadmin", "backupuser", "ospf", "snmp", "tacacs")}
    fkey = tmp_path / "fingerprint.key"
    fd = os.open(fkey, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, secrets.token_urlsafe(32).encode())
    os.close(fd)
    store, textfile = tmp_path / "store", tmp_path / "provsec_wan_config.prom"
    recording = (DATA / "cisco_ios.txt").read_text(encoding="utf-8")
    for text in (recording, recording.replace("ip ssh version 2\n", "ip ssh version 2\nip http server\n")):
        with Replay.start(text, values) as replay:
            key = replay.write_client_key(tmp_path / "id")
            (tmp_path / "known_hosts").write_text(replay.known_hosts_line().replace("127.0.0.1", "10.48.10.1"),
                                                  encoding="utf-8")
            inv = _inventory(tmp_path / str(replay.port), replay.port)
            code = main(["wan", "backup", "-i", str(inv), "--store", str(store), "--textfile", str(textfile),
                         "--key-file", str(key), "--known-hosts", str(tmp_path / "known_hosts"),
                         "--fingerprint-key", str(fkey), "--timeout", "5", "--json"])
        assert code == 0
    out = capsys.readouterr().out
    reports = [json.loads(chunk) for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert reports[0]["devices"][0] | {"commit": None} == {
        "device": "gw1", "state": "ok", "reason": "", "commit": None, "changed": False, "first_version": True,
        "outside_window": False}
    assert reports[1]["devices"][0]["changed"] is True
    assert main(["wan", "history", "gw1", "--store", str(store), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["subject"] for h in history] == ["gw1: configuration changed", "gw1: first version"]
    assert main(["wan", "diff", "gw1", "--store", str(store)]) == 1
    assert "+ip http server" in capsys.readouterr().out
    assert ("provsec_wan_config_backup_success", "gw1") in _samples(textfile)


def test_cli_backup_unreachable_device_exits_1_with_its_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    fkey = tmp_path / "fingerprint.key"
    fkey.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    fkey.chmod(0o600)
    known = tmp_path / "known_hosts"
    known.write_text("", encoding="utf-8")
    inv = _inventory(tmp_path, 1)
    code = main(["wan", "backup", "-i", str(inv), "--store", str(tmp_path / "store"), "--key-file",
                 str(tmp_path / "nokey"), "--known-hosts", str(known), "--fingerprint-key", str(fkey)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith("gw1              failed   gw1: no host key for [10.48.10.1]:1 in ")
    assert "1 of 1 device(s) failed" in captured.err


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inventory(tmp_path, 22)
    code = main(["wan", "backup", "db1", "-i", str(inv), "--store", str(tmp_path / "s")])
    assert code == 2
    assert capsys.readouterr().err.startswith("provsec: error: ")
