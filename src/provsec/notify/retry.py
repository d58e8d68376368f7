"""Delivery errors (permanent or temporary) and retries with exponential backoff.

A permanent error (the provider refused: HTTP 4xx, SMTP 5xx, bad credentials, an unknown recipient, a
certificate that does not verify) is not retried: the same request would fail the same way, and the on-call
rota should move on. A temporary error (timeout, connection refused, HTTP 5xx/408/429, SMTP 4xx) is retried
with exponential backoff, bounded both in attempts and in total time, so that escalation is never held up
longer than `max_total` seconds by one channel."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from provsec.errors import ProvsecError

T = TypeVar("T")


class DeliveryError(ProvsecError):
    """A notification was not delivered; `permanent` says whether trying again can help."""

    permanent = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    permanent = True


class TemporaryError(DeliveryError):
    permanent = False


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt i (1-based) waits base_delay * multiplier**(i-1) before attempt i+1, capped at max_delay;
    no attempt starts once max_attempts are used or when its wait would pass max_total seconds."""

    max_attempts: int = 4
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    max_total: float = 90.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_total < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy: delays must be ≥ 0 and multiplier ≥ 1")

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    error: DeliveryError | None = None


def with_retries(action: Callable[[], object], policy: RetryPolicy, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Run `action` until it returns, raises a permanent DeliveryError, or the policy's bounds are reached.
    Any other exception is a bug and propagates."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            action()
        except DeliveryError as exc:
            if exc.permanent or attempt >= policy.max_attempts:
                return Outcome(False, attempt, exc)
            wait = policy.delay(attempt)
            if exc.retry_after is not None:
                wait = min(max(wait, exc.retry_after), policy.max_delay)
            if clock() - started + wait > policy.max_total:
                return Outcome(False, attempt, exc)
            sleep(wait)
        else:
            return Outcome(True, attempt)
