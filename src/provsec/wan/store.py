"""The versioned configuration store: a git repository on the node that runs the backup.

Why git and not restic (which provsec uses for data backups): a configuration is a small text file whose
history people read. git stores each version, shows line diffs between any two (`git diff`, `git log -p`),
names each version by a commit with its time and message, and is on every Debian host. restic stores
opaque, deduplicated snapshots: right for databases and files, but a diff of two snapshots lists changed
files, not changed lines, and reading an old version means a restore. The store itself is backed up with the
control node's files (restic), so both are used for what each does well.

Layout: one file per device, `<device>.cfg` (mode 0600, the directory 0700: even fingerprinted, a router's
configuration is for administrators only), one commit per changed device with author "provsec wan backup"
and a message naming the device and the fetch time (UTC, and Asia/Ho_Chi_Minh). git runs through
provsec.proc with an explicit environment: no system or user git configuration is read, so root's or
anyone's ~/.gitconfig, hooks or signing settings change nothing.

A version is compared with the device's file in the last commit (not the working tree), written atomically
and committed; if the commit fails, the file is put back as it was committed. A failed fetch never reaches
the store."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from provsec import proc
from provsec.errors import CommandError, InputError
from provsec.fileio import write_atomic

DEFAULT_STORE = "/var/lib/provsec/wan/configs"
AUTHOR = "provsec wan backup"
EMAIL = "provsec-wan-backup@localhost"
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SUFFIX = ".cfg"
_REV = re.compile(r"^[0-9a-f]{4,40}$")
_EXCLUDE = ("metrics.json", ".lock", ".*.tmp")  # kept beside the configurations, never committed
GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Revision:
    commit: str
    time: str  # ISO 8601, UTC
    subject: str

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "time": self.time, "subject": self.subject}


def local(stamp: dt.datetime) -> str:
    return stamp.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M %Z")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    # git -------------------------------------------------------------------------------------------------

    def _env(self, when: dt.datetime | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),  # no user's ~/.gitconfig
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "TZ": "UTC",
        }
        if when is not None:
            stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
            env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        return env

    def git(self, *args: str, when: dt.datetime | None = None, check: bool = True) -> str:
        argv = ["git", "-C", str(self.path), "-c", f"user.name={AUTHOR}", "-c", f"user.email={EMAIL}",
                "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}", "-c", "core.pager=cat",
                *args]
        return proc.run(argv, env=self._env(when), timeout=GIT_TIMEOUT, check=check).stdout

    def init(self) -> Store:
        """Create the store (0700) and its repository if missing; idempotent."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path.chmod(0o700)
        except OSError as exc:
            raise InputError(f"--store {self.path}: cannot create ({exc.strerror or exc})") from None
        if not (self.path / ".git").exists():
            self.git("init", "-q", "--initial-branch=main")
            exclude = self.path / ".git" / "info" / "exclude"
            write_atomic(exclude, ("\n".join(_EXCLUDE) + "\n").encode(), 0o600)
        return self

    def _check(self) -> None:
        if not (self.path / ".git").is_dir():
            raise InputError(f"--store {self.path}: not a provsec wan store (no git repository); run "
                             "`provsec wan backup` once to create it")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (two backups of one store must not commit over each other)."""
        with (self.path / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # versions --------------------------------------------------------------------------------------------

    def file(self, device: str) -> Path:
        return self.path / f"{device}{SUFFIX}"

    def committed(self, device: str) -> str | None:
        """The device's configuration in the last commit, or None when it has none."""
        done = self.git("rev-parse", "--verify", "-q", "HEAD", check=False)
        if not done.strip():
            return None
        listed = self.git("ls-tree", "--name-only", "HEAD", "--", f"{device}{SUFFIX}")
        if not listed.strip():
            return None
        return self.git("show", f"HEAD:{device}{SUFFIX}")

    def save(self, device: str, text: str, when: dt.datetime) -> str | None:
        """Commit the device's configuration if it differs from its last version: the new commit's id, or
        None when nothing changed."""
        before = self.committed(device)
        if before == text:
            return None
        path = self.file(device)
        write_atomic(path, text.encode("utf-8"), 0o600)
        verb = "first version" if before is None else "configuration changed"
        message = (f"{device}: {verb}\n\nFetched {when.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} "
                   f"({local(when)}) by provsec wan backup.\n")
        try:
            self.git("add", "--", path.name)
            self.git("commit", "-q", "-m", message, "--", path.name, when=when)
        except CommandError:
            if before is None:
                self.git("rm", "-q", "--cached", "--ignore-unmatch", "--", path.name, check=False)
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, before.encode("utf-8"), 0o600)
                self.git("reset", "-q", "--", path.name, check=False)
            raise
        return self.git("rev-parse", "HEAD").strip()

    def history(self, device: str) -> list[Revision]:
        """The device's versions, newest first."""
        self._check()
        if not self.git("rev-parse", "--verify", "-q", "HEAD", check=False).strip():
            return []
        out = self.git("log", "--format=%H%x1f%aI%x1f%s", "--", f"{device}{SUFFIX}")
        revisions = []
        for line in out.splitlines():
            commit, stamp, subject = line.split("\x1f", 2)
            utc = dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)
            revisions.append(Revision(commit, utc.isoformat().replace("+00:00", "Z"), subject))
        return revisions

    def resolve(self, device: str, ref: str, revisions: list[Revision]) -> str:
        """A version: `latest`, `previous`, or a commit id (at least 4 hex digits) of the device's history."""
        if ref in ("latest", "previous"):
            need = 1 if ref == "latest" else 2
            if len(revisions) < need:
                raise InputError(f"{device}: {len(revisions)} stored version(s), so there is no {ref!r} one")
            return revisions[need - 1].commit
        if not _REV.match(ref):
            raise InputError(f"version {ref!r}: give latest, previous or a commit id (hex) from "
                             f"`provsec wan history {device}`")
        found = [r.commit for r in revisions if r.commit.startswith(ref)]
        if len(found) != 1:
            why = "matches no version" if not found else "is ambiguous"
            raise InputError(f"{device}: version {ref!r} {why} of its history (provsec wan history {device})")
        return found[0]

    def diff(self, device: str, a: str = "previous", b: str = "latest") -> str:
        """Unified diff of the device's configuration between versions a and b."""
        revisions = self.history(device)
        if not revisions:
            raise InputError(f"{self.path}: no stored version of {device!r}")
        ca, cb = self.resolve(device, a, revisions), self.resolve(device, b, revisions)
        return self.git("diff", "--no-color", "--no-ext-diff", ca, cb, "--", f"{device}{SUFFIX}")
