"""A folder moved between the control node and a lab host as a tar stream (report data collected on mon1).

Debian 12's Python 3.11.2 has no `filter=` for `TarFile.extractall` (3.11.4 added it), so the members are checked
here first: regular files and directories only, relative paths that stay inside the destination."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

from provsec.errors import InputError


def untar(data: bytes, dest: Path, where: str) -> None:
    """Extract the tar stream `data` (from `where`, for the error) into dest, refusing anything but plain files and
    directories inside it, before writing anything."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = archive.getmembers()
            for member in members:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
                    raise InputError(f"{where}: refused tar member {member.name!r} (only plain files and "
                                     "directories below the destination)")
            dest.mkdir(parents=True, exist_ok=True)
            for member in members:
                target = dest / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                if source is None:
                    raise InputError(f"{where}: tar member {member.name!r} has no data")
                target.write_bytes(source.read())
    except tarfile.TarError as exc:
        raise InputError(f"{where}: not a tar stream ({exc})") from None
