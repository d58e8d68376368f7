"""Backup jobs and their configuration, as the inventory gives them (YAML), validated with errors that name
the file, the job and the key.

```yaml
repository: sftp:provsec-db1@bak1:/srv/restic/db1   # or a local path
password_file: /etc/provsec/backup/password          # 0600, root; written by playbooks/backup.yml
restic_binary: /usr/local/lib/provsec/restic          # optional; default `restic` on PATH
env: {RESTIC_CACHE_DIR: /var/cache/provsec/restic-cache}  # optional backend settings, no secrets
state_dir: /var/lib/provsec/backup
textfile_dir: /var/lib/prometheus/node-exporter
group_by: [host, tags]          # explicit: retention groups snapshots this way
stale_after: 108000             # optional, seconds (default 30 h); a job's own stale_after overrides it
retention:                      # per data class
  documents: {keep_daily: 7, keep_weekly: 4, keep_monthly: 12}
  databases: {keep_daily: 14, keep_weekly: 8, keep_monthly: 24}
jobs:
  - {name: etc, kind: files, class: documents, paths: [/etc], exclude: ["*.swp"]}
  - {name: archive, kind: files, class: documents, paths: [/srv/archive], stale_after: 691200}  # weekly: 8 days
  - {name: ioffice-db, kind: postgresql, class: databases, database: ioffice}
  - {name: portal-db, kind: mariadb, class: databases, database: portal,
     client_command: [mariadb, --socket=/run/mysqld/mysqld.sock]}
  - {name: postgresql-roles, kind: postgresql_roles, class: databases}
```
Every snapshot carries the tags `provsec`, `job=<name>` and `class=<class>`.

`stale_after` is how old a job's last run in state ok may get before the alert ProvsecBackupStale fires
(exporters/rules/backup.yml, through the metric provsec_backup_stale_after_seconds): the top-level value applies to
every job, a job's own value overrides it. Raise it for a job that runs less often than daily.

A database job's dump is plain SQL without CREATE DATABASE / `\\connect` / USE (see `default_dump_command`), so a
drill or a restore can load it into a database of another name. `client_command` (optional) is the client that
loads and counts (`psql`, `mariadb`), with whatever user or options it needs; provsec appends its own arguments.

A `postgresql_roles` job saves what pg_dump leaves out and a database's dump needs on a rebuilt server: the
cluster's roles, their memberships and settings (`pg_dumpall --globals-only`, as `postgresql-globals.sql`). The
backup role adds one to every host with a PostgreSQL job; `restore <it> --to-server` creates the roles a server
lacks before the databases are restored."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from provsec.backup.restic import Repository
from provsec.errors import InputError
from provsec.fileio import read_yaml

Kind = Literal["files", "postgresql", "mariadb", "postgresql_roles"]
KINDS: tuple[Kind, ...] = ("files", "postgresql", "mariadb", "postgresql_roles")
GLOBALS_FILENAME = "postgresql-globals.sql"
KEEP_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
GROUP_BY = ("host", "paths", "tags")
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
TOP_KEYS = {"repository", "password_file", "restic_binary", "env", "state_dir", "textfile_dir", "group_by",
            "retention", "jobs", "stale_after"}
JOB_KEYS = {"name", "kind", "class", "paths", "exclude", "database", "dump_command", "client_command",
            "timeout", "stale_after"}
DEFAULT_TIMEOUT = 6 * 3600
DEFAULT_STALE_AFTER = 30 * 3600  # a daily job, plus 6 h for the timer's random delay, a long run, one retry


@dataclass(frozen=True)
class Job:
    name: str
    kind: Kind
    data_class: str
    paths: tuple[Path, ...] = ()
    exclude: tuple[str, ...] = ()
    database: str | None = None
    dump_command: tuple[str, ...] = ()
    client_command: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    stale_after: float = DEFAULT_STALE_AFTER  # resolved: the job's own stale_after, else the configuration's

    @property
    def tags(self) -> tuple[str, ...]:
        return ("provsec", f"job={self.name}", f"class={self.data_class}")

    @property
    def stdin_filename(self) -> str:
        """The dump's file name in the snapshot (a restore writes it at `<target>/<this name>`)."""
        return GLOBALS_FILENAME if self.kind == "postgresql_roles" else f"{self.database}.sql"


@dataclass(frozen=True)
class BackupConfig:
    source: str
    repository: Repository
    state_dir: Path
    textfile_dir: Path | None
    group_by: tuple[str, ...]
    retention: Mapping[str, Mapping[str, int]]
    jobs: tuple[Job, ...] = field(default_factory=tuple)

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.jobs) or "none"
        raise InputError(f"{self.source}: no job named {name!r} (jobs: {known})")

    def select(self, names: list[str]) -> tuple[Job, ...]:
        return tuple(self.job(n) for n in names) if names else self.jobs


def default_dump_command(kind: Kind, database: str | None) -> tuple[str, ...]:
    """The dump each database kind streams into restic by default: consistent (one transaction: pg_dump's
    repeatable-read snapshot, mariadb-dump --single-transaction), plain SQL, and loadable under another name
    (pg_dump without --create writes no CREATE DATABASE or \\connect; mariadb-dump without --databases writes
    no CREATE DATABASE or USE). Owners and privileges stay in the PostgreSQL dump; the roles they name are the
    postgresql_roles job's (`pg_dumpall --globals-only`: roles with their password hashes, memberships, settings,
    tablespaces)."""
    if kind == "postgresql_roles":
        return ("runuser", "-u", "postgres", "--", "pg_dumpall", "--globals-only")
    if kind == "postgresql" and database is not None:
        return ("runuser", "-u", "postgres", "--", "pg_dump", "--format=plain", "--dbname", database)
    if kind == "mariadb" and database is not None:
        return ("mariadb-dump", "--single-transaction", "--routines", "--events", "--triggers", database)
    raise ValueError(f"no default dump for kind {kind} and database {database!r}")


def default_client_command(kind: Kind) -> tuple[str, ...]:
    """The client that loads a dump into a scratch database and counts rows: psql as postgres (peer
    authentication), mariadb as root over the unix socket (unix_socket authentication)."""
    if kind in ("postgresql", "postgresql_roles"):
        return ("runuser", "-u", "postgres", "--", "psql")
    return ("mariadb",)


def top_mapping(data: Any, source: str, known: set[str]) -> dict[str, Any]:
    """The top of a configuration: a mapping with known keys only."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top")
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{source}: {unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    return data


def restic_env(data: Mapping[str, Any], source: str) -> dict[str, str]:
    """`env`: backend settings for restic, strings only and never a password (those stay in files)."""
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise InputError(f"{source}: env: expected a mapping of strings")
    if any("PASSWORD" in k.upper() and k != "RESTIC_PASSWORD_FILE" for k in env):
        raise InputError(f"{source}: env: no passwords in the environment; use password_file")
    return dict(env)


def load_config(path: str | Path) -> BackupConfig:
    return parse_config(read_yaml(path, "backup configuration"), str(path))


def required_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def required_str_list(value: Any, where: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise InputError(f"{where}: expected a {'' if allow_empty else 'non-empty '}list of strings")
    return tuple(required_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def parse_config(data: Any, source: str) -> BackupConfig:
    data = top_mapping(data, source, TOP_KEYS)
    for key in ("repository", "password_file", "state_dir", "group_by", "retention", "jobs"):
        if key not in data:
            raise InputError(f"{source}: {key}: missing")
    env = restic_env(data, source)
    repository = Repository(
        url=required_str(data["repository"], f"{source}: repository"),
        password_file=Path(required_str(data["password_file"], f"{source}: password_file")),
        env=env,
        restic_binary=required_str(data.get("restic_binary", "restic"), f"{source}: restic_binary"),
    )
    group_by = required_str_list(data["group_by"], f"{source}: group_by")
    bad = [g for g in group_by if g not in GROUP_BY]
    if bad:
        raise InputError(f"{source}: group_by: {bad[0]!r} is not one of {', '.join(GROUP_BY)}")
    retention = _retention(data["retention"], source)
    stale_after = _stale_after(data.get("stale_after", DEFAULT_STALE_AFTER), f"{source}: stale_after")
    if not isinstance(data["jobs"], list) or not data["jobs"]:
        raise InputError(f"{source}: jobs: expected a non-empty list")
    jobs: list[Job] = []
    for index, raw in enumerate(data["jobs"]):
        job = _job(raw, f"{source}: jobs[{index}]", retention)
        if any(j.name == job.name for j in jobs):
            raise InputError(f"{source}: job {job.name}: name: used twice")
        own = _stale_after(raw.get("stale_after", stale_after), f"{source}: job {job.name}: stale_after")
        jobs.append(replace(job, stale_after=own))
    textfile = data.get("textfile_dir")
    return BackupConfig(
        source=source,
        repository=repository,
        state_dir=Path(required_str(data["state_dir"], f"{source}: state_dir")),
        textfile_dir=Path(required_str(textfile, f"{source}: textfile_dir")) if textfile is not None else None,
        group_by=group_by,
        retention=retention,
        jobs=tuple(jobs),
    )


def _stale_after(value: Any, where: str) -> float:
    """A stale threshold: seconds, a finite number > 0 (NaN or infinity would silence ProvsecBackupStale)."""
    if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
            or value <= 0):
        raise InputError(f"{where}: expected seconds > 0, got {value!r}")
    return float(value)


def _retention(value: Any, source: str) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict) or not value:
        raise InputError(f"{source}: retention: expected a mapping of data class → keep_* counts")
    result: dict[str, dict[str, int]] = {}
    for cls, policy in value.items():
        where = f"{source}: retention: {cls}"
        if not isinstance(policy, dict) or not policy:
            raise InputError(f"{where}: expected a mapping of {', '.join(KEEP_KEYS)}")
        keep: dict[str, int] = {}
        for key, count in policy.items():
            if key not in KEEP_KEYS:
                raise InputError(f"{where}: {key}: unknown key (known: {', '.join(KEEP_KEYS)})")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise InputError(f"{where}: {key}: expected a whole number ≥ 1, got {count!r}")
            keep[key.removeprefix("keep_")] = count
        result[str(cls)] = keep
    return result


def _job(raw: Any, where: str, retention: Mapping[str, Mapping[str, int]]) -> Job:  # noqa: PLR0912 one check per key
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(f"{where}: name: expected lower-case letters, digits, . _ - (got {name!r})")
    where = f"{where.split(': jobs[', maxsplit=1)[0]}: job {name}"
    unknown = sorted(set(raw) - JOB_KEYS)
    if unknown:
        raise InputError(f"{where}: {unknown[0]}: unknown key (known: {', '.join(sorted(JOB_KEYS))})")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise InputError(f"{where}: kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    data_class = required_str(raw.get("class"), f"{where}: class")
    if data_class not in retention:
        raise InputError(f"{where}: class: {data_class!r} has no retention policy (retention: {', '.join(retention)})")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise InputError(f"{where}: timeout: expected seconds > 0, got {timeout!r}")
    if kind == "files":
        for key in ("database", "dump_command", "client_command"):
            if key in raw:
                raise InputError(f"{where}: {key}: not for kind files")
        paths = required_str_list(raw.get("paths"), f"{where}: paths")
        relative = [p for p in paths if not p.startswith("/")]
        if relative:
            raise InputError(f"{where}: paths: {relative[0]!r} is not absolute")
        exclude = required_str_list(raw.get("exclude", []), f"{where}: exclude", allow_empty=True)
        return Job(name, "files", data_class, tuple(Path(p) for p in paths), exclude, timeout=float(timeout))
    for key in ("paths", "exclude"):
        if key in raw:
            raise InputError(f"{where}: {key}: not for kind {kind} (a database job streams a dump)")
    database: str | None = None
    if kind == "postgresql_roles":
        if "database" in raw:
            raise InputError(f"{where}: database: not for kind postgresql_roles (the roles belong to the whole "
                             "server)")
    else:
        database = required_str(raw.get("database"), f"{where}: database")
        if not NAME.fullmatch(database.lower()):
            raise InputError(f"{where}: database: {database!r} is not a plain database name")
    command = (required_str_list(raw["dump_command"], f"{where}: dump_command") if "dump_command" in raw
               else default_dump_command(kind, database))
    client = (required_str_list(raw["client_command"], f"{where}: client_command") if "client_command" in raw
              else default_client_command(kind))
    return Job(name, kind, data_class, database=database, dump_command=command, client_command=client,
               timeout=float(timeout))
