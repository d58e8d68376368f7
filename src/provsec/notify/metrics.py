"""Delivery counters of the notify channels (to be documented in exporters/METRICS.md, section Notify).

    provsec_notify_deliveries_total{channel, result}      deliveries that ended ok or failed (after retries)
    provsec_notify_delivery_attempts_total{channel}       attempts, retries included

A delivery is one message handed to a provider for one recipient (one SMS, one Zalo message) or, for email,
one SMTP transaction (all To addresses). A collector class rather than prometheus_client.Counter: it lives in
the registry the caller passes in (never the global one) and has no `_created` series, without flipping the
library-wide `disable_created_metrics()` switch. Every channel's series exist from the start at 0, so
`increase(...{result="failed"}[1h]) > 0` works from the first failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

RESULTS = ("ok", "failed")


class NotifyMetrics(Collector):
    """Counts deliveries and attempts per channel; thread-safe (the webhook server sends from threads)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._deliveries: dict[tuple[str, str], float] = {}
        self._attempts: dict[str, float] = {}
        if registry is not None:
            registry.register(self)

    def add_channel(self, channel: str) -> None:
        with self._lock:
            for result in RESULTS:
                self._deliveries.setdefault((channel, result), 0.0)
            self._attempts.setdefault(channel, 0.0)

    def record(self, channel: str, ok: bool, attempts: int) -> None:
        with self._lock:
            key = (channel, "ok" if ok else "failed")
            self._deliveries[key] = self._deliveries.get(key, 0.0) + 1
            self._attempts[channel] = self._attempts.get(channel, 0.0) + attempts

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            deliveries = sorted(self._deliveries.items())
            attempts = sorted(self._attempts.items())
        family = CounterMetricFamily("provsec_notify_deliveries", "Notification deliveries by channel and final "
                                     "result (ok, failed), after retries.", labels=["channel", "result"])
        for (channel, result), value in deliveries:
            family.add_metric([channel, result], value)
        yield family
        tries = CounterMetricFamily("provsec_notify_delivery_attempts", "Delivery attempts by channel, retries "
                                    "included.", labels=["channel"])
        for channel, value in attempts:
            tries.add_metric([channel], value)
        yield tries
