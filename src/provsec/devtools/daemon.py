"""A real daemon for tests and benchmarks (Prometheus, Alertmanager, provsec notify …): started, waited for until
its readiness URL answers 200 on loopback, and stopped at the end (SIGTERM, then SIGKILL). Not used at run time."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provsec.errors import ProvsecError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a daemon the caller starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonError(ProvsecError):
    """The daemon exited, or did not answer its readiness URL in time (the message has its log's tail)."""


@contextmanager
def started(argv: list[str], ready_url: str, log_path: Path, name: str, timeout: float = 20, *,
            stop_timeout: float = 5) -> Iterator[None]:
    """argv running, its output in log_path, until ready_url (loopback) answers 200; stopped at the block's end."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise DaemonError(f"{name} exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(ready_url, timeout=1) as resp:  # noqa: S310 - loopback
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise DaemonError(f"{name} not ready in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=stop_timeout)
