"""`provsec wan audit`: devices and their family from the inventory, the table, the JSON document, the per-device
result files the compliance report reads, the exit codes, and bad input refused before anything is written."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest

from provsec.cli import Handler
from provsec.errors import InputError, ProvsecError
from provsec.reports.sources import load_audit_results
from provsec.wan import audit_cli

DATA = Path(__file__).resolve().parent / "data" / "wan" / "audit"
REPO = Path(__file__).resolve().parents[2]

HOSTS = """\
all:
  children:
    dc_servers:
      hosts:
        mon1: {ansible_host: 10.48.10.11, provsec_agency: "000.00.15.H48"}
    wan_edge:
      hosts:
        gw1: {ansible_host: 10.48.10.1, provsec_agency: "000.00.15.H48"}
        gw2: {ansible_host: 10.48.10.2, provsec_agency: "000.00.15.H48", provsec_wan_profile: cisco_ios}
        gw3: {ansible_host: 10.48.10.3, provsec_agency: "000.00.15.H48"}
"""
PROVINCE = """\
provsec_province: {code: "PYN", name: "Phú Yên"}
provsec_agencies:
  - {code: "000.00.15.H48", name: "Sở Thông tin và Truyền thông tỉnh Phú Yên"}
provsec_information_systems:
  - {id: "mang-wan", name: "Mạng WAN", owner: "000.00.15.H48", level: 3, hosts: [gw1, gw2, gw3]}
  - {id: "giam-sat", name: "Giám sát", owner: "000.00.15.H48", level: 2, hosts: [mon1]}
provsec_networks:
  admin_subnets: ["10.48.0.0/27"]
  dc_ranges: ["10.48.10.0/24"]
  agency_ranges: ["10.48.64.0/18"]
"""
GW3_VARS = """\
provsec_wan_profile: routeros
provsec_control_exceptions:
  - {control: PS-WAN-07, reason: "Đổi tên admin khi thay thiết bị", expires: 2099-12-31, approved_by: "Nguyễn Văn A"}
  - {control: PS-SSH-02, reason: "the servers' audit's business", expires: 2099-12-31, approved_by: "B"}
"""


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    (inv / "group_vars" / "all" / "province.yml").write_text(PROVINCE, encoding="utf-8")
    (inv / "host_vars" / "gw3.yml").write_text(GW3_VARS, encoding="utf-8")
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(DATA / "linux_good.cfg", configs / "gw1.cfg")
    shutil.copy(DATA / "ios_good.cfg", configs / "gw2.cfg")
    shutil.copy(DATA / "routeros_good.cfg", configs / "gw3.cfg")
    return inv, configs


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="provsec")
    top = parser.add_subparsers(dest="command", required=True)
    wan = top.add_parser("wan").add_subparsers(dest="wan_command", required=True)
    audit_cli.register(wan)
    args = parser.parse_args(["wan", "audit", "--catalogue", str(REPO / "playbooks/controls/wan"), *argv])
    handler: Handler = args.handler
    try:
        return handler(args)
    except ProvsecError as exc:
        print(f"provsec: error: {exc}")
        return exc.exit_code


def test_compliant_site_exits_zero_with_json_and_result_files(site: tuple[Path, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    inv, configs = site
    (configs / "gw3.cfg").write_text((DATA / "routeros_good.cfg").read_text(encoding="utf-8"), encoding="utf-8")
    out, results = tmp_path / "wan.json", tmp_path / "results"
    code = _run(["-i", str(inv), "--config-dir", str(configs), "--json", "--out", str(out),
                 "--results", str(results)])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc == printed
    assert set(doc) == {"generated_at", "catalogue", "config_dir", "controls", "hosts", "hosts_without_evidence",
                        "totals", "by_control", "reports"}
    assert doc["hosts"]["gw1"] == {"profile": "linux", "level": 3, "catalogue_level": 3,
                                   "counts": {"pass": 6, "fail": 0, "not_applicable": 2, "excepted": 0}}
    assert doc["hosts"]["gw2"]["profile"] == "cisco_ios" and doc["hosts"]["gw3"]["profile"] == "routeros"
    assert "mon1" not in doc["hosts"]
    gw2 = doc["reports"]["gw2"]
    assert gw2["config"] == str(configs / "gw2.cfg") and len(gw2["config_sha256"]) == 64
    row = gw2["results"][1]
    assert row["id"] == "PS-WAN-02" and row["status"] == "pass"
    assert row["evidence"] == "line 22: ip ssh version 2" and row["title"]["en"] == "SSH version 2 only"
    assert doc["totals"] == {"pass": 22, "fail": 0, "not_applicable": 2, "excepted": 0}
    # the compliance report reads the per-device files as it reads the servers'
    loaded = load_audit_results(results)
    assert {(r.host, r.control, r.status) for r in loaded} >= {("gw2", "PS-WAN-01", "pass"),
                                                               ("gw1", "PS-WAN-07", "not_applicable")}
    assert sorted(p.name for p in results.iterdir()) == ["gw1.json", "gw2.json", "gw3.json", "summary.json"]


def test_failing_controls_exit_one_and_the_table_says_why(site: tuple[Path, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    inv, configs = site
    shutil.copy(DATA / "ios_bad.cfg", configs / "gw2.cfg")
    shutil.copy(DATA / "routeros_bad.cfg", configs / "gw3.cfg")
    code = _run(["-i", str(inv), "--config-dir", str(configs)])
    table = capsys.readouterr().out
    assert code == 1
    assert "gw2 (cisco_ios, cấp độ 3): pass 0  fail 8  not_applicable 0  excepted 0" in table
    assert "  FAIL           PS-WAN-02  SSH version 2 only\n" in table
    assert "                 evidence: line 11: ip ssh version 1\n" in table
    # gw3's exception for PS-WAN-07 holds; its server exception (PS-SSH-02) is not the WAN audit's
    assert "  EXCEPTED       PS-WAN-07" in table
    assert "exception until 2099-12-31 approved by Nguyễn Văn A" in table


def test_profile_override_and_missing_configuration(site: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    inv, configs = site
    (configs / "gw3.cfg").unlink()
    shutil.copy(DATA / "ios_good.cfg", configs / "gw1.cfg")
    code = _run(["-i", str(inv), "--config-dir", str(configs), "--profile-of", "gw1=cisco_ios", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # every audited control passes, but gw3 was not audited
    assert doc["hosts"]["gw1"]["profile"] == "cisco_ios" and doc["totals"]["fail"] == 0
    assert doc["hosts_without_evidence"] == {
        "gw3": f"no stored configuration {configs / 'gw3.cfg'} (run provsec wan backup)"}


def test_malformed_configuration_stops_the_run_and_writes_nothing(site: tuple[Path, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    inv, configs = site
    shutil.copy(DATA / "ios_truncated.cfg", configs / "gw2.cfg")
    out = tmp_path / "wan.json"
    code = _run(["-i", str(inv), "--config-dir", str(configs), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 2
    assert printed.startswith(f"provsec: error: {configs / 'gw2.cfg'}: does not end with `end`")
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile-of", "gw9=routeros"], "'gw9' is not a host of the role group wan_edge"),
        (["--profile-of", "mon1=routeros"], "'mon1' is not a host of the role group wan_edge"),
        (["--profile-of", "gw1=junos"], "unknown profile; profiles: linux, cisco_ios, routeros"),
        (["--profile-of", "gw1"], "give DEVICE=PROFILE"),
    ],
)
def test_bad_profile_option(site: tuple[Path, Path], argv: list[str], message: str) -> None:
    inv, configs = site
    with pytest.raises(InputError, match=None) as info:
        audit_cli.run_audit(inv, configs, REPO / "playbooks/controls/wan", argv[1:])
    assert message in str(info.value)


def test_bad_profile_variable(site: tuple[Path, Path]) -> None:
    inv, configs = site
    (inv / "host_vars" / "gw3.yml").write_text("provsec_wan_profile: mikrotik\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("gw3.yml: provsec_wan_profile: 'mikrotik' is not one of")):
        audit_cli.run_audit(inv, configs, REPO / "playbooks/controls/wan")


def test_host_variables_follow_ansible_precedence(site: tuple[Path, Path]) -> None:
    from provsec.wan.parse_hostvars import host_vars

    inv, _ = site
    (inv / "group_vars" / "wan_edge.yml").write_text("provsec_wan_profile: routeros\n", encoding="utf-8")
    (inv / "group_vars" / "all" / "vault.yml").write_text("provsec_wan_profile: linux\n", encoding="utf-8")
    assert host_vars(inv, "gw1", ("wan_edge",))["provsec_wan_profile"] == (
        "routeros", str(inv / "group_vars" / "wan_edge.yml"))  # a group's file; vault*.yml is not read
    assert host_vars(inv, "gw2", ("wan_edge",))["provsec_wan_profile"][0] == "cisco_ios"  # hosts.yml over groups
    (inv / "host_vars" / "gw2").mkdir()
    (inv / "host_vars" / "gw2" / "wan.yml").write_text("provsec_wan_profile: linux\n", encoding="utf-8")
    assert host_vars(inv, "gw2", ("wan_edge",))["provsec_wan_profile"][0] == "linux"  # host_vars over hosts.yml
