"""The security-event exporter reading real sources. Files, while a writer rotates them: rename rotation (the
writer still writing to the renamed file), copytruncate, copytruncate that regrows past the old offset,
truncation, deletion, rotation while the exporter is down, `kill -9` at random moments — and malformed, binary,
overlong and non-UTF-8 lines. The journal: real journal files written by systemd-journal-remote (Debian
package, from scripts/bootstrap), read by journalctl, with `kill -9` in between. The exporter runs as its own
process (`python -m provsec exporter`) and is read through its /metrics endpoint; every figure it reports is
compared with the writer's own count."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from localnet import free_port
from prometheus_client.parser import text_string_to_metric_families

MAX_LINE = 64 * 1024


class Exporter:
    """`provsec exporter` on one log file, as a child process."""

    def __init__(self, tmp: Path, log: Path, *extra: str, source: str = "") -> None:
        self.state_dir = tmp / "state"
        self.log = log
        self.source = source or f"file:{log}"
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr = tmp / "exporter.err"

    def start(self) -> None:
        argv = [sys.executable, "-m", "provsec", "exporter", "--listen", f"127.0.0.1:{self.port}",
                "--state-dir", str(self.state_dir), "--source", self.source, *self.extra]
        with self.stderr.open("ab") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"exporter exited {self.proc.returncode}: {self.stderr.read_text()}")
            try:
                self.scrape()
            except OSError:
                time.sleep(0.05)
            else:
                return
        pytest.fail("exporter did not answer within 20 s")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            assert self.proc.wait(timeout=20) == 0, self.stderr.read_text()
            self.proc = None

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


class Writer:
    """Writes auth.log lines and rotates the file the way logrotate does; counts what it wrote."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path = path
        self.rng = rng
        self.seq = 0
        self.lines = 0
        self.failed = 0
        self.overlong = 0
        self.handle: BinaryIO = path.open("ab", buffering=0)

    def line(self) -> bytes:
        self.seq += 1
        n = self.seq
        stamp = b"2026-11-26T09:%02d:%02d.%06d+07:00 web1 " % (n // 60 % 60, n % 60, n)
        kind = self.rng.random()
        if kind < 0.55:
            self.failed += 1
            return stamp + b"sshd[%d]: Failed password for invalid user u%d from 198.18.%d.%d port %d ssh2\n" % (
                n, n, n % 200, n % 250, 1024 + n % 60000)
        if kind < 0.6:
            self.failed += 1  # not UTF-8, and a NUL, in the user name: still one failed login
            return stamp + b"sshd[%d]: Failed password for r\xff\x00t%d from 198.18.0.9 port 22 ssh2\n" % (n, n)
        if kind < 0.62:
            self.overlong += 1  # looks like a failed login, but over 64 KiB: rejected, not parsed
            return stamp + b"sshd[%d]: Failed password for root from 198.18.0.9 port 22 ssh2 %s\n" % (
                n, b"A" * (MAX_LINE + self.rng.randrange(1, 3 * MAX_LINE)))
        if kind < 0.66:
            junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 300)))
            return stamp + junk.replace(b"\n", b"?") + b"\n"
        return stamp + b"CRON[%d]: pam_unix(cron:session): session closed for user root\n" % n

    def append(self, count: int) -> None:
        self.handle.write(b"".join(self.line() for _ in range(count)))
        self.lines += count

    def partial(self, count: int) -> None:
        """Lines written in pieces, like a writer flushing mid-line."""
        for _ in range(count):
            data = self.line()
            cut = self.rng.randrange(1, len(data))
            self.handle.write(data[:cut])
            time.sleep(0.002)
            self.handle.write(data[cut:])
            self.lines += 1

    def shift(self, keep: int = 6) -> None:
        for i in range(keep, 0, -1):
            old = self.path.with_name(f"{self.path.name}.{i}")
            if old.exists():
                old.rename(self.path.with_name(f"{self.path.name}.{i + 1}"))

    def rename_rotate(self, late_lines: int = 0) -> None:
        """logrotate's default: rename, new file; the writer (not reopened yet) still writes late_lines there."""
        self.shift()
        self.path.rename(self.path.with_name(self.path.name + ".1"))
        self.append(late_lines)
        self.handle.close()
        self.handle = self.path.open("ab", buffering=0)

    def copytruncate(self) -> None:
        self.shift()
        shutil.copyfile(self.path, self.path.with_name(self.path.name + ".1"))
        os.truncate(self.path, 0)

    def truncate(self) -> None:
        os.truncate(self.path, 0)

    def delete_and_recreate(self) -> None:
        self.path.unlink()
        self.reopen()

    def reopen(self) -> None:
        self.handle.close()
        self.handle = self.path.open("ab", buffering=0)

    def close(self) -> None:
        self.handle.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Writer, Exporter]]:
    log = tmp_path / "auth.log"
    writer = Writer(log, random.Random(20261126))
    exporter = Exporter(tmp_path, log)
    exporter.start()
    try:
        yield writer, exporter
    finally:
        writer.close()
        if exporter.proc is not None:
            exporter.proc.kill()
            exporter.proc.wait()


def totals(exporter: Exporter) -> tuple[float, float, float]:
    metrics = exporter.scrape()
    source = f"file:{exporter.log}"
    lines = metrics.get(("provsec_exporter_lines_total", (("source", source),)), 0.0)
    failed = metrics.get(("provsec_auth_events_total", (("event", "ssh_failed"), ("method", "password"),
                                                        ("user", "other"))), 0.0)
    overlong = metrics.get(("provsec_exporter_lines_rejected_total", (("reason", "overlong"), ("source", source))),
                           0.0)
    return lines, failed, overlong


def settle(writer: Writer, exporter: Exporter, timeout: float = 30.0) -> None:
    """Wait until the exporter has read every line written, then check that nothing more comes."""
    deadline = time.monotonic() + timeout
    got = totals(exporter)
    while got[0] < writer.lines and time.monotonic() < deadline:
        time.sleep(0.1)
        got = totals(exporter)
    time.sleep(0.5)
    assert totals(exporter) == (writer.lines, writer.failed, writer.overlong)


def test_rename_rotation_with_late_writes_and_copytruncate_regrowing_past_the_offset(
        lab: tuple[Writer, Exporter]) -> None:
    writer, exporter = lab
    writer.append(300)
    writer.partial(20)
    settle(writer, exporter)
    exporter.signal(signal.SIGSTOP)  # frozen: the exporter sees each rotation only after it is complete
    writer.append(50)
    writer.rename_rotate(late_lines=40)
    writer.append(60)
    exporter.signal(signal.SIGCONT)
    settle(writer, exporter)
    exporter.signal(signal.SIGSTOP)
    writer.append(30)  # read by nobody yet: only the copy will hold them
    size = writer.path.stat().st_size
    writer.copytruncate()
    while writer.path.stat().st_size <= size:  # regrow past the old offset before the exporter looks
        writer.append(50)
    exporter.signal(signal.SIGCONT)
    settle(writer, exporter)
    metrics = exporter.scrape()
    source = f"file:{exporter.log}"
    assert metrics[("provsec_exporter_rotations_total", (("kind", "rename"), ("source", source)))] == 1
    assert metrics[("provsec_exporter_rotations_total", (("kind", "truncate"), ("source", source)))] == 1


def test_truncation_and_deletion_after_the_lines_were_read(lab: tuple[Writer, Exporter]) -> None:
    writer, exporter = lab
    writer.append(200)
    settle(writer, exporter)
    writer.truncate()
    writer.append(20)  # shorter than before
    settle(writer, exporter)
    writer.delete_and_recreate()
    time.sleep(0.4)
    writer.append(30)
    settle(writer, exporter)
    writer.path.unlink()
    time.sleep(0.4)
    metrics = exporter.scrape()
    assert metrics[("provsec_exporter_source_up", (("source", f"file:{exporter.log}"),))] == 0
    writer.reopen()
    writer.append(10)
    settle(writer, exporter)


def test_rotations_while_the_exporter_is_down_lose_nothing(lab: tuple[Writer, Exporter]) -> None:
    writer, exporter = lab
    writer.append(100)
    settle(writer, exporter)
    exporter.stop()
    writer.append(40)
    writer.rename_rotate(late_lines=10)
    writer.append(25)
    exporter.start()
    settle(writer, exporter)
    writer.append(30)
    time.sleep(0.05)
    exporter.kill9()  # maybe before the 30 lines were read or saved
    writer.append(15)
    writer.copytruncate()
    writer.append(5)
    exporter.start()
    settle(writer, exporter)
    exporter.stop()
    writer.append(10)  # several rotations while down: the saved file is now .2
    writer.rename_rotate()
    writer.append(10)
    writer.rename_rotate()
    writer.append(10)
    exporter.start()
    settle(writer, exporter)


def test_kill_9_at_random_moments_among_random_rotations(lab: tuple[Writer, Exporter]) -> None:
    writer, exporter = lab
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 25  # bounded in time and in steps
    for _ in range(400):
        if time.monotonic() > deadline:
            break
        action = rng.random()
        if action < 0.6:
            writer.append(rng.randrange(1, 200))
        elif action < 0.7:
            writer.partial(rng.randrange(1, 5))
        elif action < 0.8:
            writer.rename_rotate(late_lines=rng.randrange(0, 20))
        elif action < 0.88:
            writer.copytruncate()
        else:
            exporter.kill9()
            kills += 1
            if rng.random() < 0.5:
                writer.append(rng.randrange(1, 50))
            exporter.start()
        time.sleep(rng.random() * 0.3)
    assert kills >= 5
    settle(writer, exporter, timeout=60)


def test_first_start_begins_at_the_end_unless_from_start(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"2026-11-26T09:00:00+07:00 web1 sshd[1]: Failed password for root from 198.18.0.9 port 1 ssh2\n"
                    b"2026-11-26T09:00:00+07:00 web1 sshd[1]: Failed password for ro")
    first = Exporter(tmp_path / "a", log)
    (tmp_path / "a").mkdir()
    first.start()
    with log.open("ab") as handle:  # the end of the unfinished line, then one new line
        handle.write(b"ot from 198.18.0.9 port 1 ssh2\n"
                     b"2026-11-26T09:00:01+07:00 web1 sshd[2]: Failed password for root from 198.18.0.9 port 1 ssh2\n")
    time.sleep(0.8)
    try:
        assert totals(first)[:2] == (2, 2)  # the unfinished line and the new one
    finally:
        first.stop()
    (tmp_path / "b").mkdir()
    second = Exporter(tmp_path / "b", log, "--from-start")
    second.start()
    time.sleep(0.8)
    try:
        assert totals(second)[:2] == (3, 3)
    finally:
        second.stop()


def test_bad_state_file_and_bad_arguments_are_one_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "exporter-state.json").write_text("{not json")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provsec", "exporter", *args], capture_output=True, text=True,
                              timeout=30, check=False)

    done = run("--state-dir", str(state), "--source", f"file:{tmp_path}/auth.log",
               "--listen", f"127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "exporter-state.json" in done.stderr and "Traceback" not in done.stderr
    for args, needle in [(["--source", "file:relative.log"], "--source"), ([], "no --source"),
                         (["--source", "journal", "--listen", "localhost"], "--listen"),
                         (["--source", "journal", "--source", "journal"], "twice")]:
        done = run("--state-dir", str(tmp_path / "fresh"), *args)
        assert done.returncode == 2, args
        assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr


JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")


class JournalWriter:
    """Appends entries to a real journal file (systemd-journal-remote reads the journal export format)."""

    def __init__(self, directory: Path) -> None:
        self.output = directory / "remote.journal"
        self.clock = int(time.time() * 1e6)
        self.entries = 0
        self.failed = 0

    def entry(self, ident: bytes, message: bytes) -> bytes:
        self.clock += 1
        out = b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\nSYSLOG_IDENTIFIER=%s\n" % (
            self.clock, self.clock, b"0123456789abcdef0123456789abcdef", ident)
        if b"\n" in message or any(byte > 127 for byte in message):  # a binary field: length-prefixed
            return out + b"MESSAGE\n" + len(message).to_bytes(8, "little") + message + b"\n\n"
        return out + b"MESSAGE=" + message + b"\n\n"

    def write(self, count: int, rng: random.Random) -> None:
        batch = []
        for _ in range(count):
            n = self.entries
            kind = rng.random()
            if kind < 0.5:
                batch.append(self.entry(b"sshd", b"Failed password for invalid user u%d from 198.18.0.%d port 22 ssh2"
                                        % (n, n % 250)))
                self.failed += 1
            elif kind < 0.6:
                batch.append(self.entry(b"sshd", b"Failed password for r\xff\x00t from 198.18.0.9 port 22 ssh2"))
                self.failed += 1
            elif kind < 0.7:
                batch.append(self.entry(b"sshd", b"Failed password for root from 198.18.0.9 port 22 ssh2\nsecond"))
                self.failed += 1  # a multi-line message is one entry
            else:
                batch.append(self.entry(b"sshd", b"Connection closed by 198.18.0.9 port 22 [preauth]"))
            self.entries += 1
        done = subprocess.run([str(JOURNAL_REMOTE), f"--output={self.output}", "-"], input=b"".join(batch),
                              capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode()


def journal_totals(exporter: Exporter) -> tuple[float, float]:
    metrics = exporter.scrape()
    lines = metrics.get(("provsec_exporter_lines_total", (("source", "journal"),)), 0.0)
    failed = metrics.get(("provsec_auth_events_total", (("event", "ssh_failed"), ("method", "password"),
                                                        ("user", "other"))), 0.0)
    return lines, failed


def test_journal_source_by_cursor_through_kill_9(tmp_path: Path) -> None:
    if not JOURNAL_REMOTE.exists():
        pytest.fail(f"{JOURNAL_REMOTE} missing: run scripts/bootstrap (package systemd-journal-remote)")
    journal = tmp_path / "journal"
    journal.mkdir()
    writer = JournalWriter(journal)
    rng = random.Random(5)
    writer.write(50, rng)  # before the first start: not counted (the exporter starts at the end)
    before = (writer.entries, writer.failed)
    exporter = Exporter(tmp_path, tmp_path / "unused", source=f"journal:{journal}")
    exporter.start()
    try:
        for round_ in range(6):
            writer.write(rng.randrange(20, 200), rng)
            time.sleep(rng.random() * 0.5)
            if round_ % 2:
                exporter.kill9()
                writer.write(rng.randrange(1, 50), rng)
                exporter.start()
        expected = (writer.entries - before[0], writer.failed - before[1])
        deadline = time.monotonic() + 30
        while journal_totals(exporter)[0] < expected[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert journal_totals(exporter) == expected
        metrics = exporter.scrape()
        assert metrics[("provsec_exporter_source_up", (("source", "journal"),))] == 1
    finally:
        exporter.stop()
