"""Real network parts for unit tests, on 127.0.0.1 only: free ports, a throwaway CA with a server certificate,
and an SMTP server (aiosmtpd) that requires STARTTLS and a login and keeps what it received (the last three from
provsec.devtools.mailbox, which `make demo` also runs), and real daemons waited for until ready."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from provsec.devtools.mailbox import Inbox, Pki, free_port, make_pki, smtp_server

__all__ = ["Inbox", "Pki", "daemon", "free_port", "make_pki", "smtp_server"]


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
