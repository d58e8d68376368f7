"""The scan store: one JSON file per scan, `scan-YYYYMMDDTHHMMSSZ.json` (UTC), written atomically so that the
exporter and the reports see a whole scan or none. A name that exists already gets `-2`, `-3`, …"""

from __future__ import annotations

from pathlib import Path

from provsec.errors import InputError
from provsec.fileio import read_json, write_json_atomic
from provsec.scan.model import ScanResult

DEFAULT_STORE = "/var/lib/provsec/scans"
PREFIX = "scan-"


def save(store: Path, result: ScanResult) -> Path:
    stamp = result.started_at.replace("-", "").replace(":", "")
    path = store / f"{PREFIX}{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = store / f"{PREFIX}{stamp}-{n}.json"
    write_json_atomic(path, result.to_json(), compact=True)  # read by provsec, not by people: scan diff
    return path


def scans(store: Path) -> list[Path]:
    """Stored scans, oldest first: by the time in the name, then by the -N of scans started in the same second."""
    if not store.is_dir():
        return []
    return sorted((p for p in store.glob(f"{PREFIX}*.json") if p.is_file()), key=_order)


def _order(path: Path) -> tuple[str, int]:
    stamp, _, n = path.stem.partition("-")[2].partition("-")
    return (stamp, int(n) if n.isdigit() else 1)


def resolve(store: Path, ref: str) -> Path:
    """A scan named by path, by file name in the store, or as `latest` / `previous` (the one before latest)."""
    if ref in ("latest", "previous"):
        stored = scans(store)
        need = 1 if ref == "latest" else 2
        if len(stored) < need:
            raise InputError(f"{store}: {len(stored)} stored scan(s), so there is no {ref!r} scan")
        return stored[-need]
    path = Path(ref)
    if path.is_file():
        return path
    if (store / ref).is_file():
        return store / ref
    raise InputError(f"scan {ref!r}: no such file, and no such scan in {store} "
                     "(give a path, a file name in the store, latest or previous)")


def load(path: Path) -> ScanResult:
    return ScanResult.from_json(read_json(path, "scan record"), str(path))
