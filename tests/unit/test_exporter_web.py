"""/metrics over TLS with basic auth (a web-config file in the exporter-toolkit format), and the refusals: a
misspelt key, basic auth without TLS, a hash that is not bcrypt, a missing certificate. Real sockets on
127.0.0.1, a certificate made by the test, bcrypt hashes made by the test."""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from localnet import make_pki
from prometheus_client import CollectorRegistry, Counter

from provsec.errors import InputError
from provsec.exporters.web import load_web_config, make_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    pki = make_pki(tmp_path)
    cert, key = pki.cert_file, pki.key_file
    hashed = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                      f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    registry = CollectorRegistry()
    Counter("provsec_test_events", "a test counter", registry=registry).inc(3)
    server = make_server("127.0.0.1:0", registry, load_web_config(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        yield int(server.server_address[1]), client
    finally:
        server.shutdown()
        server.server_close()


def get(port: int, context: ssl.SSLContext, path: str = "/metrics",
        auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    return answer.status, body


def test_tls_and_basic_auth(served: tuple[int, ssl.SSLContext]) -> None:
    port, context = served
    assert get(port, context)[0] == 401
    assert get(port, context, auth=("prometheus", "wrong"))[0] == 401
    assert get(port, context, auth=("nobody", "s3cret pass"))[0] == 401
    status, body = get(port, context, auth=("prometheus", "s3cret pass"))
    assert status == 200
    assert b"provsec_test_events_total 3.0" in body
    assert get(port, context, auth=("prometheus", "s3cret pass"))[0] == 200  # remembered: no second bcrypt
    assert get(port, context, "/debug/pprof", auth=("prometheus", "s3cret pass"))[0] == 404
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # no TLS: no answer in clear
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", "/metrics")
        plain.getresponse()


@pytest.mark.parametrize(("text", "needle"), [
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_versoin: TLS12\n", "min_versoin"),
    ("basic_auth_users:\n  prometheus: '$2y$10$abcdefghijklmnopqrstuv'\n", "clear text"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  p: plain\n", "bcrypt"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: /nonexistent.key\n", "certificate/key"),
    ("tls_server_config:\n  cert_file: {cert}\n", "key_file"),
    ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAndVerifyClientCert\n",
     "client_ca_file"),
    ("[1, 2]\n", "mapping"),
    ("tls_server_config: {{\n", "not valid YAML"),
])
def test_bad_web_configs_are_refused_by_name(tmp_path: Path, text: str, needle: str) -> None:
    pki = make_pki(tmp_path)
    cert, key = pki.cert_file, pki.key_file
    config = tmp_path / "web.yml"
    config.write_text(text.format(cert=cert, key=key))
    with pytest.raises(InputError, match=needle) as caught:
        load_web_config(config)
    assert str(config) in str(caught.value)


def test_listen_address_errors() -> None:
    for text in ("localhost", "127.0.0.1:", "127.0.0.1:99999", ":9847"):
        with pytest.raises(InputError, match="--listen"):
            make_server(text, CollectorRegistry())
