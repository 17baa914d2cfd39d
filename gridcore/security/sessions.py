"""Device sessions (设备会话): sign in once per phone, stay signed in, lose the phone → revoke.

A sign-in that asks for it (``scope=offline_access``) opens a *session* for the device and gets
a **refresh token** besides the short-lived access token. The refresh token reads
``gcr_<session id>_<secret>``; only the secret's SHA-256 is stored. Each use **rotates** it: the
answer carries a new refresh token and the old one stops working (OAuth 2.0 Security BCP,
refresh token rotation). Access tokens name their session (claim ``sid``), so revoking a session
ends its access tokens at once, not when they expire.

A phone on a bad network may lose the answer of a refresh and retry with the token it still
has: that *previous* token is honoured within a short grace period after the rotation (the
session rotates again and the token in the lost answer is dead; the grace period is not
extended). Presented later, a rotated token means two holders — a copy was stolen — and the
whole session is revoked (reuse detection).

Pure rules; storage is ``layers.security.sessions``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gridcore.errors import Unauthenticated

PREFIX = "gcr"
OFFLINE_SCOPE = "offline_access"  # the OAuth scope that asks for a refresh token


def new_session_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def refresh_token(session_id: str, secret: str) -> str:
    return f"{PREFIX}_{session_id}_{secret}"


def parse_refresh_token(token: str) -> tuple[str, str]:
    """(session id, secret) of a refresh token; Unauthenticated when it is not one."""
    parts = (token or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise Unauthenticated("not a refresh token (expected gcr_<session>_<secret>)")
    return parts[1], parts[2]


class Verdict(StrEnum):
    ROTATE = "rotate"  # the current token
    GRACE = "grace"  # the previous one within the grace period: rotate, keep the previous
    REUSED = "reused"  # a rotated token after the grace period: revoke the session
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG = "wrong"  # matches nothing this session ever issued


@dataclass(frozen=True, slots=True)
class StoredSession:
    """What the rules need of a stored session."""

    refresh_sha256: str
    previous_sha256: str | None
    rotated_at: datetime | None
    expires_at: datetime
    revoked: bool


def judge(session: StoredSession, secret: str, now: datetime, grace: timedelta) -> Verdict:
    """What to do with a refresh token presented for ``session``."""
    if session.revoked:
        return Verdict.REVOKED
    if now >= session.expires_at:
        return Verdict.EXPIRED
    presented = digest(secret)
    if hmac.compare_digest(presented, session.refresh_sha256.strip()):
        return Verdict.ROTATE
    if session.previous_sha256 and hmac.compare_digest(presented,
                                                       session.previous_sha256.strip()):
        within = session.rotated_at is not None and now - session.rotated_at <= grace
        return Verdict.GRACE if within else Verdict.REUSED
    return Verdict.WRONG


REFUSALS = {
    Verdict.REVOKED: "this device's session was revoked; sign in again",
    Verdict.EXPIRED: "this device's session expired; sign in again",
    Verdict.REUSED: "this refresh token was already used; the session is revoked as a "
                    "precaution (a copy of it may be in other hands); sign in again",
    Verdict.WRONG: "the refresh token is not valid; sign in again",
}
