"""The exporter's loop: poll the sources, save counts and positions together, serve them as metrics.

One thread reads every source and updates the counts under a lock; the HTTP server's threads take the same lock
only to copy the values. The state file ({state_dir}/exporter-state.json) holds the counts and every source's
position, written atomically at most every `save_interval` seconds and at shutdown: a restart (or `kill -9`)
goes back to a moment where counts and positions agree, so no line is lost or counted twice."""

from __future__ import annotations

import json
import select
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec.errors import InputError
from provsec.exporters.counts import Counts
from provsec.exporters.events import EVENTS, METHODS, OTHER_USER, SSH_FAILURE_EVENTS, Parser
from provsec.exporters.sources import FileSource, JournalSource
from provsec.fileio import write_atomic

STATE_FILE = "exporter-state.json"
STATE_VERSION = 1
SSH_EVENTS = ("ssh_failed", "ssh_invalid_user", "ssh_accepted")


class Source(Protocol):
    key: str

    @property
    def up(self) -> bool: ...
    def poll(self) -> int: ...
    def position(self) -> dict[str, Any]: ...
    def waitable(self) -> int | None: ...
    def restore(self, saved: dict[str, Any] | None) -> None: ...
    def close(self) -> None: ...


def parse_source(spec: str) -> tuple[str, Path | None]:
    """`journal`, `journal:DIR` or `file:PATH` (absolute)."""
    if spec == "journal":
        return "journal", None
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("journal", "file") and rest.startswith("/"):
        return kind, Path(rest)
    raise InputError(f"--source {spec!r}: expected journal, journal:/DIR or file:/ABSOLUTE/PATH")


class Exporter:
    def __init__(self, sources: Sequence[str], state_dir: Path, *, admins: Sequence[str] = (), top: int = 10,
                 ttl: float = 3600.0, from_start: bool = False, save_interval: float = 1.0,
                 poll_interval: float = 0.2) -> None:
        if not sources:
            raise InputError("no --source given: name at least one (journal, file:/var/log/auth.log)")
        self.counts = Counts()
        self.counts.top.top, self.counts.top.ttl = top, ttl
        self.parser = Parser(self.counts, admins)
        self.admins = sorted(set(admins))
        self.state_dir = state_dir
        self.state_path = state_dir / STATE_FILE
        self.save_interval = save_interval
        self.poll_interval = poll_interval
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.saved_at = 0.0
        self.save_errors = 0
        self.sources: list[Source] = []
        seen: set[str] = set()
        for spec in sources:
            kind, path = parse_source(spec)
            source: Source
            if path is not None and kind == "file":
                source = FileSource(path, self.counts, self.parser, from_start=from_start)
            else:
                source = JournalSource(self.counts, self.parser, journal_dir=path, from_start=from_start)
            if source.key in seen:
                raise InputError(f"--source {spec!r} given twice")
            seen.add(source.key)
            self.sources.append(source)

    # -- state ---------------------------------------------------------------------------------------------
    def load(self) -> None:
        try:
            data = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.state_path}: exporter state unreadable ({exc}); move it away to start "
                             "afresh (positions are then taken from the end of each source)") from exc
        if data is not None and (not isinstance(data, dict) or data.get("version") != STATE_VERSION):
            raise InputError(f"{self.state_path}: not an exporter state file of version {STATE_VERSION}")
        positions = {}
        if data is not None:
            try:
                self.counts.load(data["counts"])
                positions = dict(data["sources"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{self.state_path}: exporter state damaged ({exc!r}); move it away to start "
                                 "afresh") from exc
        for source in self.sources:
            source.restore(positions.get(source.key))

    def snapshot(self) -> bytes:
        data = {"version": STATE_VERSION, "counts": self.counts.to_json(),
                "sources": {s.key: s.position() for s in self.sources}}
        return json.dumps(data, separators=(",", ":")).encode()

    def save(self) -> None:
        with self.lock:
            data = self.snapshot()
        try:
            write_atomic(self.state_path, data, 0o640)
            self.saved_at = time.time()
        except OSError:
            self.save_errors += 1

    # -- loop ----------------------------------------------------------------------------------------------
    def step(self) -> int:
        done = 0
        for source in self.sources:
            with self.lock:
                done += source.poll()
        return done

    def idle(self) -> None:
        """Nothing new: sleep until a journal pipe has data or the poll interval (for files) is over."""
        fds = [fd for fd in (source.waitable() for source in self.sources) if fd is not None]
        if fds:
            select.select(fds, [], [], self.poll_interval)
        else:
            self.stop.wait(self.poll_interval)

    def run(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.save()  # the starting positions, before anything is read: a crash now must not move them
        last_save = time.monotonic()
        dirty = False
        try:
            while not self.stop.is_set():
                done = self.step()
                dirty = dirty or done > 0
                now = time.monotonic()
                if dirty and now - last_save >= self.save_interval:
                    self.save()
                    last_save, dirty = now, False
                if not done:
                    self.idle()
        finally:
            with self.lock:
                for source in self.sources:
                    source.poll()
            self.save()
            for source in self.sources:
                source.close()


class ExporterCollector(Collector):
    """The metrics of exporters/METRICS.md, section Security events; no `_created` series."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        # every series exists from the start (at 0): increase() sees the first event
        self.zero = {(event, method, user): 0 for event in EVENTS
                     for method in (METHODS if event in SSH_EVENTS else ("",))
                     for user in [*exporter.admins, OTHER_USER]}

    def collect(self) -> Iterator[Metric]:
        ex = self.exporter
        with ex.lock:
            events = dict(ex.counts.events)
            lines = dict(ex.counts.lines)
            rejected = dict(ex.counts.rejected)
            rotations = dict(ex.counts.rotations)
            top = ex.counts.top.largest(time.time())
            dropped = ex.counts.top.dropped
            up = {s.key: s.up for s in ex.sources}
        family = CounterMetricFamily("provsec_auth_events", "Security events read from the auth logs (event: closed "
                                     "set; method: SSH authentication method; user: known admin account or other).",
                                     labels=["event", "method", "user"])
        for (event, method, user), value in sorted((self.zero | events).items()):
            family.add_metric([event, method, user], value)
        yield family
        sources = GaugeMetricFamily("provsec_auth_top_sources", "Failed SSH events (" + ", ".join(
            sorted(SSH_FAILURE_EVENTS)) + ") per source address, the largest ones only, forgotten after the TTL.",
            labels=["source"])
        for address, failures in top:
            sources.add_metric([address], failures)
        yield sources
        yield CounterMetricFamily("provsec_auth_top_sources_dropped", "Source addresses dropped from the full "
                                  "tracking table (many distinct sources).", value=dropped)
        keys = [s.key for s in ex.sources]
        family = CounterMetricFamily("provsec_exporter_lines", "Lines (journal entries) read per source.",
                                     labels=["source"])
        for key in keys:
            family.add_metric([key], lines.get(key, 0))
        yield family
        family = CounterMetricFamily("provsec_exporter_lines_rejected", "Lines counted but not parsed "
                                     "(overlong: over 64 KiB; malformed: not journal JSON).",
                                     labels=["source", "reason"])
        for key in keys:
            for reason in ("overlong", "malformed"):
                family.add_metric([key, reason], rejected.get((key, reason), 0))
        yield family
        family = CounterMetricFamily("provsec_exporter_rotations", "Log file rotations seen (rename, delete, "
                                     "truncate).", labels=["source", "kind"])
        lost = CounterMetricFamily("provsec_exporter_position_lost", "Times a saved position could not be found "
                                   "again: lines may have been missed.", labels=["source"])
        for key in keys:
            if key.startswith("file:"):
                for kind in ("rename", "delete", "truncate"):
                    family.add_metric([key, kind], rotations.get((key, kind), 0))
                lost.add_metric([key], rotations.get((key, "lost"), 0))
        yield family
        yield lost
        gauge = GaugeMetricFamily("provsec_exporter_source_up", "1 if the source is being read (file open, "
                                  "journalctl running), else 0.", labels=["source"])
        for key in keys:
            gauge.add_metric([key], 1.0 if up[key] else 0.0)
        yield gauge
        yield GaugeMetricFamily("provsec_exporter_state_saved_timestamp_seconds", "When counts and positions were "
                                "last saved (Unix seconds).", value=ex.saved_at)
        yield CounterMetricFamily("provsec_exporter_state_save_errors", "Failed writes of the state file.",
                                  value=ex.save_errors)
