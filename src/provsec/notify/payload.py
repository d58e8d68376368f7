"""The Alertmanager webhook payload (JSON, version 4): the one parser that the receiver, the messages and the
incident register share.

One webhook call is one Alertmanager group (alerts sharing the route's group_by labels). Validation is strict,
because Alertmanager always sends every field (its `webhook.Message`): a payload that lacks one did not come from
Alertmanager, or came through something that mangled it, and storing half of it would hide that. Every error is an
InputError that names the field (`Alertmanager webhook payload: alerts[1].startsAt: …`); nothing is stored before
the whole payload is valid.

Times are Go RFC 3339 with up to nanoseconds; they are kept in UTC to the microsecond. Go's zero time
(`0001-01-01T00:00:00Z`) is Alertmanager's "no end yet" and becomes None."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from provsec.errors import InputError

WHAT = "Alertmanager webhook payload"
SEVERITY_RANK = {"critical": 2, "warning": 1}

_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")
_PORT = re.compile(r":\d+$")


def host_of(labels: Mapping[str, str]) -> str:
    """The host an alert is about: label `host`, else `nodename`, else `instance` without its port."""
    for key in ("host", "nodename"):
        if labels.get(key):
            return labels[key]
    return _PORT.sub("", labels.get("instance", ""))


@dataclass(frozen=True)
class Alert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")

    @property
    def host(self) -> str:
        return host_of(self.labels)


@dataclass(frozen=True)
class AlertGroup:
    """One webhook call of Alertmanager: a group of alerts sharing the route's group_by labels."""

    status: str
    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def name(self) -> str:
        return self.common_labels.get("alertname") or self.group_labels.get("alertname") or (
            self.alerts[0].name if self.alerts else "?")

    @property
    def title(self) -> str:
        """The incident's title: the common summary, else the alert name, else the group key."""
        for source in (self.common_annotations, self.common_labels, self.group_labels):
            for key in ("summary", "alertname"):
                if source.get(key):
                    return source[key]
        return self.group_key

    @property
    def severity(self) -> str:
        """The common severity label, else the highest severity among the alerts (critical > warning)."""
        common = self.common_labels.get("severity")
        if common:
            return common
        levels = [a.labels.get("severity", "") for a in self.alerts]
        return max(levels, key=lambda s: SEVERITY_RANK.get(s, 0), default="") or "warning"

    def annotation(self, key: str) -> str:
        """The common annotation, else the first alert's (firing ones first)."""
        if self.common_annotations.get(key):
            return self.common_annotations[key]
        for alert in (*self.firing, *self.alerts):
            if alert.annotations.get(key):
                return alert.annotations[key]
        return ""

    @property
    def hosts(self) -> tuple[str, ...]:
        """Distinct hosts of the group's current alerts (firing ones, or all when the group is resolved)."""
        alerts = self.firing or self.alerts
        return tuple(dict.fromkeys(a.host for a in alerts if a.host))

    @property
    def count(self) -> int:
        return len(self.firing or self.alerts) + self.truncated_alerts


def parse_rfc3339(text: Any, where: str) -> datetime | None:
    """Alertmanager's times (Go RFC 3339, up to nanoseconds) in UTC; Go's zero time (still firing) is None."""
    match = _RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InputError(f"{WHAT}: {where}: {text!r} is not an RFC 3339 time")
    day, clock, fraction, zone = match.groups()
    fraction = ((fraction or "") + "000000")[:6]  # nanoseconds cut to microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{fraction}{zone}")
    except ValueError as exc:
        raise InputError(f"{WHAT}: {where}: {text!r} is not a valid time") from exc
    if moment.year <= 1:
        return None
    return moment.astimezone(UTC)


def _labels(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InputError(f"{WHAT}: {where}: expected an object of strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InputError(f"{WHAT}: {where}.{key}: expected a string, got {item!r}")
    return dict(value)


def _string(payload: Mapping[str, Any], key: str, where: str = "", allow_empty: bool = False) -> str:
    name = f"{where}{key}"
    if key not in payload:
        raise InputError(f"{WHAT}: {name}: missing")
    value = payload[key]
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InputError(f"{WHAT}: {name}: expected a {'' if allow_empty else 'non-empty '}string, got {value!r}")
    return value


def _status(payload: Mapping[str, Any], where: str = "") -> str:
    status = _string(payload, "status", where)
    if status not in ("firing", "resolved"):
        raise InputError(f"{WHAT}: {where}status: {status!r} is not firing or resolved")
    return status


def _alert(value: Any, where: str) -> Alert:
    if not isinstance(value, Mapping):
        raise InputError(f"{WHAT}: {where}: expected an object")
    prefix = f"{where}."
    for key in ("labels", "annotations"):
        if key not in value:
            raise InputError(f"{WHAT}: {prefix}{key}: missing")
    starts = parse_rfc3339(_string(value, "startsAt", prefix), f"{prefix}startsAt")
    if starts is None:
        raise InputError(f"{WHAT}: {prefix}startsAt: the zero time is not a start")
    return Alert(status=_status(value, prefix), labels=_labels(value["labels"], f"{prefix}labels"),
                 annotations=_labels(value["annotations"], f"{prefix}annotations"), starts_at=starts,
                 ends_at=parse_rfc3339(_string(value, "endsAt", prefix), f"{prefix}endsAt"),
                 fingerprint=_string(value, "fingerprint", prefix),
                 generator_url=_string(value, "generatorURL", prefix, allow_empty=True)
                 if "generatorURL" in value else "")


def parse_webhook(payload: Mapping[str, Any] | str | bytes | Any) -> AlertGroup:
    """Validate an Alertmanager webhook payload (JSON text, bytes or the decoded object); an InputError names the
    field that is wrong."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{WHAT}: not JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise InputError(f"{WHAT}: expected a JSON object")
    version = payload.get("version")
    if version != "4":
        raise InputError(f"{WHAT}: version: {version!r} is not \"4\" (Alertmanager webhook format v4)")
    for key in ("groupLabels", "commonLabels", "commonAnnotations", "alerts"):
        if key not in payload:
            raise InputError(f"{WHAT}: {key}: missing")
    alerts = payload["alerts"]
    if not isinstance(alerts, list) or not alerts:
        raise InputError(f"{WHAT}: alerts: expected a non-empty list")
    parsed = tuple(_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts))
    truncated = payload.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise InputError(f"{WHAT}: truncatedAlerts: expected a non-negative integer, got {truncated!r}")
    return AlertGroup(status=_status(payload), receiver=_string(payload, "receiver"),
                      group_key=_string(payload, "groupKey"),
                      group_labels=_labels(payload["groupLabels"], "groupLabels"),
                      common_labels=_labels(payload["commonLabels"], "commonLabels"),
                      common_annotations=_labels(payload["commonAnnotations"], "commonAnnotations"),
                      external_url=_string(payload, "externalURL", allow_empty=True) if "externalURL" in payload
                      else "", alerts=parsed, truncated_alerts=truncated)
