"""WAN configuration audit (issue 7 §3): each rule on a compliant and a non-compliant configuration of each device
family, with the evidence lines that prove it; malformed configurations are refused naming the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from provsec.audit.evaluate import ControlException, Result
from provsec.errors import InputError
from provsec.wan.policy import Device, audit_device, load_wan_catalogue, parse_config

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "wan" / "audit"
CATALOGUE = load_wan_catalogue(REPO / "playbooks" / "controls" / "wan")
TODAY = dt.date(2026, 11, 26)
ADMIN = ("10.48.0.0/27",)
IDS = [f"PS-WAN-0{n}" for n in range(1, 9)]


def _audit(family: str, name: str, device: Device | None = None) -> dict[str, Result]:
    path = DATA / name
    parsed = parse_config(family, path.read_bytes(), str(path))
    results = audit_device(CATALOGUE, device or Device("gw", family, 3, ADMIN), parsed, TODAY)
    assert [r.id for r in results] == IDS
    return {r.id: r for r in results}


def test_catalogue_names_a_rule_for_every_family() -> None:
    assert [c.id for c in CATALOGUE.controls] == IDS
    assert {c.check.rule for c in CATALOGUE.controls} == {
        "no_telnet", "ssh_v2_only", "management_acl", "ntp", "remote_syslog", "snmp_v3_only",
        "no_default_credentials", "http_server_off"}


# --- Cisco IOS -----------------------------------------------------------------------------------


def test_ios_compliant_passes_every_control_with_its_lines() -> None:
    r = _audit("cisco_ios", "ios_good.cfg")
    assert {k: v.status for k, v in r.items()} == dict.fromkeys(IDS, "pass")
    assert r["PS-WAN-01"].evidence == ("line 56: line vty 0 4; line 60: transport input ssh; "
                                       "line 61: line vty 5 15; line 64: transport input none")
    assert r["PS-WAN-01"].actual == {"line vty 0 4": ["ssh"], "line vty 5 15": ["none"]}
    assert r["PS-WAN-02"].evidence == "line 22: ip ssh version 2"
    assert r["PS-WAN-03"].evidence == ("line 37: ip access-list standard MGMT-ADMIN; line 56: line vty 0 4; "
                                       "line 57: access-class MGMT-ADMIN in; line 61: line vty 5 15; "
                                       "line 62: access-class MGMT-ADMIN in")
    assert r["PS-WAN-04"].actual == ["10.48.10.11", "10.48.10.12"]
    assert r["PS-WAN-05"].evidence == "line 16: logging host 10.48.10.11"
    assert r["PS-WAN-06"].evidence == "line 41: snmp-server group PYN-MON v3 priv read PYN-VIEW"
    assert "line 17: enable secret 9 <secret:hmac:5e0c21aa>" in r["PS-WAN-07"].evidence
    assert r["PS-WAN-08"].evidence == "line 34: no ip http server"
    # the banner's text (which holds "line vty 0 4") is not read as a command
    assert "line 48" not in r["PS-WAN-01"].evidence


def test_ios_non_compliant_fails_every_control_with_its_evidence() -> None:
    r = _audit("cisco_ios", "ios_bad.cfg")
    assert {k: v.status for k, v in r.items()} == dict.fromkeys(IDS, "fail")
    assert r["PS-WAN-01"].actual == {"line vty 0 4": ["telnet", "ssh"], "line vty 5 15": []}
    assert r["PS-WAN-01"].evidence == ("line 26: line vty 0 4; line 30: transport input telnet ssh; "
                                       "line 31: line vty 5 15")
    assert "line vty 5 15: no `transport input`" in r["PS-WAN-01"].reason
    assert (r["PS-WAN-02"].actual, r["PS-WAN-02"].evidence) == ("1", "line 11: ip ssh version 1")
    assert "access-class NO-SUCH-ACL names no access list" in r["PS-WAN-03"].reason
    assert "line vty 5 15: no `access-class … in`" in r["PS-WAN-03"].reason
    assert r["PS-WAN-04"].evidence == "no line matches `ntp server`"
    assert r["PS-WAN-05"].evidence == "no line matches `logging host`"
    assert r["PS-WAN-06"].evidence == (
        "line 18: snmp-server community <secret:hmac:c0ffee00> RO; line 19: snmp-server group LEGACY v2c; "
        "line 20: snmp-server group AUTHONLY v3 auth; "
        "line 21: snmp-server host 10.48.10.11 traps version 2c <secret:hmac:c0ffee00>")
    assert r["PS-WAN-07"].evidence == (
        "line 6: enable password 7 <secret:hmac:0d1e2f3a>; "
        "line 8: username cisco privilege 15 password 7 <secret:hmac:77aa0011>; "
        "line 24: password 7 <secret:hmac:abcdef01>; line 28: password <secret:hmac:abcdef02>")
    assert "username backup" not in r["PS-WAN-07"].evidence  # `secret 5`: hashed, whatever the token
    assert "default account name: cisco" in r["PS-WAN-07"].reason
    assert r["PS-WAN-07"].actual == {"enable_password": True, "username_password": ["cisco"], "line_passwords": 2}
    assert (r["PS-WAN-08"].actual, r["PS-WAN-08"].evidence) == ("on", "line 16: ip http server")


@pytest.mark.parametrize(
    ("entries", "status"),
    [
        (" permit 10.48.0.5 0.0.0.0\n permit host 10.48.0.6\n permit 10.48.0.7\n", "pass"),
        (" 10 permit tcp 10.48.0.0 0.0.0.31 any eq 22\n 20 deny ip any any log\n", "pass"),
        (" permit any\n", "fail"),
        (" 10 permit host 192.0.2.1\n", "fail"),
        (" permit 10.48.0.0 0.0.255.0\n", "fail"),  # a wildcard that is not one network
        (" permit 10.48.0.0 0.0.1.255\n", "fail"),  # /23: wider than the admin /27
    ],
)
def test_ios_access_list_permits_only_admin_subnets(entries: str, status: str) -> None:
    text = (DATA / "ios_good.cfg").read_text(encoding="utf-8").replace(
        "ip access-list standard MGMT-ADMIN\n permit 10.48.0.0 0.0.0.31\n deny   any log\n",
        f"ip access-list {'extended' if 'tcp' in entries else 'standard'} MGMT-ADMIN\n{entries}")
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "cisco_ios", 3, ADMIN),
                                       parse_config("cisco_ios", text.encode(), "x.cfg"), TODAY)}
    assert r["PS-WAN-03"].status == status
    if status == "fail":
        assert r["PS-WAN-03"].reason.startswith(
            "line vty 0 4: MGMT-ADMIN permits sources outside the admin subnets 10.48.0.0/27")
        assert entries.splitlines()[0].strip() in r["PS-WAN-03"].evidence


def test_ios_numbered_access_list() -> None:
    text = (DATA / "ios_good.cfg").read_text(encoding="utf-8").replace("MGMT-ADMIN", "10").replace(
        "ip access-list standard 10\n permit 10.48.0.0 0.0.0.31\n deny   any log\n",
        "access-list 10 permit 10.48.0.0 0.0.0.31\naccess-list 10 permit any\n")
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "cisco_ios", 3, ADMIN),
                                       parse_config("cisco_ios", text.encode(), "x.cfg"), TODAY)}
    assert r["PS-WAN-03"].status == "fail"
    assert "line 38: access-list 10 permit any" in r["PS-WAN-03"].evidence


def test_ios_username_without_password_fails() -> None:
    text = (DATA / "ios_good.cfg").read_text(encoding="utf-8").replace(
        "username netadmin privilege 15 secret 9 <secret:hmac:91b3f7c2>", "username admin privilege 15 nopassword")
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "cisco_ios", 3),
                                       parse_config("cisco_ios", text.encode(), "x.cfg"), TODAY)}
    assert r["PS-WAN-07"].status == "fail"
    assert r["PS-WAN-07"].evidence == "line 19: username admin privilege 15 nopassword"
    assert "(default account name: admin)" in r["PS-WAN-07"].reason


def test_ios_rules_read_keywords_not_secret_values() -> None:
    good = (DATA / "ios_good.cfg").read_text(encoding="utf-8")
    for token in ("<secret:hmac:5e0c21aa>", "<secret:sha256:ffff>", "$9$abc", "password"):
        text = good.replace("<secret:hmac:5e0c21aa>", token)
        parsed = parse_config("cisco_ios", text.encode(), "x.cfg")
        r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "cisco_ios", 3), parsed, TODAY)}
        assert r["PS-WAN-07"].status == "pass", token


# --- MikroTik RouterOS ---------------------------------------------------------------------------


def test_routeros_compliant_passes_every_control() -> None:
    r = _audit("routeros", "routeros_good.cfg")
    assert {k: v.status for k, v in r.items()} == dict.fromkeys(IDS, "pass")
    assert r["PS-WAN-01"].evidence == ("line 12: /ip service set telnet disabled=yes; "
                                       "line 38: /tool mac-server set allowed-interface-list=none")
    assert r["PS-WAN-02"].evidence.startswith("RouterOS's SSH server implements protocol 2 only")
    assert r["PS-WAN-03"].actual == {"ssh": "10.48.0.0/27", "winbox": "10.48.0.0/27"}
    assert r["PS-WAN-04"].actual == ["10.48.10.11", "10.48.10.12"]
    assert r["PS-WAN-05"].actual == ["10.48.10.11"]
    assert r["PS-WAN-05"].evidence == ("line 28: /system logging action set [ find name=remote ] remote=10.48.10.11; "
                                       "line 30: /system logging add action=remote topics=info; "
                                       "line 31: /system logging add action=remote topics=warning")
    assert r["PS-WAN-06"].actual == {"prom": "private"}  # the default community is disabled
    assert r["PS-WAN-07"].evidence == "line 42: /user set [ find name=admin ] disabled=yes"
    assert r["PS-WAN-08"].evidence == "line 14: /ip service set www disabled=yes"


def test_routeros_continuation_lines_are_joined() -> None:
    r = _audit("routeros", "routeros_good.cfg")
    assert ("line 25: /snmp community add addresses=10.48.10.11/32 authentication-protocol=SHA1 "
            "encryption-protocol=AES name=prom security=private") in r["PS-WAN-06"].evidence


def test_routeros_non_compliant_fails_with_its_evidence() -> None:
    r = _audit("routeros", "routeros_bad.cfg")
    statuses = {k: v.status for k, v in r.items()}
    assert statuses == {**dict.fromkeys(IDS, "fail"), "PS-WAN-02": "pass"}  # RouterOS has no SSH v1 to turn on
    assert r["PS-WAN-01"].actual == {"telnet": "on", "mac_telnet": "LAN"}
    assert "the telnet service is on (RouterOS's default)" in r["PS-WAN-01"].reason
    assert r["PS-WAN-01"].evidence == ("line 19: /tool mac-server set allowed-interface-list=LAN; "
                                       "no /ip service line disables telnet (default: on)")
    assert r["PS-WAN-03"].reason == "services on without `address=`: telnet, www, api, winbox, api-ssl"
    assert r["PS-WAN-04"].evidence == "line 17: /system ntp client set enabled=no"
    assert r["PS-WAN-05"].reason == "remote action siem defined, but no /system logging rule uses it"
    assert r["PS-WAN-05"].evidence == "line 15: /system logging action add name=siem remote=10.48.10.11 target=remote"
    assert r["PS-WAN-06"].actual == {"public": "none", "<secret:hmac:c0ffee00>": "none", "authonly": "authorized"}
    assert r["PS-WAN-07"].evidence == "line 21: /user set [ find name=admin ] group=full"
    assert r["PS-WAN-07"].reason == "the default account admin is present and enabled"
    assert r["PS-WAN-08"].evidence == "no /ip service line disables www (RouterOS's default: on)"


def test_routeros_service_address_outside_the_admin_subnets_fails() -> None:
    text = (DATA / "routeros_good.cfg").read_text(encoding="utf-8").replace(
        "set winbox address=10.48.0.0/27", "set winbox address=10.48.0.0/27,0.0.0.0/0")
    parsed = parse_config("routeros", text.encode(), "gw.cfg")
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "routeros", 3, ADMIN), parsed, TODAY)}
    assert r["PS-WAN-03"].status == "fail"
    assert r["PS-WAN-03"].reason == ("address= reaches outside the admin subnets 10.48.0.0/27: "
                                     "winbox (10.48.0.0/27,0.0.0.0/0)")
    assert "line 17: /ip service set winbox address=10.48.0.0/27,0.0.0.0/0" in r["PS-WAN-03"].evidence


def test_routeros_defaults_when_the_export_says_nothing() -> None:
    text = b"# 2026-11-20 by RouterOS 7.16\n/ip address\nadd address=10.48.64.6/18 interface=ether1\n"
    parsed = parse_config("routeros", text, "bare.cfg")
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "routeros", 2), parsed, TODAY)}
    assert r["PS-WAN-06"].status == "pass" and "SNMP is off (RouterOS's default)" in r["PS-WAN-06"].evidence
    assert r["PS-WAN-01"].status == "fail"
    assert r["PS-WAN-07"].evidence == "no /user line renames, disables or removes admin"


def test_routeros_v6_ntp_client() -> None:
    text = b"/system ntp client\nset enabled=yes primary-ntp=10.48.10.11 secondary-ntp=0.0.0.0\n"
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "routeros", 3),
                                       parse_config("routeros", text, "v6.cfg"), TODAY)}
    assert (r["PS-WAN-04"].status, r["PS-WAN-04"].actual) == ("pass", ["10.48.10.11"])


# --- Linux edge ----------------------------------------------------------------------------------


def test_linux_compliant() -> None:
    r = _audit("linux", "linux_good.cfg")
    assert {k: v.status for k, v in r.items()} == {
        **dict.fromkeys(IDS, "pass"), "PS-WAN-07": "not_applicable", "PS-WAN-08": "not_applicable"}
    assert r["PS-WAN-01"].evidence == "ss -ltun: nothing listens on TCP port 23"
    assert r["PS-WAN-03"].evidence == ("line 12: type filter hook input priority filter; policy drop;; "
                                       "line 15: ip saddr @admin_v4 tcp dport 22 ct state new accept; "
                                       "line 16: ip saddr 10.48.0.0/28 tcp dport { 22, 9100 } accept")
    assert "line 24" not in r["PS-WAN-03"].evidence  # SSH forwarded to a server is not management of the edge
    assert r["PS-WAN-04"].actual == ["10.48.10.11", "10.48.10.12"]
    assert r["PS-WAN-05"].evidence == "line 48: *.* @@10.48.10.11:514"
    assert r["PS-WAN-06"].evidence == "no snmpd.conf section and nothing listens on port 161 (ss -ltun)"
    assert "factory account" in r["PS-WAN-07"].reason


def test_linux_non_compliant() -> None:
    r = _audit("linux", "linux_bad.cfg")
    assert {k: v.status for k, v in r.items()} == {
        **dict.fromkeys(IDS, "fail"), "PS-WAN-07": "not_applicable", "PS-WAN-08": "not_applicable"}
    assert r["PS-WAN-01"].evidence == "line 16: tcp   LISTEN 0      64           0.0.0.0:23        0.0.0.0:*"
    assert r["PS-WAN-02"].evidence == "no `### sshd -T` section in the evidence"
    assert r["PS-WAN-03"].evidence == ("line 6: type filter hook input priority filter; policy drop;; "
                                       "line 8: tcp dport 22 accept; "
                                       "line 9: ip saddr 192.0.2.0/24 tcp dport ssh accept")
    assert r["PS-WAN-04"].evidence == "chrony.conf: no line matches server, pool, peer or NTP="
    assert r["PS-WAN-05"].evidence == "rsyslog.conf: no line matches @host, @@host or omfwd"
    assert r["PS-WAN-06"].evidence == ("line 24: rocommunity <secret:hmac:c0ffee00> 10.48.10.11; "
                                       "line 25: rouser prom auth")


def test_linux_snmp_needs_udp_sockets_listed() -> None:
    text = (DATA / "linux_good.cfg").read_text(encoding="utf-8").replace("### ss -ltun", "### ss -ltn")
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("udp"))
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "linux", 3, ADMIN),
                                       parse_config("linux", text.encode(), "gw.cfg"), TODAY)}
    assert r["PS-WAN-06"].status == "fail"
    assert r["PS-WAN-06"].evidence == "ss -ltn: no UDP sockets listed, and no snmpd.conf section"
    assert r["PS-WAN-01"].status == "pass"  # telnet is TCP: -ltn is enough


def test_linux_nft_json_is_read_as_the_servers_audit_reads_it() -> None:
    ruleset = ('{"nftables": [{"chain": {"family": "inet", "table": "f", "name": "input", "type": "filter", '
               '"hook": "input", "prio": 0, "policy": "drop"}}, {"rule": {"family": "inet", "table": "f", '
               '"chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": '
               '"tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}]}')
    text = f"### nft -j list ruleset\n{ruleset}\n### sshd -T\nport 22\n".encode()
    r = {x.id: x for x in audit_device(CATALOGUE, Device("gw", "linux", 3, ADMIN),
                                       parse_config("linux", text, "gw.cfg"), TODAY)}
    assert r["PS-WAN-03"].status == "fail"
    assert r["PS-WAN-03"].evidence.startswith("nft: ")
    assert r["PS-WAN-01"].evidence == "no `### ss -ltun` section in the evidence"


# --- levels and exceptions -----------------------------------------------------------------------


def test_exceptions_and_levels_as_in_the_servers_audit() -> None:
    exc = ControlException("PS-WAN-04", "NTP nội bộ chưa có", dt.date(2026, 12, 31), "Nguyễn Văn A")
    expired = ControlException("PS-WAN-05", "cũ", dt.date(2026, 1, 31), "Nguyễn Văn A")
    r = _audit("cisco_ios", "ios_bad.cfg", Device("gw", "cisco_ios", 3, ADMIN, (exc, expired)))
    assert r["PS-WAN-04"].status == "excepted"
    assert r["PS-WAN-04"].reason.startswith("exception until 2026-12-31 approved by Nguyễn Văn A")
    assert r["PS-WAN-05"].status == "fail" and r["PS-WAN-05"].reason.startswith("exception expired on 2026-01-31")
    row = r["PS-WAN-01"].as_json()
    assert set(row) == {"id", "concern", "title", "status", "expected", "actual", "evidence", "reason", "cis", "tcvn"}
    assert row["concern"] == "wan" and row["tcvn"] == {"TCVN 11930:2017": [], "TCVN 14423": []}


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "name", "message"),
    [
        ("cisco_ios", "ios_truncated.cfg", "does not end with `end`"),
        ("cisco_ios", "ios_open_banner.cfg", "line 4: banner motd ^C: the banner is never closed"),
        ("cisco_ios", "routeros_good.cfg", "not a Cisco IOS configuration"),
        ("routeros", "routeros_truncated.cfg", "line 5: the command continues (`\\`) past the end of the file"),
        ("routeros", "routeros_no_path.cfg", "line 2: set telnet disabled=yes: a command before any /menu path"),
        ("routeros", "ios_good.cfg", "a command before any /menu path"),
        ("linux", "linux_no_sections.cfg", "line 2: hostname gw: text before the first `### <command>` header"),
        ("linux", "ios_good.cfg", "text before the first `### <command>` header"),
    ],
)
def test_malformed_configuration_is_refused_naming_the_file(family: str, name: str, message: str) -> None:
    path = DATA / name
    with pytest.raises(InputError) as info:
        parse_config(family, path.read_bytes(), str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (b"\x7fELF\x02\x01\x01\x00\x00", "binary file (NUL bytes)"),
        (bytes(range(1, 32)) * 4, "binary file (1"),
        (b"hostname \xff\xfe", "not UTF-8 text (bad byte at offset 9)"),
        (b'/ip service\nset www comment="open\n', "a quoted value is never closed"),
        (b"### uptime\n 10:00 up 3 days\n### df -h\n", "no `### <command>` section the audit knows"),
    ],
)
def test_unreadable_bytes_are_refused(data: bytes, message: str) -> None:
    family = "linux" if data.startswith(b"###") else "routeros" if data.startswith(b"/ip") else "cisco_ios"
    with pytest.raises(InputError, match=None) as info:
        parse_config(family, data, "gw.cfg")
    assert str(info.value).startswith("gw.cfg: ")
    assert message in str(info.value)


def test_unknown_profile() -> None:
    with pytest.raises(InputError, match="unknown device profile 'juniper'; profiles: linux, cisco_ios, routeros"):
        parse_config("juniper", b"x", "gw.cfg")
