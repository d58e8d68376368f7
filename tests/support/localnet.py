"""Real network parts for unit tests, on 127.0.0.1 only: free ports, a throwaway CA with a server certificate,
and an SMTP server (aiosmtpd) that requires STARTTLS and a login and keeps what it received (the last three from
provsec.devtools.mailbox, which `make demo` also runs), and real daemons waited for until ready."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from provsec.devtools.daemon import DaemonError, free_port, started
from provsec.devtools.mailbox import Inbox, Pki, make_pki, smtp_server

__all__ = ["Inbox", "Pki", "daemon", "free_port", "make_pki", "smtp_server"]


@contextmanager
def daemon(argv: list[str], ready_url: str, log_path: Path, name: str, timeout: float = 20) -> Iterator[None]:
    """A real daemon on 127.0.0.1 (provsec.devtools.daemon), waited for until ready_url answers 200; killed at the
    end. Not starting is a test failure with the daemon's log, not a traceback."""
    try:
        with started(argv, ready_url, log_path, name, timeout):
            yield
    except DaemonError as exc:
        pytest.fail(str(exc), pytrace=False)
