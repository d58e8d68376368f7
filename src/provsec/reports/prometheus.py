"""The one wrapper around the Prometheus HTTP API (`GET /api/v1/query_range`), with the standard library's urllib:
the reports need one endpoint, and no client library is worth a dependency for it.

`query_range` returns the API's raw JSON document (what `provsec report collect` stores, so a report re-run later
reads exactly what Prometheus answered, after its retention has expired) and `parse_matrix` turns such a document
into typed series. A document of another shape is an InputError naming where it came from."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from provsec.errors import InputError

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (UTC time, value) points."""

    labels: dict[str, str]
    points: tuple[tuple[datetime, float], ...]

    def total(self) -> float:
        return sum(v for _, v in self.points if not math.isnan(v))


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InputError(f"Prometheus query time {moment.isoformat()}: naive datetime, give its time zone")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def query_range(base_url: str, query: str, start: datetime, end: datetime, step_s: float, *,
                timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """`query` evaluated every `step_s` seconds from `start` to `end` (both included, as the API does); the API's
    JSON document, checked to be a successful matrix answer."""
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--prometheus: {base_url!r} is not an http(s) URL such as http://127.0.0.1:9090")
    url = base_url.rstrip("/") + "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": query, "start": _rfc3339(start), "end": _rfc3339(end), "step": f"{step_s:g}"})
    where = f"Prometheus {base_url} query_range {query!r}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            body = resp.read()
    except urllib.error.HTTPError as exc:
        # 400 (bad query), 422 (cannot execute), 503 (timeout, overload): the body says why
        body = exc.read()
        detail = _error_text(body) or exc.reason
        raise InputError(f"{where}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{where}: cannot reach Prometheus ({reason})") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise InputError(f"{where}: the answer is not JSON") from None
    parse_matrix(doc, where)  # refuse a document that a report could not read later
    return doc if isinstance(doc, dict) else {}


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        return f"{doc.get('errorType', '')}: {doc.get('error', '')}".strip(": ")
    return ""


def _number(text: Any, where: str) -> float:
    # Prometheus sends sample values as strings ("1", "NaN", "+Inf") so that JSON can carry every float
    if not isinstance(text, str):
        raise InputError(f"{where}: sample value {text!r} is not a string")
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: sample value {text!r} is not a number") from None


def parse_matrix(doc: Any, where: str) -> list[Series]:
    """The series of a query_range answer: `{"status": "success", "data": {"resultType": "matrix", "result":
    [{"metric": {...}, "values": [[unix_seconds, "value"], ...]}]}}`."""
    if not isinstance(doc, dict) or doc.get("status") != "success":
        detail = _error_text(json.dumps(doc).encode()) if isinstance(doc, dict) else ""
        raise InputError(f"{where}: not a successful Prometheus answer{': ' + detail if detail else ''}")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise InputError(f"{where}: data.resultType must be \"matrix\" with a result list (a query_range answer)")
    series: list[Series] = []
    for i, item in enumerate(data["result"]):
        at = f"{where}: data.result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict) \
                or not isinstance(item.get("values"), list):
            raise InputError(f"{at}: expected {{\"metric\": {{...}}, \"values\": [...]}}")
        labels = {str(k): str(v) for k, v in item["metric"].items()}
        points = []
        for j, pair in enumerate(item["values"]):
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], int | float) \
                    or isinstance(pair[0], bool):
                raise InputError(f"{at}.values[{j}]: expected [unix_seconds, \"value\"]")
            points.append((datetime.fromtimestamp(pair[0], UTC), _number(pair[1], f"{at}.values[{j}]")))
        series.append(Series(labels, tuple(points)))
    return series
