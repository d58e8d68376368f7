"""SSH posture against a real sshd on 127.0.0.1 (started here, one weak cipher in one test), cross-checked with
ssh-audit on the same port; TLS posture against a Python TLS server on 127.0.0.1 with a self-signed certificate
that expires in a known number of days."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from crosscheck import self_signed, ssh_audit
from localnet import free_port

from provsec.controls import load_catalogue
from provsec.scan import sshposture, tlsposture

REPO = Path(__file__).resolve().parents[2]
POLICY = sshposture.policy(load_catalogue(REPO / "playbooks" / "controls"), 3,
                           REPO / "playbooks" / "roles" / "ssh" / "defaults" / "main.yml")


@contextmanager
def sshd(tmp: Path, extra: str) -> Iterator[int]:
    key = tmp / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    port = free_port()
    config = tmp / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1:{port}\nHostKey {key}\nPidFile none\nUsePAM no\n"
                      f"KexAlgorithms {','.join(POLICY.kex)}\nHostKeyAlgorithms ssh-ed25519\n"
                      f"MACs {','.join(POLICY.macs)}\n{extra}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"sshd did not start: {proc.stderr.read() if proc.stderr else ''!r}") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ours(offer: sshposture.SshOffer) -> dict[str, list[str]]:
    return {c: list(offer.offered(c)) for c in ("kex", "host_keys", "ciphers", "macs")} | {"banner": [offer.banner]}


def test_policy_comes_from_the_catalogue() -> None:
    catalogue = load_catalogue(REPO / "playbooks" / "controls")
    assert list(POLICY.kex) == catalogue.value("PS-SSH-08", 3)
    assert list(POLICY.ciphers) == catalogue.value("PS-SSH-09", 3)
    assert list(POLICY.macs) == catalogue.value("PS-SSH-10", 3)
    assert "ssh-ed25519" in POLICY.host_keys and "ssh-rsa" not in POLICY.host_keys


def test_compliant_sshd_has_no_weak_algorithm_and_agrees_with_ssh_audit(tmp_path: Path) -> None:
    with sshd(tmp_path, f"Ciphers {','.join(POLICY.ciphers)}") as port:
        result = sshposture.posture("127.0.0.1", "127.0.0.1", port, POLICY, timeout=10)
        audit = ssh_audit("127.0.0.1", port)
    assert ours(result.offer) == audit
    assert result.offer.ciphers_c2s == POLICY.ciphers and result.offer.banner.startswith("SSH-2.0-OpenSSH")
    assert result.weak == ()


def test_weak_cipher_is_reported_and_agrees_with_ssh_audit(tmp_path: Path) -> None:
    with sshd(tmp_path, f"Ciphers {','.join(POLICY.ciphers)},aes128-cbc") as port:
        result = sshposture.posture("127.0.0.1", "127.0.0.1", port, POLICY, timeout=10)
        audit = ssh_audit("127.0.0.1", port)
    assert ours(result.offer) == audit
    assert "aes128-cbc" in audit["ciphers"]
    assert result.weak == (sshposture.Weak("ciphers", "aes128-cbc", "PS-SSH-09"),)


def test_ssh_port_that_is_closed_is_one_clear_error() -> None:
    port = free_port()
    with pytest.raises(sshposture.SshUnreachable, match=rf"127.0.0.1:{port}: cannot connect"):
        sshposture.read_offer("127.0.0.1", port, timeout=2)


@contextmanager
def tls_server(cert: Path, key: Path, minimum: ssl.TLSVersion) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.minimum_version = minimum
    if minimum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("ALL:@SECLEVEL=0")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_tls_versions_expiry_and_chain(tmp_path: Path) -> None:
    import warnings

    cert, key = self_signed(tmp_path, days=10.5, address="127.0.0.1")
    with tls_server(cert, key, ssl.TLSVersion.TLSv1_2) as port:
        strict = tlsposture.posture("web1", "127.0.0.1", port, ca_file=cert, timeout=5)
        untrusted = tlsposture.posture("web1", "127.0.0.1", port, timeout=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with tls_server(cert, key, ssl.TLSVersion.TLSv1) as port:
            old = tlsposture.posture("web1", "127.0.0.1", port, ca_file=cert, timeout=5)
    assert strict.versions["TLSv1.2"] == "accepted" and strict.versions["TLSv1.3"] == "accepted"
    assert strict.expires_in_days == 10 and strict.chain_valid is True and strict.weak_versions == ()
    assert untrusted.chain_valid is False and "self-signed" in untrusted.chain_error
    # TLS 1.0: "accepted" by the old server exactly when this machine's OpenSSL can offer it; then the strict
    # server's answer is a real "refused". When it cannot, both are "not-testable", never "refused".
    assert old.versions["TLSv1.0"] in ("accepted", "not-testable")
    can_offer = old.versions["TLSv1.0"] == "accepted"
    assert strict.versions["TLSv1.0"] == ("refused" if can_offer else "not-testable")
    assert old.weak_versions == (("TLSv1.0", "TLSv1.1") if can_offer else ())
    print(f"TLS 1.0 testable here: {can_offer}; OpenSSL {ssl.OPENSSL_VERSION}; euid {os.geteuid()}")
