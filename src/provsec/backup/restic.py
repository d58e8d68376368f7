"""restic, the one wrapper: the only module that imports resticpy (`import restic`).

Every call names its repository, password file, environment and restic binary explicitly (a `Repository`);
nothing comes from module globals or the caller's RESTIC_* environment.

Which calls go where:
- through resticpy: `snapshots` (listing) and `version`. resticpy keeps repository, password file and binary in
  module globals and runs restic with the process environment, so `_resticpy` sets the globals and the
  environment under one lock and restores both afterwards.
- through `_call`, the single call point for running restic directly (argv list, `--json`, explicit env,
  timeout, exit code kept): init, backup (paths and `--stdin`), forget, prune, check, restore (and
  `restore --verify`, the drill's reference from restic 0.17: `verifies_restores`), unlock, ls.
  resticpy cannot do these right: it raises on exit 3 although restic saved a snapshot, returns None from
  `check` on a corrupted repository or a wrong password, has no `--stdin`, and no timeout.

The traps measured on restic 0.14 and 0.18 (README.md) are caught here, not left to the caller:
a missing source path (restic exits 0), a failing dump producer piped into `--stdin` (restic exits 0 with a
truncated snapshot), exit 3 (snapshot saved, some files unreadable), a wrong password, stale locks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import restic as resticpy  # the only import of resticpy in provsec

from provsec.errors import CommandError, InputError

State = Literal["ok", "partial", "failed"]
STATES: tuple[State, ...] = ("ok", "partial", "failed")

BACKUP_TIMEOUT = 24 * 3600.0  # a backup or restore may be long; a hung one still ends
SHORT_TIMEOUT = 600.0
T = TypeVar("T")


class ResticError(CommandError):
    """restic failed; the message names the repository, the command and restic's own last words."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.restic_exit = exit_code


class WrongPasswordError(ResticError):
    """No key in the repository opens with the password file."""


class NoRepositoryError(ResticError):
    """There is no restic repository at the URL (or it cannot be reached)."""


class NoSnapshotError(ResticError):
    """No snapshot matches what was asked (restic: "no snapshot found", "no matching ID found")."""


class LockedError(ResticError):
    """The repository is locked (by a live process, or a stale lock left by a killed one)."""


@dataclass(frozen=True)
class Repository:
    """A restic repository and everything needed to open it. `env` holds backend settings (sftp command,
    cache directory, …); secrets stay in files (password_file), never in argv."""

    url: str
    password_file: Path
    env: Mapping[str, str] = field(default_factory=dict)
    restic_binary: str = "restic"

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Completed:
    """A finished restic run: its argv (without secrets: there are none in it), exit code and output."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json_lines(self) -> Iterator[dict[str, Any]]:
        """The JSON objects restic printed on stdout (one per line; other lines are skipped)."""
        for raw in self.stdout.splitlines():
            line = raw.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    yield value

    def tail(self, lines: int = 3) -> str:
        text = (self.stderr or self.stdout).strip().splitlines()
        return " | ".join(_plain(line) for line in text[-lines:]) or "no output"


@dataclass(frozen=True)
class RunResult:
    """The outcome of one backup: an explicit state and the reason, never a silent success."""

    state: State
    reason: str
    snapshot: str | None
    bytes_added: int
    files_new: int
    files_changed: int
    duration_s: float
    started_at: datetime
    finished_at: datetime
    bytes_processed: int | None = None  # restic's total_bytes_processed: the size of the data backed up

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = iso(self.started_at)
        data["finished_at"] = iso(self.finished_at)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(
            state=data["state"],
            reason=str(data["reason"]),
            snapshot=data.get("snapshot"),
            bytes_added=int(data.get("bytes_added", 0)),
            files_new=int(data.get("files_new", 0)),
            files_changed=int(data.get("files_changed", 0)),
            duration_s=float(data.get("duration_s", 0.0)),
            started_at=parse_time(str(data["started_at"])),
            finished_at=parse_time(str(data["finished_at"])),
            # absent from records written before provsec kept it: unknown, not 0
            bytes_processed=None if data.get("bytes_processed") is None else int(data["bytes_processed"]),
        )


@dataclass(frozen=True)
class CheckResult:
    state: Literal["ok", "failed"]
    reason: str
    duration_s: float
    finished_at: datetime


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    paths: tuple[str, ...]
    tags: tuple[str, ...]
    hostname: str

    @property
    def short_id(self) -> str:
        return self.id[:8]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC, ISO 8601, millisecond precision with a Z: what status --json and state files carry."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """restic's times carry nanoseconds and an offset; Python takes microseconds. Always aware, in UTC."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not match:
        raise InputError(f"restic time {text!r}: not an ISO 8601 time with an offset")
    base, fraction, offset = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if offset == "Z" else offset
    return datetime.fromisoformat(f"{base}.{micro}{offset}").astimezone(UTC)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(line: str) -> str:
    """One line of restic's stderr, plain: 0.18 prints errors as JSON with --json."""
    line = _ANSI.sub("", line).strip()
    if line.startswith("{"):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return line
        if isinstance(value, dict):
            err = value.get("error")
            message = err.get("message") if isinstance(err, dict) else value.get("message")
            if isinstance(message, str):
                return message.replace("\n", " ")
    return line


# ---------------------------------------------------------------------------------------------- call point


def _environment(repo: Repository) -> dict[str, str]:
    """The process environment without any RESTIC_* setting (they could point elsewhere), plus repo.env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env.update(repo.env)
    return env


def _base(repo: Repository) -> list[str]:
    if not repo.password_file.is_file():
        raise InputError(f"repository {repo.url}: password file {repo.password_file} does not exist")
    if not os.access(repo.password_file, os.R_OK):
        raise InputError(f"repository {repo.url}: password file {repo.password_file} is not readable")
    return [repo.restic_binary, "--repo", repo.url, "--password-file", str(repo.password_file)]


def _call(
    repo: Repository,
    args: Sequence[str],
    *,
    ok_codes: Sequence[int] = (0,),
    stdin: IO[bytes] | None = None,
    timeout: float = SHORT_TIMEOUT,
    json_output: bool = True,
) -> Completed:
    """THE call point for running restic directly: `--json` (unless json_output is False: a command whose JSON
    lacks what its text says), explicit repository, password file and env.
    Returns the run when its exit code is in ok_codes; otherwise raises a classified ResticError."""
    argv = [*_base(repo), *(["--json"] if json_output else []), *args]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(repo),
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{repo.restic_binary}: not installed (run scripts/bootstrap)") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise ResticError(f"repository {repo.url}: restic {args[0]} gave no answer after {timeout:.0f} s") from exc
    done = Completed(tuple(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    if done.exit_code not in ok_codes:
        raise _classify(repo, args[0], done.exit_code, done.stderr or done.stdout)
    return done


def _classify(repo: Repository, command: str, code: int, text: str) -> ResticError:
    """Turn restic's exit code and last words into a typed error a sysadmin can act on.
    Exit codes 10/11/12 exist from restic 0.17; 0.14 says the same with exit 1 and words."""
    tail = " | ".join(_plain(line) for line in text.strip().splitlines()[-3:]) or "no output"
    if code == 12 or "wrong password or no key found" in text:
        return WrongPasswordError(
            f"repository {repo.url}: wrong password: no key opens it with {repo.password_file}", exit_code=code
        )
    if code == 10 or "Is there a repository at the following location?" in text or (
        "repository does not exist" in text
    ):
        return NoRepositoryError(f"repository {repo.url}: no restic repository there ({tail})", exit_code=code)
    if code == 11 or "repository is already locked" in text or "unable to create lock" in text:
        return LockedError(f"repository {repo.url}: locked ({tail})", exit_code=code)
    if "no snapshot found" in text or "no matching ID found" in text:
        return NoSnapshotError(f"repository {repo.url}: restic {command}: no such snapshot ({tail})", exit_code=code)
    if code < 0:
        return ResticError(f"repository {repo.url}: restic {command} killed by signal {-code}", exit_code=code)
    return ResticError(f"repository {repo.url}: restic {command} exited {code}: {tail}", exit_code=code)


_RESTICPY_LOCK = threading.Lock()


@contextmanager
def _resticpy(repo: Repository) -> Iterator[Any]:
    """resticpy with this repository's settings, under a lock; its globals and os.environ are restored."""
    _base(repo)  # the password file must be there
    with _RESTICPY_LOCK:
        saved = (resticpy.binary_path, resticpy.repository, resticpy.password_file, resticpy.use_cache)
        saved_env = dict(os.environ)
        environment = _environment(repo)  # computed before the clear below: it keeps PATH (sftp runs ssh)
        try:
            resticpy.binary_path = repo.restic_binary
            resticpy.repository = repo.url
            resticpy.password_file = str(repo.password_file)
            resticpy.use_cache = True
            os.environ.clear()
            os.environ.update(environment)
            yield resticpy
        except resticpy.errors.NoResticBinaryEror as exc:
            raise CommandError(f"{repo.restic_binary}: not installed (run scripts/bootstrap)") from exc
        except resticpy.errors.ResticFailedError as exc:
            text = str(exc)
            match = re.match(r"Restic failed with exit code (-?\d+): ", text)
            code = int(match.group(1)) if match else 1
            raise _classify(repo, "(resticpy)", code, text[match.end() if match else 0 :]) from exc
        finally:
            resticpy.binary_path, resticpy.repository, resticpy.password_file, resticpy.use_cache = saved
            os.environ.clear()
            os.environ.update(saved_env)


def _retry_locked(repo: Repository, operation: Callable[[], T]) -> T:
    """Run operation; if the repository is locked, remove stale locks only (`restic unlock`, never
    --remove-all: a live process's lock stays) and try once more."""
    try:
        return operation()
    except LockedError:
        unlock(repo)
        return operation()


# ----------------------------------------------------------------------------------------------- operations


def call(repo: Repository, args: Sequence[str], *, timeout: float = SHORT_TIMEOUT,
         retry_locked: bool = False) -> Completed:
    """A restic command the wrapper has no function for (init --from-repo, copy), through the one call point."""
    if retry_locked:
        return _retry_locked(repo, lambda: _call(repo, args, timeout=timeout))
    return _call(repo, args, timeout=timeout)


def version(repo: Repository) -> str:
    """The restic version string, e.g. "0.18.0" (restic 0.14 has no `version --json`: plain text)."""
    argv = [repo.restic_binary, "version"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise CommandError(f"{repo.restic_binary}: cannot run `restic version` ({exc})") from exc
    match = re.match(r"restic (\d+\.\d+\.\d+)", out)
    if not match:
        raise ResticError(f"{repo.restic_binary}: unexpected `restic version` output {out.strip()!r}")
    return match.group(1)


# From this version on, provsec's drill takes `restic restore --verify` as its reference and the backup writes no
# hash manifest (README.md, "What a file drill verifies against"). restic 0.14 accepts --verify too; below this
# version provsec keeps the manifest (hosts run 0.18; 0.14's verification was tried on two cases only).
VERIFY_RESTORE_SINCE = (0, 17, 0)
_VERSIONS: dict[tuple[str, int, int, int], str] = {}
_VERSIONS_LOCK = threading.Lock()


def version_cached(repo: Repository) -> str:
    """version(), asked once per restic binary per process (a `restic version` costs ~10 ms; a backup or a drill
    asks once). The key is the binary's resolved path, inode, size and mtime: a restic replaced under a running
    process is asked again."""
    found = shutil.which(repo.restic_binary) or repo.restic_binary
    try:
        real = os.path.realpath(found)
        st = Path(real).stat()
    except OSError:
        return version(repo)  # raises the clear "cannot run" error
    key = (real, st.st_ino, st.st_size, st.st_mtime_ns)
    with _VERSIONS_LOCK:
        if key not in _VERSIONS:
            _VERSIONS[key] = version(repo)
        return _VERSIONS[key]


def verifies_restores(repo: Repository) -> bool:
    """True when the repository's restic is one whose `restore --verify` provsec's drill relies on
    (≥ VERIFY_RESTORE_SINCE). Raises CommandError / ResticError when the version cannot be learnt."""
    text = version_cached(repo)
    return tuple(int(part) for part in text.split(".")) >= VERIFY_RESTORE_SINCE


def init(repo: Repository) -> None:
    _call(repo, ["init"])


def is_initialised(repo: Repository) -> bool:
    try:
        _call(repo, ["cat", "config"])
    except NoRepositoryError:
        return False
    return True


def snapshots(repo: Repository, tags: Sequence[str] = ()) -> list[Snapshot]:
    """Snapshots, oldest first (through resticpy). tags: every tag must be present."""
    with _resticpy(repo) as rp:
        raw = rp.snapshots(tags=list(tags) or None)
    if not isinstance(raw, list):
        raise ResticError(f"repository {repo.url}: restic snapshots: expected a JSON list")
    found = []
    for item in raw:
        try:
            found.append(
                Snapshot(
                    id=str(item["id"]),
                    time=parse_time(str(item["time"])),
                    paths=tuple(item.get("paths") or ()),
                    tags=tuple(item.get("tags") or ()),
                    hostname=str(item.get("hostname", "")),
                )
            )
        except (KeyError, TypeError, InputError) as exc:
            raise ResticError(f"repository {repo.url}: restic snapshots: malformed entry ({exc})") from exc
    return sorted(found, key=lambda s: s.time)


def unlock(repo: Repository) -> None:
    """Remove stale locks only (those of dead processes on this host, or older than 30 minutes)."""
    _call(repo, ["unlock"])


def forget_ids(repo: Repository, ids: Sequence[str]) -> None:
    _retry_locked(repo, lambda: _call(repo, ["forget", *ids]))


def forget_policy(
    repo: Repository, *, tags: Sequence[str], group_by: Sequence[str], keep: Mapping[str, int]
) -> tuple[int, int]:
    """Apply a retention policy to the snapshots carrying all tags; return (forgotten, kept).
    keep: {"daily": 7, "weekly": 4, …}. Pruning is separate (`prune`), once per run."""
    args = ["forget", "--tag", ",".join(tags), "--group-by", ",".join(group_by)]
    for unit, count in keep.items():
        args += [f"--keep-{unit}", str(count)]
    done = _retry_locked(repo, lambda: _call(repo, args))
    removed = kept = 0
    for raw in done.stdout.splitlines():
        line = raw.strip()
        if line.startswith("["):
            try:
                groups = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ResticError(f"repository {repo.url}: restic forget: malformed JSON ({exc})") from exc
            removed += sum(len(g.get("remove") or []) for g in groups if isinstance(g, dict))
            kept += sum(len(g.get("keep") or []) for g in groups if isinstance(g, dict))
    return removed, kept


def prune(repo: Repository) -> None:
    _retry_locked(repo, lambda: _call(repo, ["prune"], timeout=BACKUP_TIMEOUT))


def check(repo: Repository, *, read_data_subset: str | None = None) -> CheckResult:
    """`restic check`: ok only when restic says so; a corrupted repository, a wrong password, an absent
    repository are `failed` with the reason (resticpy returns None for all of these)."""
    args = ["check"] + (["--read-data-subset", read_data_subset] if read_data_subset else [])
    start = time.monotonic()
    try:
        _retry_locked(repo, lambda: _call(repo, args, timeout=BACKUP_TIMEOUT))
    except ResticError as exc:
        return CheckResult("failed", str(exc), time.monotonic() - start, utcnow())
    return CheckResult("ok", "repository checked", time.monotonic() - start, utcnow())


def restore(repo: Repository, snapshot: str, target: Path, include: Sequence[str] = ()) -> None:
    """Restore a snapshot (by id) under target; restic re-creates absolute paths below it."""
    args = ["restore", snapshot, "--target", str(target)]
    for item in include:
        args += ["--include", item]
    _retry_locked(repo, lambda: _call(repo, args, timeout=BACKUP_TIMEOUT))


# "finished verifying 1234 files in /x (took 1.2s)": restic's text output after `restore --verify` (0.14 and
# 0.18); with --json 0.18 prints no count at all, so the verifying restore runs without --json.
_VERIFIED = re.compile(r"^finished verifying (\d+) files in ", re.MULTILINE)


def restore_verify(repo: Repository, snapshot: str, target: Path) -> int:
    """Restore a snapshot (by id) under target with `--verify`: once the files are written restic reads every
    restored regular file back and checks it chunk by chunk against the snapshot's content blob ids (the SHA-256
    of each chunk as restic read it at backup time, stored in MAC-authenticated packs). Returns the number of
    files restic says it verified. Raises ResticError when restic fails (a damaged pack, a file that differs or
    cannot be read back: restic names it and exits non-zero) or exits 0 without its "finished verifying" line
    (then nothing says the files were verified)."""
    args = ["restore", snapshot, "--target", str(target), "--verify"]
    done = _retry_locked(repo, lambda: _call(repo, args, timeout=BACKUP_TIMEOUT, json_output=False))
    match = _VERIFIED.search(done.stdout)
    if not match:
        raise ResticError(f"repository {repo.url}: restic restore --verify of {snapshot[:8]} exited 0 but did not "
                          f"say it verified the files ({done.tail()})")
    return int(match.group(1))


# "restoring <Snapshot 1a2b3c4d of [/srv] at … by root@db1> to /x" (0.14), "restoring snapshot 1a2b3c4d of …" (0.18)
_RESTORING = re.compile(r"^restoring <?[Ss]napshot ([0-9a-f]{8,64}) of ", re.MULTILINE)


def restore_latest(repo: Repository, tags: Sequence[str], target: Path, include: Sequence[str] = ()) -> str | None:
    """Restore the newest snapshot carrying every tag under target, in ONE restic call (`restore latest --tag`):
    listing the snapshots first would open the repository twice. Returns the short id restic names in its
    text output (its --json restore output names no snapshot), None if that line is not found. Raises
    NoSnapshotError when no snapshot carries the tags."""
    args = ["restore", "latest", "--tag", ",".join(tags), "--target", str(target)]
    for item in include:
        args += ["--include", item]
    done = _retry_locked(repo, lambda: _call(repo, args, timeout=BACKUP_TIMEOUT, json_output=False))
    match = _RESTORING.search(done.stdout)
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------------- backup


def _summary(repo: Repository, done: Completed) -> dict[str, Any]:
    for obj in done.json_lines():
        if obj.get("message_type") == "summary":
            return obj
    return {}


def _result(
    state: State, reason: str, summary: Mapping[str, Any], started: datetime, t0: float, *, snapshot: str | None
) -> RunResult:
    return RunResult(
        state=state,
        reason=reason,
        snapshot=snapshot,
        bytes_added=int(summary.get("data_added", 0)),
        files_new=int(summary.get("files_new", 0)),
        files_changed=int(summary.get("files_changed", 0)),
        duration_s=round(time.monotonic() - t0, 3),
        started_at=started,
        finished_at=utcnow(),
        bytes_processed=int(summary["total_bytes_processed"]) if "total_bytes_processed" in summary else None,
    )


def _saved(repo: Repository, short_or_full: str, tags: Sequence[str]) -> Snapshot:
    """The snapshot a backup just saved (restic 0.14 prints only the short id; provsec records the full one)."""
    for snap in reversed(snapshots(repo, tags)):
        if snap.id.startswith(short_or_full):
            return snap
    raise ResticError(f"repository {repo.url}: snapshot {short_or_full} reported by restic is not listed")


SKIPPED = " does not exist, skipping"


def backup_paths(
    repo: Repository,
    paths: Sequence[Path],
    *,
    tags: Sequence[str],
    exclude: Sequence[str] = (),
    extra_paths: Sequence[Path] = (),
    timeout: float = BACKUP_TIMEOUT,
) -> RunResult:
    """Back up paths (plus extra_paths, e.g. the manifest). States:
    ok — restic exited 0, every path is in the snapshot;
    partial — a snapshot was saved but some source path is missing or some file could not be read (exit 3);
    failed — no snapshot (every path missing, restic error, wrong password, lock held by a live process)."""
    started, t0 = utcnow(), time.monotonic()
    wanted = [str(p) for p in paths]
    missing = [p for p in wanted if not os.path.lexists(p)]
    present = [p for p in wanted if p not in missing]
    if not present:
        return _result("failed", f"no source path exists: {', '.join(missing)}", {}, started, t0, snapshot=None)
    args = ["backup", *present, *(str(p) for p in extra_paths)]
    for tag in tags:
        args += ["--tag", tag]
    for pattern in exclude:
        args += ["--exclude", pattern]
    try:
        done = _retry_locked(repo, lambda: _call(repo, args, ok_codes=(0, 3), timeout=timeout))
    except ResticError as exc:
        return _result("failed", str(exc), {}, started, t0, snapshot=None)
    summary = _summary(repo, done)
    short = summary.get("snapshot_id")
    if not isinstance(short, str) or not short:
        return _result("failed", f"repository {repo.url}: restic backup printed no summary", {}, started, t0,
                       snapshot=None)
    # restic (0.14 and 0.18) skips a source path that vanished after the check above and exits 0. restic ≥ 0.17
    # prints the full snapshot id and "<path> does not exist, skipping" for each: no extra call (each costs a
    # key derivation). restic 0.14 prints a short id: the snapshot's own paths are listed and compared.
    asked = [*present, *map(str, extra_paths)]
    if len(short) == 64:
        snap_id = short
        skipped = {line.removesuffix(SKIPPED).strip() for line in done.stderr.splitlines() if line.endswith(SKIPPED)}
        absent = missing + [p for p in asked if p in skipped]
    else:
        saved = _saved(repo, short, tags)
        snap_id = saved.id
        absent = missing + [p for p in asked if p not in saved.paths]
    problems = []
    if absent:
        problems.append(f"source path missing, not in snapshot: {', '.join(absent)}")
    if done.exit_code == 3:
        unreadable = [_plain(line) for line in done.stderr.splitlines() if "message_type\":\"exit_error" not in line]
        detail = "; ".join(line for line in unreadable if line)[:500] or "see restic's log"
        problems.append(f"some files could not be read (restic exit 3): {detail}")
    if problems:
        return _result("partial", "; ".join(problems), summary, started, t0, snapshot=snap_id)
    return _result("ok", "snapshot saved", summary, started, t0, snapshot=snap_id)


def backup_stdin(
    repo: Repository,
    producer: Sequence[str],
    *,
    filename: str,
    tags: Sequence[str],
    producer_env: Mapping[str, str] | None = None,
    timeout: float = BACKUP_TIMEOUT,
) -> RunResult:
    """Stream a producer's stdout (pg_dump, mariadb-dump) into `restic backup --stdin`. provsec runs the
    producer itself and judges its exit status: restic cannot know a dump stopped half-way and saves the
    truncated stream with exit 0. A failed producer → state failed, and the snapshot restic saved is
    forgotten by id at once (its data goes with the next prune), so it is never counted as good."""
    started, t0 = utcnow(), time.monotonic()

    def attempt() -> tuple[Completed, int, str]:
        with _temp_log() as log:
            try:
                proc = subprocess.Popen(
                    list(producer),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=dict(producer_env) if producer_env is not None else None,
                )
            except OSError as exc:
                raise InputError(f"dump command {producer[0]}: cannot start ({exc.strerror})") from exc
            if proc.stdout is None:  # cannot happen with stdout=PIPE; keeps mypy exact
                raise RuntimeError("producer has no stdout pipe")
            try:
                args = ["backup", "--stdin", "--stdin-filename", filename]
                for tag in tags:
                    args += ["--tag", tag]
                # exit 3: restic read nothing (a producer that failed before writing) yet saved a snapshot
                done = _call(repo, args, stdin=proc.stdout, timeout=timeout, ok_codes=(0, 3))
            except BaseException:
                proc.kill()
                raise
            finally:
                proc.stdout.close()
                code = proc.wait()
            log.seek(0)
            said = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-3:])
            return done, code, said

    try:
        done, code, said = _retry_locked(repo, attempt)
    except InputError as exc:
        return _result("failed", str(exc), {}, started, t0, snapshot=None)
    except ResticError as exc:
        return _result("failed", str(exc), {}, started, t0, snapshot=None)
    summary = _summary(repo, done)
    short = summary.get("snapshot_id")
    if isinstance(short, str) and len(short) == 64:  # restic ≥ 0.17 prints the full id: no extra call
        snap_id: str | None = short
    else:
        snap_id = _saved(repo, short, tags).id if isinstance(short, str) and short else None
    if code != 0 or done.exit_code != 0:
        why = (f"dump command {producer[0]} exited {code}" + (f": {said}" if said else "") if code != 0
               else f"restic read no complete dump from {producer[0]} (restic exit {done.exit_code}: {done.tail()})")
        if snap_id:
            try:
                forget_ids(repo, [snap_id])
                why += f"; its truncated snapshot {snap_id[:8]} was forgotten"
            except ResticError as exc:
                why += f"; its truncated snapshot {snap_id[:8]} could NOT be forgotten ({exc}): forget it by hand"
        return _result("failed", why, summary, started, t0, snapshot=None)
    if not snap_id:
        return _result("failed", f"repository {repo.url}: restic backup printed no summary", {}, started, t0,
                       snapshot=None)
    return _result("ok", "snapshot saved", summary, started, t0, snapshot=snap_id)


@contextmanager
def _temp_log() -> Iterator[IO[bytes]]:
    import tempfile

    with tempfile.TemporaryFile(prefix="provsec-dump-") as handle:
        yield handle
