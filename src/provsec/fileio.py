"""Atomic file writes shared by every area: state records, the exporter's offsets, tokens, vault files.

A reader (node_exporter, a report, the process restarted after `kill -9`) sees either the old file or the
new one, never half of one: the data goes to a temp file in the same directory, is fsync'ed, renamed over
the target, and the directory is fsync'ed so the rename itself survives a power cut."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)  # O_CREAT's mode passes through the umask
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, text.encode("utf-8"), mode)
