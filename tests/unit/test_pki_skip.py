"""provsec.pki: whether the pki role may skip its tasks. Keys and certificates are made here with `cryptography`,
the probe lines as the role's probe.sh.j2 prints them; every doubt must answer "redo"."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provsec.pki import ca_redo_reason, host_redo, parse_probe

CN, ORG = "provsec CA T", "Tỉnh thử"
SANS = ["DNS:db1", "IP:198.18.0.22"]
WANT = {"common_name": "db1", "subject_alt_names": SANS, "curve": "secp256r1", "renew_days": 30}
NOW = datetime.datetime.now(datetime.UTC)


def pem(obj: x509.Certificate) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def ca_cert(key: ec.EllipticCurvePrivateKey, *, cn: str = CN, days: int = 3650) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )


def usage(**on: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


def host_cert(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    cn: str = "db1",
    sans: tuple[x509.GeneralName, ...] | None = None,
    days: int = 397,
    key_usage: x509.KeyUsage | None = None,
    eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
) -> x509.Certificate:
    names = sans if sans is not None else (x509.DNSName("db1"), x509.IPAddress(ipaddress.ip_address("198.18.0.22")))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage or usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


@dataclass
class Pki:
    dir: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    host_key: ec.EllipticCurvePrivateKey

    def write(self, passphrase: str = "") -> None:
        crypt = (
            serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
        )
        (self.dir / "ca.key").write_bytes(
            self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, crypt)
        )
        (self.dir / "ca.crt").write_text(pem(self.cert))
        (self.dir).chmod(0o700)
        (self.dir / "ca.key").chmod(0o600)
        (self.dir / "ca.crt").chmod(0o644)

    def probe(self, cert: x509.Certificate | None = None, **override: str | None) -> list[str]:
        """The probe's lines for a host that has everything good, with `override` replacing a stat or pem."""
        pub = (
            self.host_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        ca_pem = pem(self.cert)
        pems = {
            "cert": pem(cert or host_cert(self.host_key, self.cert, self.key)),
            "ca": ca_pem,
            "trust": ca_pem,
            "pub": pub,
        }
        stats = {
            "dir": "755 root root",
            "key": "600 root root",
            "cert": "644 root root",
            "ca": "644 root root",
            "trust": "644 root root",
        }
        lines = ["package\tinstalled\topenssl"]
        for what, good in stats.items():
            value = override.get(f"stat_{what}", good)
            if value is not None:
                lines.append(f"stat\t{what}\t{value}")
        for what, good in pems.items():
            text = override.get(f"pem_{what}", good)
            if text is not None:
                lines.append(f"pem\t{what}\t{base64.b64encode(text.encode()).decode()}")
        return lines

    def redo(self, lines: list[str], **want: object) -> dict[str, str]:
        return host_redo(parse_probe(lines), str(self.dir / "ca.crt"), **{**WANT, **want})  # type: ignore[arg-type]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    made = Pki(tmp_path / "ca", key, ca_cert(key), ec.generate_private_key(ec.SECP256R1()))
    made.dir.mkdir()
    made.write()
    return made


def ca_reason(pki: Pki, **want: object) -> str:
    args = {"common_name": CN, "organization": ORG, "curve": "secp256r1", "renew_days": 365, **want}
    return ca_redo_reason(str(pki.dir), **args)  # type: ignore[arg-type]


def test_ca_good_with_and_without_passphrase(pki: Pki) -> None:
    assert ca_reason(pki) == ""
    phrase = secrets.token_hex(8)
    pki.write(phrase)
    assert ca_reason(pki, passphrase=phrase) == ""
    assert "cannot read the CA" in ca_reason(pki, passphrase=phrase[::-1])
    assert "cannot read the CA" in ca_reason(pki)


@pytest.mark.parametrize(("path", "mode"), [("", 0o755), ("ca.key", 0o644), ("ca.crt", 0o600)])
def test_ca_modes(pki: Pki, path: str, mode: int) -> None:
    (pki.dir / path).chmod(mode)
    assert f"is not mode {'0700' if not path else '0600' if path == 'ca.key' else '0644'}" in ca_reason(pki)


def test_ca_mismatches(pki: Pki) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    (pki.dir / "ca.crt").write_text(pem(ca_cert(other)))
    assert ca_reason(pki) == "ca.crt does not belong to ca.key"
    (pki.dir / "ca.crt").write_text(pem(ca_cert(pki.key, cn="another")))
    assert ca_reason(pki) == "ca.crt names another CA"
    (pki.dir / "ca.crt").write_text(pem(ca_cert(pki.key, days=100)))
    assert "expires within 365 days" in ca_reason(pki)
    assert "not an EC key on secp384r1" in ca_reason(pki, curve="secp384r1")
    (pki.dir / "ca.key").unlink()
    assert "cannot read the CA" in ca_reason(pki)


def test_host_good(pki: Pki) -> None:
    assert pki.redo(pki.probe()) == {"certificate": "", "trust": ""}
    # names compare without case, addresses as addresses; a wanted address that is not one is a doubt
    v6 = host_cert(
        pki.host_key, pki.cert, pki.key, sans=(x509.DNSName("db1"), x509.IPAddress(ipaddress.ip_address("2001:db8::1")))
    )
    assert pki.redo(pki.probe(v6), subject_alt_names=["DNS:DB1", "IP:2001:DB8:0::1"])["certificate"] == ""
    assert "not None" in pki.redo(pki.probe(), subject_alt_names=["DNS:db1", "IP:198.18.0.300"])["certificate"]


def test_host_files(pki: Pki) -> None:
    assert "key is 644 root root" in pki.redo(pki.probe(stat_key="644 root root"))["certificate"]
    assert "cert is absent" in pki.redo(pki.probe(stat_cert=None))["certificate"]
    assert pki.redo(pki.probe(pem_pub=None))["certificate"] == "the host key or certificate cannot be read"
    other_ca = pem(ca_cert(ec.generate_private_key(ec.SECP256R1())))
    assert "ca.crt differs" in pki.redo(pki.probe(pem_ca=other_ca))["certificate"]


def test_host_certificate_mismatches(pki: Pki) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    cases = {
        "does not belong to the host key": host_cert(other, pki.cert, pki.key),
        # same CA name, another CA key: only the signature tells
        "not issued by this CA": host_cert(pki.host_key, ca_cert(other), other),
        "subject is not CN=db1": host_cert(pki.host_key, pki.cert, pki.key, cn="web1"),
        "the certificate names": host_cert(pki.host_key, pki.cert, pki.key, sans=(x509.DNSName("db1"),)),
        "key usage differs": host_cert(
            pki.host_key, pki.cert, pki.key, key_usage=usage(digital_signature=True, key_encipherment=True)
        ),
        "extended key usage differs": host_cert(
            pki.host_key, pki.cert, pki.key, eku=(ExtendedKeyUsageOID.SERVER_AUTH,)
        ),
        "expires within 30 days": host_cert(pki.host_key, pki.cert, pki.key, days=10),
    }
    for reason, cert in cases.items():
        got = pki.redo(pki.probe(cert))
        assert reason in got["certificate"], (reason, got)
        assert got["trust"] == "", reason


def test_trust_entry(pki: Pki) -> None:
    assert "trust is absent" in pki.redo(pki.probe(stat_trust=None))["trust"]
    assert "not 644 root root" in pki.redo(pki.probe(stat_trust="600 root root"))["trust"]
    cut = pki.redo(pki.probe(pem_trust=pem(pki.cert)[:100]))
    assert cut == {"certificate": "", "trust": "the trusted CA file differs from the CA certificate"}


def test_no_ca_on_the_control_node(pki: Pki) -> None:
    (pki.dir / "ca.crt").unlink()
    got = pki.redo(pki.probe())
    assert "cannot read" in got["certificate"] and "cannot read" in got["trust"]


@pytest.mark.parametrize("line", ["weird\tx\ty", "pem\tcert\tnot base64!", "stat\tdir"])
def test_probe_lines_it_does_not_know(line: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_probe(["package\tinstalled\topenssl", line])


def test_a_host_file_that_is_not_text_is_redone_not_an_error(pki: Pki) -> None:
    der = pki.cert.public_bytes(serialization.Encoding.DER)  # a CA certificate copied in DER, not PEM
    encoded = base64.b64encode(der).decode()
    lines = [f"pem\ttrust\t{encoded}" if line.startswith("pem\ttrust\t") else line for line in pki.probe()]
    assert pki.redo(lines) == {"certificate": "", "trust": "the trusted CA file differs from the CA certificate"}


def test_a_ca_certificate_with_crlf_is_compared_byte_for_byte(pki: Pki) -> None:
    crlf = pem(pki.cert).replace("\n", "\r\n")
    (pki.dir / "ca.crt").write_bytes(crlf.encode())
    # the host has the controller's file byte for byte: nothing to redo, run after run
    assert pki.redo(pki.probe(pem_ca=crlf, pem_trust=crlf)) == {"certificate": "", "trust": ""}
    assert "differs" in pki.redo(pki.probe())["trust"]
