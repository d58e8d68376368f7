"""The dead man's switch: Prometheus always fires ProvsecMonitoringWatchdog (exporters/rules/monitoring.yml) and
Alertmanager re-sends it every repeat interval. Its arrivals are heartbeats, never incidents. When none arrived for
`timeout`, the chain Prometheus → rules → Alertmanager → webhook is broken somewhere, no other alert would arrive
either, and `provsec notify` raises the alarm through its own channels: once, and a recovery message when the
heartbeats come back.

The state (last heartbeat, whether the alarm is out) lives in a small JSON file written atomically, so a restart of
`provsec notify` neither forgets a silence nor sends the alarm a second time. Before the first heartbeat ever, the
silence is counted from the moment the receiver started."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from provsec.errors import InputError
from provsec.fileio import write_json_atomic
from provsec.notify.config import HeartbeatConfig


@dataclass(frozen=True)
class HeartbeatState:
    last: datetime | None = None        # the last heartbeat received
    alarm_since: datetime | None = None  # the missing-heartbeat alarm was sent at; None: not out


def _time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: expected an ISO 8601 time or null")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise InputError(f"{where}: {value!r} has no UTC offset")
    return moment.astimezone(UTC)


def load_state(path: Path) -> HeartbeatState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HeartbeatState()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: heartbeat state unreadable or not JSON ({exc}); remove it to start afresh") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: heartbeat state: expected a JSON object")
    return HeartbeatState(_time(data.get("last"), f"{path}: last"),
                          _time(data.get("alarm_since"), f"{path}: alarm_since"))


class Heartbeat:
    """Thread-safe; every change is saved before the method returns."""

    def __init__(self, config: HeartbeatConfig, started: datetime) -> None:
        self.config = config
        self.started = started.astimezone(UTC)
        self._lock = threading.Lock()
        self._state = load_state(config.state_file)

    @property
    def state(self) -> HeartbeatState:
        with self._lock:
            return self._state

    def _save(self, state: HeartbeatState) -> None:
        self._state = state
        write_json_atomic(self.config.state_file, {
            "last": None if state.last is None else state.last.isoformat(),
            "alarm_since": None if state.alarm_since is None else state.alarm_since.isoformat()})

    def beat(self, now: datetime) -> HeartbeatState:
        """Record a heartbeat; returns the state before it (alarm_since set: send the recovery message)."""
        with self._lock:
            before = self._state
            self._save(HeartbeatState(now.astimezone(UTC), None))
            return before

    def silent_since(self) -> datetime:
        with self._lock:
            return self._state.last or self.started

    def check(self, now: datetime) -> datetime | None:
        """When the heartbeat has been missing for longer than the timeout and no alarm is out: mark the alarm as
        out and return since when it is silent (send the alarm); else None."""
        if not self.config.enabled:
            return None
        with self._lock:
            since = self._state.last or self.started
            if self._state.alarm_since is not None or now - since <= self.config.timeout:
                return None
            self._save(HeartbeatState(self._state.last, now.astimezone(UTC)))
            return since
