"""HTTP(S) for /metrics: 127.0.0.1 by default; TLS and basic auth from a web-config file.

The web-config file has the layout of the Prometheus exporter-toolkit (node_exporter's `--web.config.file`), so
one file format serves every exporter of a host:

    tls_server_config:
      cert_file: /etc/provsec/tls/exporter.crt
      key_file: /etc/provsec/tls/exporter.key
      client_ca_file: /etc/provsec/tls/ca.crt        # optional
      client_auth_type: RequireAndVerifyClientCert   # optional: NoClientCert (default), VerifyClientCertIfGiven
      min_version: TLS12                             # optional: TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$…                           # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')

Unknown keys are an error (a misspelt key must not silently serve without TLS), and so are basic_auth_users
without TLS (the password would cross the network in clear). A bcrypt check costs tens of milliseconds, so a
successful user/password pair is remembered (a hash of it, in memory) and the next scrape is not slowed down.
Only /metrics is served; there are no debug endpoints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from provsec.errors import InputError
from provsec.fileio import read_yaml

CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    users: dict[str, bytes] = field(default_factory=dict)
    source: str = "web config"

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.cert_file is None or self.key_file is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(self.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InputError(f"{self.source}: cannot load the TLS certificate/key {self.cert_file}, {self.key_file}"
                             f"{', ' + str(self.client_ca_file) if self.client_ca_file else ''} ({exc})") from exc
        context.verify_mode = self.client_auth
        return context


def _keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def load_web_config(path: Path) -> WebConfig:  # noqa: PLR0912 (one check per key)
    data = read_yaml(path, "web config") or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: web config must be a mapping")
    _keys(data, {"tls_server_config", "basic_auth_users"}, str(path))
    config = WebConfig(source=str(path))
    tls = data.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        raise InputError(f"{path}: tls_server_config must be a mapping")
    _keys(tls, {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"},
          f"{path}: tls_server_config")
    if tls:
        for key in ("cert_file", "key_file"):
            if not isinstance(tls.get(key), str) or not tls[key]:
                raise InputError(f"{path}: tls_server_config.{key} is required (a file path)")
        config.cert_file, config.key_file = Path(tls["cert_file"]), Path(tls["key_file"])
        if tls.get("client_ca_file") is not None:
            config.client_ca_file = Path(str(tls["client_ca_file"]))
        auth = tls.get("client_auth_type", "NoClientCert")
        if auth not in CLIENT_AUTH:
            raise InputError(f"{path}: tls_server_config.client_auth_type {auth!r}: one of {', '.join(CLIENT_AUTH)}")
        if auth != "NoClientCert" and config.client_ca_file is None:
            raise InputError(f"{path}: client_auth_type {auth} needs tls_server_config.client_ca_file")
        config.client_auth = CLIENT_AUTH[auth]
        version = tls.get("min_version", "TLS12")
        if version not in TLS_VERSIONS:
            raise InputError(f"{path}: tls_server_config.min_version {version!r}: TLS12 or TLS13")
        config.min_version = TLS_VERSIONS[version]
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise InputError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    for name, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise InputError(f"{path}: basic_auth_users.{name}: not a bcrypt hash ($2y$…)")
        config.users[str(name)] = hashed.encode()
    if config.users and config.cert_file is None:
        raise InputError(f"{path}: basic_auth_users without tls_server_config would send passwords in clear text")
    config.ssl_context()  # certificate errors now, at startup, not at the first scrape
    return config


class Authenticator:
    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self.good: set[bytes] = set()
        self.lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        token = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self.lock:
            if any(hmac.compare_digest(token, known) for known in self.good):
                return True
        hashed = self.users.get(user)
        # an unknown user costs a bcrypt check too (against a known user's hash, never accepted): no timing hint
        ok = bcrypt.checkpw(password.encode(), hashed or next(iter(self.users.values()))) and hashed is not None
        if ok:
            with self.lock:
                if len(self.good) >= 64:
                    self.good.clear()
                self.good.add(token)
        return ok


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"--listen {text!r}: expected ADDRESS:PORT, e.g. 127.0.0.1:9847 or [::1]:9847")
    return host, int(port)


def make_server(listen: str, registry: CollectorRegistry, web: WebConfig | None = None) -> ThreadingHTTPServer:
    host, port = parse_listen(listen)
    auth = Authenticator(web.users if web else {})

    class Handler(BaseHTTPRequestHandler):
        server_version = "provsec-exporter"
        sys_version = ""
        timeout = 10  # seconds a client may stay silent

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._reply(404, b"only /metrics is served\n", "text/plain; charset=utf-8")
                return
            if not auth.check(self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="provsec"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes every 15 s would flood the journal

    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    try:
        server = Server((host, port), Handler)
    except OSError as exc:
        raise InputError(f"--listen {listen}: cannot listen ({exc.strerror})") from exc
    context = web.ssl_context() if web else None
    if context is not None:
        # The handshake runs in the request's thread (on its first read), not in the accept loop: a client that
        # connects and stays silent must not hold up the next scrape.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server
