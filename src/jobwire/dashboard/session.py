"""Dashboard sessions: an API key exchanged once for a signed, short-lived cookie.

The cookie holds the owner, an expiry, and which key was used (a digest, never the
key), signed with HMAC-SHA256 under a secret derived from the configured API keys: every
process of the deployment accepts the cookies of the others and a restart keeps them,
while removing a key from ``JOBWIRE_API_KEYS`` ends the sessions opened with it.

Cross-site requests: the cookie is ``HttpOnly`` and ``SameSite=Strict`` and scoped to
the dashboard's path (the API never sees it), and every action must also carry the
session's CSRF token in the ``X-Jobwire-CSRF`` header, which a cross-site page can
neither read nor send without a preflight; an ``Origin`` or ``Sec-Fetch-Site`` that
names another site is refused as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

COOKIE = "jobwire_session"
CSRF_HEADER = "x-jobwire-csrf"
SESSION_SECONDS = 12 * 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Sessions:
    """Issues and checks session cookies and CSRF tokens for one set of API keys."""

    keys: Mapping[str, str]  # API key → owner
    secret: bytes

    @classmethod
    def for_keys(cls, keys: Mapping[str, str], salt: str = "") -> Sessions:
        material = "\0".join(sorted(f"{k}={v}" for k, v in keys.items()))
        secret = hashlib.sha256(f"jobwire dashboard\0{salt}\0{material}".encode()).digest()
        return cls(dict(keys), secret)

    def owner_of_key(self, api_key: str) -> str | None:
        for key, owner in self.keys.items():
            if hmac.compare_digest(key.encode(), api_key.strip().encode()):
                return owner
        return None

    def issue(self, api_key: str, now: float | None = None) -> str | None:
        """A cookie value for this key, or None when the key is not one of ours."""
        owner = self.owner_of_key(api_key)
        if owner is None:
            return None
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"v1.{expires}.{_b64(owner.encode())}.{key_id(api_key.strip())}"
        return f"{body}.{self._sign(body)}"

    def owner(self, cookie: str | None, now: float | None = None) -> str | None:
        """The owner of a valid, unexpired session whose key is still configured."""
        if not cookie:
            return None
        body, _, mac = cookie.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._sign(body)):
            return None
        parts = body.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
            return None
        if int(parts[1]) <= (time.time() if now is None else now):
            return None
        try:
            owner = _unb64(parts[2]).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        still = any(key_id(k) == parts[3] and o == owner for k, o in self.keys.items())
        return owner if still else None

    def csrf_token(self, binding: str) -> str:
        """The token actions must send back; bound to the session (or the viewer)."""
        return self._sign("csrf\0" + binding)

    def csrf_ok(self, binding: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token or "", self.csrf_token(binding))

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self.secret, text.encode(), hashlib.sha256).digest())


def same_origin(headers: Mapping[str, str], scheme: str) -> bool:
    """False when the request may come from a page of another site.

    A browser that sends ``Sec-Fetch-Site`` (a header no page can set) is believed;
    otherwise the ``Origin`` must name this host (a request without one is not a
    browser's cross-site request: those always carry it on POST).
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    # Behind a TLS-terminating proxy the scheme seen here may differ from the browser's.
    return bool(host) and origin in (f"{scheme}://{host}", f"http://{host}", f"https://{host}")
