"""The lab's topology and the files it writes, checked without root."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from provsec.errors import InputError, ProvsecError
from provsec.lab import base, net
from provsec.lab.hosts import hosts_file
from provsec.lab.topology import LAB_SUPERNET, PROFILES, profile


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_address_is_in_the_benchmark_range_and_unique(name: str) -> None:
    prof = PROFILES[name]
    seen: set[str] = set()
    for host in prof.hosts:
        for nic in host.nics:
            addr = ipaddress.ip_address(nic.address)
            assert addr in LAB_SUPERNET
            assert addr in ipaddress.ip_network(prof.network(nic.network).cidr)
            assert nic.address not in seen
            seen.add(nic.address)
    for network in prof.networks:
        assert ipaddress.ip_network(network.cidr).subnet_of(LAB_SUPERNET)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_interface_names_fit_the_kernel_limit(name: str) -> None:
    for host in PROFILES[name].hosts:
        for index in range(len(host.nics)):
            assert len(host.veth(index)) <= 15
    for network in PROFILES[name].networks:
        assert len(network.bridge) <= 15


def test_province_has_the_hosts_and_groups_of_the_design() -> None:
    prof = profile("province")
    assert prof.host_names == ["mon1", "bak1", "db1", "web1", "gw1", "agency1"]
    assert len(prof.host("gw1").nics) == 2
    agency1 = prof.host("agency1")
    assert [n.network for n in agency1.nics] == ["agency"]
    assert prof.network("agency").control_addr is None  # reachable only through gw1
    assert {g for h in prof.hosts for g in h.groups} >= {
        "dc_servers", "agency_servers", "db_servers", "wan_edge", "monitoring", "backup_repo"}


def test_every_host_serves_an_information_system() -> None:
    for prof in PROFILES.values():
        served = {h for s in prof.systems for h in s["hosts"]}  # type: ignore[attr-defined]
        assert served == set(prof.host_names)


def test_unknown_profile_and_host_are_clear_errors() -> None:
    with pytest.raises(InputError, match="unknown lab profile 'big'"):
        profile("big")
    with pytest.raises(InputError, match="no host 'db9'"):
        profile("province").host("db9")


def test_hosts_file_names_every_lab_host() -> None:
    prof = profile("province")
    text = hosts_file(prof, prof.host("agency1"))
    for host in prof.hosts:
        for nic in host.nics:
            assert f"{nic.address}\t{host.name}.lab.internal {host.name}" in text


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    src = tmp_path / "debian.sources"
    src.write_text(
        "Types: deb\nURIs: http://mirror.example.invalid/debian/\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example.invalid/debian-security\nSuites: bookworm-security\n"
    )
    mirror = base.host_mirror(src, tmp_path / "none.list")
    assert mirror.debian == "http://mirror.example.invalid/debian"
    assert mirror.security == "http://mirror.example.invalid/debian-security"
    where, text = base.sources_for("trixie", mirror)
    assert where == Path("/etc/apt/sources.list.d/debian.sources")
    assert "Suites: trixie trixie-updates" in text and "Suites: trixie-security" in text


def test_bookworm_hosts_get_the_one_line_sources_list_of_debian_12_s_installer() -> None:
    """Lynis 3.0.8 (PKGS-7388) finds the security archive by 'security' followed by a space or a slash."""
    mirror = base.Mirror("http://mirror.example.invalid/debian", "http://mirror.example.invalid/debian-security")
    where, text = base.sources_for("bookworm", mirror)
    assert where == Path("/etc/apt/sources.list")
    key = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        f"deb {key} http://mirror.example.invalid/debian bookworm main",
        f"deb {key} http://mirror.example.invalid/debian bookworm-updates main",
        f"deb {key} http://mirror.example.invalid/debian-security bookworm-security main",
    ]
    assert re.search(r"security.debian.org|security.ubuntu.com|security/? ", text.splitlines()[-1])


def test_mirror_is_read_from_a_one_line_sources_list(tmp_path: Path) -> None:
    legacy = tmp_path / "sources.list"
    legacy.write_text("# comment\ndeb [arch=amd64] http://local.mirror.invalid/debian bookworm main\n")
    mirror = base.host_mirror(tmp_path / "missing.sources", legacy)
    assert mirror.debian == "http://local.mirror.invalid/debian"
    assert mirror.security == "http://local.mirror.invalid/debian-security"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "debian.sources"
    empty.write_text("# nothing here\n")
    with pytest.raises(InputError, match="no Debian mirror found"):
        base.host_mirror(empty, tmp_path / "none.list")


def test_cache_key_changes_with_release_and_packages() -> None:
    assert base.cache_key("bookworm") != base.cache_key("trixie")
    assert base.cache_key("bookworm") != base.cache_key("bookworm", (*base.PACKAGES, "vim"))
    assert base.cache_key("bookworm").startswith("bookworm-")


def test_unknown_release_is_refused() -> None:
    with pytest.raises(InputError, match="unknown release 'buster'"):
        base.ensure_base("buster", lambda _m: None)


def _routes(*entries: dict[str, object]) -> list[dict[str, object]]:
    return list(entries)


def test_overlap_with_a_foreign_route_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "routes_json", lambda table="all": _routes(
        {"dst": "default", "dev": "eth0"}, {"dst": "198.18.0.0/16", "dev": "wg0"}))
    with pytest.raises(ProvsecError, match=r"198\.18\.0\.0/16 on wg0 overlaps the lab subnet"):
        net.check_overlap(profile("province"))


def test_the_labs_own_routes_and_unrelated_routes_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "routes_json", lambda table="all": _routes(
        {"dst": "default", "dev": "eth0"}, {"dst": "192.0.2.0/24", "dev": "eth0"},
        {"dst": "198.18.0.0/24", "dev": "psbr-dc"}, {"dst": "198.18.1.0/24", "dev": "psbr-dc"},
        {"dst": "198.18.0.1", "dev": "psbr-dc", "type": "local"}))
    net.check_overlap(profile("province"))
