"""provsec.monitoring: prometheus.yml and alertmanager.yml generated from the inventory.

The generated files are checked by the real tools: `promtool check config` (Debian's prometheus package) with
the repository's rules, `amtool check-config` and `amtool config routes test` (Debian's
prometheus-alertmanager). amtool ignores time intervals (alertmanager#3889): the time-interval behaviour and the
inhibition are checked on a real Alertmanager in test_monitoring_config_alertmanager.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from provsec.controls import load_catalogue, parse_timespan
from provsec.errors import InputError
from provsec.inventory import InventoryError, load_inventory
from provsec.inventory.model import Inventory
from provsec.lab import inventory as lab_inventory
from provsec.lab.topology import profile
from provsec.monitoring import (
    AlertmanagerSettings,
    ExporterAuth,
    PrometheusSettings,
    build_targets,
    render,
    retention,
    working_hours_from_calendar,
    write,
)
from provsec.monitoring import cli as monitoring_cli
from provsec.reports.workhours import parse_calendar

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "playbooks" / "controls"
RULES = REPO / "exporters" / "rules"
PHUYEN = REPO / "inventory" / "phuyen"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's {package} package (scripts/bootstrap)")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


def lab_inventory_dir(base: Path, name: str = "province") -> Path:
    """The inventory `provsec lab up --profile NAME` writes, written here without starting any lab host."""
    directory = base / f"lab-{name}"
    lab_inventory.write(profile(name), directory, base / "key", base / "known_hosts")
    return directory


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return load_inventory(lab_inventory_dir(tmp_path_factory.mktemp("inv")))


@pytest.fixture(scope="module")
def catalogue() -> Any:
    return load_catalogue(CATALOGUE)


# --- labels ------------------------------------------------------------------------------------------------


def test_lab_labels_name_gateway_site_agency_and_level(lab: Inventory) -> None:
    targets = build_targets(lab)
    assert targets.warnings == ()
    agency1 = targets.get("agency1").labels
    assert agency1["wan_edge"] == "gw1" and agency1["wan_role"] == "behind" and agency1["site"] == "wan:gw1"
    assert agency1["role"] == "agency_servers" and agency1["level"] == "2"
    assert agency1["agency"] == "000.00.00.LAB"
    gw1 = targets.get("gw1").labels
    assert (gw1["wan_edge"], gw1["wan_role"], gw1["site"], gw1["role"]) == ("gw1", "edge", "wan:gw1", "wan_edge")
    mon1 = targets.get("mon1").labels
    assert mon1["site"] == "dc" and "wan_edge" not in mon1 and "wan_role" not in mon1
    assert mon1["role"] == "monitoring" and mon1["groups"] == ",dc_servers,monitoring,"
    assert {h.name: h.labels["instance"] for h in targets.hosts} == {h.name: h.name for h in lab.hosts}


def test_phuyen_agency_hosts_sit_behind_gw1() -> None:
    targets = build_targets(load_inventory(PHUYEN))
    behind = sorted(h.name for h in targets.hosts if h.labels.get("wan_role") == "behind")
    assert behind == ["stc-app1", "tuyhoa-app1"]
    assert {targets.get(n).labels["agency"] for n in behind} == {"000.00.07.H48", "000.00.31.H48"}


# --- retention ---------------------------------------------------------------------------------------------


def _days(control_value: object) -> str:
    seconds = parse_timespan(str(control_value))
    assert seconds is not None
    return f"{-(-seconds // 86400):.0f}d"


def test_retention_is_the_catalogues_log_retention_of_the_highest_level(lab: Inventory, catalogue: Any) -> None:
    assert max(h.level for h in lab.hosts) == 3
    expected = _days(catalogue.value("PS-LOGGING-02", 3))
    got = retention(lab, catalogue)
    assert got.time == expected and got.level == 3 and "PS-LOGGING-02" in got.reason
    assert got.minimum_seconds == parse_timespan(str(catalogue.value("PS-LOGGING-02", 3)))


def test_retention_of_a_level_2_province(tmp_path: Path, catalogue: Any) -> None:
    minimal = load_inventory(lab_inventory_dir(tmp_path, "minimal"))
    assert {h.level for h in minimal.hosts} == {2}
    assert retention(minimal, catalogue).time == _days(catalogue.value("PS-LOGGING-02", 2))


def test_retention_requested_may_be_longer_never_shorter(lab: Inventory, catalogue: Any) -> None:
    assert retention(lab, catalogue, "1y").time == "1y"
    with pytest.raises(InputError, match=r"retention 30d is shorter .*PS-LOGGING-02"):
        retention(lab, catalogue, "30d")
    with pytest.raises(InputError, match="not a Prometheus duration"):
        retention(lab, catalogue, "3 months")


# --- Prometheus --------------------------------------------------------------------------------------------


def _secured(tmp_path: Path) -> PrometheusSettings:
    ca = tmp_path / "ca.crt"
    password = tmp_path / "exporter.password"
    ca.write_text("placeholder\n")
    password.write_text("secret\n")
    return PrometheusSettings(
        rule_files=(str(RULES / "*.yml"),),
        exporter_auth=ExporterAuth(ca_file=str(ca), username="prometheus", password_file=str(password)),
    )


def test_prometheus_config_passes_promtool_with_the_repository_rules(
    lab: Inventory, catalogue: Any, tmp_path: Path
) -> None:
    config = render(lab, catalogue, prometheus=_secured(tmp_path))
    prom, _ = write(config, tmp_path / "out", "lab")
    done = _run(_tool("promtool", "prometheus"), "check", "config", str(prom))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    for rule_file in RULES.glob("*.yml"):  # promtool really read the rules
        assert rule_file.name in done.stdout + done.stderr


def test_prometheus_jobs_targets_and_auth(lab: Inventory, catalogue: Any, tmp_path: Path) -> None:
    settings = _secured(tmp_path)
    data = render(lab, catalogue, prometheus=settings).prometheus
    jobs = {j["job_name"]: j for j in data["scrape_configs"]}
    assert set(jobs) == {"node", "provsec", "prometheus", "alertmanager", "blackbox_icmp", "blackbox_tcp"}
    for name, port in (("node", 9100), ("provsec", 9847)):
        job = jobs[name]
        assert job["scheme"] == "https"
        assert job["tls_config"] == {"ca_file": settings.exporter_auth.ca_file}  # type: ignore[union-attr]
        assert job["basic_auth"]["username"] == "prometheus" and "password" not in job["basic_auth"]
        by_instance = {s["labels"]["instance"]: s["targets"] for s in job["static_configs"]}
        assert by_instance == {h.name: [f"{h.ansible_host}:{port}"] for h in lab.hosts}
    assert jobs["prometheus"]["static_configs"][0]["labels"]["instance"] == "mon1"
    assert data["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]
    assert data["global"]["external_labels"] == {"province": "LAB", "prometheus": "mon1"}


# --- link probes (blackbox exporter) ------------------------------------------------------------------------

LAB_PROBE_JOBS = """\
- job_name: blackbox_icmp
  metrics_path: /probe
  params:
    module:
    - icmp
  static_configs:
  - targets:
    - 198.18.0.30
    labels:
      host: gw1
      leg: dc
      agency: 000.00.00.LAB
      level: '3'
      role: wan_edge
      groups: ',wan_edge,'
      site: wan:gw1
      wan_edge: gw1
      wan_role: edge
  - targets:
    - 198.18.1.1
    labels:
      host: gw1
      leg: agency
      agency: 000.00.00.LAB
      level: '3'
      role: wan_edge
      groups: ',wan_edge,'
      site: wan:gw1
      wan_edge: gw1
      wan_role: edge
  - targets:
    - 198.18.1.10
    labels:
      host: agency1
      leg: agency
      agency: 000.00.00.LAB
      level: '2'
      role: agency_servers
      groups: ',agency_servers,'
      site: wan:gw1
      wan_edge: gw1
      wan_role: behind
  relabel_configs:
  - source_labels:
    - __address__
    target_label: __param_target
  - source_labels:
    - __param_target
    target_label: instance
  - target_label: __address__
    replacement: 127.0.0.1:9115
- job_name: blackbox_tcp
  metrics_path: /probe
  params:
    module:
    - tcp_connect
  static_configs:
  - targets:
    - 198.18.0.23:443
    labels:
      host: web1
      agency: 000.00.00.LAB
      level: '3'
      role: web_servers
      groups: ',dc_servers,web_servers,'
      site: dc
  relabel_configs:
  - source_labels:
    - __address__
    target_label: __param_target
  - source_labels:
    - __param_target
    target_label: instance
  - target_label: __address__
    replacement: 127.0.0.1:9115
"""


def test_lab_probe_jobs_exactly(lab: Inventory, catalogue: Any) -> None:
    """gw1's two legs and agency1 behind it pinged, web1's portal connected to, through the blackbox exporter on
    loopback; the labels of each host's node job, with `host` and `leg`."""
    jobs = render(lab, catalogue).prometheus["scrape_configs"]
    assert [j["job_name"] for j in jobs] == [
        "prometheus", "alertmanager", "node", "provsec", "blackbox_icmp", "blackbox_tcp"]
    assert yaml.safe_dump(jobs[4:], allow_unicode=True, sort_keys=False, width=120) == LAB_PROBE_JOBS
    node = {s["labels"]["instance"]: s["labels"] for s in jobs[2]["static_configs"]}
    for job in jobs[4:]:
        for static in job["static_configs"]:
            labels = dict(static["labels"])
            host = labels.pop("host")
            labels.pop("leg", None)
            assert {**labels, "instance": host} == node[host], "probe and node labels differ"


def _discovered(prom: Path, job: str) -> list[dict[str, str]]:
    """The targets of a job after relabelling, as Prometheus computes them (`promtool check service-discovery`:
    static configs need no server)."""
    done = _run(_tool("promtool", "prometheus"), "check", "service-discovery", "--timeout=2s", str(prom), job)
    assert done.returncode == 0, done.stdout + done.stderr
    targets: list[dict[str, str]] = [t["labels"] for t in json.loads(done.stdout)]
    return sorted(targets, key=lambda t: t["instance"])  # promtool's order is not the configuration's


def test_probe_targets_after_relabelling_as_prometheus_computes_them(
    lab: Inventory, catalogue: Any, tmp_path: Path
) -> None:
    """Prometheus scrapes the blackbox exporter with ?module=…&target=…; `instance` is the probed address."""
    config = render(lab, catalogue, prometheus=PrometheusSettings(
        rule_files=(str(RULES / "*.yml"),), tcp_probes={"agency1": (22, 8443), "gw1": (22,)}))
    prom, _ = write(config, tmp_path, "lab")
    done = _run(_tool("promtool", "prometheus"), "check", "config", "--syntax-only", str(prom))
    assert done.returncode == 0, done.stdout + done.stderr
    icmp = _discovered(prom, "blackbox_icmp")
    assert [(t["__address__"], t["__metrics_path__"], t["__param_module"], t["__param_target"], t["instance"],
             t["host"], t["leg"], t["wan_role"]) for t in icmp] == [
        ("127.0.0.1:9115", "/probe", "icmp", "198.18.0.30", "198.18.0.30", "gw1", "dc", "edge"),
        ("127.0.0.1:9115", "/probe", "icmp", "198.18.1.1", "198.18.1.1", "gw1", "agency", "edge"),
        ("127.0.0.1:9115", "/probe", "icmp", "198.18.1.10", "198.18.1.10", "agency1", "agency", "behind"),
    ]
    assert all(t["wan_edge"] == "gw1" and t["site"] == "wan:gw1" for t in icmp)
    tcp = _discovered(prom, "blackbox_tcp")
    assert [(t["__param_module"], t["instance"], t["host"]) for t in tcp] == [
        ("tcp_connect", "198.18.0.23:443", "web1"), ("tcp_connect", "198.18.0.30:22", "gw1"),
        ("tcp_connect", "198.18.1.10:22", "agency1"), ("tcp_connect", "198.18.1.10:8443", "agency1")]
    assert tcp[3]["wan_edge"] == "gw1" and tcp[3]["wan_role"] == "behind" and "wan_edge" not in tcp[0]


def test_phuyen_probes_both_legs_of_gw1_and_the_agency_hosts() -> None:
    inventory = load_inventory(PHUYEN)
    jobs = {j["job_name"]: j for j in render(inventory, load_catalogue(CATALOGUE)).prometheus["scrape_configs"]}
    icmp = [(s["targets"][0], s["labels"]["host"], s["labels"]["leg"]) for s in jobs["blackbox_icmp"]["static_configs"]]
    assert icmp == [("10.48.10.1", "gw1", "dc"), ("10.48.64.1", "gw1", "agency"),
                    ("10.48.66.10", "stc-app1", "agency"), ("10.48.80.10", "tuyhoa-app1", "agency")]
    web = sorted(h.name for h in inventory.hosts if "web_servers" in h.groups)
    assert [s["labels"]["host"] for s in jobs["blackbox_tcp"]["static_configs"]] == web
    assert all(s["targets"][0].endswith(":443") for s in jobs["blackbox_tcp"]["static_configs"])


def test_no_probe_jobs_without_a_blackbox_exporter(lab: Inventory, catalogue: Any) -> None:
    jobs = render(lab, catalogue, prometheus=PrometheusSettings(blackbox_address=None)).prometheus["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["prometheus", "alertmanager", "node", "provsec"]


def test_probe_settings_refuse_nonsense(lab: Inventory, catalogue: Any) -> None:
    with pytest.raises(InputError, match=r"TCP probe of host 'web1': 70000 is not a TCP port"):
        PrometheusSettings(tcp_probes={"web1": (70000,)})
    with pytest.raises(InputError, match="blackbox_address: empty"):
        PrometheusSettings(blackbox_address=" ")
    with pytest.raises(InputError, match=r"TCP probes: no host 'web9'"):
        render(lab, catalogue, prometheus=PrometheusSettings(tcp_probes={"web9": (443,)}))


def test_plain_http_without_tls(lab: Inventory, catalogue: Any) -> None:
    jobs = render(lab, catalogue).prometheus["scrape_configs"]
    assert all("scheme" not in j and "basic_auth" not in j for j in jobs)


def test_alert_relabeling_restores_routing_labels_by_instance(catalogue: Any) -> None:
    inventory = load_inventory(PHUYEN)
    rules = render(inventory, catalogue).prometheus["alerting"]["alert_relabel_configs"]
    behind = [r for r in rules if r["target_label"] == "wan_role" and r["replacement"] == "behind"]
    assert behind == [
        {"source_labels": ["instance"], "regex": "stc-app1|tuyhoa-app1", "target_label": "wan_role",
         "replacement": "behind"}
    ]
    dotted = dataclasses.replace(inventory, hosts=tuple(
        dataclasses.replace(h, name="mail1.phuyen") if h.name == "mail1" else h for h in inventory.hosts))
    rules = render(dotted, catalogue).prometheus["alerting"]["alert_relabel_configs"]
    assert any(r"mail1\.phuyen" in r["regex"].split("|") for r in rules)


# --- Alertmanager ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def am_file(lab: Inventory, catalogue: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("am")
    token = out / "notify.token"
    token.write_text("t0ken\n")
    config = render(lab, catalogue, alertmanager=AlertmanagerSettings(bearer_token_file=str(token)))
    _, am = write(config, out, "lab")
    return am


def test_amtool_check_config(am_file: Path) -> None:
    done = _run(_tool("amtool", "prometheus-alertmanager"), "check-config", str(am_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "3 inhibit rules" in done.stdout and "4 receivers" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ProvsecHostDown", "severity=critical", "instance=db1", "site=dc"], "provsec-critical"),
        (["alertname=ProvsecHostDiskFilling", "severity=warning", "instance=db1"], "provsec-warning"),
        # The Watchdog carries severity=warning, but its own route comes first and does not continue.
        (["alertname=ProvsecMonitoringWatchdog", "severity=warning", "prometheus=mon1"], "provsec-heartbeat"),
        (["alertname=ProvsecMonitoringWatchdog"], "provsec-heartbeat"),
        (["alertname=ProvsecHostDown", "severity=critical", "instance=agency1", "wan_edge=gw1", "wan_role=behind",
          "site=wan:gw1"], "provsec-critical"),
        (["alertname=SomethingNew", "severity=page"], "provsec-default"),
        (["alertname=SomethingNew"], "provsec-default"),
    ],
    ids=["critical", "warning", "watchdog", "watchdog-bare", "agency-critical", "unknown-severity", "no-severity"],
)
def test_amtool_routes(am_file: Path, labels: list[str], receiver: str) -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")
    done = _run(amtool, "config", "routes", "test", f"--config.file={am_file}", f"--verify.receivers={receiver}",
                *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver


def test_routes_group_a_wan_cut_together(lab: Inventory, catalogue: Any) -> None:
    config = render(lab, catalogue).alertmanager
    assert config["route"]["group_by"] == ["alertname", "site"]
    watchdog, critical, warning = config["route"]["routes"]
    assert watchdog["matchers"] == ['alertname="ProvsecMonitoringWatchdog"'] and watchdog["continue"] is False
    assert watchdog["repeat_interval"] == "1m"
    assert critical["matchers"] == ['severity="critical"'] and "active_time_intervals" not in critical
    assert warning["active_time_intervals"] == ["provsec-working-hours"]
    # every host behind gw1 and gw1 itself share the grouping label: one group, one incident
    targets = build_targets(lab)
    assert {h.labels["site"] for h in targets.hosts if h.labels.get("wan_edge") == "gw1"} == {"wan:gw1"}
    host_down, link_down = config["inhibit_rules"][:2]
    assert host_down["equal"] == link_down["equal"] == ["wan_edge"]
    assert host_down["source_matchers"] == ['alertname="ProvsecHostDown"', 'wan_role="edge"']
    assert link_down["source_matchers"] == ['alertname="ProvsecWanLinksDown"', 'wan_role="edge"']
    assert host_down["target_matchers"] == link_down["target_matchers"] == ['wan_role="behind"']
    # the link alerts name the same label as the inhibition: wan_links.yml keeps the target labels
    rules = yaml.safe_load((RULES / "wan_links.yml").read_text(encoding="utf-8"))
    assert "ProvsecWanLinksDown" in {r.get("alert") for g in rules["groups"] for r in g["rules"]}


def test_working_hours_come_from_the_calendar() -> None:
    calendar = parse_calendar({
        "periods": ["07:30-11:30", "13:30-17:00"],
        "extra_days_off": {"2026-01-02": "Nghỉ bù"},
        "makeup_working_days": ["2026-01-10"],
    })
    hours = working_hours_from_calendar(calendar, (2026,))
    assert hours.location == "Asia/Ho_Chi_Minh" and hours.weekdays == (0, 1, 2, 3, 4)
    assert date(2026, 1, 2) in hours.days_off and date(2026, 9, 2) in hours.days_off  # Quốc khánh
    assert hours.working_days == (date(2026, 1, 10),)
    intervals = {i["name"]: i["time_intervals"]
                 for i in render_am(AlertmanagerSettings(working_hours=hours))["time_intervals"]}
    working = intervals["provsec-working-hours"]
    assert working[0]["weekdays"] == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert working[0]["times"] == [{"start_time": "07:30", "end_time": "11:30"},
                                   {"start_time": "13:30", "end_time": "17:00"}]
    assert all(i["location"] == "Asia/Ho_Chi_Minh" for i in working + intervals["provsec-days-off"])
    assert {"years": ["2026"], "months": ["1"], "days_of_month": ["10"], "location": "Asia/Ho_Chi_Minh",
            "times": working[0]["times"]} in working
    january = next(i for i in intervals["provsec-days-off"] if i["months"] == ["1"])
    assert january["days_of_month"] == ["1:2"]  # Tết Dương lịch and the extra day, as one range


def render_am(settings: AlertmanagerSettings) -> dict[str, Any]:
    from provsec.monitoring.alertmanager import alertmanager_config

    return alertmanager_config(settings)


# --- bad input ---------------------------------------------------------------------------------------------


def _edit_hosts(directory: Path, edit: Any) -> None:
    path = directory / "hosts.yml"
    data = yaml.safe_load(path.read_text())
    edit(data["all"]["children"])
    path.write_text(yaml.safe_dump(data))


def test_host_without_address_is_refused_naming_it(tmp_path: Path) -> None:
    directory = lab_inventory_dir(tmp_path)
    _edit_hosts(directory, lambda groups: groups["agency_servers"]["hosts"]["agency1"].pop("ansible_host"))
    with pytest.raises(InventoryError, match=r"agency_servers\.hosts\.agency1\.ansible_host: missing"):
        load_inventory(directory)


def test_bad_level_is_refused_naming_the_host(lab: Inventory, catalogue: Any) -> None:
    bad = dataclasses.replace(lab, hosts=tuple(
        dataclasses.replace(h, level=7) if h.name == "db1" else h for h in lab.hosts))
    with pytest.raises(InputError, match=r"host 'db1': level: must be an integer from 1 to 5.*got 7"):
        render(bad, catalogue)


def test_wan_edge_reference_to_unknown_host(lab: Inventory, catalogue: Any) -> None:
    with pytest.raises(InputError, match=r"wan_edge of host 'agency1': unknown gateway 'gw9'"):
        render(lab, catalogue, wan_edges={"agency1": "gw9"})
    with pytest.raises(InputError, match=r"wan_edge of host 'agency9': no host 'agency9'"):
        render(lab, catalogue, wan_edges={"agency9": "gw1"})
    with pytest.raises(InputError, match=r"'db1' is not in the role group wan_edge"):
        render(lab, catalogue, wan_edges={"agency1": "db1"})


def test_explicit_wan_edge_puts_a_dc_host_behind_the_gateway(lab: Inventory, catalogue: Any) -> None:
    labels = build_targets(lab, {"bak1": "gw1"}).get("bak1").labels
    assert (labels["wan_edge"], labels["wan_role"], labels["site"]) == ("gw1", "behind", "wan:gw1")


def test_two_gateways_on_one_agency_range_must_be_told_apart(tmp_path: Path, catalogue: Any) -> None:
    directory = lab_inventory_dir(tmp_path)

    def add_gw2(groups: dict[str, Any]) -> None:
        groups["wan_edge"]["hosts"]["gw2"] = {
            "ansible_host": "198.18.0.31", "provsec_agency": "000.00.00.LAB",
            "provsec_addresses": {"dc": "198.18.0.31", "agency": "198.18.1.2"},
        }

    _edit_hosts(directory, add_gw2)
    province = directory / "group_vars" / "all" / "province.yml"
    data = yaml.safe_load(province.read_text())
    next(s for s in data["provsec_information_systems"] if s["id"] == "mang-wan")["hosts"].append("gw2")
    province.write_text(yaml.safe_dump(data, allow_unicode=True))
    inventory = load_inventory(directory)
    with pytest.raises(InputError, match=r"host 'agency1' .* several WAN gateways \(gw1, gw2\).*--wan-edge"):
        render(inventory, catalogue)
    labels = build_targets(inventory, {"agency1": "gw2"}).get("agency1").labels
    assert labels["wan_edge"] == "gw2"


def test_monitoring_host_must_exist(lab: Inventory, catalogue: Any) -> None:
    with pytest.raises(InputError, match="monitoring host 'db1' is not in the role group monitoring"):
        render(lab, catalogue, monitoring="db1")
    none = dataclasses.replace(lab, hosts=tuple(
        dataclasses.replace(h, groups=("dc_servers",)) if h.name == "mon1" else h for h in lab.hosts))
    with pytest.raises(InputError, match=r"all\.children\.monitoring: no host"):
        render(none, catalogue)


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(InputError, match="both the user name and the password file"):
        ExporterAuth(username="prometheus")
    with pytest.raises(InputError, match="not an http"):
        AlertmanagerSettings(webhook_url="127.0.0.1:9848")
    with pytest.raises(InputError, match="scrape_timeout 1m is longer"):
        PrometheusSettings(scrape_timeout="1m", scrape_interval="30s")


# --- CLI ---------------------------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="provsec")
    monitoring_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.handler(args)
    return result


def test_cli_render_writes_both_files_and_prints_the_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = lab_inventory_dir(tmp_path)
    out = tmp_path / "out"
    code = _cli("monitoring", "render", "--inventory", str(directory), "--out", str(out),
                "--catalogue", str(CATALOGUE), "--tls", "--basic-auth-user", "prometheus",
                "--basic-auth-password-file", "/etc/prometheus/provsec-exporter.password",
                "--bearer-token-file", "/etc/prometheus/provsec-notify.token", "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["retention_time"] == "92d"
    assert summary["prometheus_args"] == ["--storage.tsdb.retention.time=92d"]
    assert summary["hosts"]["agency1"]["wan_edge"] == "gw1"
    assert summary["probes"] == {"blackbox_icmp": ["198.18.0.30", "198.18.1.1", "198.18.1.10"],
                                 "blackbox_tcp": ["198.18.0.23:443"]}
    prom = yaml.safe_load((out / "prometheus.yml").read_text())
    assert prom["scrape_configs"][2]["tls_config"] == {"ca_file": "/etc/provsec/pki/ca.crt"}
    am = yaml.safe_load((out / "alertmanager.yml").read_text())
    assert am["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"] == (
        "/etc/prometheus/provsec-notify.token")


def test_cli_probes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = lab_inventory_dir(tmp_path)
    base = ("monitoring", "render", "--inventory", str(directory), "--catalogue", str(CATALOGUE))
    out = tmp_path / "out"
    assert _cli(*base, "--out", str(out), "--tcp-probe", "agency1:22", "--tcp-probe", "agency1:22",
                "--blackbox-address", "127.0.0.1:19115") == 0
    assert "jobs prometheus, alertmanager, node, provsec, blackbox_icmp, blackbox_tcp" in capsys.readouterr().out
    prom = yaml.safe_load((out / "prometheus.yml").read_text())
    tcp = prom["scrape_configs"][5]
    assert [s["targets"] for s in tcp["static_configs"]] == [["198.18.0.23:443"], ["198.18.1.10:22"]]
    assert tcp["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "127.0.0.1:19115"}
    assert _cli(*base, "--out", str(out), "--no-probes") == 0
    prom = yaml.safe_load((out / "prometheus.yml").read_text())
    assert [j["job_name"] for j in prom["scrape_configs"]] == ["prometheus", "alertmanager", "node", "provsec"]
    with pytest.raises(InputError, match="expected HOST:PORT"):
        _cli(*base, "--out", str(out), "--tcp-probe", "agency1")
    with pytest.raises(InputError, match="no host 'agency9'"):
        _cli(*base, "--out", str(out), "--tcp-probe", "agency9:22")


def test_cli_refuses_basic_auth_without_tls_and_bad_wan_edge(tmp_path: Path) -> None:
    directory = lab_inventory_dir(tmp_path)
    base = ("monitoring", "render", "--inventory", str(directory), "--out", str(tmp_path / "o"),
            "--catalogue", str(CATALOGUE))
    with pytest.raises(InputError, match="in clear"):
        _cli(*base, "--basic-auth-user", "p", "--basic-auth-password-file", "/f")
    with pytest.raises(InputError, match="expected HOST=GATEWAY"):
        _cli(*base, "--wan-edge", "agency1")
    with pytest.raises(InputError, match="unknown gateway 'nope'"):
        _cli(*base, "--wan-edge", "agency1=nope")


@pytest.mark.parametrize(("interval", "timeout"), [("5s", "5s"), ("10s", "10s"), ("1m", "10s"), ("30s", "10s")])
def test_cli_scrape_timeout_is_10s_or_the_interval_when_shorter(tmp_path: Path, interval: str, timeout: str) -> None:
    """Prometheus refuses a timeout longer than the interval: the lab scrapes every 5 s."""
    out = tmp_path / "out"
    assert _cli("monitoring", "render", "--inventory", str(lab_inventory_dir(tmp_path)), "--out", str(out),
                "--catalogue", str(CATALOGUE), "--scrape-interval", interval) == 0
    prom = yaml.safe_load((out / "prometheus.yml").read_text())
    assert (prom["global"]["scrape_interval"], prom["global"]["scrape_timeout"]) == (interval, timeout)
    tool = _tool("promtool", "prometheus")
    checked = subprocess.run([tool, "check", "config", "--syntax-only", str(out / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
