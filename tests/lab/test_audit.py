"""playbooks/audit.yml on real lab hosts: it changes nothing and passes with --check; it writes one result per
host and control; a fresh host fails the controls it does not meet, with the live evidence; kernel.* and auditd
controls are not applicable inside nspawn; a setting changed by hand flips its control; an exception shows
as excepted, an expired one fails.

Only mon1 and agency1 are audited here (the other lab hosts belong to the hardening tests). Every change made
by hand is undone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labfixture import LabHandle

HOSTS = ("mon1", "agency1")
DROPIN = "/etc/ssh/sshd_config.d/00-provsec-audit-test.conf"  # sshd keeps the first value it reads


def audit(lab: LabHandle, results: Path, *args: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Run audit.yml into `results` (it must change nothing); return each host's results by control id."""
    by_host = lab.audit(HOSTS, results, *args, unchanged=True)
    for host in HOSTS:
        doc = json.loads((results / "results" / f"{host}.json").read_text())
        assert doc["host"] == host and doc["container"] == "systemd-nspawn"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["collected_at"])
    return by_host


def test_audit_check_mode_on_fresh_hosts(lab: LabHandle, tmp_path: Path) -> None:
    results = audit(lab, tmp_path / "check", "--check")
    summary = json.loads((tmp_path / "check" / "results" / "summary.json").read_text())
    assert set(summary["hosts"]) == set(HOSTS) and summary["hosts_without_evidence"] == {}
    for host in HOSTS:
        assert len(results[host]) == summary["controls"]
        assert (tmp_path / "check" / "evidence" / f"{host}.json").is_file()
        mine = results[host]
        # a freshly installed lab host does not meet these, and the evidence says why
        assert mine["PS-SSH-04"]["status"] == "fail"
        assert mine["PS-SSH-04"]["evidence"] == "sshd -T: maxauthtries 6"
        assert mine["PS-FIREWALL-02"]["status"] == "fail"
        assert mine["PS-BANNER-02"]["status"] == "fail"
        assert "Debian" in mine["PS-BANNER-02"]["evidence"]
        # the lab base already refuses root and password logins
        assert mine["PS-SSH-02"]["status"] == "pass"
        assert mine["PS-SSH-01"]["status"] == "pass"
        # inside nspawn: kernel.* sysctls and auditd cannot apply; net.* sysctls do
        for cid in ("PS-KERNEL-01", "PS-KERNEL-05", "PS-AUDIT-01", "PS-AUDIT-02", "PS-TIME-02"):
            assert mine[cid]["status"] == "not_applicable", mine[cid]
            assert "systemd-nspawn" in mine[cid]["reason"]
        assert mine["PS-KERNEL-09"]["status"] in ("pass", "fail")
        assert mine["PS-KERNEL-09"]["evidence"].startswith("sysctl net.ipv4.tcp_syncookies = ")


@pytest.fixture
def hand_change(lab: LabHandle) -> Iterator[None]:
    """MaxAuthTries 3 set by hand on mon1 (not by any playbook), undone afterwards."""
    res = lab.ssh("mon1", f"printf 'MaxAuthTries 3\\n' | sudo -n tee {DROPIN} >/dev/null && sudo -n sshd -t "
                          "&& sudo -n systemctl reload ssh")
    assert res.returncode == 0, res.stderr
    try:
        yield
    finally:
        undo = lab.ssh("mon1", f"sudo -n rm -f {DROPIN} && sudo -n systemctl reload ssh")
        assert undo.returncode == 0, undo.stderr


def test_setting_changed_by_hand_flips_its_control(lab: LabHandle, tmp_path: Path, hand_change: None) -> None:
    results = audit(lab, tmp_path / "changed")
    assert results["mon1"]["PS-SSH-04"]["status"] == "pass"
    assert results["mon1"]["PS-SSH-04"]["evidence"] == "sshd -T: maxauthtries 3"
    assert results["agency1"]["PS-SSH-04"]["status"] == "fail"  # untouched


def test_exceptions_current_and_expired(lab: LabHandle, tmp_path: Path) -> None:
    overlay = tmp_path / "exceptions.yml"
    overlay.write_text("""\
---
provsec_control_exceptions:
  - control: PS-SSH-04
    reason: "Ứng dụng quản trị cũ cần 6 lần thử (thử nghiệm)"
    expires: 2099-12-31
    approved_by: "Nguyễn Văn A"
  - control: PS-BANNER-02
    reason: "Chờ thay biểu ngữ"
    expires: 2020-01-01
    approved_by: "Trần Thị B"
""", encoding="utf-8")
    results = audit(lab, tmp_path / "exceptions", "-e", f"@{overlay}")
    for host in HOSTS:
        ssh = results[host]["PS-SSH-04"]
        assert ssh["status"] == "excepted"
        assert "exception until 2099-12-31 approved by Nguyễn Văn A" in ssh["reason"]
        assert ssh["evidence"] == "sshd -T: maxauthtries 6"
        banner = results[host]["PS-BANNER-02"]
        assert banner["status"] == "fail"
        assert banner["reason"].startswith("exception expired on 2020-01-01")
    summary = json.loads((tmp_path / "exceptions" / "results" / "summary.json").read_text())
    assert summary["by_control"]["PS-SSH-04"]["excepted"] == len(HOSTS)
