"""Where the lines come from: log files (tailed by position) and the systemd journal (by cursor).

File source — the position is (device, inode, offset, a hash of the first bytes of the file):
  * rename rotation (logrotate's default, also `delete` then re-create): the old file stays open and is read
    to its end, and then for ROTATE_GRACE more seconds (a writer that has not reopened yet still writes
    there); the new file is read from its first byte;
  * copytruncate and truncation: the file got shorter than the offset, or the first bytes changed (it was
    truncated and grew past the old offset before the next look). The lines between the offset and the
    truncation are only in the copy logrotate made (`<name>.1`, `<name>-<date>`): the copy is found by
    its first bytes and read from the old offset; then the truncated file is read from byte 0;
  * restart: the saved position is looked up by inode under the file's name and its rotated names, so a
    rotation while the exporter was down loses nothing either (compressed copies are not read: Debian's
    logrotate configuration for rsyslog uses delaycompress, so `.1` stays plain for a day);
  * a line longer than MAX_LINE is counted as rejected (reason overlong) and not parsed; a last line without
    its newline waits for the newline, unless its file was rotated away, where it counts as a line.
  When a position cannot be found again (file truncated with no copy, replaced while the exporter was down)
  `provsec_exporter_position_lost_total` counts it: lines may have been missed, and the metric says so.

Journal source — `journalctl --follow --output=json` from the saved cursor (`--after-cursor`), restricted to
the programs the parser reads; the cursor of the last entry read is the position."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provsec.exporters.counts import Counts
from provsec.exporters.events import PROGRAMS, Parser

CHUNK = 1 << 20
MAX_LINE = 64 * 1024
HEAD = 1024
ROTATE_GRACE = 5.0
POLL_BUDGET = 16 * CHUNK  # bytes one poll() reads before it lets the loop save state and the scrape run
SEEN = 64  # rotated files remembered as read
MTIME_SLACK_NS = 100_000_000  # file times come from a coarse clock: a write just after a save may look earlier

COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z")


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Tail:
    """One open file being read: an fd and how far it has been read."""

    fd: int
    dev: int
    ino: int
    offset: int
    head: str = ""
    head_len: int = 0
    skipping: bool = False  # inside a line longer than MAX_LINE
    idle_since: float = 0.0
    since_ns: int = 0  # when reading from byte 0 began (wall clock)

    def position(self) -> dict[str, Any]:
        return {"dev": self.dev, "ino": self.ino, "offset": self.offset, "head": self.head,
                "head_len": self.head_len, "skipping": self.skipping}

    def head_matches(self) -> bool:
        if self.head_len == 0:
            return True
        return _digest(os.pread(self.fd, self.head_len, 0)) == self.head

    def close(self) -> None:
        os.close(self.fd)


def _open(path: Path) -> Tail | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    st = os.fstat(fd)
    return Tail(fd, st.st_dev, st.st_ino, 0, since_ns=time.time_ns())


def _starts_alike(path: Path, start: bytes) -> bool:
    try:
        with path.open("rb") as handle:
            other = handle.read(len(start))
    except OSError:
        return False
    size = min(len(other), len(start))
    return size > 0 and other[:size] == start[:size]


class FileSource:
    def __init__(self, path: Path, counts: Counts, parser: Parser, *, from_start: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.key = f"file:{path}"
        self.counts = counts
        self.parser = parser
        self.from_start = from_start
        self.clock = clock
        self.current: Tail | None = None
        self.draining: list[Tail] = []
        self.seen: list[tuple[int, ...]] = []  # (dev, ino, mtime_ns) of rotated files read to their end
        self.error = ""

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.current is not None and not self.error

    def position(self) -> dict[str, Any]:
        return {"current": self.current.position() if self.current else None,
                "draining": [tail.position() for tail in self.draining], "seen": self.seen,
                "saved_at_ns": time.time_ns()}

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Reopen where the saved position says (at startup, before the first poll)."""
        if saved is None:
            self.current = _open(self.path)
            if self.current is not None and not self.from_start:
                self._skip_to_end(self.current)
            return
        self.seen = [tuple(x) for x in saved.get("seen", [])][-SEEN:]
        for item in saved.get("draining", []):
            tail = self._find(item)
            if tail is not None:
                tail.idle_since = self.clock()
                self.draining.append(tail)
            else:
                self.counts.add(self.counts.rotations, (self.key, "lost"))
        item = saved.get("current")
        if item is None:
            self.current = _open(self.path)  # the file did not exist: whatever is there now is new
        else:
            self._restore_current(item)
        # Files rotated after the save that are none of the above: generations never opened, or a copy of a
        # file of which nothing had been read. Written after the save, they are read whole.
        unlike = None
        if self.current is not None and self.current.head_len == 0:
            unlike = os.pread(self.current.fd, HEAD, 0) or None
        self._take_newer_rotated(int(saved.get("saved_at_ns", 0)) - MTIME_SLACK_NS, unlike)

    def _restore_current(self, item: dict[str, Any]) -> None:
        tail = self._find(item)
        here = _open(self.path)
        if tail is not None and here is not None and (tail.dev, tail.ino) == (here.dev, here.ino):
            here.close()
            self.current = tail
            return
        self.current = here
        if tail is not None:  # rotated away while the exporter was down: finish it, then the new file
            tail.idle_since = self.clock()
            self.draining.append(tail)
            self.counts.add(self.counts.rotations, (self.key, "rename"))
            return
        copy = self._copy_of(item)
        if copy is not None:  # copytruncate while down
            self._read(copy, final=True)
            self.counts.add(self.counts.rotations, (self.key, "truncate"))
            self._done_with(copy)
        elif item.get("head_len"):
            self.counts.add(self.counts.rotations, (self.key, "lost"))

    def waitable(self) -> int | None:
        return None  # files are polled

    def close(self) -> None:
        for tail in [*self.draining, *([self.current] if self.current else [])]:
            tail.close()
        self.draining = []
        self.current = None

    # -- reading -------------------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read what is new; return the number of bytes consumed (0: nothing new)."""
        now = self.clock()
        done = 0
        for tail in list(self.draining):
            got = self._read(tail)
            done += got
            if got:
                tail.idle_since = now
            elif now - tail.idle_since > ROTATE_GRACE:
                done += self._read(tail, final=True)
                self.draining.remove(tail)
                self._done_with(tail)
        try:
            if self.current is None:
                self.current = _open(self.path)
                if self.current is None:
                    self.error = "missing"
                    return done
            self.error = ""
            if self.current.head_len == 0:
                self._copies_of_unread(self.current)
            done += self._read(self.current)
            if done >= POLL_BUDGET:
                return done
            done += self._check_rotation(self.current, now)
        except OSError as exc:
            self.error = str(exc)
        return done

    def _check_rotation(self, tail: Tail, now: float) -> int:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != (tail.dev, tail.ino):
            done = self._read(tail)
            tail.idle_since = now
            self.draining.append(tail)
            self.counts.add(self.counts.rotations, (self.key, "rename" if st else "delete"))
            self.current = _open(self.path)
            self._take_newer_rotated(os.fstat(tail.fd).st_mtime_ns)
            return done + (self._read(self.current) if self.current else 0)
        if st.st_size < tail.offset or not tail.head_matches():
            copy = self._copy_of(tail.position())
            if copy is not None:
                self._read(copy, final=True)
                self._take_newer_rotated(os.fstat(copy.fd).st_mtime_ns)
                self._done_with(copy)
            self.counts.add(self.counts.rotations, (self.key, "truncate"))
            tail.offset, tail.head, tail.head_len, tail.skipping = 0, "", 0, False
            tail.since_ns = time.time_ns()
            return self._read(tail) + 1
        return 0

    def _read(self, tail: Tail, *, final: bool = False) -> int:
        done = 0
        while done < POLL_BUDGET:
            data = os.pread(tail.fd, CHUNK, tail.offset)
            if not data or not tail.head_matches():
                # Checked after the read: if the first bytes are still the ones read before, the file was not
                # truncated before `data` was read, so `data` is what follows the offset. Otherwise the caller
                # handles the truncation (copytruncate) and `data` is dropped.
                break
            if tail.skipping:
                newline = data.find(b"\n")
                step = len(data) if newline < 0 else newline + 1
                tail.offset += step
                done += step
                if newline >= 0:
                    tail.skipping = False
                    self.counts.reject(self.key, "overlong")
                continue
            end = data.rfind(b"\n") + 1
            if end == 0:
                if len(data) >= MAX_LINE:
                    tail.skipping = True
                    tail.offset += len(data)
                    done += len(data)
                    continue
                if final:
                    self._block(data + b"\n")
                    tail.offset += len(data)
                    done += len(data)
                break
            self._block(data[:end])
            tail.offset += end
            done += end
            if tail.head_len < HEAD:
                head = os.pread(tail.fd, min(HEAD, tail.offset), 0)
                tail.head, tail.head_len = _digest(head), len(head)
        if final and tail.skipping:
            tail.skipping = False
            self.counts.reject(self.key, "overlong")
        return done

    def _block(self, block: bytes) -> None:
        """Complete lines (ending in a newline)."""
        lines = block.count(b"\n")
        if len(block) > MAX_LINE and max(map(len, block.split(b"\n"))) > MAX_LINE:
            kept = [line for line in block.split(b"\n") if len(line) <= MAX_LINE]
            self.counts.add(self.counts.rejected, (self.key, "overlong"), lines + 1 - len(kept))
            block = b"\n".join(kept)
        self.counts.add(self.counts.lines, self.key, lines)
        self.parser.block(block)


    def _skip_to_end(self, tail: Tail) -> None:
        size = os.fstat(tail.fd).st_size
        back = os.pread(tail.fd, min(size, MAX_LINE), max(0, size - MAX_LINE))
        newline = back.rfind(b"\n")
        tail.offset = size - len(back) + newline + 1 if newline >= 0 else size
        head = os.pread(tail.fd, min(HEAD, tail.offset), 0)
        tail.head, tail.head_len = _digest(head), len(head)

    # -- finding a saved file again ------------------------------------------------------------------------
    def _candidates(self) -> Iterator[Path]:
        yield self.path
        names = sorted({*self.path.parent.glob(self.path.name + ".*"), *self.path.parent.glob(self.path.name + "-*")})
        yield from (p for p in names if not p.name.endswith(COMPRESSED) and not p.name.startswith("."))

    def _done_with(self, tail: Tail) -> None:
        """A rotated file read to its end: remembered, so that it is never taken for an unread generation."""
        st = os.fstat(tail.fd)
        self.seen = [*self.seen, (st.st_dev, st.st_ino, st.st_mtime_ns)][-SEEN:]
        tail.close()

    def _copies_of_unread(self, live: Tail) -> None:
        """Nothing read yet from the live file, and it was copytruncated before the first look (two rotations in
        one poll interval): the copy is a rotated file written since reading began, whose first bytes are not
        the live file's any more. (If they still are, logrotate has copied but not yet truncated: the live file
        holds the same lines, and the truncation is found later by its first bytes.)"""
        start = os.pread(live.fd, HEAD, 0)
        if start:
            self._take_newer_rotated(live.since_ns - MTIME_SLACK_NS, unlike=start)

    def _take_newer_rotated(self, newer_than: int, unlike: bytes | None = None) -> None:
        """Several rotations in one interval (or while the exporter was down): the generations between the file
        last read and the live file were never opened. They are the rotated files written after it (mtime after
        `newer_than`) that are neither open nor read already; they are read whole, oldest first, through the
        draining list."""
        held = {(t.dev, t.ino) for t in [*self.draining, *([self.current] if self.current else [])]}
        seen = {tuple(x) for x in self.seen}
        found: list[tuple[int, Path]] = []
        for path in self._candidates():
            try:
                st = path.stat()
            except OSError:
                continue
            if (path != self.path and (st.st_dev, st.st_ino) not in held and st.st_mtime_ns > newer_than
                    and (st.st_dev, st.st_ino, st.st_mtime_ns) not in seen):
                if unlike is not None and _starts_alike(path, unlike):
                    continue
                found.append((st.st_mtime_ns, path))
        for _, path in sorted(found):
            tail = _open(path)
            if tail is not None:
                tail.idle_since = self.clock()
                self.draining.append(tail)
                self.counts.add(self.counts.rotations, (self.key, "rename"))

    def _find(self, saved: dict[str, Any]) -> Tail | None:
        """The file with the saved inode, still holding what was read (head and size)."""
        for path in self._candidates():
            try:
                st = path.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (saved["dev"], saved["ino"]) and st.st_size >= saved["offset"]:
                tail = self._at(path, saved)
                if tail is not None:
                    return tail
        return None

    def _copy_of(self, saved: dict[str, Any]) -> Tail | None:
        """A copy (another inode) whose first bytes are the saved file's: logrotate's copytruncate."""
        if not saved["head_len"]:
            return None
        for path in self._candidates():
            try:
                st = path.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != (saved["dev"], saved["ino"]) and st.st_size >= saved["offset"]:
                tail = self._at(path, saved)
                if tail is not None:
                    return tail
        return None

    def _at(self, path: Path, saved: dict[str, Any]) -> Tail | None:
        tail = _open(path)
        if tail is None:
            return None
        tail.offset, tail.head, tail.head_len = int(saved["offset"]), str(saved["head"]), int(saved["head_len"])
        tail.skipping = bool(saved.get("skipping", False))
        if tail.head_matches():
            return tail
        tail.close()
        return None




class JournalSource:
    """The systemd journal through `journalctl --follow --output=json` (restarted if it exits)."""

    key = "journal"

    def __init__(self, counts: Counts, parser: Parser, *, journal_dir: Path | None = None, from_start: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.from_start = from_start
        self.counts = counts
        self.parser = parser
        self.journal_dir = journal_dir
        self.clock = clock
        self.cursor: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.error = ""
        self.next_start = 0.0

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.error

    def position(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    def restore(self, saved: dict[str, Any] | None) -> None:
        """The saved cursor; on the very first start, the cursor of the newest entry, so that the position is
        known (and saved) before anything is read: a crash right after the first start loses nothing either."""
        if saved is not None:
            self.cursor = saved.get("cursor")
            return
        if self.from_start:
            return  # no cursor: the whole journal
        try:
            done = subprocess.run([*self._base(), "--lines=1", *self._matches()], capture_output=True, timeout=60,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = f"journalctl: {exc}"
            return
        for line in done.stdout.splitlines()[-1:]:
            try:
                cursor = json.loads(line).get("__CURSOR")
            except (ValueError, AttributeError):
                continue
            if isinstance(cursor, str):
                self.cursor = cursor

    def _base(self) -> list[str]:
        argv = ["journalctl", "--output=json", "--no-pager", "--quiet", "--all"]
        if self.journal_dir is not None:
            argv.append(f"--directory={self.journal_dir}")
        return argv

    @staticmethod
    def _matches() -> list[str]:
        return [f"SYSLOG_IDENTIFIER={name}" for name in PROGRAMS]

    def command(self) -> list[str]:
        # --lines=all always: with --follow, journalctl (systemd 252) otherwise shows only the last 10 entries
        # after the cursor. No cursor (no entry of these programs yet): everything that comes is new.
        start = [f"--after-cursor={self.cursor}"] if self.cursor else []
        return [*self._base(), "--follow", "--lines=all", *start, *self._matches()]

    def poll(self) -> int:
        now = self.clock()
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.error = f"journalctl exited with status {self.proc.returncode}"
                self.proc = None
                self.buffer = b""
            if now < self.next_start:
                return 0
            self.next_start = now + 5.0
            try:
                # journalctl's own complaints (permissions, a bad cursor) go to the exporter's log (its journal)
                self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE)
            except OSError as exc:
                self.error = f"journalctl: {exc}"
                return 0
            if self.proc.stdout is not None:
                os.set_blocking(self.proc.stdout.fileno(), False)
                with contextlib.suppress(OSError):  # a larger pipe: fewer wake-ups under load
                    fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
            self.error = ""
        if self.proc.stdout is None:
            return 0
        fd = self.proc.stdout.fileno()
        done = 0
        while done < POLL_BUDGET:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                break
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                break
            if not data:
                break
            done += len(data)
            self.buffer += data
            end = self.buffer.rfind(b"\n") + 1
            if end:
                self._entries(self.buffer[:end])
                self.buffer = self.buffer[end:]
        return done

    def waitable(self) -> int | None:
        """The pipe from journalctl: the loop sleeps in select() on it, so an entry wakes it at once."""
        if self.proc is None or self.proc.stdout is None:
            return None
        return self.proc.stdout.fileno()

    def _entries(self, block: bytes) -> None:
        for line in block.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                self.counts.reject(self.key, "malformed")
                continue
            if not isinstance(entry, dict):
                self.counts.reject(self.key, "malformed")
                continue
            tag, message = _field(entry.get("SYSLOG_IDENTIFIER")), _field(entry.get("MESSAGE"))
            if len(message) > MAX_LINE:
                self.counts.reject(self.key, "overlong")
            else:
                self.counts.add(self.counts.lines, self.key)
                self.parser.message(tag, message)
            cursor = entry.get("__CURSOR")
            if isinstance(cursor, str):
                self.cursor = cursor

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _field(value: Any) -> bytes:
    """A journal field in journalctl's JSON: a string, or an array of byte values when it is not UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        try:
            return bytes(v for v in value if isinstance(v, int))
        except ValueError:
            return b""
    return b""
