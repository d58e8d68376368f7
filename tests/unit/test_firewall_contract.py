"""The firewall contract: roles' declared ports become the rules of exactly the hosts that need them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provsec.errors import InputError
from provsec.firewall import compose, load_declarations

NETWORKS = {"admin_subnets": ["198.18.0.0/28"], "dc_ranges": ["198.18.0.0/24"], "agency_ranges": ["198.18.1.0/24"]}
GROUPS = {"monitoring": ["198.18.0.20"], "backup_clients": ["198.18.0.22", "198.18.0.23"]}


def decl(**over: Any) -> tuple[str, dict[str, Any]]:
    base: dict[str, Any] = {"name": "ssh", "proto": "tcp", "port": 22, "hosts": "all", "from": "admin_subnets",
                            "reason": "administration"}
    return ("test/meta/ports.yml", {**base, **over})


def test_ssh_is_opened_to_the_admin_subnets_only() -> None:
    rules = compose([decl()], ["dc_servers"], NETWORKS, GROUPS)
    assert [(r.name, r.proto, r.port, r.sources) for r in rules] == [("ssh", "tcp", "22", ("198.18.0.0/28",))]


def test_a_port_is_opened_only_on_hosts_of_its_groups() -> None:
    portal = decl(name="https", port=443, hosts="web_servers", **{"from": "any"})
    assert compose([portal], ["dc_servers"], NETWORKS, GROUPS) == []
    rules = compose([portal], ["dc_servers", "web_servers"], NETWORKS, GROUPS)
    assert rules[0].sources == ()  # from anywhere
    assert rules[0].port == "443"


def test_group_sources_become_the_addresses_of_that_group() -> None:
    scrape = decl(name="node_exporter", port=9100, **{"from": "group:monitoring"})
    sftp = decl(name="sftp", hosts=["backup_repo"], **{"from": ["group:backup_clients", "198.18.0.0/28"]})
    rules = compose([scrape, sftp], ["backup_repo"], NETWORKS, GROUPS)
    assert rules[0].sources == ("198.18.0.20",)
    assert rules[1].sources == ("198.18.0.22", "198.18.0.23", "198.18.0.0/28")


def test_a_source_that_resolves_to_nothing_is_an_error_not_an_open_port() -> None:
    with pytest.raises(InputError, match="resolves to no address"):
        compose([decl(**{"from": "group:nobody"})], ["dc_servers"], NETWORKS, GROUPS)


@pytest.mark.parametrize(("over", "message"), [
    ({"proto": "icmp"}, "proto must be tcp or udp"),
    ({"port": 70000}, "is not a port number"),
    ({"port": "22-"}, "is not a port number"),
    ({"from": "10.0.0.1/8"}, "is none of any"),
    ({"hosts": 5}, "hosts must be"),
])
def test_malformed_declarations_name_the_file_and_port(over: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        compose([decl(**over)], ["dc_servers"], NETWORKS, GROUPS)
    assert "test/meta/ports.yml: port 'ssh'" in str(err.value)


def test_missing_keys_are_listed() -> None:
    with pytest.raises(InputError, match="missing reason"):
        compose([("x", {"name": "a", "proto": "tcp", "port": 1, "hosts": "all", "from": "any"})], [], NETWORKS, {})


def test_declaration_files_are_read_with_their_origin(tmp_path: Path) -> None:
    good = tmp_path / "ssh" / "meta" / "ports.yml"
    good.parent.mkdir(parents=True)
    good.write_text("ports:\n  - {name: ssh, proto: tcp, port: 22, hosts: all, from: admin_subnets, reason: r}\n")
    pairs = load_declarations([good])
    assert pairs[0][0] == "ssh/meta/ports.yml"
    assert pairs[0][1]["port"] == 22
    bad = tmp_path / "web" / "meta" / "ports.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("ports: {name: https}\n")
    with pytest.raises(InputError, match=r"web/meta/ports.yml: expected a mapping with a list 'ports'"):
        load_declarations([bad])


def test_the_repository_roles_declare_valid_ports() -> None:
    roles = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
    pairs = load_declarations(sorted(roles.glob("*/meta/ports.yml")))
    rules = compose(pairs, ["dc_servers"], NETWORKS, GROUPS)
    assert ("ssh", ("198.18.0.0/28",)) in [(r.name, r.sources) for r in rules]


def test_the_backup_repository_takes_ssh_from_its_backup_clients_only() -> None:
    """Role backup's declaration: the repository host's port 22 from group:backup_clients (the pseudo group that
    playbooks/group_vars/all/provsec.yml adds: provsec_port_groups), in addition to the admin subnets."""
    roles = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
    pairs = load_declarations(sorted(roles.glob("*/meta/ports.yml")))
    repo = {(r.name, r.port): r.sources for r in compose(pairs, ["dc_servers", "backup_repo"], NETWORKS, GROUPS)}
    assert repo[("backup-sftp", "22")] == ("198.18.0.22", "198.18.0.23")
    assert repo[("ssh", "22")] == ("198.18.0.0/28",)
    other = compose(pairs, ["dc_servers"], NETWORKS, GROUPS)
    assert "backup-sftp" not in [r.name for r in other]
    with pytest.raises(InputError, match=r"backup-sftp.*resolves to no address"):
        compose(pairs, ["backup_repo"], NETWORKS, {k: v for k, v in GROUPS.items() if k != "backup_clients"})

