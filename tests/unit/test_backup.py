"""provsec.backup against real restic and local repositories (tmp_path): every trap of issue 4 reproduced on
both restic versions provsec may meet — Debian 12's 0.14 (/usr/bin/restic) and trixie's 0.18 (the .deb that
scripts/fetch-restic unpacks into /var/cache/provsec/restic) — and the wrapper's answer to each."""

from __future__ import annotations

import dataclasses
import filecmp
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import restic as resticpy
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from provsec.backup import restic
from provsec.backup.jobs import BackupConfig, load_config, parse_config
from provsec.backup.metrics import TEXTFILE_NAME, BackupCollector, write_textfile
from provsec.backup.restic import iso, parse_time
from provsec.backup.runner import check, drill, forget_jobs, restore, run_jobs
from provsec.cli import main
from provsec.errors import InputError

BINARIES = {
    "0.14": Path("/usr/bin/restic"),
    "0.18": Path(os.environ.get("PROVSEC_RESTIC_CACHE", "/var/cache/provsec/restic")) / "restic",
}


@pytest.fixture(params=sorted(BINARIES))
def restic_binary(request: pytest.FixtureRequest) -> str:
    path = BINARIES[request.param]
    if not os.access(path, os.X_OK):
        pytest.fail(f"restic {request.param} not at {path}: run scripts/bootstrap (it runs scripts/fetch-restic)")
    assert restic.version(restic.Repository("-", Path("-"), restic_binary=str(path))).startswith(request.param)
    return str(path)


def _binary(version: str, remedy: str) -> str:
    path = BINARIES[version]
    if not os.access(path, os.X_OK):
        pytest.fail(f"restic {version} not at {path}: {remedy}")
    return str(path)


@pytest.fixture
def newest() -> str:
    return _binary("0.18", "run scripts/bootstrap")


@pytest.fixture
def oldest() -> str:
    return _binary("0.14", "install Debian 12's restic")


def _files(root: Path) -> Path:
    """A small tree: text, binary, nested, an empty file, Vietnamese names, a symlink."""
    (root / "docs" / "năm 2026").mkdir(parents=True)
    (root / "docs" / "công văn.txt").write_text("Sở Thông tin và Truyền thông\n", encoding="utf-8")
    (root / "docs" / "năm 2026" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "docs" / "empty").write_bytes(b"")
    (root / "docs" / "link").symlink_to("công văn.txt")
    return root / "docs"


PASSWORD = "correct horse battery staple\n"  # noqa: S105 - a test repository's password


# One initialised repository per restic binary, copied into each test: restic init costs a key derivation.
_TEMPLATES: dict[str, Path] = {}


def _template(binary: str, root: Path) -> Path:
    if binary not in _TEMPLATES:
        path = root / f"template-{len(_TEMPLATES)}"
        path.mkdir()
        (path / "password").write_text(PASSWORD)
        restic.init(restic.Repository(str(path / "repo"), path / "password", {"RESTIC_CACHE_DIR": str(path / "c")},
                                      binary))
        _TEMPLATES[binary] = path
    return _TEMPLATES[binary] / "repo"


def make_config(tmp_path: Path, binary: str, jobs: list[dict[str, Any]], *, init: bool = True) -> BackupConfig:
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    data = {
        "repository": str(tmp_path / "repo"),
        "password_file": str(password),
        "restic_binary": binary,
        "env": {"RESTIC_CACHE_DIR": str(tmp_path / "cache")},
        "state_dir": str(tmp_path / "state"),
        "textfile_dir": str(tmp_path / "textfile"),
        "group_by": ["host", "tags"],
        "retention": {"documents": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12},
                      "databases": {"keep_last": 3}},
        "jobs": jobs,
    }
    path = tmp_path / "backup.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    if init:
        real = Path(os.path.realpath(binary)) if Path(binary).name != "restic-no-dac" else Path(binary)
        shutil.copytree(_template(str(real), tmp_path.parent), tmp_path / "repo", symlinks=True)
    return config


def _metrics(config: BackupConfig) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert config.textfile_dir is not None
    text = (config.textfile_dir / TEXTFILE_NAME).read_text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# ------------------------------------------------------------------------------------------------ round trip


def test_round_trip_byte_for_byte_and_drill(tmp_path: Path, newest: str) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok", record.result.reason
    assert record.result.snapshot and len(record.result.snapshot) == 64
    # the three regular files and nothing else: restic 0.18 backs up no manifest
    assert record.result.files_new == 3 and record.result.bytes_added > 300_000

    target = tmp_path / "restored"
    restore(config, config.job("docs"), None, target, [])
    back = target / str(src).lstrip("/")
    cmp = filecmp.dircmp(src, back)
    assert not (cmp.left_only or cmp.right_only or cmp.diff_files)
    for path in src.rglob("*"):
        twin = back / path.relative_to(src)
        if path.is_symlink():
            assert twin.readlink() == path.readlink()
        elif path.is_file():
            assert twin.read_bytes() == path.read_bytes()

    result = drill(config, config.job("docs"), tmp_path / "scratch")
    assert result.state == "ok", result.reason
    assert record.result.snapshot
    # restic 0.18: the reference is restic's restore --verify; the three regular files (not the symlink)
    assert result.reason == (f"snapshot {record.result.snapshot[:8]}: 3 files verified by restic restore --verify "
                             "(every chunk against the snapshot's content hashes)")
    assert result.files_checked == 3 and result.rto_s is not None and result.rpo_s is not None
    assert list((tmp_path / "scratch").iterdir()) == []  # cleaned up
    assert _metrics(config)[("provsec_backup_drill_ok", (("backup_job", "docs"),))] == 1.0


def _snapshot_files(config: BackupConfig, snapshot: str) -> set[str]:
    """The paths of every node in a snapshot, as `restic ls --json` lists them."""
    done = restic.call(config.repository, ["ls", snapshot])
    return {str(obj["path"]) for obj in done.json_lines() if obj.get("struct_type") == "node"}


def test_restic_018_backup_writes_no_manifest_and_removes_a_stale_one(tmp_path: Path, newest: str) -> None:
    """restic ≥ 0.17: no hashing before the backup, no manifest in the snapshot; a manifest an earlier run (or
    restic 0.14) left in the state directory is removed, so no later snapshot carries it as if it were current."""
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    stale = tmp_path / "state" / "manifests" / "docs.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"version": 1, "job": "docs", "files": {}}')
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok", record.result.reason
    assert not stale.exists()
    assert record.result.snapshot
    [snap] = restic.snapshots(config.repository, config.job("docs").tags)
    assert snap.paths == (str(src),)
    listed = _snapshot_files(config, record.result.snapshot)
    assert f"{src}/công văn.txt" in listed and not any(p.endswith("docs.json") for p in listed)


def test_restic_018_drill_fails_on_a_corrupted_pack(tmp_path: Path, newest: str) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok" and record.result.snapshot
    packs = sorted((p for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    pack = packs[-1]  # the largest: the data pack of data.bin
    pack.chmod(0o600)
    with pack.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff" * 16)
    result = drill(config, config.job("docs"), tmp_path / "scratch")
    assert result.state == "failed"
    assert result.reason.startswith(f"snapshot {record.result.snapshot[:8]}: restore --verify failed: "), result.reason
    assert "exited 1" in result.reason and result.files_checked == 0 and result.rto_s is None
    assert list((tmp_path / "scratch").iterdir()) == []
    assert _metrics(config)[("provsec_backup_drill_ok", (("backup_job", "docs"),))] == 0.0


def test_restore_verify_that_does_not_say_it_verified_is_no_pass(tmp_path: Path, newest: str) -> None:
    """restic exits 0 but its "finished verifying" line is missing (a restic that printed less): nothing says
    the files were verified, so the drill fails and says why — never ok on partial output."""
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok" and record.result.snapshot
    mute = tmp_path / "restic-mute"
    real = os.path.realpath(newest)
    mute.write_text(f"#!/bin/bash\nset -o pipefail\n{real} \"$@\" | grep -v '^finished verifying'\n")
    mute.chmod(0o755)
    result = drill(_with_binary(config, str(mute)), config.job("docs"), tmp_path / "scratch")
    assert result.state == "failed"
    assert result.reason.startswith(f"snapshot {record.result.snapshot[:8]}: restore --verify failed: repository "
                                    f"{config.repository.url}: restic restore --verify of "
                                    f"{record.result.snapshot[:8]} exited 0 but did not say it verified the files")
    assert result.files_checked == 0


def test_a_014_snapshot_with_its_manifest_is_drilled_with_the_manifest_on_018(
    tmp_path: Path, oldest: str, newest: str
) -> None:
    """A snapshot made by restic 0.14 carries its manifest: restic 0.18's drill checks every file against it.
    The other way round, a snapshot without manifest drilled by 0.14 has no reference: failed, said so."""
    src = _files(tmp_path / "src")
    old = make_config(tmp_path, oldest, [{"name": "docs", "kind": "files", "class": "documents",
                                          "paths": [str(src)]}])
    [record] = run_jobs(old, old.jobs)
    assert record.result.state == "ok", record.result.reason
    written = tmp_path / "state" / "manifests" / "docs.json"
    assert written.exists()
    [snap] = restic.snapshots(old.repository, old.job("docs").tags)
    assert set(snap.paths) == {str(src), str(written)}

    result = drill(_with_binary(old, newest), old.job("docs"), tmp_path / "scratch")
    assert result.state == "ok", result.reason
    assert result.reason == f"snapshot {snap.short_id}: 3/3 files verified against the manifest in the snapshot"
    assert result.files_checked == 3

    [record] = run_jobs(_with_binary(old, newest), old.jobs)  # 0.18 writes into the 0.14 repository: no manifest
    assert record.result.state == "ok" and record.result.snapshot and not written.exists()
    result = drill(old, old.job("docs"), tmp_path / "scratch")
    assert result.state == "failed"
    assert result.reason == (f"snapshot {record.result.snapshot[:8]}: no reference to verify against: the snapshot "
                             f"carries no manifest and restic {oldest} is older than 0.17.0, provsec's threshold for "
                             "restore --verify")
    assert result.rto_s is None and result.files_checked == 0


def test_restore_latest_takes_the_newest_snapshot_of_the_job_in_one_call(tmp_path: Path, restic_binary: str) -> None:
    """`restore JOB` with no snapshot restores the job's newest one (restic's `restore latest --tag`, on 0.14's and
    0.18's output alike): not an older one of the job, not a newer one of another job; no snapshot → a clear
    error and no target created; an id of another job's snapshot is refused."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    config = make_config(tmp_path, restic_binary, [
        {"name": "docs", "kind": "files", "class": "documents", "paths": [str(a)]},
        {"name": "other", "kind": "files", "class": "documents", "paths": [str(b)]},
        {"name": "empty", "kind": "files", "class": "documents", "paths": [str(b)]},
    ])
    (a / "v.txt").write_text("first\n")
    [first] = run_jobs(config, [config.job("docs")])
    (a / "v.txt").write_text("second\n")
    [second] = run_jobs(config, [config.job("docs")])
    (b / "o.txt").write_text("other job\n")
    [other] = run_jobs(config, [config.job("other")])
    assert {first.result.state, second.result.state, other.result.state} == {"ok"}
    assert second.result.snapshot and other.result.snapshot

    short = restore(config, config.job("docs"), None, tmp_path / "r1", [])
    assert short == second.result.snapshot[:8]
    assert (tmp_path / "r1" / str(a).lstrip("/") / "v.txt").read_text() == "second\n"
    assert not (tmp_path / "r1" / str(b).lstrip("/")).exists(), "another job's snapshot was restored"

    assert first.result.snapshot
    short = restore(config, config.job("docs"), first.result.snapshot[:10], tmp_path / "r2", [])
    assert short == first.result.snapshot[:8]
    assert (tmp_path / "r2" / str(a).lstrip("/") / "v.txt").read_text() == "first\n"

    with pytest.raises(InputError, match=r"job empty: no snapshot in repository"):
        restore(config, config.job("empty"), None, tmp_path / "r3", [])
    assert not (tmp_path / "r3").exists()
    with pytest.raises(InputError, match=r"job docs: snapshot '[0-9a-f]{8}' matches 0 snapshots of the job"):
        restore(config, config.job("docs"), other.result.snapshot[:8], tmp_path / "r4", [])
    assert not (tmp_path / "r4").exists()


def test_drill_detects_a_file_that_differs_from_the_manifest(
    tmp_path: Path, oldest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """restic 0.14: the manifest travels in the snapshot; tamper with the manifest's hash and the drill must fail."""
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, oldest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    target = config.state_dir / "manifests" / "docs.json"
    data = None

    def tamper() -> None:
        nonlocal data
        data = json.loads(target.read_text())
        first = sorted(data["files"])[0]
        data["files"][first]["sha256"] = "0" * 64
        target.write_text(json.dumps(data))

    from provsec.backup import manifest

    real_write = manifest.write

    def write_then_tamper(path: Path, job: str, files: dict[str, manifest.Entry]) -> None:
        real_write(path, job, files)
        tamper()

    monkeypatch.setattr(manifest, "write", write_then_tamper)
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok"
    result = drill(config, config.job("docs"))
    assert result.state == "failed" and "differ from the manifest" in result.reason
    assert data is not None
    assert result.reason.endswith("1 differ from the manifest (first: " + sorted(data["files"])[0] + ") against the "
                                  "manifest in the snapshot")


# ----------------------------------------------------------------------------------------------------- traps


def test_missing_path_is_partial_or_failed_never_ok(tmp_path: Path, restic_binary: str) -> None:
    src = _files(tmp_path / "src")
    gone = tmp_path / "not-mounted"
    config = make_config(tmp_path, restic_binary, [
        {"name": "some-missing", "kind": "files", "class": "documents", "paths": [str(src), str(gone)]},
        {"name": "all-missing", "kind": "files", "class": "documents", "paths": [str(gone)]},
    ])
    some, every = run_jobs(config, config.jobs)
    assert some.result.state == "partial" and str(gone) in some.result.reason
    assert some.result.snapshot is not None  # what existed is saved, and its id kept
    assert every.result.state == "failed" and every.result.snapshot is None
    assert main(["backup", "--config", config.source, "status"]) == 1


def test_missing_path_reported_by_restic_itself_is_caught(
    tmp_path: Path, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Path vanishes after provsec's own check: restic skips it and exits 0; the snapshot's paths say so."""
    src = _files(tmp_path / "src")
    gone = tmp_path / "vanishes"
    config = make_config(tmp_path, newest, [GOOD_JOB])
    real_lexists = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: str(p) == str(gone) or real_lexists(p))
    result = restic.backup_paths(config.repository, [src, gone], tags=["provsec", "job=x"])
    assert result.state == "partial" and "not in snapshot" in result.reason and result.snapshot


def test_failing_dump_producer_is_failed_and_its_snapshot_forgotten(tmp_path: Path, newest: str) -> None:
    bad = ["sh", "-c", "echo 'CREATE TABLE half'; echo 'pg_dump: error: connection lost' >&2; exit 1"]
    good = ["sh", "-c", "printf 'CREATE TABLE t (id int);\\n'"]
    config = make_config(tmp_path, newest, [
        {"name": "db-bad", "kind": "postgresql", "class": "databases", "database": "ioffice", "dump_command": bad},
        {"name": "db-good", "kind": "mariadb", "class": "databases", "database": "portal", "dump_command": good},
    ])
    bad_rec, good_rec = run_jobs(config, config.jobs)
    assert bad_rec.result.state == "failed" and bad_rec.result.snapshot is None
    assert "exited 1" in bad_rec.result.reason and "connection lost" in bad_rec.result.reason
    assert "forgotten" in bad_rec.result.reason
    assert restic.snapshots(config.repository, config.job("db-bad").tags) == []  # no good snapshot counted
    assert bad_rec.snapshots == 0
    assert good_rec.result.state == "ok" and good_rec.snapshots == 1
    target = tmp_path / "restored"
    restore(config, config.job("db-good"), None, target, [])
    assert (target / "portal.sql").read_text() == "CREATE TABLE t (id int);\n"


@pytest.mark.parametrize("silent_ok", [False, True], ids=["fails-before-writing", "writes-nothing-exit-0"])
def test_a_dump_that_writes_nothing_leaves_no_snapshot(tmp_path: Path, newest: str, silent_ok: bool) -> None:
    # pg_dump on a database that does not exist fails before its first byte: restic 0.18 then exits 3
    # ("no data read") and still saves an empty snapshot
    fails = "echo 'pg_dump: error: database \"x\" does not exist' >&2; exit 1"
    producer = ["true"] if silent_ok else ["sh", "-c", fails]
    config = make_config(tmp_path, newest, [
        {"name": "db", "kind": "postgresql", "class": "databases", "database": "x", "dump_command": producer}])
    [rec] = run_jobs(config, config.jobs)
    assert rec.result.state == "failed" and rec.result.snapshot is None, rec.result.reason
    assert ("no complete dump" if silent_ok else "does not exist") in rec.result.reason
    assert "forgotten" in rec.result.reason
    assert restic.snapshots(config.repository) == []


def test_unreadable_file_is_partial_with_snapshot_kept(tmp_path: Path, newest: str) -> None:
    """Tests run as root, and root reads a chmod 000 file. So restic runs as root WITHOUT CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (setpriv drops them from the bounding set): it still owns the repository, but a 000
    file is unreadable to it, exactly as to a non-root backup user."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (setpriv drops capabilities that only root has)")
    src = _files(tmp_path / "src")
    secret = src / "unreadable.txt"
    secret.write_text("hồ sơ mật\n")
    secret.chmod(0)
    wrapper = tmp_path / "restic-no-dac"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --bounding-set=-dac_override,-dac_read_search "
                       f"{newest} \"$@\"\n")
    wrapper.chmod(0o755)
    config = make_config(tmp_path, str(wrapper), [{"name": "docs", "kind": "files", "class": "documents",
                                                   "paths": [str(src)]}])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "partial", record.result.reason
    assert "could not be read" in record.result.reason and "unreadable.txt" in record.result.reason
    snap = record.result.snapshot
    assert snap is not None and [s.id for s in restic.snapshots(config.repository)] == [snap]
    assert main(["backup", "--config", config.source, "run", "docs"]) == 1
    values = _metrics(config)
    assert values[("provsec_backup_job_state", (("backup_job", "docs"), ("state", "partial")))] == 1.0
    assert values[("provsec_backup_last_success_timestamp_seconds", (("backup_job", "docs"),))] == 0.0


def test_wrong_password_is_a_clear_error(
    tmp_path: Path, restic_binary: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, restic_binary, [{"name": "docs", "kind": "files", "class": "documents",
                                                    "paths": [str(src)]}])
    config.repository.password_file.write_text("wrong\n")
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "failed"
    assert record.result.reason == (f"repository {config.repository.url}: wrong password: no key opens it with "
                                    f"{config.repository.password_file}")
    assert main(["backup", "--config", config.source, "snapshots"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"provsec: error: {record.result.reason}"]
    assert check(config, None).state == "failed"  # resticpy's check() would return None here


def test_corrupted_pack_fails_check_and_the_metric_says_so(tmp_path: Path, restic_binary: str) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, restic_binary, [{"name": "docs", "kind": "files", "class": "documents",
                                                    "paths": [str(src)]}])
    run_jobs(config, config.jobs)
    assert check(config, "100%").state == "ok"
    assert _metrics(config)[("provsec_backup_check_ok", ())] == 1.0
    packs = sorted((tmp_path / "repo" / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack = packs[-1]  # the largest: the data pack of data.bin
    pack.chmod(0o600)
    with pack.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff" * 16)
    result = check(config, "100%")
    assert result.state == "failed" and "exited 1" in result.reason
    assert _metrics(config)[("provsec_backup_check_ok", ())] == 0.0


def test_kill_9_mid_backup_then_next_run_unlocks_and_succeeds(tmp_path: Path, restic_binary: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with (src / "big").open("wb") as handle:
        for _ in range(6):
            handle.write(os.urandom(8 << 20))
    config = make_config(tmp_path, restic_binary, [{"name": "big", "kind": "files", "class": "documents",
                                                    "paths": [str(src)]}])
    repo = config.repository
    env = {**os.environ, **repo.env}
    proc = subprocess.Popen([restic_binary, "--repo", repo.url, "--password-file", str(repo.password_file),
                             "backup", "-q", str(src)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    locks = tmp_path / "repo" / "locks"
    deadline = time.monotonic() + 10
    while not any(locks.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert any(locks.iterdir())  # the stale lock is left behind
    # An exclusive operation on the stale lock fails in raw restic (0.14: exit 1, 0.18: exit 11) …
    with pytest.raises(restic.LockedError):
        restic._call(repo, ["forget", "--keep-last", "1"])
    # … provsec's run backs up beside it (a backup's lock is shared) …
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok", record.result.reason
    # … and provsec's forget (exclusive lock) unlocks the stale lock and succeeds.
    [forgot] = forget_jobs(config, config.jobs)
    assert forgot.state == "ok", forgot.reason
    assert not any(locks.iterdir())
    assert check(config, "100%").state == "ok"


def test_a_live_lock_is_not_removed(tmp_path: Path, newest: str) -> None:
    """unlock removes only stale locks: a lock of a live process makes the job fail, and stays."""
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    repo = config.repository
    holder = subprocess.Popen(
        ["sh", "-c", f"sleep 30 | {newest} --repo {repo.url} --password-file {repo.password_file} "
                     f"--cache-dir {tmp_path}/cache2 backup -q --stdin --stdin-filename hold"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        locks = tmp_path / "repo" / "locks"
        deadline = time.monotonic() + 10
        while not any(locks.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        result = restic.check(repo)
        assert result.state == "failed" and "locked" in result.reason
        assert any(locks.iterdir())
    finally:
        os.killpg(holder.pid, signal.SIGTERM)
        holder.wait()


# ------------------------------------------------------------------------------------------------- retention


def _logging_restic(tmp_path: Path, real: str, *, fail_prune: bool = False) -> tuple[str, Path]:
    """The real restic behind a script that logs each call's arguments (one line per call); with fail_prune, a
    `prune` is refused (exit 1) instead of run: the one fault no real repository gives on demand."""
    wrapper = tmp_path / ("restic-no-prune" if fail_prune else "restic-logged")
    log = tmp_path / f"{wrapper.name}.log"
    refuse = ('case " $* " in *" prune "*) echo "Fatal: prune refused by the test" >&2; exit 1;; esac\n'
              if fail_prune else "")
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\n{refuse}exec {os.path.realpath(real)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), log


def _subcommands(log: Path) -> list[str]:
    """restic's subcommand of each logged call (the first word that is not an option or an option's value)."""
    known = {"backup", "forget", "prune", "snapshots", "unlock", "check", "restore", "cat", "version", "init"}
    calls = log.read_text().splitlines() if log.exists() else []
    return [next(w for w in line.split() if w in known) for line in calls]


def _with_binary(config: BackupConfig, binary: str) -> BackupConfig:
    return dataclasses.replace(config, repository=dataclasses.replace(config.repository, restic_binary=binary))


def test_run_backs_up_only_and_forget_applies_the_policy_with_one_prune(tmp_path: Path, newest: str) -> None:
    src = _files(tmp_path / "src")
    # class databases keeps the last 3 (make_config): two jobs, so that one prune serves both
    base = make_config(tmp_path, newest, [
        {"name": "a", "kind": "files", "class": "databases", "paths": [str(src)]},
        {"name": "b", "kind": "files", "class": "documents", "paths": [str(src / "năm 2026")]},
    ])
    wrapper, log = _logging_restic(tmp_path, newest)
    config = _with_binary(base, wrapper)
    a, b = config.jobs
    for n in range(1, 6):
        rec_a, rec_b = run_jobs(config, config.jobs)
        assert (rec_a.result.state, rec_b.result.state) == ("ok", "ok")
        assert (rec_a.snapshots, rec_b.snapshots) == (n, n)  # last known + 1, counted by nobody
    # no forget, no prune, no listing; the version (manifest or not) asked once for the process
    assert _subcommands(log) == ["version"] + ["backup"] * 10
    assert len(restic.snapshots(base.repository, a.tags)) == 5  # keep_last 3 would have removed 2: run did not
    assert _metrics(config)[("provsec_backup_snapshots", (("backup_job", "a"),))] == 5.0
    log.unlink()

    res_a, res_b = forget_jobs(config, config.jobs)
    # a: keep_last 3 of 5 → 2 forgotten; b: 5 snapshots of today, keep_daily/weekly/monthly keep the newest of
    # the day, and restic ≥ 0.17 also the oldest while fewer periods than asked exist → 2 kept, 3 forgotten
    assert (res_a.state, res_a.forgotten, res_a.snapshots) == ("ok", 2, 3), res_a.reason
    assert (res_b.state, res_b.forgotten, res_b.snapshots) == ("ok", 3, 2), res_b.reason
    assert "pruned" in res_a.reason
    assert _subcommands(log) == ["forget", "forget", "prune"]
    assert len(restic.snapshots(base.repository, a.tags)) == 3 and len(restic.snapshots(base.repository, b.tags)) == 2
    values = _metrics(config)
    assert values[("provsec_backup_snapshots", (("backup_job", "a"),))] == 3.0
    assert values[("provsec_backup_snapshots", (("backup_job", "b"),))] == 2.0
    assert values[("provsec_backup_forget_ok", (("backup_job", "a"),))] == 1.0
    assert abs(values[("provsec_backup_forget_timestamp_seconds", (("backup_job", "a"),))] - time.time()) < 60

    # the next run counts from the forget's count; a forget with nothing to forget does not prune
    [rec_a] = run_jobs(config, [a])
    assert rec_a.snapshots == 4
    log.unlink()
    again = forget_jobs(config, [a])
    assert [(r.state, r.forgotten, r.snapshots) for r in again] == [("ok", 1, 3)]
    assert _subcommands(log) == ["forget", "prune"]
    log.unlink()
    assert [(r.forgotten, r.snapshots) for r in forget_jobs(config, [a])] == [(0, 3)]
    assert _subcommands(log) == ["forget"]


def test_forget_failure_exits_non_zero_and_is_recorded(
    tmp_path: Path, newest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    assert main(["backup", "--config", config.source, "run", "docs"]) == 0
    assert main(["backup", "--config", config.source, "forget", "--json"]) == 0
    capsys.readouterr()
    config.repository.password_file.write_text("wrong\n")
    assert main(["backup", "--config", config.source, "forget", "--json"]) == 1
    [row] = json.loads(capsys.readouterr().out)
    expected = (f"forget failed: repository {config.repository.url}: wrong password: no key opens it with "
                f"{config.repository.password_file}")
    assert (row["job"], row["state"], row["reason"], row["snapshots"]) == ("docs", "failed", expected, None)
    stored = json.loads((tmp_path / "state" / "forgets" / "docs.json").read_text())
    assert (stored["state"], stored["reason"]) == ("failed", expected)
    assert _metrics(config)[("provsec_backup_forget_ok", (("backup_job", "docs"),))] == 0.0
    assert _metrics(config)[("provsec_backup_snapshots", (("backup_job", "docs"),))] == 1.0  # the last known
    assert main(["backup", "--config", config.source, "forget"]) == 1
    assert capsys.readouterr().out.split(None, 2)[:2] == ["docs", "failed"]


def test_a_failed_prune_fails_the_forget_and_is_owed_to_the_next(tmp_path: Path, newest: str) -> None:
    src = _files(tmp_path / "src")
    base = make_config(tmp_path, newest, [{"name": "db", "kind": "files", "class": "databases",
                                           "paths": [str(src)]}])
    for _ in range(4):
        run_jobs(base, base.jobs)
    no_prune, _ = _logging_restic(tmp_path, newest, fail_prune=True)
    [res] = forget_jobs(_with_binary(base, no_prune), base.jobs)
    assert (res.state, res.forgotten, res.snapshots) == ("failed", 1, 3)
    assert "prune failed" in res.reason and "prune refused by the test" in res.reason
    assert _metrics(base)[("provsec_backup_forget_ok", (("backup_job", "db"),))] == 0.0
    assert (tmp_path / "state" / "prune-pending.json").exists()
    # nothing left to forget, but the prune is owed: the next forget runs it
    logged, log = _logging_restic(tmp_path, newest)
    [res] = forget_jobs(_with_binary(base, logged), base.jobs)
    assert (res.state, res.forgotten, res.snapshots) == ("ok", 0, 3), res.reason
    assert _subcommands(log) == ["forget", "prune"]
    assert not (tmp_path / "state" / "prune-pending.json").exists()
    assert _metrics(base)[("provsec_backup_forget_ok", (("backup_job", "db"),))] == 1.0


# ----------------------------------------------------------------------------------------- status & metrics


def test_status_json_fields(tmp_path: Path, newest: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [
        {"name": "docs", "kind": "files", "class": "documents", "paths": [str(src)]},
        {"name": "later", "kind": "files", "class": "documents", "paths": [str(src)]},
    ])
    assert main(["backup", "--config", config.source, "run", "docs"]) == 0
    capsys.readouterr()
    assert main(["backup", "--config", config.source, "status", "--json"]) == 1  # `later` never ran
    rows = json.loads(capsys.readouterr().out)
    assert [r["job"] for r in rows] == ["docs", "later"]
    docs, later = rows
    assert {"job", "state", "reason", "snapshot", "finished_at"} <= set(docs)
    assert docs["state"] == "ok" and len(docs["snapshot"]) == 64
    assert docs["finished_at"].endswith("Z") and parse_time(docs["finished_at"]).utcoffset() == timedelta(0)
    assert docs["last_success_at"] == docs["finished_at"]
    assert later == {**later, "state": "failed", "reason": "never run", "snapshot": None, "finished_at": None}


def test_status_carries_the_size_backed_up_and_the_last_check(tmp_path: Path, newest: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """bytes_processed (restic's total_bytes_processed) and last_check: what the monthly report's data growth and
    repository checks read. A record written before they existed still loads: unknown, never 0."""
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    assert main(["backup", "--config", config.source, "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["last_check"] is None  # never checked
    assert main(["backup", "--config", config.source, "run", "docs"]) == 0
    assert main(["backup", "--config", config.source, "check", "--read-data-subset", "10%"]) == 0
    capsys.readouterr()
    assert main(["backup", "--config", config.source, "status", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    # the regular files: the letter, 300 000 random bytes, the empty file (restic 0.18: no manifest travels along)
    letter = len("Sở Thông tin và Truyền thông\n".encode())
    assert row["bytes_processed"] == letter + 300_000 + 0
    assert row["bytes_added"] > 0
    check_row = row["last_check"]
    assert (check_row["state"], check_row["reason"], check_row["read_data_subset"]) == ("ok", "repository checked",
                                                                                       "10%")
    assert parse_time(check_row["finished_at"]) >= parse_time(row["finished_at"])
    # a run record of an older provsec (no bytes_processed) still loads: unknown
    old = json.loads((tmp_path / "state" / "runs" / "docs.json").read_text())
    del old["bytes_processed"]
    (tmp_path / "state" / "runs" / "docs.json").write_text(json.dumps(old))
    assert main(["backup", "--config", config.source, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["bytes_processed"] is None


def test_textfile_timestamps_ignore_timezone_and_file_is_replaced_atomically(
    tmp_path: Path, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _files(tmp_path / "src")
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(src)]}])
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    try:
        [record] = run_jobs(config, config.jobs)
        assert config.textfile_dir is not None
        path = config.textfile_dir / TEXTFILE_NAME
        before = path.stat().st_ino
        values = _metrics(config)
        finished = record.result.finished_at.timestamp()
        assert abs(values[("provsec_backup_last_run_timestamp_seconds", (("backup_job", "docs"),))] - finished) < 1e-3
        docs = (("backup_job", "docs"),)
        assert abs(values[("provsec_backup_last_success_timestamp_seconds", docs)] - finished) < 1e-3
        assert abs(finished - time.time()) < 60  # UTC seconds, not 7 h off
        assert values[("provsec_backup_job_state", (("backup_job", "docs"), ("state", "ok")))] == 1.0
        assert values[("provsec_backup_job_state", (("backup_job", "docs"), ("state", "failed")))] == 0.0
        assert values[("provsec_backup_snapshots", (("backup_job", "docs"),))] == 1.0
        assert values[("provsec_backup_last_run_added_bytes", (("backup_job", "docs"),))] == record.result.bytes_added
        write_textfile(config)
        assert path.stat().st_ino != before  # a new file renamed over the old one, never rewritten in place
        assert [p.name for p in config.textfile_dir.iterdir()] == [TEXTFILE_NAME]  # no temp file left
        assert stat.S_IMODE(path.stat().st_mode) & 0o044  # node_exporter (not root) can read it
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_resticpy_globals_and_environment_are_restored(tmp_path: Path, newest: str) -> None:
    config = make_config(tmp_path, newest, [GOOD_JOB])
    saved = (resticpy.binary_path, resticpy.repository, resticpy.password_file, dict(os.environ))
    os.environ["RESTIC_REPOSITORY"] = "/nonexistent/elsewhere"  # must not leak into provsec's calls
    try:
        assert restic.snapshots(config.repository) == []
        assert (resticpy.binary_path, resticpy.repository, resticpy.password_file) == saved[:3]
        assert os.environ["RESTIC_REPOSITORY"] == "/nonexistent/elsewhere"
    finally:
        os.environ.pop("RESTIC_REPOSITORY")


def test_resticpy_calls_keep_path_so_the_sftp_backend_finds_ssh(tmp_path: Path, newest: str) -> None:
    # restic's sftp backend runs `ssh` from PATH: a call through resticpy once ran with an empty environment
    wrapper = tmp_path / "restic-needs-path"
    wrapper.write_text('#!/bin/sh\n/usr/bin/env | /bin/grep -q "^PATH=" || { echo "no PATH" >&2; exit 97; }\n'
                       f'exec {os.path.realpath(newest)} "$@"\n')
    wrapper.chmod(0o755)
    config = make_config(tmp_path, newest, [GOOD_JOB])
    repo = dataclasses.replace(config.repository, restic_binary=str(wrapper))
    assert shutil.which("ssh"), "openssh-client is installed by scripts/bootstrap"
    assert restic.snapshots(repo) == []


def test_times_are_utc_iso() -> None:
    moment = parse_time("2026-11-26T09:10:23.918030334+07:00")
    assert iso(moment) == "2026-11-26T02:10:23.918Z"


# ------------------------------------------------------------------------------------- configuration input


GOOD_JOB = {"name": "docs", "kind": "files", "class": "documents", "paths": ["/srv/docs"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"jobs": [{**GOOD_JOB, "kind": "tape"}]}, "cfg: job docs: kind: expected one of files, postgresql, mariadb"),
        ({"jobs": [{**GOOD_JOB, "paths": ["srv/docs"]}]}, "cfg: job docs: paths: 'srv/docs' is not absolute"),
        ({"jobs": [{**GOOD_JOB, "class": "secret"}]}, "cfg: job docs: class: 'secret' has no retention policy"),
        ({"jobs": [{**GOOD_JOB, "database": "x"}]}, "cfg: job docs: database: not for kind files"),
        ({"jobs": [{"name": "db", "kind": "postgresql", "class": "documents"}]}, "cfg: job db: database: expected"),
        ({"jobs": [GOOD_JOB, GOOD_JOB]}, "cfg: job docs: name: used twice"),
        ({"jobs": [{**GOOD_JOB, "name": "Bad Name"}]}, "cfg: jobs\\[0\\]: name: expected lower-case"),
        ({"retention": {"documents": {"keep_daily": 0}}}, "cfg: retention: documents: keep_daily: expected a whole"),
        ({"retention": {"documents": {"keep_forever": 1}}}, "cfg: retention: documents: keep_forever: unknown key"),
        ({"group_by": ["host", "time"]}, "cfg: group_by: 'time' is not one of host, paths, tags"),
        ({"group_by": None}, "cfg: group_by: expected a non-empty list"),
        ({"env": {"RESTIC_PASSWORD": "x"}}, "cfg: env: no passwords in the environment"),
        ({"colour": "blue"}, "cfg: colour: unknown key"),
    ],
)
def test_config_errors_name_the_job_and_key(change: dict[str, Any], message: str) -> None:
    data = {"repository": "/srv/restic", "password_file": "/etc/provsec/backup/password", "state_dir": "/var/lib/x",
            "group_by": ["host", "tags"], "retention": {"documents": {"keep_daily": 7}}, "jobs": [GOOD_JOB]}
    data.update(change)
    with pytest.raises(InputError, match="^" + message):
        parse_config(data, "cfg")


def test_config_defaults_and_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_config({"repository": "/r", "password_file": "/p", "state_dir": "/s", "group_by": ["host", "tags"],
                        "retention": {"db": {"keep_daily": 7}},
                        "jobs": [{"name": "pg", "kind": "postgresql", "class": "db", "database": "ioffice"}]}, "c")
    assert cfg.jobs[0].dump_command[-3:] == ("--format=plain", "--dbname", "ioffice")
    assert cfg.jobs[0].tags == ("provsec", "job=pg", "class=db")
    assert main(["backup", "--config", str(tmp_path / "none.yml"), "status"]) == 2
    assert capsys.readouterr().err == f"provsec: error: {tmp_path / 'none.yml'}: backup configuration not found\n"
    good = tmp_path / "c.yml"
    good.write_text(yaml.safe_dump({"repository": "/r", "password_file": str(tmp_path / "nopw"), "state_dir": "/s",
                                    "group_by": ["host"], "retention": {"db": {"keep_daily": 7}},
                                    "jobs": [{"name": "pg", "kind": "postgresql", "class": "db",
                                              "database": "ioffice"}]}))
    assert main(["backup", "--config", str(good), "run", "nope"]) == 2
    assert "no job named 'nope' (jobs: pg)" in capsys.readouterr().err
    assert main(["backup", "--config", str(good), "snapshots"]) == 2
    assert f"password file {tmp_path / 'nopw'} does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------- stale threshold (stale_after)


def _stale_config(top: dict[str, Any], *jobs: dict[str, Any]) -> dict[str, Any]:
    return {"repository": "/r", "password_file": "/p", "state_dir": "/s", "group_by": ["host", "tags"],
            "retention": {"documents": {"keep_daily": 7}}, "jobs": list(jobs), **top}


WEEKLY_JOB = {"name": "archive", "kind": "files", "class": "documents", "paths": ["/srv/archive"]}


def test_stale_after_defaults_to_30_hours_and_a_job_overrides_the_top_level() -> None:
    default = parse_config(_stale_config({}, GOOD_JOB), "cfg")
    assert [(j.name, j.stale_after) for j in default.jobs] == [("docs", 108000.0)]
    top = parse_config(_stale_config({"stale_after": 172800}, GOOD_JOB, {**WEEKLY_JOB, "stale_after": 691200}), "cfg")
    assert [(j.name, j.stale_after) for j in top.jobs] == [("docs", 172800.0), ("archive", 691200.0)]
    own = parse_config(_stale_config({}, GOOD_JOB, {**WEEKLY_JOB, "stale_after": 1.5}), "cfg")
    assert [(j.name, j.stale_after) for j in own.jobs] == [("docs", 108000.0), ("archive", 1.5)]


@pytest.mark.parametrize("bad", [0, -1, "x", True, None, float("nan"), float("inf")], ids=repr)
def test_stale_after_bad_values_name_the_file_job_and_key(bad: Any) -> None:
    with pytest.raises(InputError, match=re.escape(f"cfg: stale_after: expected seconds > 0, got {bad!r}") + "$"):
        parse_config(_stale_config({"stale_after": bad}, GOOD_JOB), "cfg")
    with pytest.raises(InputError,
                       match=re.escape(f"cfg: job archive: stale_after: expected seconds > 0, got {bad!r}") + "$"):
        parse_config(_stale_config({}, GOOD_JOB, {**WEEKLY_JOB, "stale_after": bad}), "cfg")


def test_stale_after_metric_for_every_job_run_or_not(tmp_path: Path) -> None:
    config = parse_config(_stale_config({"state_dir": str(tmp_path / "state"), "stale_after": 93600}, GOOD_JOB,
                                        {**WEEKLY_JOB, "stale_after": 691200}), "cfg")
    registry = CollectorRegistry()
    registry.register(BackupCollector(config))  # no job has run: the thresholds come from the configuration alone
    assert registry.get_sample_value("provsec_backup_stale_after_seconds", {"backup_job": "docs"}) == 93600.0
    assert registry.get_sample_value("provsec_backup_stale_after_seconds", {"backup_job": "archive"}) == 691200.0
    assert registry.get_sample_value("provsec_backup_last_success_timestamp_seconds", {"backup_job": "archive"}) == 0


# ------------------------------------------------------------------------------------ second-site copy


def test_second_site_copy_pulls_new_snapshots_and_says_when_it_cannot(
    tmp_path: Path, newest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from provsec.backup import copy

    (tmp_path / "client").mkdir()
    config = make_config(tmp_path / "client", newest, [GOOD_JOB | {"paths": [str(_files(tmp_path / "src"))]}])
    run_jobs(config, config.jobs)
    (tmp_path / "second.pw").write_text("another password\n")
    copy_conf = tmp_path / "copy.yml"
    copy_conf.write_text(yaml.safe_dump({
        "restic_binary": newest, "env": {"RESTIC_CACHE_DIR": str(tmp_path / "cache")},
        "state_dir": str(tmp_path / "copy-state"), "textfile_dir": str(tmp_path / "textfile"),
        "copies": [{"name": "client",
                    "from": {"repository": config.repository.url,
                             "password_file": str(config.repository.password_file)},
                    "to": {"repository": str(tmp_path / "second"), "password_file": str(tmp_path / "second.pw")}}],
    }))
    assert main(["backup", "--config", str(copy_conf), "copy", "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["state"] == "ok" and record["snapshots"] == 1, record
    second = restic.Repository(str(tmp_path / "second"), tmp_path / "second.pw", {}, newest)
    assert [s.paths for s in restic.snapshots(second)] == [s.paths for s in restic.snapshots(config.repository)]
    # a second run copies nothing twice
    assert main(["backup", "--config", str(copy_conf), "copy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["snapshots"] == 1
    prom = (tmp_path / "textfile" / copy.TEXTFILE_NAME).read_text()
    assert 'provsec_backup_copy_ok{copy="client"} 1.0' in prom
    ok_at = re.search(r'provsec_backup_copy_last_success_timestamp_seconds\{copy="client"\} (\S+)', prom)
    assert ok_at and float(ok_at.group(1)) > 0
    # the source's password changed under it: failed, named, and the last success stays where it was
    config.repository.password_file.write_text("not the password\n")
    assert main(["backup", "--config", str(copy_conf), "copy", "--json"]) == 1
    [failed] = json.loads(capsys.readouterr().out)
    assert failed["state"] == "failed", failed
    assert config.repository.url in failed["reason"] and "wrong password" in failed["reason"]
    prom = (tmp_path / "textfile" / copy.TEXTFILE_NAME).read_text()
    assert 'provsec_backup_copy_ok{copy="client"} 0.0' in prom
    assert f'provsec_backup_copy_last_success_timestamp_seconds{{copy="client"}} {ok_at.group(1)}' in prom


def test_copy_configuration_errors_name_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "copy.yml"
    conf.write_text(yaml.safe_dump({"state_dir": "/s", "env": {"RESTIC_PASSWORD": "x"}, "copies": []}))
    assert main(["backup", "--config", str(conf), "copy"]) == 2
    assert f"{conf}: env: no passwords in the environment" in capsys.readouterr().err
    conf.write_text(yaml.safe_dump({"state_dir": "/s", "copies": [{"name": "a", "from": {}, "to": {}}]}))
    assert main(["backup", "--config", str(conf), "copy"]) == 2
    assert f"{conf}: copies[0]: from: expected a mapping with repository and password_file" in capsys.readouterr().err


def test_manifest_hashes_every_file_and_reuses_unchanged_ones(tmp_path: Path) -> None:
    """The manifest lists the job's regular files (no symlink, nothing excluded) with their sha256, hashed on
    several threads; a file whose size, times and inode are unchanged keeps the previous hash without being read."""
    from provsec.backup import manifest

    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    contents = {f"{root}/a/f{i}.bin": os.urandom(1000 * i + 1) for i in range(12)}
    contents[f"{root}/a/b/công văn.txt"] = "Sở Thông tin\n".encode()
    for path, data in contents.items():
        Path(path).write_bytes(data)
    (root / "a" / "skip.swp").write_bytes(b"excluded")
    (root / "a" / "link").symlink_to("f1.bin")
    files = manifest.build([root], ["*.swp"])
    assert {p: e.sha256 for p, e in files.items()} == {p: hashlib.sha256(d).hexdigest() for p, d in contents.items()}
    assert all(files[p].size == len(d) for p, d in contents.items())

    kept, rewritten = f"{root}/a/f3.bin", f"{root}/a/f4.bin"
    previous = dict(files)
    previous[kept] = dataclasses.replace(files[kept], sha256="0" * 64)  # only a reuse can bring this back
    Path(rewritten).write_bytes(b"new content")
    again = manifest.build([root], ["*.swp"], previous)
    assert again[kept].sha256 == "0" * 64
    assert again[rewritten].sha256 == hashlib.sha256(b"new content").hexdigest()
    assert set(again) == set(contents)
