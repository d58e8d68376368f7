"""provsec.devtools.daemon: a daemon that exits or never becomes ready is one DaemonError with its log; a ready
one answers during the block and is stopped after it."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from provsec.devtools.daemon import DaemonError, free_port, started


def test_a_daemon_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad flag --x'); sys.exit(3)"]
    with (pytest.raises(DaemonError, match=r"(?s)broken exited 3:.*bad flag --x"),
          started(argv, f"http://127.0.0.1:{free_port()}/", tmp_path / "log", "broken", timeout=10)):
        pass


def test_a_daemon_never_ready_is_reported_after_the_timeout(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with (pytest.raises(DaemonError, match="sleeper not ready in 1 s"),
          started(argv, f"http://127.0.0.1:{free_port()}/", tmp_path / "log", "sleeper", timeout=1)):
        pass


def test_a_ready_daemon_answers_during_the_block_and_is_stopped_after(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ok.txt").write_text("ok")
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory",
            str(tmp_path / "www")]
    with (started(argv, f"http://127.0.0.1:{port}/", tmp_path / "log", "http.server", timeout=20),
          urllib.request.urlopen(f"http://127.0.0.1:{port}/ok.txt", timeout=5) as answer):
        assert answer.read() == b"ok"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
