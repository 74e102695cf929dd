"""Standard Webhooks signatures: ``webhook-signature: v1,<base64 HMAC-SHA256>``.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``; the key is the
base64 text after the ``whsec_`` prefix of the secret. Receivers verify it with any
Standard Webhooks library (``standardwebhooks.Webhook(secret).verify(body, headers)``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from jobwire.errors import ConfigError

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 16


def decode_secret(secret: str, name: str = "JOBWIRE_WEBHOOK_SECRET") -> bytes:
    """The signing key of a ``whsec_<base64>`` secret; ConfigError naming ``name``."""
    expected = f"{name}: expected whsec_ followed by base64 of at least {MIN_KEY_BYTES} bytes"
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(f"{expected}; the value does not start with whsec_")
    try:
        text = secret[len(SECRET_PREFIX) :]
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{expected}; the text after whsec_ is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{expected}; it decodes to {len(key)} bytes")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    content = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
    }
