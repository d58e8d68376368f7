"""Real network parts for unit tests, on 127.0.0.1 only: free ports, a throwaway CA with a server certificate,
and an SMTP server (aiosmtpd) that requires STARTTLS and a login and keeps what it received."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_pki(root: Path, addresses: tuple[str, ...] = ("127.0.0.1",)) -> Pki:
    """A throwaway CA and a server certificate for addresses and localhost, signed by it, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sở TTTT test CA")])
    before, after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=1)
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(before).not_valid_after(after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.test")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(before).not_valid_after(after)
        .add_extension(x509.SubjectAlternativeName([*(x509.IPAddress(IPv4Address(a)) for a in addresses),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root / "ca.pem", root / "server.pem", root / "server.key")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return pki


class Inbox:
    """What the SMTP server received: envelopes, whether TLS was on at DATA, logins tried, parsed messages."""

    def __init__(self, login: bytes, password: bytes) -> None:
        self.login, self.password = login, password
        self.envelopes: list[Envelope] = []
        self.tls_at_data: list[bool] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.mails: list[tuple[list[str], EmailMessage, bool]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        with self.lock:
            self.tls_at_data.append(session.ssl is not None)
            self.envelopes.append(envelope)
            self.mails.append((list(envelope.rcpt_tos), mail, session.ssl is not None))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        with self.lock:
            self.logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (self.login, self.password)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [mail for rcpt, mail, _ in self.mails if rcpt == [address]]


@contextmanager
def smtp_server(pki: Pki, inbox: Inbox, host: str = "127.0.0.1") -> Iterator[int]:
    """An SMTP server on host requiring STARTTLS (pki's certificate) and a login; yields its port."""
    port = free_port()
    controller = Controller(inbox, hostname=host, port=port, tls_context=pki.server_context(),
                            require_starttls=True, authenticator=inbox.authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def daemon(argv: list[str], ready_url: str, log_path: Path, name: str, timeout: float = 20) -> Iterator[None]:
    """A real daemon on 127.0.0.1, waited for until ready_url answers 200; killed at the end."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(ready_url, timeout=1) as resp:  # noqa: S310 - loopback
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} not ready in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
