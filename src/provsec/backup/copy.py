"""The second-site copy, PULLED by the backup site: `provsec backup copy --config /etc/provsec/backup-copy.yml`.

A client holds the password of its own repository and an sftp account that can write, and therefore delete,
in it: ransomware on a client can `forget --prune` its own backups. So the copy to the second site is made by
the backup site (bak1), which reads each client's repository locally and `restic copy`s its snapshots into a
second repository whose password and location the client never sees. Only new snapshots are copied; snapshots
forgotten on the client stay on the second site until the second site's own retention removes them.

```yaml
restic_binary: /usr/local/lib/provsec/restic
env: {RESTIC_CACHE_DIR: /var/cache/provsec/restic-cache}
state_dir: /var/lib/provsec/backup-copy
textfile_dir: /var/lib/prometheus/node-exporter
copies:
  - name: db1
    from: {repository: /srv/provsec-backup/bk-db1/repo, password_file: /etc/provsec/backup-copy/db1.from}
    to: {repository: /srv/provsec-second-site/db1, password_file: /etc/provsec/backup-copy/db1.to}
```
Metrics (textfile provsec_backup_copy.prom): provsec_backup_copy_ok, provsec_backup_copy_last_success_timestamp_seconds,
provsec_backup_copy_snapshots, per `copy` (exporters/METRICS.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec.backup import restic
from provsec.backup.jobs import NAME, required_str, restic_env, top_mapping
from provsec.backup.metrics import write_collector
from provsec.backup.restic import Repository, ResticError, iso, utcnow
from provsec.backup.state import read_json, timestamp
from provsec.errors import InputError
from provsec.fileio import read_yaml, write_json_atomic

TEXTFILE_NAME = "provsec_backup_copy.prom"
TOP_KEYS = {"restic_binary", "env", "state_dir", "textfile_dir", "copies"}


@dataclass(frozen=True)
class Copy:
    name: str
    source: Repository
    target: Repository


@dataclass(frozen=True)
class CopyConfig:
    source: str
    state_dir: Path
    textfile_dir: Path | None
    copies: tuple[Copy, ...]


def _repo(raw: Any, where: str, binary: str, env: dict[str, str]) -> Repository:
    if not isinstance(raw, dict) or set(raw) != {"repository", "password_file"}:
        raise InputError(f"{where}: expected a mapping with repository and password_file")
    return Repository(url=required_str(raw["repository"], f"{where}: repository"),
                      password_file=Path(required_str(raw["password_file"], f"{where}: password_file")),
                      env=dict(env), restic_binary=binary)


def load_config(path: str | Path) -> CopyConfig:
    source = str(path)
    data = top_mapping(read_yaml(path, "copy configuration"), source, TOP_KEYS)
    env = restic_env(data, source)
    binary = required_str(data.get("restic_binary", "restic"), f"{source}: restic_binary")
    state_dir = required_str(data.get("state_dir"), f"{source}: state_dir")
    raw_copies = data.get("copies")
    if not isinstance(raw_copies, list) or not raw_copies:
        raise InputError(f"{source}: copies: expected a non-empty list")
    copies: list[Copy] = []
    for i, raw in enumerate(raw_copies):
        where = f"{source}: copies[{i}]"
        if not isinstance(raw, dict) or set(raw) != {"name", "from", "to"}:
            raise InputError(f"{where}: expected a mapping with name, from and to")
        if not isinstance(raw["name"], str) or not NAME.fullmatch(raw["name"]):
            raise InputError(f"{where}: name: expected lower-case letters, digits, . _ - (got {raw['name']!r})")
        if any(c.name == raw["name"] for c in copies):
            raise InputError(f"{where}: name {raw['name']!r} used twice")
        copies.append(Copy(raw["name"], _repo(raw["from"], f"{where}: from", binary, env),
                           _repo(raw["to"], f"{where}: to", binary, env)))
    textfile = data.get("textfile_dir")
    return CopyConfig(source, Path(state_dir),
                      Path(required_str(textfile, f"{source}: textfile_dir")) if textfile is not None else None,
                      tuple(copies))


def copy_one(item: Copy) -> dict[str, Any]:
    """Copy the new snapshots of one repository; the target is created (same chunker parameters, so data
    deduplicate across the two) the first time. Returns the record kept in the state directory."""
    started, t0 = utcnow(), time.monotonic()
    src = ["--from-repo", item.source.url, "--from-password-file", str(item.source.password_file)]
    try:
        source_count = len(restic.snapshots(item.source))  # names the source if its password or path is wrong
        if not restic.is_initialised(item.target):
            restic.call(item.target, ["init", *src, "--copy-chunker-params"])
        restic.call(item.target, ["copy", *src], timeout=restic.BACKUP_TIMEOUT, retry_locked=True)
        count = len(restic.snapshots(item.target))
        state, reason = "ok", f"{count} snapshot(s) at the second site, {source_count} at the backup site"
    except (ResticError, InputError) as exc:
        count, state, reason = None, "failed", str(exc)
    return {"copy": item.name, "state": state, "reason": reason, "snapshots": count, "started_at": iso(started),
            "finished_at": iso(utcnow()), "duration_s": round(time.monotonic() - t0, 3)}


def run(config: CopyConfig) -> list[dict[str, Any]]:
    records = []
    for item in config.copies:
        record = copy_one(item)
        previous = read_json(config.state_dir / f"{item.name}.json") or {}
        record["last_success_at"] = record["finished_at"] if record["state"] == "ok" else previous.get(
            "last_success_at")
        write_json_atomic(config.state_dir / f"{item.name}.json", record)
        records.append(record)
    write_textfile(config)
    return records


class CopyCollector(Collector):
    def __init__(self, config: CopyConfig) -> None:
        self.config = config

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("provsec_backup_copy_ok", "1 if the last second-site copy of the repository "
                               "succeeded (0: failed or never run).", labels=["copy"])
        last = GaugeMetricFamily("provsec_backup_copy_last_success_timestamp_seconds", "When the last successful "
                                 "second-site copy finished (Unix seconds; 0: never).", labels=["copy"])
        count = GaugeMetricFamily("provsec_backup_copy_snapshots", "Snapshots in the second-site repository after "
                                  "the last successful copy.", labels=["copy"])
        for item in self.config.copies:
            record = read_json(self.config.state_dir / f"{item.name}.json") or {}
            ok.add_metric([item.name], 1.0 if record.get("state") == "ok" else 0.0)
            last.add_metric([item.name], timestamp(record.get("last_success_at")) or 0.0)
            if record.get("snapshots") is not None:
                count.add_metric([item.name], float(record["snapshots"]))
        yield from (ok, last, count)


def write_textfile(config: CopyConfig) -> Path | None:
    return write_collector(config.textfile_dir, TEXTFILE_NAME, CopyCollector(config))
