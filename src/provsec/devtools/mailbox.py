"""A real local mailbox: a throwaway CA with a server certificate, and an SMTP server (aiosmtpd) that requires
STARTTLS and a login and keeps what it received. The unit and lab tests use it to receive provsec notify's mail;
`make demo` runs it (``python -m provsec.devtools.mailbox``) on the control node's lab address, so that the lab's
alert is delivered to a mailbox a person can open. Never a relay: it only stores what it receives."""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import os
import secrets
import signal
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provsec.devtools.daemon import free_port


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

    def __init__(self, login: bytes, password: bytes, folder: Path | None = None) -> None:
        self.login, self.password = login, password
        self.folder = folder  # when given, each message is also written there as NNNN.eml (0600)
        self.envelopes: list[Envelope] = []
        self.tls_at_data: list[bool] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.mails: list[tuple[list[str], EmailMessage, bool]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        if not isinstance(mail, EmailMessage):  # the default policy always makes one
            return "451 could not parse the message"
        with self.lock:
            self.tls_at_data.append(session.ssl is not None)
            self.envelopes.append(envelope)
            self.mails.append((list(envelope.rcpt_tos), mail, session.ssl is not None))
            if self.folder is not None:
                self._store(envelope.original_content or b"")
        return "250 OK"

    def _store(self, content: bytes) -> Path:
        """content as the next free NNNN.eml of the folder (0600): a mailbox started again keeps the earlier mail."""
        assert self.folder is not None  # noqa: S101 - only called with a folder
        n = len(list(self.folder.glob("*.eml")))
        while True:
            n += 1
            path = self.folder / f"{n:04d}.eml"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            return path

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):  # LOGIN and PLAIN give one; nothing else is offered
            return AuthResult(success=False, handled=False)
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


def main(argv: list[str] | None = None) -> int:
    """Serve a mailbox until SIGTERM/SIGINT or --lifetime; what a client needs is written to --dir first."""
    parser = argparse.ArgumentParser(prog="python -m provsec.devtools.mailbox", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (a lab or loopback address)")
    parser.add_argument("--dir", required=True, type=Path, help="where ca.pem, port, login, password and mail/ go")
    parser.add_argument("--lifetime", type=float, default=4 * 3600, help="seconds to serve at most (default 4 h)")
    args = parser.parse_args(argv)
    folder: Path = args.dir
    (folder / "mail").mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    pki = make_pki(folder / "pki", (args.host,))
    login, password = b"canhbao", secrets.token_urlsafe(24).encode()
    inbox = Inbox(login, password, folder / "mail")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with smtp_server(pki, inbox, args.host) as port:
        for name, value in (("login", login), ("password", password), ("port", str(port).encode())):
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(value)
        (folder / "ca.pem").write_bytes(pki.ca_file.read_bytes())
        print(f"mailbox: smtp://{args.host}:{port} (STARTTLS, login), mail in {folder / 'mail'}", flush=True)
        stop.wait(args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
