"""The REAL database servers of this machine, for unit tests: started when they are stopped, and stopped again
afterwards (scripts/bootstrap installs PostgreSQL and MariaDB; a machine without systemd has no service manager to
start them at boot). Their clients run as the servers' administrators (`runuser -u postgres -- psql`, `mariadb` as
root), so these tests run as root."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from provsec.backup.database import DatabaseKind, Server
from provsec.backup.jobs import default_client_command
from provsec.errors import ProvsecError

# How a stopped server is started, and stopped again.
START: dict[DatabaseKind, tuple[list[str], list[str]]] = {
    "postgresql": (["sh", "-c", "pg_ctlcluster $(pg_lsclusters -h | awk 'NR==1{print $1}') main start"],
                   ["sh", "-c", "pg_ctlcluster $(pg_lsclusters -h | awk 'NR==1{print $1}') main stop"]),
    "mariadb": (["/etc/init.d/mariadb", "start"], ["/etc/init.d/mariadb", "stop"]),
}


def answers(srv: Server) -> bool:
    try:
        srv.exists("postgres" if srv.kind == "postgresql" else "mysql")
    except ProvsecError:
        return False
    return True


@contextmanager
def running_servers(*kinds: DatabaseKind) -> Iterator[dict[DatabaseKind, Server]]:
    """The servers of these kinds, answering; the ones started here are stopped when the block ends."""
    if os.geteuid() != 0:
        pytest.fail("the database tests run the real servers' clients as postgres/root: run as root", pytrace=False)
    servers: dict[DatabaseKind, Server] = {}
    started: list[DatabaseKind] = []
    try:
        for kind in kinds:
            srv = Server(kind, default_client_command(kind), timeout=120)
            if not answers(srv):
                res = subprocess.run(START[kind][0], capture_output=True, text=True, timeout=120, check=False)
                started.append(kind)
                deadline = time.monotonic() + 60
                while not answers(srv):
                    if time.monotonic() > deadline:
                        pytest.fail(f"{kind} does not answer after `{' '.join(START[kind][0])}`: {res.stderr[-500:]}"
                                    " (scripts/bootstrap installs the server)", pytrace=False)
                    time.sleep(0.5)
            servers[kind] = srv
        yield servers
    finally:
        for kind in started:
            subprocess.run(START[kind][1], capture_output=True, timeout=120, check=False)
