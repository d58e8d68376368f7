"""What the pki role must redo, read without a module run.

A re-run of the role used to cost about twenty module runs per play (each ~0.4 s here) only to find that the CA and
every host certificate were still good. These functions answer that question on the control node, from the CA files
and from one read-only probe of the host. They only decide whether the role's full tasks may be *skipped*: any doubt
(a file missing or unreadable, a name, key, usage or signature that differs, a certificate inside its renewal window)
answers "redo", and the full tasks, which are idempotent, then decide what to change.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What the role's tasks create on the host, with the mode and owner they set.
HOST_FILES = {"dir": "0755", "key": "0600", "cert": "0644", "ca": "0644", "trust": "0644"}
# The key usage the role's CSR asks for: digitalSignature alone.
SIGNING_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fresh(cert: x509.Certificate, renew_days: int) -> bool:
    """Valid now, and still valid renew_days from now (outside the renewal window)."""
    now = _now()
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc > now + datetime.timedelta(days=renew_days)


def _name(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[Any] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _same_key(a: Any, b: Any) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(a.public_bytes(*fmt) == b.public_bytes(*fmt))


def _first(checks: Iterable[tuple[Callable[[], bool], str]]) -> str:
    """The reason of the first check that fails (each check runs only when those before it passed), or ""."""
    return next((reason for good, reason in checks if not good()), "")


def ca_redo_reason(
    ca_dir: str, *, common_name: str, organization: str, curve: str, renew_days: int, passphrase: str = ""
) -> str:
    """Why the CA tasks must run ("" when the CA on the control node is complete and good).

    Good means: the directory is 0700, ca.key is 0600 and an EC key on `curve` (decrypted with `passphrase` when
    one is set), ca.crt is 0644, belongs to that key, names `common_name`, `organization` and VN, is a CA for one
    level of certificates and stays valid beyond `renew_days` days.
    """
    base = Path(ca_dir)
    try:
        for path, mode in ((base, 0o700), (base / "ca.key", 0o600), (base / "ca.crt", 0o644)):
            if stat.S_IMODE(path.stat().st_mode) != mode:
                return f"{path} is not mode {mode:04o}"
        key = serialization.load_pem_private_key((base / "ca.key").read_bytes(), passphrase.encode() or None)
        cert = x509.load_pem_x509_certificate((base / "ca.crt").read_bytes())
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"cannot read the CA in {ca_dir}: {type(exc).__name__}"
    constraints = _extension(cert, x509.BasicConstraints)
    names = (
        _name(cert, NameOID.COMMON_NAME),
        _name(cert, NameOID.ORGANIZATION_NAME),
        _name(cert, NameOID.COUNTRY_NAME),
    )
    return _first(
        [
            (
                lambda: isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == curve,
                f"the CA key is not an EC key on {curve}",
            ),
            (lambda: _same_key(cert.public_key(), key.public_key()), "ca.crt does not belong to ca.key"),
            (lambda: names == ([common_name], [organization], ["VN"]), "ca.crt names another CA"),
            (
                lambda: (
                    constraints is not None
                    and constraints.critical
                    and constraints.value.ca
                    and constraints.value.path_length == 0
                ),
                "ca.crt is not a CA limited to one level",
            ),
            (lambda: _fresh(cert, renew_days), f"ca.crt expires within {renew_days} days"),
        ]
    )


_FIELDS = {"package": ("package", 2, 1), "stat": ("stat", 1, 2), "pem": ("pem", 1, 2)}


def _record(state: dict[str, Any], fields: list[str]) -> None:
    if len(fields) != 3 or fields[0] not in _FIELDS:  # kind, key, value
        msg = "unknown line"
        raise ValueError(msg)
    kind, key, value = _FIELDS[fields[0]]
    text = fields[value]
    if kind == "pem":
        # a file that is not ASCII (DER, a stray byte) is kept replaced, so that it differs from every PEM
        text = base64.b64decode(text, validate=True).decode("ascii", errors="replace")
    state[kind][fields[key]] = text


def parse_probe(lines: Iterable[str]) -> dict[str, Any]:
    """The probe's tab-separated lines as {'package': {name: status}, 'stat': {what: 'mode owner group'},
    'pem': {what: PEM text}}. Lines it does not know are errors: the probe and this parser go together."""
    state: dict[str, Any] = {"package": {}, "stat": {}, "pem": {}}
    for number, line in enumerate(lines, 1):
        try:
            _record(state, line.split("\t"))
        except (ValueError, binascii.Error) as exc:
            msg = f"pki probe output, line {number}: {exc}: {line[:120]!r}"
            raise ValueError(msg) from exc
    return state


def _san_strings(cert: x509.Certificate) -> list[str]:
    ext = _extension(cert, x509.SubjectAlternativeName)
    out = []
    for name in ext.value if ext is not None else []:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value.lower()}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        else:
            out.append(f"other:{name.value}")
    return out


def _wanted_sans(names: Iterable[str]) -> list[str] | None:
    """The wanted names in the form _san_strings gives, or None when one is not a valid address."""
    out = []
    for name in names:
        kind, _, value = name.partition(":")
        try:
            out.append(f"IP:{ipaddress.ip_address(value)}" if kind == "IP" else f"{kind}:{value.lower()}")
        except ValueError:
            return None
    return out


def host_redo(
    probe: Mapping[str, Any],
    ca_cert_path: str,
    *,
    common_name: str,
    subject_alt_names: Iterable[str],
    curve: str,
    renew_days: int,
) -> dict[str, str]:
    """Why the host certificate and the trust store entry must be redone: {'certificate': reason or '',
    'trust': reason or ''}, from the parsed probe and the CA certificate on the control node."""
    try:
        # bytes as they are: the host has them byte for byte (read_text would turn CRLF into LF, a difference
        # on every run)
        ca_pem = Path(ca_cert_path).read_bytes().decode("ascii")
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except (OSError, ValueError) as exc:
        reason = f"cannot read {ca_cert_path} on the control node: {type(exc).__name__}"
        return {"certificate": reason, "trust": reason}
    files, pems = probe.get("stat", {}), probe.get("pem", {})
    owners = {what: f"{int(mode, 8):o} root root" for what, mode in HOST_FILES.items()}

    def owned(what: str) -> tuple[Callable[[], bool], str]:
        return (lambda: files.get(what) == owners[what], f"{what} is {files.get(what, 'absent')}, not {owners[what]}")

    trust = _first(
        [owned("trust"), (lambda: pems.get("trust") == ca_pem, "the trusted CA file differs from the CA certificate")]
    )
    checks = [owned(what) for what in ("dir", "key", "cert", "ca")]
    checks.append((lambda: pems.get("ca") == ca_pem, "the host's ca.crt differs from the CA certificate"))
    reason = _first(checks)
    if not reason:
        try:
            public = serialization.load_pem_public_key(pems["pub"].encode())
            cert = x509.load_pem_x509_certificate(pems["cert"].encode())
        except (KeyError, ValueError, UnsupportedAlgorithm):
            reason = "the host key or certificate cannot be read"
        else:
            reason = _certificate_reason(
                cert,
                public,
                ca,
                common_name=common_name,
                subject_alt_names=subject_alt_names,
                curve=curve,
                renew_days=renew_days,
            )
    return {"certificate": reason, "trust": trust}


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _certificate_reason(
    cert: x509.Certificate,
    public: Any,
    ca: x509.Certificate,
    *,
    common_name: str,
    subject_alt_names: Iterable[str],
    curve: str,
    renew_days: int,
) -> str:
    wanted = _wanted_sans(subject_alt_names)
    usage = _extension(cert, x509.KeyUsage)
    extended = _extension(cert, x509.ExtendedKeyUsage)
    constraints = _extension(cert, x509.BasicConstraints)
    return _first(
        [
            (
                lambda: isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == curve,
                f"the host key is not an EC key on {curve}",
            ),
            (lambda: _same_key(cert.public_key(), public), "the certificate does not belong to the host key"),
            (lambda: _issued_by(cert, ca), "the certificate was not issued by this CA"),
            (
                lambda: cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
                f"the certificate's subject is not CN={common_name}",
            ),
            (
                lambda: wanted is not None and _san_strings(cert) == wanted,
                f"the certificate names {_san_strings(cert)}, not {wanted}",
            ),
            (
                lambda: usage is not None and usage.critical and usage.value == SIGNING_ONLY,
                "the certificate's key usage differs",
            ),
            (
                lambda: (
                    extended is not None
                    and set(extended.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
                ),
                "the certificate's extended key usage differs",
            ),
            (
                lambda: constraints is not None and constraints.critical and not constraints.value.ca,
                "the certificate's basic constraints differ",
            ),
            (lambda: _fresh(cert, renew_days), f"the certificate expires within {renew_days} days"),
        ]
    )
