"""provsec.devtools.transfer.untar: plain files and directories land under the destination; a link, an absolute
path or a climb out is refused before anything is written; garbage is a clear error."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from provsec.devtools.transfer import untar
from provsec.errors import InputError


def stream(*members: tuple[str, bytes | None, bytes]) -> bytes:
    """A tar of (name, content or None for a directory, type) members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


def test_files_and_directories_are_extracted(tmp_path: Path) -> None:
    data = stream(("2026-11", None, tarfile.DIRTYPE), ("2026-11/manifest.json", b"{}", tarfile.REGTYPE),
                  ("2026-11/backups/status/01-db1.json", "[\"Đà\"]".encode(), tarfile.REGTYPE))
    untar(data, tmp_path / "out", "mon1")
    assert (tmp_path / "out" / "2026-11" / "manifest.json").read_bytes() == b"{}"
    assert (tmp_path / "out" / "2026-11" / "backups" / "status" / "01-db1.json").read_text() == "[\"Đà\"]"


@pytest.mark.parametrize("member", [("../evil", b"x", tarfile.REGTYPE), ("/etc/evil", b"x", tarfile.REGTYPE),
                                    ("2026-11/link", None, tarfile.SYMTYPE)])
def test_a_dangerous_member_is_refused_before_anything_is_written(tmp_path: Path,
                                                                   member: tuple[str, bytes | None, bytes]) -> None:
    data = stream(("2026-11/ok.json", b"{}", tarfile.REGTYPE), member)
    with pytest.raises(InputError, match=r"mon1: refused tar member"):
        untar(data, tmp_path / "out", "mon1")
    assert not (tmp_path / "out").exists()


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"mon1: not a tar stream"):
        untar(b"not a tar" * 100, tmp_path / "out", "mon1")
