"""playbooks/pki.yml on the lab: every host gets a key that stays on it and a certificate from the
provincial CA that verifies, names the host and its address, and survives a second run unchanged."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from labfixture import LabHandle

pytestmark = pytest.mark.lab

PKI_DIR = "/etc/provsec/pki"
# "host1   : ok=12   changed=0    unreachable=0    failed=0    skipped=3 ..." in the PLAY RECAP
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host (the last recap when there are several)."""
    text = ANSI.sub("", output)
    start = text.rfind("PLAY RECAP")
    assert start >= 0, f"no PLAY RECAP in the output:\n{text[-3000:]}"
    return {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP_LINE.finditer(text, start)
    }


def addresses(lab: LabHandle) -> dict[str, str]:
    """ansible_host of every lab host, as the inventory gives it."""
    res = lab.ansible("ansible-inventory", "--list")
    assert res.returncode == 0, res.stderr
    hostvars = json.loads(res.stdout)["_meta"]["hostvars"]
    return {host: str(hostvars[host]["ansible_host"]) for host in lab.hosts}


def run_pki(lab: LabHandle, ca_dir: Path, *args: str) -> tuple[str, dict[str, dict[str, int]]]:
    res = lab.playbook("pki.yml", "-e", f"pki_ca_dir={ca_dir}", *args)
    out = res.stdout + res.stderr
    unreachable = "\n".join(line for line in out.splitlines() if "UNREACHABLE" in line)  # the reason, early
    assert res.returncode == 0, f"pki.yml {' '.join(args)} failed (rc {res.returncode}):\n{unreachable}\n{out[-6000:]}"
    counts = recap(res.stdout)
    assert sorted(counts) == sorted(lab.hosts), f"recap hosts {sorted(counts)} != lab hosts {sorted(lab.hosts)}"
    for host, c in counts.items():
        assert c["failed"] == 0 and c["unreachable"] == 0, f"{host}: {c}\n{out[-6000:]}"
    return out, counts


def test_pki_issues_verifiable_host_certificates_idempotently(lab: LabHandle, tmp_path: Path) -> None:
    # A CA of this test's own, so the run starts from nothing on the control node.
    ca_dir = tmp_path / "pki-ca"

    # Check mode before the CA exists: nothing fails and nothing is written.
    run_pki(lab, ca_dir, "--check")
    assert not ca_dir.exists(), "check mode created the CA directory"

    run_pki(lab, ca_dir)

    # The CA key is the control node's secret: dir 0700, key 0600.
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600

    ips = addresses(lab)
    for host in lab.hosts:
        verify = lab.ssh(host, f"sudo -n openssl verify -CAfile {PKI_DIR}/ca.crt {PKI_DIR}/host.crt")
        assert verify.returncode == 0, f"{host}: {verify.stdout}{verify.stderr}"
        assert verify.stdout.strip() == f"{PKI_DIR}/host.crt: OK", host

        # The system trust store holds the CA too (update-ca-certificates ran).
        trusted = lab.ssh(host, f"sudo -n openssl verify {PKI_DIR}/host.crt")
        assert trusted.returncode == 0, f"{host}: CA not in the system trust store: {trusted.stdout}{trusted.stderr}"

        text = lab.ssh(host, f"openssl x509 -in {PKI_DIR}/host.crt -noout -text")
        assert text.returncode == 0, f"{host}: {text.stderr}"
        sans = re.search(r"X509v3 Subject Alternative Name:.*\n\s*(.+)", text.stdout)
        assert sans, f"{host}: no subjectAltName in\n{text.stdout}"
        names = [name.strip() for name in sans.group(1).split(",")]
        assert f"DNS:{host}" in names, f"{host}: {names}"
        assert f"IP Address:{ips[host]}" in names, f"{host}: {names}"
        assert "prime256v1" in text.stdout, f"{host}: the key is not ECDSA P-256"

        key = lab.ssh(host, f"sudo -n stat -c '%a %U %G' {PKI_DIR}/host.key")
        assert key.stdout.split() == ["600", "root", "root"], f"{host}: {key.stdout}{key.stderr}"

    # Idempotence: a second run changes nothing on any host, and neither does a check run.
    out, counts = run_pki(lab, ca_dir)
    changed = {host: c["changed"] for host, c in counts.items() if c["changed"]}
    assert not changed, f"second run changed {changed}:\n{out[-6000:]}"
    out, counts = run_pki(lab, ca_dir, "--check")
    changed = {host: c["changed"] for host, c in counts.items() if c["changed"]}
    assert not changed, f"check run after two runs reports changes {changed}:\n{out[-6000:]}"

    # A re-run skips the certificate tasks when the probe finds everything good: damage must still be repaired.
    # One host gets a key readable by all and, for the same key and name, a self-signed certificate instead of the
    # CA's; the other a truncated trusted CA file.
    first, second = sorted(lab.hosts)[:2]
    foreign = lab.root(
        first,
        f"openssl req -x509 -key {PKI_DIR}/host.key -subj /CN={first} -days 30 -out {PKI_DIR}/host.crt"
        f" && chmod 0644 {PKI_DIR}/host.key",
    )
    assert foreign.returncode == 0, f"{first}: {foreign.stdout}{foreign.stderr}"
    assert lab.ssh(first, f"sudo -n openssl verify -CAfile {PKI_DIR}/ca.crt {PKI_DIR}/host.crt").returncode != 0
    trust_file = "/usr/local/share/ca-certificates/provsec-lab-ca.crt"
    cut = lab.root(second, f"head -n 3 {trust_file} > {trust_file}.cut && mv {trust_file}.cut {trust_file}")
    assert cut.returncode == 0, f"{second}: {cut.stdout}{cut.stderr}"

    out, counts = run_pki(lab, ca_dir)
    assert counts[first]["changed"] > 0 and counts[second]["changed"] > 0, f"nothing repaired: {counts}"
    for host in (first, second):
        verify = lab.ssh(host, f"sudo -n openssl verify {PKI_DIR}/host.crt")
        assert verify.returncode == 0, f"{host} after the repair: {verify.stdout}{verify.stderr}"
    key = lab.ssh(first, f"sudo -n stat -c '%a %U %G' {PKI_DIR}/host.key")
    assert key.stdout.split() == ["600", "root", "root"], f"{first}: {key.stdout}{key.stderr}"
    out, counts = run_pki(lab, ca_dir)
    changed = {host: c["changed"] for host, c in counts.items() if c["changed"]}
    assert not changed, f"run after the repair changed {changed}:\n{out[-6000:]}"
