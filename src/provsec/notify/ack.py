"""Signed, expiring acknowledgement links: `<base_url>/ack/<incident>/<expiry>/<signature>`.

- `expiry` is a Unix time (seconds); `signature` is HMAC-SHA256 with the configured secret over the incident id,
  the expiry and the recipient's rota id, cut to 128 bits and written in URL-safe base64 without padding (22
  characters: the link must fit whole in a 160-character SMS). The recipient is not in the URL: the server finds
  them by checking the signature for every person on the rota, comparing each in constant time, so a link says
  who acknowledged without showing a name, and a link made for one person cannot be edited into another's.
- GET shows a confirmation page with a button and changes nothing: mail and chat clients (Zalo, Outlook's Safe
  Links) fetch URLs in messages ahead of the reader, and such a prefetch must not acknowledge. POST acknowledges.
- A link whose signature does not verify, or whose expiry has passed, gets 403 with a message in Vietnamese and
  English. Changing the secret invalidates every link sent before."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from provsec.errors import InputError

SIGNATURE_BYTES = 16
_PATH = re.compile(r"^/ack/([0-9]{1,18})/([0-9]{1,12})/([A-Za-z0-9_-]{22})$")


class AckError(InputError):
    """The link does not verify or has expired; the message is shown to the person who opened it."""


@dataclass(frozen=True)
class AckLink:
    incident_id: int
    expiry: int
    signature: str

    def path(self) -> str:
        return f"/ack/{self.incident_id}/{self.expiry}/{self.signature}"


def signature(secret: bytes, incident_id: int, expiry: int, recipient: str) -> str:
    message = f"provsec-ack\n{incident_id}\n{expiry}\n{recipient}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_link(base_url: str, secret: bytes, incident_id: int, recipient: str, *, now: datetime,
              lifetime: timedelta) -> str:
    expiry = int((now + lifetime).timestamp())
    link = AckLink(incident_id, expiry, signature(secret, incident_id, expiry, recipient))
    return base_url.rstrip("/") + link.path()


def parse_path(path: str) -> AckLink:
    match = _PATH.match(path)
    if not match:
        raise AckError("Liên kết xác nhận không hợp lệ. / The acknowledgement link is not valid.")
    return AckLink(int(match.group(1)), int(match.group(2)), match.group(3))


def verify(secret: bytes, link: AckLink, recipients: Iterable[str], now: datetime) -> str:
    """The recipient the link was made for; AckError when no one's signature matches or the link has expired.
    Every recipient is compared (no early exit), each in constant time."""
    found: str | None = None
    given = link.signature.encode("ascii")
    for recipient in recipients:
        expected = signature(secret, link.incident_id, link.expiry, recipient).encode("ascii")
        if hmac.compare_digest(expected, given) and found is None:
            found = recipient
    if found is None:
        raise AckError("Liên kết xác nhận không hợp lệ (chữ ký sai hoặc đã bị sửa). / The acknowledgement link is "
                       "not valid (bad or altered signature).")
    if now.timestamp() > link.expiry:
        raise AckError("Liên kết xác nhận đã hết hạn: dùng lệnh \"provsec incident ack\" hoặc liên kết trong thông "
                       "báo mới hơn. / The acknowledgement link has expired: use \"provsec incident ack\" or the "
                       "link of a newer message.")
    return found


# -- pages ------------------------------------------------------------------------------------------------------------
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:32em;margin:1.5em auto;padding:0 1em;line-height:1.4}"
          "button{font-size:1.2em;padding:.6em 1.4em;border-radius:.4em;border:0;background:#b3261e;color:#fff}"
          ".muted{color:#555;font-size:.9em}")


def page(title: str, *paragraphs: str, button: str | None = None) -> bytes:
    """A small Vietnamese HTML page; every text is escaped here. With `button`, a form that POSTs to the page's own
    URL (no action attribute: behind a reverse proxy with a path prefix the link's own URL is the right one)."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if button is not None:
        body += f'<form method="post"><button type="submit">{escape(button)}</button></form>'

    html = ("<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}"
            "<p class=\"muted\">provsec notify — Sở Thông tin và Truyền thông</p></body></html>")
    return html.encode("utf-8")
