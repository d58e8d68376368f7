"""The independent tools provsec scan's posture findings are checked against (issue 6 §6): ssh-audit for SSH,
testssl.sh for TLS, both from Debian; and a self-signed certificate to serve. Each tool can run inside a
network namespace (the lab's hosts), so it sees a server exactly as the scanner host does."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PSEUDO_KEX = ("ext-info-", "kex-strict-")  # markers in the key exchange list, not algorithms


def _in(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def ssh_audit(address: str, port: int, netns: str | None = None) -> dict[str, list[str]]:
    """What ssh-audit reads from the server: algorithms per category and the banner."""
    done = subprocess.run(_in(netns, ["ssh-audit", "-j", "-p", str(port), address]), capture_output=True,
                          text=True, timeout=60, check=False)
    data = json.loads(done.stdout)
    return {"kex": [k["algorithm"] for k in data["kex"] if not k["algorithm"].startswith(PSEUDO_KEX)],
            "host_keys": [k["algorithm"] for k in data["key"]], "ciphers": list(data["enc"]),
            "macs": list(data["mac"]), "banner": [data["banner"]["raw"]]}


def run_testssl(address: str, port: int, work: Path, netns: str | None = None) -> dict[str, dict[str, Any]]:
    """testssl.sh's protocol (-p) and server defaults (-S) findings by id, without any DNS lookup."""
    out = work / f"testssl-{address}-{port}.json"
    done = subprocess.run(_in(netns, ["testssl", "--quiet", "--warnings", "off", "--color", "0", "--nodns", "none",
                                      "--connect-timeout", "10", "--openssl-timeout", "10", "--jsonfile", str(out),
                                      "-p", "-S", f"{address}:{port}"]),
                          capture_output=True, text=True, timeout=300, check=False)
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    return {f["id"]: f for f in json.loads(out.read_text())}


def days_left_testssl(findings: dict[str, dict[str, Any]]) -> int:
    """The days left that testssl.sh reports ("expires < 30 days (4)", ">= 60 days")."""
    status = findings["cert_expirationStatus"]["finding"]
    match = re.search(r"\((\d+)\)", status)
    assert match, status
    return int(match.group(1))


def self_signed(tmp: Path, days: float, address: str, name: str = "web1.test") -> tuple[Path, Path]:
    """A self-signed EC certificate for address, valid from an hour ago for `days` days; (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file
