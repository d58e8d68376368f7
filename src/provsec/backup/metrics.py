"""node_exporter textfile metrics for backups (documented in exporters/METRICS.md, section Backup).

The collector reads the state records (state.py), so the file always says what the records say; every
`provsec backup run|forget|check|drill` rewrites it. Timestamps are Unix seconds computed from UTC-aware times:
no timezone, the exporter's or the host's, can shift them. The file is written to a temp file in the same
directory and renamed (prometheus_client.write_to_textfile), so node_exporter never reads half a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec.backup.jobs import BackupConfig
from provsec.backup.restic import STATES
from provsec.backup.state import StateStore, status, timestamp

TEXTFILE_NAME = "provsec_backup.prom"


class BackupCollector(Collector):
    """Last run, last success, last check and last drill per job, from the backup state directory; each job's
    stale threshold from the configuration."""

    def __init__(self, config: BackupConfig) -> None:
        self.config = config

    def collect(self) -> Iterator[Metric]:
        store = StateStore(self.config.state_dir)
        state = GaugeMetricFamily("provsec_backup_job_state", "Last run state of the job: 1 for the current state "
                            "(ok, partial, failed; never run counts as failed).", labels=["backup_job", "state"])
        last_run = GaugeMetricFamily("provsec_backup_last_run_timestamp_seconds",
                               "When the last run of the job finished (Unix seconds; 0: never run).",
                               labels=["backup_job"])
        last_ok = GaugeMetricFamily("provsec_backup_last_success_timestamp_seconds",
                              "When the last run in state ok finished (Unix seconds; 0: never).", labels=["backup_job"])
        duration = GaugeMetricFamily("provsec_backup_last_run_duration_seconds", "Duration of the last run.",
                               labels=["backup_job"])
        added = GaugeMetricFamily("provsec_backup_last_run_added_bytes",
                            "Bytes the last run added to the repository (before compression).", labels=["backup_job"])
        count = GaugeMetricFamily("provsec_backup_snapshots", "Snapshots of the job in the repository as last known: "
                            "counted by the last forget (retention), plus one per snapshot saved since.",
                            labels=["backup_job"])
        stale_after = GaugeMetricFamily("provsec_backup_stale_after_seconds", "Age of the last run in state ok past "
                                        "which the job is stale (its stale_after; alert ProvsecBackupStale).",
                                        labels=["backup_job"])
        for configured in self.config.jobs:
            stale_after.add_metric([configured.name], configured.stale_after)
        for row in status(self.config):
            job = row["job"]
            for name in STATES:
                state.add_metric([job, name], 1.0 if row["state"] == name else 0.0)
            last_run.add_metric([job], timestamp(row["finished_at"]) or 0.0)
            last_ok.add_metric([job], timestamp(row["last_success_at"]) or 0.0)
            if row["duration_s"] is not None:
                duration.add_metric([job], float(row["duration_s"]))
                added.add_metric([job], float(row["bytes_added"]))
            count.add_metric([job], float(row["snapshots"]))
        yield from (state, last_run, last_ok, stale_after, duration, added, count)

        check = store.last_check()
        if check is not None:
            yield GaugeMetricFamily("provsec_backup_check_ok", "1 if the last repository check passed, else 0.",
                              value=1.0 if check["state"] == "ok" else 0.0)
            yield GaugeMetricFamily("provsec_backup_check_timestamp_seconds", "When the last repository check finished "
                              "(Unix seconds).", value=timestamp(check["finished_at"]) or 0.0)

        drill_ok = GaugeMetricFamily("provsec_backup_drill_ok", "1 if the last restore drill of the job passed, "
                                     "else 0.", labels=["backup_job"])
        drill_time = GaugeMetricFamily("provsec_backup_drill_timestamp_seconds", "When the last restore drill of the "
                                 "job finished (Unix seconds).", labels=["backup_job"])
        rto = GaugeMetricFamily("provsec_backup_drill_rto_seconds", "Measured RTO: seconds the last drill took to "
                          "restore (and verify) the snapshot.", labels=["backup_job"])
        rpo = GaugeMetricFamily("provsec_backup_drill_rpo_seconds", "Measured RPO at the last drill: age of the "
                          "restored snapshot when the drill started.", labels=["backup_job"])
        for job in self.config.jobs:
            drill = store.last_drill(job.name)
            if drill is None:
                continue
            drill_ok.add_metric([job.name], 1.0 if drill["state"] == "ok" else 0.0)
            drill_time.add_metric([job.name], timestamp(drill["finished_at"]) or 0.0)
            if drill.get("rto_s") is not None:
                rto.add_metric([job.name], float(drill["rto_s"]))
            if drill.get("rpo_s") is not None:
                rpo.add_metric([job.name], float(drill["rpo_s"]))
        yield from (drill_ok, drill_time, rto, rpo)

        forget_ok = GaugeMetricFamily("provsec_backup_forget_ok", "1 if the last retention run (forget per policy, "
                                      "and the prune it needed) of the job succeeded, else 0.", labels=["backup_job"])
        forget_time = GaugeMetricFamily("provsec_backup_forget_timestamp_seconds", "When the last retention run of "
                                        "the job finished (Unix seconds).", labels=["backup_job"])
        for job in self.config.jobs:
            forget = store.last_forget(job.name)
            if forget is None:
                continue
            forget_ok.add_metric([job.name], 1.0 if forget["state"] == "ok" else 0.0)
            forget_time.add_metric([job.name], timestamp(forget["finished_at"]) or 0.0)
        yield from (forget_ok, forget_time)


def write_collector(textfile_dir: Path | None, name: str, collector: Collector) -> Path | None:
    """Rewrite <textfile_dir>/<name> from collector, atomically (temp file + rename); None without a dir."""
    if textfile_dir is None:
        return None
    registry = CollectorRegistry()
    registry.register(collector)
    textfile_dir.mkdir(parents=True, exist_ok=True)
    path = textfile_dir / name
    write_to_textfile(str(path), registry)
    return path


def write_textfile(config: BackupConfig) -> Path | None:
    """Rewrite <textfile_dir>/provsec_backup.prom atomically; None when no textfile_dir is configured."""
    return write_collector(config.textfile_dir, TEXTFILE_NAME, BackupCollector(config))
