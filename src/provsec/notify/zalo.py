"""Zalo Official Account Open API: the token store, the token refresh and the one send call.

What the API expects (read for this module; third-party pages, Zalo's own developer pages were not in the
stored sources — recheck them when the OA is set up):

- Send a customer-service ("tư vấn") text: POST {api_base}/v3.0/oa/message/cs, header `access_token: <token>`
  (not an Authorization header), JSON body {"recipient": {"user_id": "<id>"}, "message": {"text": "<text>"}}.
  Zalo answers HTTP 200 even on failure: {"error": 0, "message": "Success", "data": {"message_id": …}} when
  sent, else a non-zero `error` and a `message`. An invalid or expired access token gives error -216
  ("Access token is invalid"); -124 is what several clients also treat as an expired token. Sources: client
  code for /v3.0/oa/message/cs in public repositories (header `access_token`, body shape, -216 → refresh →
  retry once), and a write-up of a bot that failed silently on {"error":-216,"message":"Access token has
  expired"} from that endpoint.
- Refresh: POST {oauth_base}/v4/oa/access_token, header `secret_key: <app secret>`, form body
  app_id, refresh_token, grant_type=refresh_token → {"access_token", "refresh_token", "expires_in"} (seconds,
  a string in practice). The access token lives ~25 h; the refresh token is single-use (valid 3 months): every
  refresh returns a new one and the old one stops working (hexasync.vn, "Zalo OA API: Hướng dẫn cách lấy
  Access Token từ Refresh token"). Hence: the new pair is written to disk (temp file, fsync, rename, fsync of
  the directory, mode 0600) BEFORE the new access token is used, and refreshes are serialised by a lock file,
  so two senders never spend the same refresh token.

The token file is JSON: {"access_token", "refresh_token", "expires_at" (UTC, ISO 8601 or null), "updated_at"}.
The first one is written by whoever authorises the OA for the app (`provsec notify zalo-init`, later)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provsec.errors import InputError
from provsec.fileio import write_json_atomic
from provsec.notify import http
from provsec.notify.retry import PermanentError, TemporaryError

SEND_PATH = "/v3.0/oa/message/cs"
REFRESH_PATH = "/v4/oa/access_token"
DEFAULT_EXPIRED_CODES = frozenset({-216, -124})
EXPIRY_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class ZaloTokens:
    access_token: str
    refresh_token: str
    expires_at: datetime | None = None

    def __repr__(self) -> str:  # never print a token
        return f"ZaloTokens(expires_at={self.expires_at!r})"

    def usable(self, now: datetime) -> bool:
        return bool(self.access_token) and (self.expires_at is None or now + EXPIRY_MARGIN < self.expires_at)


class TokenStore:
    """The OA's current token pair in one root-only file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.Lock()

    def load(self) -> ZaloTokens:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(f"{self.path}: Zalo token file missing: authorise the OA for the app first") from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: Zalo token file unreadable or not JSON ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str) \
                or not data["refresh_token"]:
            raise InputError(f"{self.path}: Zalo token file: expected an object with a refresh_token string")
        access = data.get("access_token") or ""
        expires = data.get("expires_at")
        try:
            expires_at = datetime.fromisoformat(expires).astimezone(UTC) if isinstance(expires, str) else None
        except ValueError as exc:
            raise InputError(f"{self.path}: Zalo token file: expires_at is not an ISO 8601 time") from exc
        if not isinstance(access, str):
            raise InputError(f"{self.path}: Zalo token file: access_token must be a string")
        return ZaloTokens(access, data["refresh_token"], expires_at)

    def save(self, tokens: ZaloTokens, now: datetime | None = None) -> None:
        """Written atomically, 0600 from the first byte (provsec.fileio): after a crash the file holds either
        the old pair or the new one, never a mix or nothing."""
        write_json_atomic(self.path, {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
            "updated_at": (now or datetime.now(UTC)).isoformat(),
        }, 0o600)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes (flock on <file>.lock) for a refresh."""
        with self._thread_lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


@dataclass(frozen=True)
class ZaloApi:
    app_id: str
    secret_key: str
    api_base: str = "https://openapi.zalo.me"
    oauth_base: str = "https://oauth.zaloapp.com"
    timeout: float = 10.0
    ca_file: Path | None = None
    proxy: str | None = None

    def __repr__(self) -> str:
        return f"ZaloApi(app_id={self.app_id!r}, api_base={self.api_base!r}, oauth_base={self.oauth_base!r})"

    def refresh(self, refresh_token: str, now: datetime) -> ZaloTokens:
        """Spend `refresh_token` for a new pair. An error reply means the refresh token is dead (used, expired,
        revoked): permanent, someone must authorise the OA again."""
        what = "Zalo token refresh"
        body = urllib.parse.urlencode({"app_id": self.app_id, "refresh_token": refresh_token,
                                       "grant_type": "refresh_token"}).encode("ascii")
        resp = http.request("POST", self.oauth_base.rstrip("/") + REFRESH_PATH, what=what, body=body,
                            headers={"secret_key": self.secret_key,
                                     "Content-Type": "application/x-www-form-urlencoded"},
                            timeout=self.timeout, ca_file=self.ca_file, proxy=self.proxy)
        http.check_status(resp, what)
        data = resp.json(what)
        if not isinstance(data, dict):
            raise PermanentError(f"{what}: expected a JSON object")
        access, new_refresh = data.get("access_token"), data.get("refresh_token")
        if not (isinstance(access, str) and access and isinstance(new_refresh, str) and new_refresh):
            detail = data.get("error_description") or data.get("error_name") or data.get("message") or "no token"
            raise PermanentError(f"{what}: refused (error {data.get('error')}: {detail}); the refresh token is "
                                 "no longer valid: authorise the OA for the app again")
        expires_at = None
        with contextlib.suppress(TypeError, ValueError):
            expires_at = now + timedelta(seconds=int(data.get("expires_in")))  # type: ignore[arg-type]
        return ZaloTokens(access, new_refresh, expires_at)

    def send_text(self, access_token: str, user_id: str, text: str) -> tuple[int, str]:
        """POST the message; returns Zalo's (error, message). HTTP-level failures raise."""
        what = "Zalo OA message"
        body = json.dumps({"recipient": {"user_id": user_id}, "message": {"text": text}},
                          ensure_ascii=False).encode("utf-8")
        resp = http.request("POST", self.api_base.rstrip("/") + SEND_PATH, what=what, body=body,
                            headers={"access_token": access_token,
                                     "Content-Type": "application/json; charset=utf-8"},
                            timeout=self.timeout, ca_file=self.ca_file, proxy=self.proxy)
        http.check_status(resp, what)
        data: Any = resp.json(what)
        if not isinstance(data, dict) or not isinstance(data.get("error"), int):
            raise PermanentError(f"{what}: reply without an integer `error` field")
        message = str(data.get("message", ""))
        if access_token:  # a reply that quotes the token must not put it in a log
            message = message.replace(access_token, "***")
        return data["error"], message


class ZaloSession:
    """Tokens + API: sends with a valid access token, refreshing first when it is due, and once more (with one
    retry of the send) when Zalo says the token is invalid or expired."""

    def __init__(self, api: ZaloApi, store: TokenStore, *, expired_codes: frozenset[int] = DEFAULT_EXPIRED_CODES,
                 temporary_codes: frozenset[int] = frozenset(), now: Any = None) -> None:
        self.api = api
        self.store = store
        self.expired_codes = expired_codes
        self.temporary_codes = temporary_codes
        self._now = now or (lambda: datetime.now(UTC))

    def _refresh(self, stale: ZaloTokens) -> ZaloTokens:
        with self.store.locked():
            current = self.store.load()
            if current.refresh_token != stale.refresh_token and current.usable(self._now()):
                return current  # another sender refreshed while we waited for the lock
            tokens = self.api.refresh(current.refresh_token, self._now())
            try:
                self.store.save(tokens, self._now())
            except OSError as exc:
                raise PermanentError(f"Zalo token refresh: the new tokens could not be written to "
                                     f"{self.store.path} ({exc}); the old refresh token is spent: authorise the "
                                     "OA for the app again") from exc
            return tokens

    def send(self, user_id: str, text: str) -> None:
        tokens = self.store.load()
        if not tokens.usable(self._now()):
            tokens = self._refresh(tokens)
        code, message = self.api.send_text(tokens.access_token, user_id, text)
        if code in self.expired_codes:
            tokens = self._refresh(tokens)
            code, message = self.api.send_text(tokens.access_token, user_id, text)
            if code in self.expired_codes:
                raise PermanentError(f"Zalo OA message: access token refused right after a refresh (error {code}: "
                                     f"{message})")
        if code == 0:
            return
        error = f"Zalo OA message to user {user_id}: error {code}: {message}"
        if code in self.temporary_codes:
            raise TemporaryError(error)
        raise PermanentError(error)
