"""TLS posture with the standard library: which protocol versions a server accepts, how many days its
certificate has left, and whether its chain verifies against a CA file (or the system's CAs).

Each version is tried alone (minimum = maximum). This machine's OpenSSL may refuse to even offer TLS 1.0/1.1
(security level, build options): then the version is "not-testable" (nothing was sent), never "refused",
which would claim the server said no. Where the library allows it, the old versions are offered at
security level 0, which is what lets a client ask for them at all."""

from __future__ import annotations

import datetime as dt
import math
import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from provsec.errors import InputError, ProvsecError

VERSIONS: tuple[tuple[str, ssl.TLSVersion], ...] = (
    ("TLSv1.0", ssl.TLSVersion.TLSv1),
    ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
)
WEAK_VERSIONS = ("TLSv1.0", "TLSv1.1")  # RFC 8996 deprecates both
# OpenSSL's reasons when the client itself cannot offer what was asked (nothing reached the server)
CLIENT_SIDE = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_SUITABLE_SIGNATURE_ALGORITHM")
_HAS = {"TLSv1.0": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1, "TLSv1.2": ssl.HAS_TLSv1_2,
        "TLSv1.3": ssl.HAS_TLSv1_3}


class TlsUnreachable(ProvsecError):
    exit_code = 3


@dataclass(frozen=True)
class TlsPosture:
    host: str
    address: str
    port: int
    server_name: str
    versions: dict[str, str]  # version -> accepted | refused | not-testable
    not_after: str  # certificate's notAfter, UTC ("" when no handshake succeeded)
    expires_in_days: int | None  # whole days left (negative: expired)
    chain_valid: bool | None  # None: no handshake succeeded
    chain_error: str

    @property
    def weak_versions(self) -> tuple[str, ...]:
        return tuple(v for v in WEAK_VERSIONS if self.versions.get(v) == "accepted")

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "address": self.address, "port": self.port, "server_name": self.server_name,
                "versions": self.versions, "weak_versions": list(self.weak_versions), "not_after": self.not_after,
                "expires_in_days": self.expires_in_days, "chain_valid": self.chain_valid,
                "chain_error": self.chain_error}


def _context(version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # this probe asks only "which version"; the chain is checked apart
    with warnings.catch_warnings():  # TLSv1/TLSv1_1 are deprecated names: asking for them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _try_version(address: str, port: int, name: str, version: ssl.TLSVersion,
                 timeout: float) -> tuple[str, bytes | None]:
    try:
        context = _context(version)
    except (ValueError, ssl.SSLError):
        return "not-testable", None
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise TlsUnreachable(f"{address}:{port}: cannot connect ({exc.strerror or exc})") from None
    try:
        with context.wrap_socket(sock, server_hostname=name) as tls:
            return "accepted", tls.getpeercert(binary_form=True)
    except ssl.SSLError as exc:
        if exc.reason in CLIENT_SIDE:
            return "not-testable", None
        return "refused", None
    except (ConnectionResetError, ConnectionAbortedError, TimeoutError, OSError):
        return "refused", None  # the server hung up on this version's hello
    finally:
        sock.close()


def _chain(address: str, port: int, name: str, ca_file: Path | None, timeout: float) -> tuple[bool, str]:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=name):
            return True, ""
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc)
    except (ssl.SSLError, OSError) as exc:
        return False, f"handshake failed: {exc}"


def posture(host: str, address: str, port: int, *, server_name: str = "", ca_file: Path | None = None,
            timeout: float = 10.0, now: dt.datetime | None = None) -> TlsPosture:
    if ca_file is not None and not ca_file.is_file():
        raise InputError(f"--ca-file {ca_file}: no such file")
    name = server_name or address
    versions: dict[str, str] = {}
    cert: bytes | None = None
    for label, version in VERSIONS:
        if not _HAS[label]:
            versions[label] = "not-testable"
            continue
        state, der = _try_version(address, port, name, version, timeout)
        versions[label] = state
        cert = der or cert  # the newest accepted version's certificate
    if cert is None:
        return TlsPosture(host, address, port, name, versions, "", None, None, "no TLS handshake succeeded")
    parsed = x509.load_der_x509_certificate(cert)
    # cryptography < 42 (Debian 12's python3-cryptography is 38, what a scan runner's venv may see) has only the
    # naive not_valid_after, in UTC
    not_after = (parsed.not_valid_after_utc if hasattr(parsed, "not_valid_after_utc")
                 else parsed.not_valid_after.replace(tzinfo=dt.UTC))
    left = (not_after - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400
    valid, error = _chain(address, port, name, ca_file, timeout)
    return TlsPosture(host, address, port, name, versions, not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      math.floor(left), valid, error)
