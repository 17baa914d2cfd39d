"""Signed machine requests (签名校验): the HMAC that proves an alarm's body came from the holder
of an ``iot`` / ``video`` API key and was not altered or replayed — pure rules, no I/O.

A key's **signing secret** is derived, not stored: HMAC-SHA256 of the service's secret key
(``GRIDCORE_SECRET_KEY``) over the key's public prefix. ``gridcore keys add --purpose iot``
prints it once beside the key; the service recomputes it on every request. Rotating the secret
key therefore rotates every device's signing secret too (a leaked secret key must), and
revoking the API key ends both.

The signature covers the timestamp and the body: ``X-Gridcore-Signature: sha256=<hex of
HMAC-SHA256(signing secret, "<X-Gridcore-Timestamp>." + body)>`` (the scheme of Stripe's and
Slack's webhooks); a timestamp more than the tolerance away from now is refused, so a captured
request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

from gridcore.errors import Unauthenticated

SCHEME = "sha256="
_CONTEXT = b"gridcore alarm signing secret v1:"


def signing_secret(service_secret: str, key_prefix: str) -> str:
    """The signing secret of the API key with ``key_prefix``."""
    return hmac.new(service_secret.encode(), _CONTEXT + key_prefix.encode(),
                    hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Gridcore-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float, tolerance_s: int) -> None:
    """Unauthenticated unless ``signature`` signs ``body`` at a ``timestamp`` (Unix seconds)
    within ``tolerance_s`` of ``now``."""
    if not timestamp or not signature:
        raise Unauthenticated("a signed alarm needs X-Gridcore-Timestamp and "
                              "X-Gridcore-Signature (sha256=HMAC of \"<timestamp>.<body>\")",
                              field="X-Gridcore-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthenticated("X-Gridcore-Timestamp must be Unix seconds",
                              field="X-Gridcore-Timestamp") from None
    if abs(now - sent) > tolerance_s:
        raise Unauthenticated(f"X-Gridcore-Timestamp is {abs(now - sent):.0f} s away from now "
                              f"(at most {tolerance_s} s): a replay or a clock to set",
                              field="X-Gridcore-Timestamp")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise Unauthenticated("the signature does not match the body (wrong signing secret, "
                              "or the body was changed)", field="X-Gridcore-Signature")
