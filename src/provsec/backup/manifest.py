"""A manifest of file hashes, written just before each file backup and stored IN the snapshot — with restic
older than 0.17 only (restic.VERIFY_RESTORE_SINCE).

From 0.17 the drill's reference is `restic restore --verify` (every restored file re-read and checked against
the snapshot's content blob ids, the SHA-256 of each chunk restic read), so the backup hashes nothing: the
manifest's hashing was ~0.6 s of the first backup's 0.77 s overhead over raw restic at 1 GiB. A drill still
verifies with the manifest any snapshot that carries one (made with an older restic); see README.md.

restic keeps no per-file content hash a drill could compare against, so below 0.17 provsec writes one:
`<state_dir>/manifests/<job>.json` lists every regular file of the job's paths (size, mtime, sha256) and is
passed to `restic backup` as one more path. The snapshot thus carries its own reference: a drill restores the
snapshot, reads the manifest from the restored tree (no outside state needed, so it works on a rebuilt host)
and verifies every file.

Cost: hashes are reused from the previous manifest when a file's size, mtime, ctime and inode are unchanged
(the same test restic uses to skip unchanged files), so an incremental backup reads only changed files twice.

A file that changes between hashing and restic reading it has a different mtime in the snapshot than in the
manifest: the drill reports it as changed during backup, not as corruption. Exclude patterns follow restic's
basic rules (a pattern without "/" matches any path component; with "/" the whole path); a file the manifest
lists but restic excluded shows up in a drill as missing, never as silently verified."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provsec.backup.restic import iso, utcnow
from provsec.errors import InputError

CHUNK = 1 << 20
HASH_THREADS = 4  # at most; one per core
VERSION = 1


@dataclass(frozen=True)
class Entry:
    size: int
    mtime_ns: int
    sha256: str
    ctime_ns: int = 0
    inode: int = 0


@dataclass
class Verification:
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    changed_during_backup: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.checked > 0 and not self.missing and not self.mismatched

    def summary(self) -> str:
        parts = [f"{self.ok}/{self.checked} files verified"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing (first: {self.missing[0]})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} differ from the manifest (first: {self.mismatched[0]})")
        if self.changed_during_backup:
            parts.append(f"{len(self.changed_during_backup)} changed while the backup ran")
        return ", ".join(parts)


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/") if part):
            return True
    return False


def _walk(paths: Sequence[Path], exclude: Sequence[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files under paths, symlinks not followed (as restic), unreadable directories skipped."""
    for root in paths:
        top = str(root)
        try:
            st = os.lstat(top)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            if not _excluded(top, exclude):
                yield top, st
            continue
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not _excluded(f"{dirpath}/{d}", exclude))
            for name in sorted(filenames):
                full = f"{dirpath}/{name}"
                if _excluded(full, exclude):
                    continue
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield full, st


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _digest_or_none(path: str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def hash_files(paths: Sequence[str]) -> dict[str, str | None]:
    """sha256 of each file (None: unreadable or gone), on one thread per core (at most HASH_THREADS): hashlib
    lets go of the GIL while it hashes, so a first backup's manifest and a drill's check share the cores
    (1 GiB here: 1.08 s on one thread, 0.61 s on two)."""
    with ThreadPoolExecutor(max_workers=max(1, min(HASH_THREADS, os.cpu_count() or 1))) as pool:
        return dict(zip(paths, pool.map(_digest_or_none, paths), strict=True))


def build(paths: Sequence[Path], exclude: Sequence[str], previous: dict[str, Entry] | None = None) -> dict[str, Entry]:
    """Every regular file of the job with its hash: reused from previous when size, mtime, ctime and inode are
    unchanged, else read (hash_files). A file unreadable now is left out: restic will say so (exit 3 → partial)."""
    previous = previous or {}
    found = list(_walk(paths, exclude))
    reused: dict[str, Entry] = {}
    for path, st in found:
        old = previous.get(path)
        if old and (old.size, old.mtime_ns, old.ctime_ns, old.inode) == (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        ):
            reused[path] = old
    digests = hash_files([path for path, _ in found if path not in reused])
    files: dict[str, Entry] = {}
    for path, st in found:
        if path in reused:
            files[path] = reused[path]
        elif (digest := digests[path]) is not None:
            files[path] = Entry(st.st_size, st.st_mtime_ns, digest, st.st_ctime_ns, st.st_ino)
    return files


def write(target: Path, job: str, files: dict[str, Entry]) -> None:
    """Write the manifest atomically (temp file + rename), 0600: it names every file of the job."""
    data = {
        "version": VERSION,
        "job": job,
        "created_at": iso(utcnow()),
        "files": {
            path: {"size": e.size, "mtime_ns": e.mtime_ns, "sha256": e.sha256, "ctime_ns": e.ctime_ns,
                   "inode": e.inode}
            for path, e in sorted(files.items())
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(target)


def read(path: Path) -> dict[str, Entry]:
    """Read a manifest; a malformed one is an InputError naming the file (a drill then fails, loudly)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: manifest not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: manifest unreadable or not JSON ({exc})") from exc
    try:
        if data["version"] != VERSION:
            raise InputError(f"{path}: manifest version {data['version']!r}, expected {VERSION}")
        return {
            str(p): Entry(int(e["size"]), int(e["mtime_ns"]), str(e["sha256"]), int(e.get("ctime_ns", 0)),
                          int(e.get("inode", 0)))
            for p, e in data["files"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: malformed manifest ({exc!r})") from exc


def load_previous(path: Path) -> dict[str, Entry]:
    try:
        return read(path)
    except InputError:
        return {}


def verify(files: dict[str, Entry], restored_root: Path) -> Verification:
    """Compare every manifest entry with the file restored under restored_root (absolute paths re-rooted)."""
    result = Verification()
    restored = {path: str(restored_root / path.lstrip("/")) for path in files}
    digests = hash_files(list(restored.values()))
    for path, entry in sorted(files.items()):
        result.checked += 1
        digest = digests[restored[path]]
        if digest is None:
            result.missing.append(path)
        elif digest == entry.sha256:
            result.ok += 1
        else:
            try:
                st = os.lstat(restored[path])
            except OSError:
                result.missing.append(path)
                continue
            if st.st_mtime_ns != entry.mtime_ns or st.st_size != entry.size:
                result.changed_during_backup.append(path)
            else:
                result.mismatched.append(path)
    return result
