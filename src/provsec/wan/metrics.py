"""node_exporter textfile metrics of the configuration backup (exporters/METRICS.md, "WAN configuration backup").

A textfile cannot count, and a run may back up one device only: each run updates its devices' part of a state
kept in the store (`STORE/metrics.json`, atomic, under the store's lock; never committed) and rewrites the
whole textfile from it. Series are bounded: one per metric and device of the inventory group wan_edge; a
device that left the group is dropped at the next run.

`provsec_wan_config_changed_outside_window` is 1 from a change detected outside every change window until
the next change that is inside one, or until someone acknowledges it (`provsec wan ack DEVICE --by NAME`):
an alert that cleared itself at the next fetch would let an unreviewed change go unseen."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provsec import fileio
from provsec.errors import InputError
from provsec.fileio import read_json, write_atomic, write_json_atomic

STATE_FILE = "metrics.json"
STATE_FORMAT = "provsec-wan-metrics/1"


@dataclass
class DeviceState:
    success: bool = False
    last_attempt: float = 0.0
    last_success: float = 0.0  # 0: never
    changes: int = 0  # changes detected after the first version
    last_change: float = 0.0  # 0: none since the first version
    outside_window: bool = False
    reason: str = ""  # why the last attempt failed
    acknowledged_by: str = ""


@dataclass
class MetricsState:
    devices: dict[str, DeviceState] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "devices": {d: vars(s) for d, s in sorted(self.devices.items())}}

    @classmethod
    def from_json(cls, data: Any, source: str) -> MetricsState:
        try:
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise InputError(f"{source}: not a provsec wan metrics state (expected \"format\": "
                                 f"\"{STATE_FORMAT}\")")
            return cls({str(d): DeviceState(bool(s["success"]), float(s["last_attempt"]), float(s["last_success"]),
                                            int(s["changes"]), float(s["last_change"]), bool(s["outside_window"]),
                                            str(s["reason"]), str(s.get("acknowledged_by", "")))
                        for d, s in data["devices"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{source}: malformed wan metrics state ({type(exc).__name__}: {exc}); remove it to "
                             "start again (the change counters then restart at 0)") from exc


def record_success(state: MetricsState, device: str, now: float, *, changed: bool, outside: bool) -> None:
    s = state.devices.setdefault(device, DeviceState())
    s.success, s.last_attempt, s.last_success, s.reason = True, now, now, ""
    if changed:
        s.changes += 1
        s.last_change = now
        s.outside_window = outside
        s.acknowledged_by = ""


def record_failure(state: MetricsState, device: str, now: float, reason: str) -> None:
    s = state.devices.setdefault(device, DeviceState())
    s.success, s.last_attempt, s.reason = False, now, reason


def acknowledge(state: MetricsState, device: str, by: str) -> bool:
    """Clear the outside-window flag; False when it was not set."""
    s = state.devices.get(device)
    if s is None or not s.outside_window:
        return False
    s.outside_window, s.acknowledged_by = False, by
    return True


def keep_only(state: MetricsState, devices: Iterable[str]) -> None:
    known = set(devices)
    state.devices = {d: s for d, s in state.devices.items() if d in known}


class WanConfigCollector(Collector):
    """The metrics state as metric families, one series per device and metric."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        labels = ["device"]
        success = GaugeMetricFamily("provsec_wan_config_backup_success", "1 if the last configuration backup of "
                                    "the device succeeded, else 0.", labels=labels)
        last_ok = GaugeMetricFamily("provsec_wan_config_backup_last_success_timestamp_seconds", "When the "
                                    "device's configuration was last fetched and stored (0: never).", labels=labels)
        changes = CounterMetricFamily("provsec_wan_config_changes", "Configuration changes detected (after the "
                                      "first stored version).", labels=labels)
        last_change = GaugeMetricFamily("provsec_wan_config_last_change_timestamp_seconds", "When the last "
                                        "change was detected (0: none since the first version).", labels=labels)
        outside = GaugeMetricFamily("provsec_wan_config_changed_outside_window", "1 from a change detected "
                                    "outside every change window until an in-window change or an "
                                    "acknowledgement, else 0.", labels=labels)
        for device, s in sorted(self.state.devices.items()):
            success.add_metric([device], 1.0 if s.success else 0.0)
            last_ok.add_metric([device], s.last_success)
            changes.add_metric([device], float(s.changes))
            last_change.add_metric([device], s.last_change)
            outside.add_metric([device], 1.0 if s.outside_window else 0.0)
        yield from (success, last_ok, changes, last_change, outside)


def render(state: MetricsState) -> bytes:
    registry = CollectorRegistry()
    registry.register(WanConfigCollector(state))
    return generate_latest(registry)


def check_textfile(path: Path) -> Path:
    return fileio.check_textfile(path, "provsec_wan_config.prom")


def load(path: Path) -> MetricsState:
    if not path.exists():
        return MetricsState()
    return MetricsState.from_json(read_json(path, "wan metrics state"), str(path))


def update(store: Path, textfile: Path | None, change: Callable[[MetricsState], None]) -> MetricsState:
    """Apply change to the state in the store, and rewrite the textfile from it (both atomic). The caller
    holds the store's lock."""
    state_path = store / STATE_FILE
    state = load(state_path)
    change(state)
    try:
        write_json_atomic(state_path, state.to_json(), 0o600)
        if textfile is not None:
            write_atomic(textfile, render(state))
    except OSError as exc:
        raise InputError(f"--textfile {textfile} / {state_path}: cannot write ({exc.strerror or exc})") from exc
    return state
