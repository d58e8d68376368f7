"""The contract between role blackbox_exporter and the probe jobs `provsec monitoring render` writes: the module
names, the exporter's address, and a drop-in that keeps it on loopback without any capability.

The templates are rendered with Jinja as Ansible does (trim_blocks); whether Debian's exporter accepts the result
(`--config.check`) and probes with it is the lab's to show (the package is not on the control node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from provsec.monitoring import probes

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "playbooks" / "roles" / "blackbox_exporter"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _render(template: str, **extra: Any) -> str:
    variables = {
        **_yaml(ROLE / "defaults" / "main.yml"),
        **_yaml(ROLE / "vars" / "main.yml"),
        "ansible_managed": "managed",
        **extra,
    }
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return env.from_string((ROLE / "templates" / template).read_text(encoding="utf-8")).render(**variables)


def test_modules_are_the_ones_the_probe_jobs_name() -> None:
    modules = yaml.safe_load(_render("blackbox.yml.j2"))["modules"]
    assert set(modules) == {probes.ICMP_MODULE, probes.TCP_MODULE}
    assert modules[probes.ICMP_MODULE]["prober"] == "icmp" and modules[probes.TCP_MODULE]["prober"] == "tcp"
    for module in modules.values():
        assert module["timeout"].endswith("s")
        options = module[module["prober"]]
        assert options == {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}


def test_the_exporter_listens_where_prometheus_scrapes_it() -> None:
    defaults = _yaml(ROLE / "defaults" / "main.yml")
    monitoring = _yaml(REPO / "playbooks" / "roles" / "monitoring_server" / "defaults" / "main.yml")
    assert defaults["blackbox_exporter_listen"] == probes.BLACKBOX_ADDRESS
    assert monitoring["monitoring_server_blackbox_address"] == probes.BLACKBOX_ADDRESS
    assert probes.BLACKBOX_ADDRESS.startswith("127.0.0.1:")


def test_drop_in_runs_it_on_loopback_without_capabilities() -> None:
    lines = _render("provsec.conf.j2", blackbox_exporter_extra_args=["--log.level=debug"]).splitlines()
    service = [line for line in lines if line and not line.startswith("#")]
    assert service == [
        "[Service]",
        "ExecStart=",
        "ExecStart=/usr/bin/prometheus-blackbox-exporter --config.file=/etc/prometheus/blackbox.yml "
        "--web.listen-address=127.0.0.1:9115 --log.level=debug",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=true",
    ]


def test_playbook_runs_the_exporter_before_prometheus_on_the_monitoring_host() -> None:
    plays = _yaml(REPO / "playbooks" / "monitoring.yml")
    play = next(p for p in plays if p.get("hosts") == "monitoring")
    roles = [r["role"] for r in play["roles"]]
    assert roles.index("blackbox_exporter") < roles.index("monitoring_server")
    assert not (ROLE / "meta" / "ports.yml").exists(), "loopback only: the exporter needs no firewall port"
