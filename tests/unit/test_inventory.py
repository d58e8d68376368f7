"""The inventory model and `provsec inventory check/show`: valid inventories load with the right levels;
each kind of malformed input yields one line `FILE: KEY: problem` naming the file, the key and the problem."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from provsec.cli import main
from provsec.errors import InputError
from provsec.inventory import Host, Inventory, InventoryError, load_inventory

HOSTS = """\
---
all:
  children:
    dc_servers:
      hosts:
        db1:
          ansible_host: 198.18.0.22
          provsec_agency: "000.00.15.H48"
          provsec_addresses: {dc: 198.18.0.22}
        web1:
          ansible_host: 198.18.0.23
          provsec_agency: "000.00.15.H48"
    db_servers:
      hosts:
        db1:
    web_servers:
      hosts:
        web1:
    wan_edge:
      hosts:
        gw1:
          ansible_host: 198.18.0.30
          provsec_agency: "000.00.15.H48"
          provsec_addresses: {dc: 198.18.0.30, agency: 198.18.1.1}
    agency_servers:
      hosts:
        agency1:
          ansible_host: 198.18.1.10
          provsec_agency: "000.00.01.H48"
"""

MODEL = """\
---
provsec_province: {code: "PYN", name: "Phú Yên"}
provsec_agencies:
  - {code: "000.00.15.H48", name: "Sở Thông tin và Truyền thông tỉnh Phú Yên"}
  - {code: "000.00.01.H48", name: "Văn phòng Ủy ban nhân dân tỉnh Phú Yên"}
provsec_information_systems:
  - {id: "ioffice", name: "Hệ thống quản lý văn bản", owner: "000.00.15.H48", level: 3, hosts: [db1, web1]}
  - {id: "mail", name: "Hệ thống thư điện tử công vụ", owner: "000.00.15.H48", level: 2, hosts: [web1, gw1]}
  - {id: "mot-cua", name: "Hệ thống một cửa điện tử", owner: "000.00.01.H48", level: 1, hosts: [agency1]}
provsec_networks:
  admin_subnets: ["198.18.0.0/28"]
  dc_ranges: ["198.18.0.0/24"]
  agency_ranges: ["198.18.1.0/24"]
"""

VARS = """\
---
ansible_user: quantri
ansible_become_password: "{{ vault_ansible_become_password }}"
"""

MODEL_FILE = "group_vars/all/province.yml"


def edit(text: str, old: str, new: str) -> str:
    """Replace old by new, insisting old is there (so a mutation can never silently do nothing)."""
    assert old in text, f"test bug: {old!r} not in the text"
    return text.replace(old, new, 1)


def make_inventory(
    tmp_path: Path, hosts: str | None = HOSTS, model: str | None = MODEL, files: dict[str, str] | None = None
) -> Path:
    root = tmp_path / "inv"
    (root / "group_vars" / "all").mkdir(parents=True)
    if hosts is not None:
        (root / "hosts.yml").write_text(hosts, encoding="utf-8")
    if model is not None:
        (root / MODEL_FILE).write_text(model, encoding="utf-8")
    (root / "group_vars" / "all" / "vars.yml").write_text(VARS, encoding="utf-8")
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def problem_lines(err: str) -> list[str]:
    """The `FILE: KEY: problem` lines of `check`'s stderr (without the summary and the warnings)."""
    return [line for line in err.splitlines() if line and not line.startswith("provsec: ")]


# --- a valid inventory ------------------------------------------------------------------------


def test_valid_inventory_loads_with_the_highest_level_of_the_systems_each_host_serves(tmp_path: Path) -> None:
    inv = load_inventory(make_inventory(tmp_path))

    assert inv.province.code == "PYN"
    assert inv.province.name == "Phú Yên"
    assert [a.code for a in inv.agencies] == ["000.00.15.H48", "000.00.01.H48"]
    assert [s.id for s in inv.systems] == ["ioffice", "mail", "mot-cua"]
    # web1 serves ioffice (3) and mail (2): 3. gw1 serves mail only: 2.
    assert {h.name: h.level for h in inv.hosts} == {"db1": 3, "web1": 3, "gw1": 2, "agency1": 1}
    assert inv.effective_level("web1") == 3
    assert inv.effective_level(inv.host("gw1")) == 2
    assert inv.host("web1").systems == ("ioffice", "mail")
    # groups are merged across group entries; variables given once are shared
    assert inv.host("db1").groups == ("dc_servers", "db_servers")
    assert inv.host("db1").ansible_host == ipaddress.ip_address("198.18.0.22")
    assert inv.host("agency1").agency == "000.00.01.H48"
    assert dict(inv.host("gw1").addresses) == {
        "dc": ipaddress.ip_address("198.18.0.30"),
        "agency": ipaddress.ip_address("198.18.1.1"),
    }
    assert inv.warnings == ()


def test_scan_scope_is_exactly_the_declared_networks(tmp_path: Path) -> None:
    model = edit(
        MODEL, 'agency_ranges: ["198.18.1.0/24"]', 'agency_ranges: ["198.18.1.0/24", "198.18.4.0/24"]'
    )
    inv = load_inventory(make_inventory(tmp_path, model=model))

    # the admin subnet lies inside the DC range, which merges with the adjacent agency /24 into a /23
    assert inv.scan_scope() == [ipaddress.ip_network("198.18.0.0/23"), ipaddress.ip_network("198.18.4.0/24")]
    assert inv.in_scope(ipaddress.ip_address("198.18.4.200"))
    assert not inv.in_scope(ipaddress.ip_address("198.18.3.1"))
    assert inv.in_scope(ipaddress.ip_network("198.18.0.0/25"))
    assert not inv.in_scope(ipaddress.ip_network("198.18.0.0/16"))


def test_effective_level_refuses_a_host_that_serves_no_system(tmp_path: Path) -> None:
    inv = load_inventory(make_inventory(tmp_path))
    orphan = Host("spare1", ("dc_servers",), ipaddress.ip_address("198.18.0.40"), "000.00.15.H48", (), (), 0)
    with_orphan = Inventory(
        inv.path, inv.province, inv.agencies, inv.systems, (*inv.hosts, orphan), inv.networks
    )
    with pytest.raises(InputError, match=r"'spare1' serves no information system"):
        with_orphan.effective_level("spare1")
    with pytest.raises(InputError, match="no host 'nosuch'"):
        inv.effective_level("nosuch")


def test_check_prints_a_summary_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_inventory(tmp_path)
    rc, out, err = run(capsys, "inventory", "check", str(root))
    assert rc == 0
    assert f"{root}: valid inventory of Phú Yên (PYN)" in out
    assert "2 agencies, 3 information systems, 4 hosts" in out
    assert "cấp độ 1: 1, cấp độ 2: 1, cấp độ 3: 2" in out
    assert "scan scope: 198.18.0.0/23" in out
    assert err == ""


def test_show_json_lists_hosts_with_groups_agency_and_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "inventory", "show", str(make_inventory(tmp_path)), "--json")
    assert rc == 0
    data = json.loads(out)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["web1"]["level"] == 3
    assert hosts["web1"]["groups"] == ["dc_servers", "web_servers"]
    assert hosts["web1"]["systems"] == ["ioffice", "mail"]
    assert hosts["agency1"]["agency"] == "000.00.01.H48"
    assert hosts["gw1"]["addresses"] == {"dc": "198.18.0.30", "agency": "198.18.1.1"}
    assert data["scan_scope"] == ["198.18.0.0/23"]
    assert data["networks"]["agency_ranges"] == ["198.18.1.0/24"]


def test_show_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "inventory", "show", str(make_inventory(tmp_path)))
    assert rc == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["gw1"] == ["gw1", "198.18.0.30", "2", "000.00.15.H48", "wan_edge", "mail"]
    assert rows["web1"][2] == "3"


# --- malformed inventories: one line FILE: KEY: problem each, exit 2 ---------------------------

H = "hosts.yml"
M = MODEL_FILE
ALL = "group_vars/all"

# (id, file to mutate, old, new, file named, key named, fragments of the problem)
CASES = [
    (
        "unknown-group",
        H,
        "    web_servers:",
        "    web_server:",
        H,
        "all.children.web_server",
        ["unknown group", "did you mean 'web_servers'"],
    ),
    (
        "missing-ansible-host",
        H,
        "          ansible_host: 198.18.0.23\n",
        "",
        H,
        "all.children.dc_servers.hosts.web1.ansible_host",
        ["missing"],
    ),
    (
        "ansible-host-not-an-ip",
        H,
        "ansible_host: 198.18.0.23",
        "ansible_host: web1.phuyen.gov.vn",
        H,
        "all.children.dc_servers.hosts.web1.ansible_host",
        ["must be an IP address", "'web1.phuyen.gov.vn'"],
    ),
    (
        "missing-agency",
        H,
        '          provsec_agency: "000.00.01.H48"\n',
        "",
        H,
        "all.children.agency_servers.hosts.agency1.provsec_agency",
        ["missing"],
    ),
    (
        "unknown-agency",
        H,
        'provsec_agency: "000.00.01.H48"',
        'provsec_agency: "000.00.99.H48"',
        H,
        "all.children.agency_servers.hosts.agency1.provsec_agency",
        ["unknown agency code '000.00.99.H48'", "not in provsec_agencies"],
    ),
    (
        "ansible-host-outside-networks",
        H,
        "ansible_host: 198.18.1.10",
        "ansible_host: 198.18.7.10",
        H,
        "all.children.agency_servers.hosts.agency1.ansible_host",
        ["198.18.7.10 is outside every declared network"],
    ),
    (
        "address-outside-networks",
        H,
        "agency: 198.18.1.1}",
        "agency: 198.19.1.1}",
        H,
        "all.children.wan_edge.hosts.gw1.provsec_addresses.agency",
        ["198.19.1.1 is outside every declared network"],
    ),
    (
        "address-not-an-ip",
        H,
        "agency: 198.18.1.1}",
        "agency: 198.18.1}",
        H,
        "all.children.wan_edge.hosts.gw1.provsec_addresses.agency",
        ["must be an IP address"],
    ),
    (
        "address-of-two-hosts",
        H,
        "ansible_host: 198.18.1.10",
        "ansible_host: 198.18.1.1",
        H,
        "all.children.agency_servers.hosts.agency1.ansible_host",
        ["198.18.1.1 is also an address of host 'gw1'"],
    ),
    (
        "host-serves-no-system",
        H,
        "    db_servers:",
        '        spare1:\n          ansible_host: 198.18.0.40\n          provsec_agency: "000.00.15.H48"\n'
        "    db_servers:",
        H,
        "all.children.dc_servers.hosts.spare1",
        ["serves no information system", "security level is unknown"],
    ),
    (
        "host-variable-given-twice-differently",
        H,
        "        db1:\n    web_servers:",
        "        db1:\n          ansible_host: 198.18.0.99\n    web_servers:",
        H,
        "all.children.db_servers.hosts.db1.ansible_host",
        ["differs from the value given under all.children.dc_servers.hosts.db1.ansible_host"],
    ),
    (
        "level-set-on-a-host",
        H,
        "ansible_host: 198.18.0.23",
        "ansible_host: 198.18.0.23\n          provsec_security_level: 1",
        H,
        "all.children.dc_servers.hosts.web1.provsec_security_level",
        ["do not set it", "highest level of the information systems"],
    ),
    (
        "host-directly-under-all",
        H,
        "all:\n",
        "all:\n  hosts:\n    stray: {}\n",
        H,
        "all.hosts",
        ["no role group"],
    ),
    (
        "nested-groups",
        H,
        "    web_servers:\n",
        "    web_servers:\n      children:\n        db_servers:\n",
        H,
        "all.children.web_servers.children",
        ["nested groups are not part of the provsec format"],
    ),
    (
        "hosts-as-a-list",
        H,
        "      hosts:\n        web1:\n",
        "      hosts:\n        - web1\n",
        H,
        "all.children.web_servers.hosts",
        ["must be a mapping of host name", "got a list"],
    ),
    (
        "level-too-high",
        M,
        "level: 3",
        "level: 6",
        M,
        "provsec_information_systems[ioffice].level",
        ["must be an integer from 1 to 5", "Nghị định 85/2016", "got 6"],
    ),
    (
        "level-zero",
        M,
        "level: 1",
        "level: 0",
        M,
        "provsec_information_systems[mot-cua].level",
        ["must be an integer from 1 to 5", "got 0"],
    ),
    (
        "level-as-a-string",
        M,
        "level: 3",
        'level: "3"',
        M,
        "provsec_information_systems[ioffice].level",
        ["must be an integer from 1 to 5", "'3' (a string)"],
    ),
    (
        "level-missing",
        M,
        " level: 2,",
        "",
        M,
        "provsec_information_systems[mail].level",
        ["missing"],
    ),
    (
        "unknown-owner",
        M,
        'owner: "000.00.01.H48"',
        'owner: "000.00.01.H84"',
        M,
        "provsec_information_systems[mot-cua].owner",
        ["unknown agency code '000.00.01.H84'", "did you mean '000.00.01.H48'"],
    ),
    (
        "system-lists-an-unknown-host",
        M,
        "hosts: [db1, web1]",
        "hosts: [db1, web1, db9]",
        M,
        "provsec_information_systems[ioffice].hosts[2]",
        ["unknown host 'db9'", "not in hosts.yml"],
    ),
    (
        "system-key-typo",
        M,
        'owner: "000.00.01.H48", level: 1',
        'owner: "000.00.01.H48", levle: 1',
        M,
        "provsec_information_systems[mot-cua].levle",
        ["unknown key (did you mean 'level'?)"],
    ),
    (
        "duplicate-system-id",
        M,
        '{id: "mail"',
        '{id: "ioffice"',
        M,
        "provsec_information_systems[1].id",
        ["duplicate id 'ioffice'", "first at provsec_information_systems[0]"],
    ),
    (
        "duplicate-agency-code",
        M,
        '{code: "000.00.01.H48"',
        '{code: "000.00.15.H48"',
        M,
        "provsec_agencies[1].code",
        ["duplicate agency code '000.00.15.H48'"],
    ),
    (
        "province-name-missing",
        M,
        'provsec_province: {code: "PYN", name: "Phú Yên"}',
        'provsec_province: {code: "PYN"}',
        M,
        "provsec_province.name",
        ["missing"],
    ),
    (
        "invalid-cidr",
        M,
        'dc_ranges: ["198.18.0.0/24"]',
        'dc_ranges: ["198.18.0.0/33"]',
        M,
        "provsec_networks.dc_ranges[0]",
        ["not a valid CIDR"],
    ),
    (
        "cidr-with-host-bits",
        M,
        'dc_ranges: ["198.18.0.0/24"]',
        'dc_ranges: ["198.18.0.1/24"]',
        M,
        "provsec_networks.dc_ranges[0]",
        ['did you mean "198.18.0.0/24"'],
    ),
    (
        "cidr-without-prefix",
        M,
        'agency_ranges: ["198.18.1.0/24"]',
        'agency_ranges: ["198.18.1.0"]',
        M,
        "provsec_networks.agency_ranges[0]",
        ["no prefix length"],
    ),
    (
        "cidr-too-broad",
        M,
        'agency_ranges: ["198.18.1.0/24"]',
        'agency_ranges: ["0.0.0.0/0"]',
        M,
        "provsec_networks.agency_ranges[0]",
        ["too broad"],
    ),
    (
        "dc-and-agency-ranges-overlap",
        M,
        'agency_ranges: ["198.18.1.0/24"]',
        'agency_ranges: ["198.18.1.0/24", "198.18.0.128/25"]',
        M,
        "provsec_networks.agency_ranges[1]",
        ["overlaps dc_ranges[0] 198.18.0.0/24"],
    ),
    (
        "networks-not-a-list",
        M,
        'admin_subnets: ["198.18.0.0/28"]',
        'admin_subnets: "198.18.0.0/28"',
        M,
        "provsec_networks.admin_subnets",
        ["must be a list of CIDRs"],
    ),
    (
        "networks-missing",
        M,
        'provsec_networks:\n  admin_subnets: ["198.18.0.0/28"]\n  dc_ranges: ["198.18.0.0/24"]\n'
        '  agency_ranges: ["198.18.1.0/24"]\n',
        "",
        ALL,
        "provsec_networks",
        ["not defined in any group_vars/all/*.yml"],
    ),
    (
        "yaml-duplicate-key",
        M,
        "provsec_networks:\n",
        'provsec_networks:\n  dc_ranges: ["198.18.9.0/24"]\n',
        M,
        "line 13, column 3",
        ["YAML syntax error", "duplicate key 'dc_ranges' (first given on line 11)"],
    ),
]


@pytest.mark.parametrize("case", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_inventory_names_file_key_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, str, str, str, str, list[str]]
) -> None:
    target, old, new, file, key, fragments = case
    texts = {H: HOSTS, M: MODEL}
    texts[target] = edit(texts[target], old, new)
    root = make_inventory(tmp_path, hosts=texts[H], model=texts[M])

    rc, out, err = run(capsys, "inventory", "check", str(root))

    assert rc == 2
    assert out == ""
    assert "Traceback" not in err
    lines = problem_lines(err)
    prefix = f"{root / file}: {key}: "
    matching = [line for line in lines if line.startswith(prefix)]
    assert len(matching) == 1, f"expected one line starting {prefix!r} in:\n{err}"
    for fragment in fragments:
        assert fragment in matching[0]
    # one clear message: no knock-on problems for a single mistake
    assert lines == matching
    assert err.splitlines()[-1] == f"provsec: error: {root}: not a valid inventory (1 problem)"


def test_all_problems_are_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = edit(HOSTS, "    web_servers:", "    web_server:")
    hosts = edit(hosts, "ansible_host: 198.18.0.23", "ansible_host: 10.1.2.3")
    model = edit(MODEL, "level: 3", "level: 9")
    root = make_inventory(tmp_path, hosts=hosts, model=model)

    rc, _, err = run(capsys, "inventory", "check", str(root))

    assert rc == 2
    lines = problem_lines(err)
    assert len(lines) == 3, err
    assert lines[0].startswith(f"{root / H}: all.children.web_server: unknown group")
    assert lines[1].startswith(
        f"{root / H}: all.children.dc_servers.hosts.web1.ansible_host: 10.1.2.3 is outside"
    )
    assert lines[2].startswith(f"{root / M}: provsec_information_systems[ioffice].level: must be an integer")
    assert err.splitlines()[-1] == f"provsec: error: {root}: not a valid inventory (3 problems)"


def test_load_inventory_raises_an_input_error_listing_every_problem(tmp_path: Path) -> None:
    model = edit(MODEL, "level: 3", "level: 9")
    model = edit(model, 'owner: "000.00.01.H48"', 'owner: "nobody"')
    root = make_inventory(tmp_path, model=model)
    with pytest.raises(InputError) as caught:
        load_inventory(root)
    assert isinstance(caught.value, InventoryError)
    message = str(caught.value)
    assert f"{root}: not a valid inventory (2 problems)" in message
    assert (
        f"{root / M}: provsec_information_systems[ioffice].level: must be an integer from 1 to 5" in message
    )
    assert f"{root / M}: provsec_information_systems[mot-cua].owner: unknown agency code 'nobody'" in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken_line = MODEL.count("\n") + 1
    root = make_inventory(tmp_path, model=MODEL + "provsec_extra: a: b\n")

    rc, _, err = run(capsys, "inventory", "check", str(root))

    assert rc == 2
    assert "Traceback" not in err
    (line,) = problem_lines(err)
    assert line.startswith(f"{root / M}: line {broken_line}, column ")
    assert "YAML syntax error: mapping values are not allowed here" in line


def test_yaml_syntax_error_in_hosts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = edit(HOSTS, "      hosts:\n        db1:\n", "      hosts:\n        db1:\n       bad indent\n")
    root = make_inventory(tmp_path, hosts=hosts)

    rc, _, err = run(capsys, "inventory", "check", str(root))

    assert rc == 2
    lines = problem_lines(err)
    assert lines
    assert lines[0].startswith(f"{root / H}: line ")
    assert "YAML syntax error" in lines[0]


def test_syntax_error_in_other_group_vars_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_inventory(tmp_path, files={"group_vars/db_servers/main.yml": "---\nkey: [unclosed\n"})
    rc, _, err = run(capsys, "inventory", "check", str(root))
    assert rc == 2
    (line,) = problem_lines(err)
    assert line.startswith(f"{root / 'group_vars/db_servers/main.yml'}: line ")
    assert "YAML syntax error" in line


def test_model_keys_outside_group_vars_all_are_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_inventory(
        tmp_path,
        files={
            "group_vars/db_servers/main.yml": "---\nprovsec_information_systems: []\n",
            "host_vars/web1.yml": "---\nprovsec_security_level: 1\n",
        },
    )
    rc, _, err = run(capsys, "inventory", "check", str(root))
    assert rc == 2
    lines = problem_lines(err)
    assert len(lines) == 2, err
    gv = root / "group_vars/db_servers/main.yml"
    assert lines[0].startswith(f"{gv}: provsec_information_systems: define it only in group_vars/all/")
    assert lines[1].startswith(f"{root / 'host_vars/web1.yml'}: provsec_security_level: do not set it")


def test_group_vars_of_an_unknown_group_are_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_inventory(tmp_path, files={"group_vars/db_server/main.yml": "---\npostgresql_port: 5432\n"})
    rc, _, err = run(capsys, "inventory", "check", str(root))
    assert rc == 2
    (line,) = problem_lines(err)
    assert line == (
        f"{root / 'group_vars/db_server/main.yml'}: unknown group 'db_server' (did you mean 'db_servers'?)"
    )


@pytest.mark.parametrize(
    ("missing", "file", "fragment"),
    [
        ("hosts", H, "missing file: the inventory needs hosts.yml"),
        ("group_vars", ALL, "missing: the inventory needs group_vars/all/*.yml"),
    ],
)
def test_missing_files_give_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str, file: str, fragment: str
) -> None:
    root = make_inventory(tmp_path)
    if missing == "hosts":
        (root / H).unlink()
    else:
        for p in (root / ALL).iterdir():
            p.unlink()
        (root / ALL).rmdir()

    rc, _, err = run(capsys, "inventory", "check", str(root))

    assert rc == 2
    lines = problem_lines(err)
    assert lines[0].startswith(f"{root / file}: {fragment}")
    assert "Traceback" not in err


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "inventory", "check", str(tmp_path / "nosuch"))
    assert rc == 2
    assert problem_lines(err) == [f"{tmp_path / 'nosuch'}: no such directory"]


def test_vault_files_are_skipped_and_unencrypted_ones_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encrypted = "$ANSIBLE_VAULT;1.1;AES256\n61626364656667686970\n"
    root = make_inventory(
        tmp_path,
        files={
            "group_vars/all/vault.yml": encrypted,
            "group_vars/all/secrets.yml": encrypted,  # encrypted although not named vault*
            "group_vars/all/vault_stub.yml": "---\nvault_x: [not: valid: yaml\n",  # unencrypted stub
            "group_vars/all/inline.yml": "---\nsmtp: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n",
        },
    )

    rc, out, err = run(capsys, "inventory", "check", str(root))

    assert rc == 0, err
    assert "valid inventory" in out
    assert err.splitlines() == [
        f"provsec: warning: {root / 'group_vars/all/vault_stub.yml'}: not encrypted: put the real secrets in "
        f"it, then encrypt it (ansible-vault encrypt {root / 'group_vars/all/vault_stub.yml'})"
    ]


def test_show_of_an_invalid_inventory_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_inventory(tmp_path, model=edit(MODEL, "level: 3", "level: 6"))
    rc, out, err = run(capsys, "inventory", "show", str(root))
    assert rc == 2
    assert out == ""
    assert err.startswith(f"provsec: error: {root}: not a valid inventory (1 problem)")
    assert "provsec_information_systems[ioffice].level" in err
    assert "Traceback" not in err


def test_the_phuyen_example_is_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "inventory" / "phuyen"
    inv = load_inventory(root)
    assert inv.province.name == "Phú Yên"
    assert len(inv.hosts) >= 8
    assert {g for h in inv.hosts for g in h.groups} == {
        "dc_servers",
        "agency_servers",
        "db_servers",
        "web_servers",
        "wan_edge",
        "monitoring",
        "backup_repo",
    }
    # web2 runs the document system (level 3) and webmail (level 2)
    assert inv.host("web2").systems == ("ioffice", "thu-cong-vu")
    assert inv.host("web2").level == 3
    assert inv.host("mail1").level == 2
    # RFC 1918 10.x addresses only
    ten = ipaddress.IPv4Network("10.0.0.0/8")
    assert all(isinstance(n, ipaddress.IPv4Network) and n.subnet_of(ten) for n in inv.scan_scope())
    assert all(h.ansible_host in ten for h in inv.hosts)
