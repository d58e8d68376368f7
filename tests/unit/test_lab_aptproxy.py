"""The lab's apt proxy forgets the cached Release files at start (they are then served as static for the run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provsec.lab import aptproxy


@pytest.mark.parametrize(("name", "expected"), [
    ("InRelease", True), ("InRelease.head", True), ("InRelease.1795787047", True), ("Release", True),
    ("Release.gpg", True), ("Release.gpg.head", True), ("Release.1795787047", True),
    ("InRelease.tmp", False), ("Packages", False), ("Packages.xz", False), ("NotInRelease", False),
    ("Release.gpg.old", False), ("InRelease.", False),
])
def test_release_file_names(name: str, expected: bool) -> None:
    assert aptproxy._is_release_file(name) is expected


def test_proxy_start_forgets_release_files_and_keeps_the_rest(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aptproxy, "CACHE_DIR", tmp_path)
    suite = tmp_path / "deb.debian.org" / "debian" / "dists" / "bookworm"
    sec = tmp_path / "deb.debian.org" / "debian-security" / "dists" / "bookworm-security"
    deep = tmp_path / "mirror.example" / "pub" / "mirrors" / "debian" / "dists" / "bookworm"  # any depth
    xstore = tmp_path / "_xstore" / "rsnap" / "deb.debian.org" / "debian" / "dists" / "bookworm"  # acng's own
    by_hash = suite / "main" / "binary-amd64" / "by-hash" / "SHA256"
    pool = tmp_path / "deb.debian.org" / "debian" / "pool" / "main" / "a"
    for d in (suite, sec, deep, xstore, by_hash, pool):
        d.mkdir(parents=True)
    gone = [suite / "InRelease", suite / "InRelease.head", suite / "InRelease.1795787047", sec / "InRelease",
            deep / "Release", deep / "Release.gpg"]
    kept = [by_hash / "0f3a", pool / "InRelease", pool / "a_1.0_amd64.deb", suite / "Packages.xz",
            xstore / "InRelease"]
    for f in gone + kept:
        f.write_text("x")
    assert aptproxy._forget_release_files() == len(gone)
    assert [f for f in gone if f.exists()] == []
    assert [f for f in kept if not f.exists()] == []
