"""The one place the notify channels make HTTP requests (urllib, standard library only).

- TLS verifies certificates and host names by default; `ca_file` replaces the system CAs with an internal
  CA's certificate (a provincial SMS gateway behind the department's own CA).
- No proxy from the environment: a systemd service has none, and a request to a gateway must not change
  route because someone's shell exported http_proxy. A proxy is configuration (`proxy`).
- Redirects are not followed: an API that redirects a POST is misconfigured, and following it would resend
  the body (phone numbers, tokens) to another address.
- HTTP status is classified by `check_status`: 2xx ok; 408, 425, 429 and 5xx temporary; anything else
  (3xx, 4xx) permanent. Timeouts and connection errors are temporary."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from provsec.notify.retry import PermanentError, TemporaryError

MAX_RESPONSE_BYTES = 1 << 20
TEMPORARY_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PermanentError(f"{what}: HTTP {self.status} with a body that is not JSON: "
                                 f"{self.body[:200]!r}") from exc

    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after", "")
        return float(value) if value.strip().isdigit() else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status: check_status makes it permanent


def ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Verifying context: the system CAs, or only `ca_file` when given."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentError(f"CA file {ca_file}: cannot be loaded ({exc})") from exc


def request(method: str, url: str, *, what: str, headers: Mapping[str, str] | None = None,
            body: bytes | None = None, timeout: float = 10.0, ca_file: Path | None = None,
            proxy: str | None = None) -> HttpResponse:
    """One HTTP request; returns the response whatever its status, raises TemporaryError when there is none.
    `what` names the request in errors (never the URL's query: it may carry a key)."""
    if not url.startswith(("https://", "http://")):
        raise PermanentError(f"{what}: URL must start with https:// or http://")
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}),
        _NoRedirect(),
    ]
    if url.startswith("https://"):  # loading the CA bundle costs ~50 ms: only when it is used
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(ca_file)))
    opener = urllib.request.build_opener(*handlers)
    # S310: the scheme is checked above (https/http only; no file:).
    req = urllib.request.Request(url, data=body, method=method.upper(), headers=dict(headers or {}))  # noqa: S310
    try:
        with opener.open(req, timeout=timeout) as resp:
            return HttpResponse(resp.status, _lower(resp.headers), resp.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            data = exc.read(MAX_RESPONSE_BYTES) if exc.fp is not None else b""
        return HttpResponse(exc.code, _lower(exc.headers), data)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise PermanentError(f"{what}: TLS certificate does not verify ({reason.verify_message})") from exc
        raise TemporaryError(f"{what}: no response ({reason})") from exc
    except TimeoutError as exc:
        raise TemporaryError(f"{what}: no response within {timeout:g} s") from exc
    except (ConnectionError, OSError) as exc:
        raise TemporaryError(f"{what}: connection failed ({exc})") from exc


def _lower(headers: Message | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers is not None else [])}


def check_status(resp: HttpResponse, what: str) -> None:
    """Raise the right DeliveryError for a non-2xx response."""
    if 200 <= resp.status < 300:
        return
    snippet = resp.body[:200].decode("utf-8", "replace").strip()
    message = f"{what}: HTTP {resp.status}" + (f": {snippet}" if snippet else "")
    if resp.status >= 500 or resp.status in TEMPORARY_STATUS:
        raise TemporaryError(message, retry_after=resp.retry_after())
    raise PermanentError(message)
