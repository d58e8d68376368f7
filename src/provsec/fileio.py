"""Files shared by every area: atomic writes (state records, the exporter's offsets, tokens, vault files) and
configuration YAML read with errors that name the file.

A reader (node_exporter, a report, the process restarted after `kill -9`) sees either the old file or the
new one, never half of one: the data goes to a temp file in the same directory, is fsync'ed, renamed over
the target, and the directory is fsync'ed so the rename itself survives a power cut."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from provsec.errors import InputError


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """The temp file's name is unique (two threads of one process may write the same file) and created with
    O_EXCL; its mode is set before the data is written, so a secret is never readable by others, not even
    for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, mode)  # exactly mode: O_CREAT's mode passes through the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_json_atomic(path: Path, data: Any, mode: int = 0o644, *, compact: bool = False) -> None:
    """data as JSON, atomically; indented for people, or compact (json's C encoder: several times faster on
    large records such as a scan of every port of 200 hosts)."""
    text = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) if compact
            else json.dumps(data, ensure_ascii=False, indent=2)) + "\n"
    write_atomic(path, text.encode("utf-8"), mode)


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file's content; a missing, unreadable or malformed file is an InputError naming it and what it is
    (and the line, for malformed JSON)."""
    source = str(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{source}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read the {what} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: the {what} is not JSON (line {exc.lineno}: {exc.msg})") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """A configuration file's YAML; a missing, unreadable or malformed file is an InputError naming it (and the
    line, for malformed YAML)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{source}: {what} not found") from exc
    except OSError as exc:
        raise InputError(f"{source}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}:{where} not valid YAML") from exc


def role_declarations(files: list[Path] | tuple[Path, ...], key: str) -> list[tuple[Path, int, Any]]:
    """(file, index, item) for every item of the list `key` in roles' meta files (meta/ports.yml: `ports`,
    meta/sshd.yml: `sshd`), in file order; an unreadable file, or one without that list, is an InputError
    naming it. The items are the caller's to check."""
    found: list[tuple[Path, int, Any]] = []
    for path in files:
        doc = read_yaml(path, f"role declarations ('{key}')")
        items = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise InputError(f"{path}: expected a mapping with a list '{key}' of declarations")
        found.extend((path, i, item) for i, item in enumerate(items))
    return found


def check_textfile(path: Path, name: str) -> Path:
    """A --textfile for node_exporter's textfile collector, which reads *.prom files only; `name` is the file
    name the error suggests (e.g. provsec_scan.prom)."""
    if path.suffix != ".prom" or path.is_dir():
        raise InputError(f"--textfile {path}: must be a file named *.prom (node_exporter reads only those), e.g. "
                         f"/var/lib/prometheus/node-exporter/{name}")
    return path
